"""Model folders: save -> load round trip, diffusers compatibility, and one-line errors for broken folders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from helios_core.errors import ModelFolderError, OutputPathError
from helios_core.model.folder import (
    ModelParts,
    load_encoding_parts,
    load_model_folder,
    load_vae,
    save_model_folder,
    validate_model_folder,
)
from helios_core.model.tiny import build_tiny_model_parts, tiny_transformer_config

SHARD_SIZE = "100KB"  # the tiny transformer is ~0.6 MB in fp32: this forces several shards
TRANSFORMER_INDEX = "transformer/diffusion_pytorch_model.safetensors.index.json"


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModelParts, Path]:
    parts = build_tiny_model_parts(seed=3, scheduler="dmd")
    folder = tmp_path_factory.mktemp("models") / "tiny"
    save_model_folder(parts, folder, max_shard_size=SHARD_SIZE)
    return parts, folder


@pytest.fixture
def folder_copy(saved: tuple[ModelParts, Path], tmp_path: Path) -> Path:
    """A private copy to break."""
    return Path(shutil.copytree(saved[1], tmp_path / "copy"))


def _shards(folder: Path) -> list[str]:
    index = json.loads((folder / TRANSFORMER_INDEX).read_text())
    return sorted(set(index["weight_map"].values()))


def _error(folder: Path) -> str:
    with pytest.raises(ModelFolderError) as caught:
        validate_model_folder(folder)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"model folder {folder}")
    return message


def test_save_then_load_is_bit_exact_for_every_tensor(saved: tuple[ModelParts, Path]) -> None:
    parts, folder = saved
    shards = _shards(folder)
    assert len(shards) >= 3, shards
    assert all((folder / "transformer" / shard).is_file() for shard in shards)
    loaded = load_model_folder(folder, dtype=torch.float32, text_dtype=torch.float32)
    for name in ("transformer", "vae", "text_encoder"):
        original, reloaded = getattr(parts, name).state_dict(), getattr(loaded, name).state_dict()
        assert original.keys() == reloaded.keys(), name
        for key, tensor in original.items():
            assert reloaded[key].dtype == tensor.dtype and torch.equal(reloaded[key], tensor), f"{name}.{key}"
    assert loaded.scheduler_config == parts.scheduler_config
    assert loaded.tokenizer.get_vocab() == parts.tokenizer.get_vocab()


def test_validate_reports_configs_without_loading_weights(saved: tuple[ModelParts, Path]) -> None:
    parts, folder = saved
    info = validate_model_folder(folder)
    assert info.pipeline_class == "HeliosPyramidPipeline"
    assert info.transformer_config["num_layers"] == tiny_transformer_config()["num_layers"]
    assert info.vae_config["z_dim"] == 16
    assert info.scheduler_config["_class_name"] == "HeliosDMDScheduler"
    assert info.has_text_encoder and info.has_tokenizer
    assert len(info.weight_files["transformer"]) == len(_shards(folder))


def test_diffusers_pyramid_pipeline_loads_the_saved_folder(saved: tuple[ModelParts, Path]) -> None:
    from diffusers import HeliosDMDScheduler, HeliosPyramidPipeline

    parts, folder = saved
    pipeline = HeliosPyramidPipeline.from_pretrained(folder, local_files_only=True)
    assert isinstance(pipeline.scheduler, HeliosDMDScheduler) and pipeline.config.is_distilled
    theirs, ours = pipeline.transformer.state_dict(), parts.transformer.state_dict()
    assert theirs.keys() == ours.keys() and all(torch.equal(theirs[k], ours[k]) for k in ours)
    assert pipeline.tokenizer("red cat").input_ids == parts.tokenizer("red cat").input_ids


@pytest.mark.parametrize(
    ("kind", "pipeline_class"),
    [("unipc", "HeliosPipeline"), ("unipc3", "HeliosPyramidPipeline"), ("dmd", "HeliosPyramidPipeline")],
)
def test_model_index_names_the_pipeline_of_the_scheduler(kind: str, pipeline_class: str, tmp_path: Path) -> None:
    save_model_folder(build_tiny_model_parts(scheduler=kind), tmp_path / kind)
    index = json.loads((tmp_path / kind / "model_index.json").read_text())
    assert index["_class_name"] == pipeline_class
    assert index["transformer"] == ["diffusers", "HeliosTransformer3DModel"]
    assert index["text_encoder"] == ["transformers", "UMT5EncoderModel"]


def test_bf16_load_keeps_the_fp32_modules_fp32(saved: tuple[ModelParts, Path]) -> None:
    loaded = load_model_folder(saved[1], dtype=torch.bfloat16)
    dtypes = {name: p.dtype for name, p in loaded.transformer.named_parameters()}
    for name in (
        "blocks.0.scale_shift_table",
        "blocks.1.norm2.weight",
        "condition_embedder.time_embedder.linear_1.weight",
        "norm_out.scale_shift_table",
    ):
        assert dtypes[name] == torch.float32, name
    for name in ("blocks.0.attn1.to_q.weight", "blocks.1.ffn.net.2.weight", "patch_long.weight", "proj_out.weight"):
        assert dtypes[name] == torch.bfloat16, name
    assert all(p.dtype == torch.float32 for p in loaded.vae.parameters())
    assert all(p.dtype == torch.bfloat16 for p in loaded.text_encoder.parameters())
    # The mixed-precision model still runs.
    with torch.no_grad():
        out = loaded.transformer(
            hidden_states=torch.randn(1, 16, 2, 4, 4, dtype=torch.bfloat16),
            timestep=torch.tensor([500]),
            encoder_hidden_states=torch.randn(1, 5, 32, dtype=torch.bfloat16),
        ).sample
    assert out.shape == (1, 16, 2, 4, 4) and torch.isfinite(out.float()).all()


def test_text_encoder_dtype_and_skipping_it(saved: tuple[ModelParts, Path]) -> None:
    fp32_text = load_model_folder(saved[1], dtype=torch.bfloat16, text_dtype=torch.float32)
    assert all(p.dtype == torch.float32 for p in fp32_text.text_encoder.parameters())
    without = load_model_folder(saved[1], load_text_encoder=False)
    assert without.text_encoder is None and without.tokenizer is not None


def test_deleted_shard_is_named(folder_copy: Path) -> None:
    shard = _shards(folder_copy)[1]
    (folder_copy / "transformer" / shard).unlink()
    message = _error(folder_copy)
    assert f"transformer/{shard} is missing (listed in {TRANSFORMER_INDEX})" in message


def test_tensor_of_wrong_shape_names_file_and_tensor(folder_copy: Path) -> None:
    shard = folder_copy / "transformer" / _shards(folder_copy)[0]
    tensors = load_file(shard)
    name = sorted(tensors)[0]
    tensors[name] = torch.zeros(3, 7)
    save_file(tensors, shard, metadata={"format": "pt"})
    message = _error(folder_copy)
    assert f"transformer/{shard.name}: tensor {name} has shape [3, 7]" in message and "config.json" in message


def test_extra_and_missing_tensors_fail_validation_and_loading(folder_copy: Path) -> None:
    shard = folder_copy / "transformer" / _shards(folder_copy)[0]
    tensors = load_file(shard)
    save_file({**tensors, "blocks.9.extra.weight": torch.zeros(2)}, shard, metadata={"format": "pt"})
    with pytest.raises(ModelFolderError, match=r"holds tensor blocks\.9\.extra\.weight that transformer/config"):
        load_model_folder(folder_copy)
    dropped = sorted(tensors)[0]
    del tensors[dropped]
    save_file(tensors, shard, metadata={"format": "pt"})
    assert f"lists tensor {dropped} in {shard.name}, but that file does not hold it" in _error(folder_copy)
    index_file = folder_copy / TRANSFORMER_INDEX
    index = json.loads(index_file.read_text())
    del index["weight_map"][dropped]
    index_file.write_text(json.dumps(index))
    assert f"transformer weights lack tensor {dropped} that transformer/config.json implies" in _error(folder_copy)


def test_missing_component_folder(folder_copy: Path) -> None:
    shutil.rmtree(folder_copy / "vae")
    assert _error(folder_copy).endswith("vae/ is missing (listed in model_index.json)")


def test_missing_or_broken_model_index(folder_copy: Path) -> None:
    index = folder_copy / "model_index.json"
    index.write_text("{ not json")
    assert "model_index.json is not valid JSON (line 1" in _error(folder_copy)
    index.unlink()
    assert _error(folder_copy).endswith("model_index.json is missing")


def test_missing_folder_and_file_instead_of_folder(tmp_path: Path) -> None:
    assert "does not exist" in _error(tmp_path / "nowhere")
    (tmp_path / "file").write_text("x")
    assert "is a file, not a folder" in _error(tmp_path / "file")


def test_truncated_shard_is_unreadable(folder_copy: Path) -> None:
    shard = folder_copy / "transformer" / _shards(folder_copy)[-1]
    shard.write_bytes(shard.read_bytes()[:200])
    assert f"transformer/{shard.name} is not a readable safetensors file" in _error(folder_copy)


def test_pickle_only_weights_are_refused(folder_copy: Path) -> None:
    vae = folder_copy / "vae"
    for file in vae.glob("*.safetensors*"):
        file.unlink()
    (vae / "diffusion_pytorch_model.bin").write_bytes(b"never unpickled")
    assert "vae/ holds only pickle weights (diffusion_pytorch_model.bin)" in _error(folder_copy)


def test_rope_dims_that_do_not_sum_to_the_head_dim(folder_copy: Path) -> None:
    config_file = folder_copy / "transformer" / "config.json"
    config = json.loads(config_file.read_text())
    config["rope_dim"] = [12, 10, 8]
    config_file.write_text(json.dumps(config))
    assert "rope_dim [12, 10, 8] sums to 30, but attention_head_dim is 32" in _error(folder_copy)


def test_save_refuses_to_clobber(saved: tuple[ModelParts, Path], tmp_path: Path) -> None:
    parts = saved[0]
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(OutputPathError, match="not empty"):
        save_model_folder(parts, other)
    with pytest.raises(OutputPathError, match="not a model folder"):
        save_model_folder(parts, other, overwrite=True)
    assert (other / "keep.txt").read_text() == "mine"
    target = tmp_path / "model"
    save_model_folder(parts, target)
    save_model_folder(build_tiny_model_parts(seed=4), target, overwrite=True)
    reloaded = load_model_folder(target, dtype=torch.float32, load_text_encoder=False)
    fresh = build_tiny_model_parts(seed=4).transformer.state_dict()
    assert all(torch.equal(reloaded.transformer.state_dict()[k], fresh[k]) for k in fresh)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging folder left behind


def test_load_vae_alone_is_the_folders_fp32_vae(saved: tuple[ModelParts, Path], folder_copy: Path) -> None:
    parts, folder = saved
    vae = load_vae(folder)
    for (name, expected), actual in zip(parts.vae.state_dict().items(), vae.state_dict().values()):
        assert actual.dtype == torch.float32 and torch.equal(actual, expected.float()), name
    for shard in (folder_copy / "vae").glob("*.safetensors"):
        shard.unlink()
    with pytest.raises(ModelFolderError, match="vae"):  # validated first, like every other load
        load_vae(folder_copy)


def test_load_encoding_parts_is_the_folders_vae_text_encoder_and_tokenizer_in_fp32(
    saved: tuple[ModelParts, Path], folder_copy: Path
) -> None:
    parts, folder = saved
    vae, text_encoder, tokenizer = load_encoding_parts(folder)
    for loaded, expected in ((vae, parts.vae), (text_encoder, parts.text_encoder)):
        for (name, want), got in zip(expected.state_dict().items(), loaded.state_dict().values()):
            assert got.dtype == torch.float32 and torch.equal(got, want.float()), name
    assert tokenizer("a red circle").input_ids == parts.tokenizer("a red circle").input_ids
    index = json.loads((folder_copy / "model_index.json").read_text())
    index["text_encoder"] = [None, None]  # a folder made for cached prompt embeddings
    (folder_copy / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ModelFolderError, match="no text encoder and tokenizer"):
        load_encoding_parts(folder_copy)
