"""The embedded default model shipped in the package: its folder, its preset, and a run with no --model."""

import json
from pathlib import Path

from typer.testing import CliRunner

from helios_cli.app import app
from helios_core.embedded.config import (
    EMBEDDED_HEIGHT,
    EMBEDDED_WIDTH,
    PACKAGE_BUDGET_BYTES,
    embedded_transformer_config,
    embedded_vae_config,
)
from helios_core.engine import default_model_path
from helios_core.model.folder import validate_model_folder
from helios_core.presets import load_preset


def test_the_folder_is_complete_and_within_the_package_budget():
    folder = default_model_path()
    validate_model_folder(folder)  # every part present, shards and index consistent
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    assert size <= PACKAGE_BUDGET_BYTES, f"{size / 2**20:.1f} MiB"
    transformer = json.loads((folder / "transformer" / "config.json").read_text())
    for key, value in embedded_transformer_config().items():
        assert transformer[key] == (list(value) if isinstance(value, tuple) else value), key
    vae = json.loads((folder / "vae" / "config.json").read_text())
    assert vae["z_dim"] == embedded_vae_config()["z_dim"] and vae["patch_size"] == 2
    # train_vae measured these on world clips; the placeholders (0 / 1) would mean an unnormalised latent space
    assert vae["latents_std"] != [1.0] * 16
    assert (folder / "MODEL_CARD.md").is_file()


def test_default_preset_matches_the_model():
    config = load_preset("default")
    assert (config.video.height, config.video.width) == (EMBEDDED_HEIGHT, EMBEDDED_WIDTH) == (128, 256)
    assert config.sampler.kind == "pyramid_dmd" and config.sampler.steps == (1, 1, 1)
    config.sampler.validate()
    assert [config.sampler.guided(stage) for stage in range(3)] == [True, True, False]  # the coarse stages only
    assert (config.video.height // 8) % 4 == 0 and (config.video.width // 8) % 4 == 0  # 3-stage pyramid halvings


def test_generate_without_model_uses_the_embedded_model_and_warns_about_unknown_words(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("HELIOS_MODEL", raising=False)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["generate", "a red circle moving left on a zebra background", "--frames", "20",
                                      "--seed", "1", "-o", "out.mp4", "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["model"] == "default" and summary["frames"] == 20
    sidecar = json.loads((tmp_path / "out.json").read_text())
    assert sidecar["config"]["preset"] == "default"
    assert (sidecar["width"], sidecar["height"]) == (256, 128)
    assert "zebra" in result.output  # the word outside the world's vocabulary is named, and the run still went on
