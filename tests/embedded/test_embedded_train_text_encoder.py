"""Text-encoder training on captions alone, at toy length on the CPU: roles become readable, the anchor holds the
embeddings near the start, runs repeat exactly, and the saved folder loads as the same UMT5 encoder."""

import json

import pytest
import torch
from transformers import UMT5EncoderModel

from helios_core.embedded.text_roles import RoleMeasureSizes
from helios_core.embedded.train_text_encoder import (
    TextEncoderTrainSettings,
    main,
    save_trained_text_encoder,
    train_text_encoder,
)
from helios_core.engine import default_model_path
from helios_core.errors import ConfigError

SMALL = RoleMeasureSizes(probe_captions=300, readout_train_captions=1500, readout_test_captions=300, readout_steps=300)


def toy_settings(**values) -> TextEncoderTrainSettings:
    base = dict(model=str(default_model_path()), steps=200, batch_size=32, learning_rate=3e-3, warmup_steps=10,
                train_captions=2000, measure=SMALL)
    return TextEncoderTrainSettings(**{**base, **values})


@pytest.fixture(scope="module")
def anchored():
    torch.set_num_threads(2)
    return train_text_encoder(toy_settings(anchor_weight=10.0))


def test_training_makes_the_background_colour_readable(anchored):
    # The shipped (random) encoder is a bag of words to a cross-attention reader; the trained one is not.
    assert anchored.before["background_color_readout"] < 0.7
    assert anchored.after["background_color_readout"] > 0.95
    assert anchored.after["object_color_readout"] > 0.9
    assert anchored.after["role_probe_accuracy"] > 0.95 > anchored.before["role_probe_accuracy"]
    assert anchored.after["color_role_cosine"] < anchored.before["color_role_cosine"]
    assert anchored.losses[-1] < anchored.losses[0] / 3


def test_the_anchor_keeps_embeddings_near_the_starting_encoders(anchored):
    # Only embedding_change matters here, so the readout is kept to a token size.
    free = train_text_encoder(toy_settings(anchor_weight=0.0, measure=RoleMeasureSizes(300, 200, 50, 5)))
    assert anchored.after["embedding_change"] < 0.2
    assert free.after["embedding_change"] > 3 * anchored.after["embedding_change"]


def test_runs_repeat_exactly():
    first = train_text_encoder(toy_settings(steps=6, measure=RoleMeasureSizes(50, 200, 50, 5)))
    second = train_text_encoder(toy_settings(steps=6, measure=RoleMeasureSizes(50, 200, 50, 5)))
    assert first.losses == second.losses
    for a, b in zip(first.encoder.state_dict().values(), second.encoder.state_dict().values()):
        assert torch.equal(a, b)


def test_saved_folder_is_the_same_encoder_in_safetensors(anchored, tmp_path):
    settings = toy_settings(anchor_weight=10.0)
    out = save_trained_text_encoder(anchored, settings, tmp_path / "text_encoder")
    assert (out / "model.safetensors").is_file() and not list(out.glob("*.bin"))
    config = json.loads((out / "config.json").read_text())
    assert "_name_or_path" not in config and config["d_model"] == 128
    log = json.loads((out / "train_log.json").read_text())
    assert log["after"] == anchored.after and log["settings"]["anchor_weight"] == 10.0
    loaded = UMT5EncoderModel.from_pretrained(out).eval()
    ids = torch.tensor([[31, 51, 69, 67, 47, 1]])
    with torch.no_grad():
        expected = anchored.encoder(input_ids=ids).last_hidden_state
        assert torch.equal(loaded(input_ids=ids).last_hidden_state, expected)


def test_bad_settings_are_one_line_errors(tmp_path, capsys):
    with pytest.raises(ConfigError, match="no tokenizer"):
        train_text_encoder(toy_settings(model=str(tmp_path)))
    with pytest.raises(ConfigError, match="steps must be at least 1"):
        train_text_encoder(toy_settings(steps=0))
    assert main(["--model", str(tmp_path / "missing"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "no tokenizer" in err[0]
    assert not (tmp_path / "out").exists()
