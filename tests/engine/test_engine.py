"""The engine face on a tiny model folder: request checks before loading, streaming, seeds, drift remedy, memory."""

import json
import subprocess
import sys

import numpy as np
import pytest

from helios_core.config import GenerationConfig, RuntimeConfig
from helios_core.drift import DriftDetector
from helios_core.engine import HeliosEngine
from helios_core.errors import ConfigError, ModelFolderError, UserInputError
from helios_core.model.tiny import tiny_generation_config
from helios_core.pipeline import plan_frames
from helios_core.request import GenerationRequest


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return HeliosEngine.load(tiny_model_dir, RuntimeConfig(device="cpu"))


def _request(seed=1, prompt="a red circle", **values):
    return GenerationRequest(config=tiny_generation_config(**values), seed=seed, prompt=prompt)


def test_frame_plan_follows_the_request_or_the_reference():
    minute = tiny_generation_config(**{"video.num_frames": None, "video.seconds": 60.0})
    assert (plan_frames(minute).num_chunks, plan_frames(minute).num_pixel_frames) == (44, 1440)
    reference = minute.with_values({"video.trim": "reference"})
    assert plan_frames(reference).num_pixel_frames == 1449  # 44 * 33 = 1452, cut to 4k + 1 as the official code
    assert plan_frames(tiny_generation_config(**{"video.num_frames": 1})).num_chunks == 1


def test_check_request_rejects_bad_input_before_loading(tiny_model_dir, tmp_path):
    HeliosEngine.check_request(tiny_model_dir, _request())
    with pytest.raises(ConfigError, match="multiple of 64"):
        HeliosEngine.check_request(tiny_model_dir, _request(**{"video.width": 96}))
    with pytest.raises(UserInputError, match="prompt is empty"):
        HeliosEngine.check_request(tiny_model_dir, _request(prompt="   "))
    with pytest.raises(ModelFolderError):
        HeliosEngine.check_request(tmp_path / "nope", _request())


def test_streams_exactly_the_requested_frames(engine):
    chunks = list(engine.generate(_request()))
    assert [len(c.pixel_frames) for c in chunks] == [33, 7]
    assert [c.first_frame_index for c in chunks] == [0, 33]
    assert chunks[0].pixel_frames.dtype == np.uint8 and chunks[0].pixel_frames.shape[1:] == (64, 64, 3)
    assert all(c.timings["total"] > 0 for c in chunks) and len(chunks[0].latent_stats["mean"]) == 16


def test_same_seed_same_video_other_seed_other_video(engine):
    a = np.concatenate([c.pixel_frames for c in engine.generate(_request(seed=5))])
    b = np.concatenate([c.pixel_frames for c in engine.generate(_request(seed=5))])
    c = np.concatenate([c.pixel_frames for c in engine.generate(_request(seed=6))])
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_anti_drift_noises_history_only_when_the_latent_rule_fires(engine, monkeypatch):
    values = {"video.num_frames": 99, "drift.anti_drift": True, "drift.remedy_on": "latent"}
    baseline = [c.pixel_frames for c in engine.generate(_request(**values))]
    monkeypatch.setattr(DriftDetector, "latent_drift_flag", property(lambda self: True))
    corrected = list(engine.generate(_request(**values)))
    assert corrected[0].actions and "history latents noised" in corrected[0].actions[0]
    # chunk 0 is decoded before the remedy; later chunks see the noised history and change
    assert np.array_equal(corrected[0].pixel_frames, baseline[0])
    assert not np.array_equal(corrected[1].pixel_frames, baseline[1])


def test_anti_drift_acts_on_pixel_warnings_unless_told_to_follow_the_latent_rule_alone(engine, monkeypatch):
    from helios_core.drift.config import DriftWarning

    real_observe = DriftDetector.observe_chunk

    def observe(self, index, frames, latents=None):
        found = real_observe(self, index, frames, latents)
        if frames is not None and index == 0:  # chunk 0's pixels "saturate"
            found.append(DriftWarning("saturation", 0.5, 0.25, 0.0, 0, "saturation up 50% vs anchor at 0.0 s"))
        return found

    monkeypatch.setattr(DriftDetector, "observe_chunk", observe)
    monkeypatch.setattr(DriftDetector, "latent_drift_flag", property(lambda self: False))
    # 4 chunks: chunk 0's pixels are checked while chunk 1 is made (overlapped decode), so the remedy lands on the
    # history of chunk 2 and shows from chunk 3 on
    values = {"video.num_frames": 132, "drift.anti_drift": True}
    any_kind = list(engine.generate(_request(**values, **{"drift.remedy_on": "any"})))
    latent_only = list(engine.generate(_request(**values, **{"drift.remedy_on": "latent"})))
    acted = [a for c in any_kind for a in c.actions]
    assert len(acted) == 1 and "after pixel drift" in acted[0]
    assert not [a for c in latent_only for a in c.actions]
    assert np.array_equal(any_kind[0].pixel_frames, latent_only[0].pixel_frames)
    assert not np.array_equal(any_kind[-1].pixel_frames, latent_only[-1].pixel_frames)


MEMORY_SCRIPT = """
import resource, sys
from pathlib import Path
from helios_core.config import GenerationConfig, RuntimeConfig
from helios_core.engine import HeliosEngine
from helios_core.model.tiny import tiny_generation_config
from helios_core.request import GenerationRequest
engine = HeliosEngine.load(Path(sys.argv[1]), RuntimeConfig(device="cpu"))
# 3 latent frames per chunk (9 pixel frames): the same loop and history, cheaper chunks
values = {"history.latent_frames_per_chunk": 3, "video.num_frames": 9 * int(sys.argv[2]), "drift.detect": False}
request = GenerationRequest(config=tiny_generation_config(**values), seed=0, prompt="a red circle")
count = sum(1 for _ in engine.generate(request))
print(count, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def test_peak_memory_does_not_grow_with_video_length(tiny_model_dir):
    peaks = {}
    for num_chunks in (4, 40):
        out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(tiny_model_dir), str(num_chunks)],
                             capture_output=True, text=True, check=True).stdout.split()
        assert int(out[0]) == num_chunks
        peaks[num_chunks] = int(out[1])
    print(json.dumps({"peak_rss_kib": peaks}))
    assert peaks[40] <= peaks[4] * 1.05


def test_offload_is_refused_without_a_gpu(tiny_model_dir):
    with pytest.raises(ConfigError, match="needs a CUDA device"):
        HeliosEngine.load(tiny_model_dir, RuntimeConfig(device="cpu", offload="group"))


def test_cudnn_attention_is_refused_without_a_gpu_before_loading(tiny_model_dir, monkeypatch):
    def must_not_load(*args, **kwargs):
        raise AssertionError("weights were loaded before the attention choice was checked")

    monkeypatch.setattr("helios_core.engine.load_model_folder", must_not_load)
    with pytest.raises(ConfigError, match="attention=cudnn needs a CUDA GPU"):
        HeliosEngine.load(tiny_model_dir, RuntimeConfig(device="cpu", attention="cudnn"))
    request = GenerationRequest(config=GenerationConfig().with_values(
        {"runtime.device": "cpu", "runtime.attention": "cudnn", "video.height": 64, "video.width": 64}),
        seed=0, prompt="a red circle")
    with pytest.raises(ConfigError, match="attention=cudnn needs a CUDA GPU"):
        HeliosEngine.check_request(tiny_model_dir, request)  # what the CLI runs before loading


@pytest.mark.parametrize("choice, whole", [("auto", True), ("whole", True), ("frames", False)])
def test_vae_decode_choice_reaches_the_codec(tiny_model_dir, choice, whole):
    engine = HeliosEngine.load(tiny_model_dir, RuntimeConfig(device="cpu", vae_decode=choice))
    assert engine.generator.codec.uses_whole_decode() is whole  # auto: whole on a CPU


def test_words_outside_the_vocabulary_are_named(engine):
    assert engine.unknown_words("a red zebra walks over the quokka") == ["zebra", "quokka"]
    assert engine.unknown_words("a red cat walks") == []
