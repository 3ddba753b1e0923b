"""The sampler's diffusers scheduler is built from the model folder's scheduler config."""

import pytest
from diffusers import HeliosDMDScheduler, HeliosScheduler

from helios_core.model.tiny import scheduler_config_for
from helios_core.samplers.denoise import build_scheduler


@pytest.mark.parametrize("kind", ["pyramid_dmd", "pyramid_unipc"])
def test_one_stage_folder_runs_a_three_stage_pyramid(kind):
    # A Base folder saves stage_range [0, 1]; a pyramid preset on it used to crash inside diffusers (IndexError).
    scheduler = build_scheduler(kind, scheduler_config_for("unipc"), num_stages=3)
    assert isinstance(scheduler, HeliosDMDScheduler if kind == "pyramid_dmd" else HeliosScheduler)
    assert list(scheduler.config.stage_range) == pytest.approx([0, 1 / 3, 2 / 3, 1])
    assert len(scheduler.start_sigmas) == 3


def test_matching_folder_range_is_kept():
    folder = scheduler_config_for("dmd")
    folder["stage_range"] = [0.0, 0.25, 0.5, 1.0]
    scheduler = build_scheduler("pyramid_dmd", folder, num_stages=3)
    assert list(scheduler.config.stage_range) == [0.0, 0.25, 0.5, 1.0]
