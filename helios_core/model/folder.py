"""A Helios model is a folder: validate it cheaply, load it strictly, write it back in the same layout.

Layout: diffusers' pipeline format, the one of the released Helios-Base/Mid/Distilled repositories, so diffusers'
`HeliosPipeline` / `HeliosPyramidPipeline.from_pretrained` also load what we write:

    model_index.json        pipeline class + one [library, class] pair per component ([null, null] = absent)
    transformer/            HeliosTransformer3DModel: config.json + diffusion_pytorch_model[-0000k-of-n].safetensors
    vae/                    AutoencoderKLWan, same file names
    text_encoder/           UMT5EncoderModel: config.json + model[-0000k-of-0000n].safetensors   (optional)
    tokenizer/              any transformers tokenizer                                           (optional)
    scheduler/              scheduler_config.json of HeliosScheduler or HeliosDMDScheduler

Invariants:
- Only local paths (`local_files_only=True` everywhere), only safetensors: nothing is ever unpickled.
- `validate_model_folder` reads JSON files and safetensors headers only, and compares every tensor's name and
  shape with a copy of the model built from its config on the meta device (no memory). Every problem is a
  `ModelFolderError` of one line naming the file (and tensor). `load_model_folder` always validates first.
- Loading is strict: a missing or unexpected tensor is an error, never a silently random weight.
- Precision follows the reference: transformer in `dtype` except the class's `_keep_in_fp32_modules`
  (time embedder, modulation tables, norms) which stay fp32; VAE always fp32; text encoder in `text_dtype`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import init_empty_weights
from diffusers import AutoencoderKLWan, HeliosDMDScheduler, HeliosScheduler, HeliosTransformer3DModel
from diffusers.utils import logging as diffusers_logging
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from transformers import AutoTokenizer, PreTrainedTokenizerBase, UMT5Config, UMT5EncoderModel
from transformers.utils import logging as transformers_logging

from helios_core.errors import ModelFolderError, OutputPathError

SCHEDULER_CLASSES = {"HeliosScheduler": HeliosScheduler, "HeliosDMDScheduler": HeliosDMDScheduler}
# component -> (is required, accepted class names in model_index.json; None = any tokenizer class)
COMPONENTS: dict[str, tuple[bool, frozenset[str] | None]] = {
    "transformer": (True, frozenset({"HeliosTransformer3DModel"})),
    "vae": (True, frozenset({"AutoencoderKLWan"})),
    "scheduler": (True, frozenset(SCHEDULER_CLASSES)),
    "text_encoder": (False, frozenset({"UMT5EncoderModel"})),
    "tokenizer": (False, None),
}
DIFFUSERS_WEIGHTS = "diffusion_pytorch_model"  # diffusers' file stem; transformers uses "model"


@dataclass
class ModelParts:
    """The loaded pieces of one model. The scheduler is a plain config dict: samplers build their own from it."""

    transformer: HeliosTransformer3DModel
    vae: AutoencoderKLWan
    text_encoder: UMT5EncoderModel | None
    tokenizer: PreTrainedTokenizerBase | None
    scheduler_config: dict


@dataclass(frozen=True)
class ModelFolderInfo:
    """What validation learned about a folder, without loading any weight."""

    path: Path
    pipeline_class: str
    transformer_config: dict
    vae_config: dict
    scheduler_config: dict
    text_encoder_config: dict | None
    has_text_encoder: bool
    has_tokenizer: bool
    weight_files: dict[str, tuple[Path, ...]]  # component -> its safetensors files, in load order


def _fail(root: Path, message: str) -> ModelFolderError:
    return ModelFolderError(f"model folder {root}: {message}")


def _read_json(root: Path, file: Path) -> dict:
    relative = file.relative_to(root)
    if not file.is_file():
        raise _fail(root, f"{relative} is missing")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise _fail(root, f"{relative} cannot be read ({error})") from error
    except json.JSONDecodeError as error:
        raise _fail(root, f"{relative} is not valid JSON (line {error.lineno}: {error.msg})") from error
    if not isinstance(data, dict):
        raise _fail(root, f"{relative} must hold a JSON object")
    return data


# ---- validation ------------------------------------------------------------------------------------------------


def validate_model_folder(path: Path) -> ModelFolderInfo:
    """Check a model folder without loading weights; raise a one-line ModelFolderError on the first problem."""
    root = Path(path).expanduser()
    if not root.exists():
        raise _fail(root, "does not exist; pass the path of a Helios model folder (the one holding model_index.json)")
    if not root.is_dir():
        raise _fail(root, "is a file, not a folder; pass the folder that holds model_index.json")
    index = _read_json(root, root / "model_index.json")
    present = {name: _component_entry(root, index, name) for name in COMPONENTS}

    transformer_config = _read_json(root, root / "transformer" / "config.json")
    vae_config = _read_json(root, root / "vae" / "config.json")
    scheduler_config = _read_json(root, root / "scheduler" / "scheduler_config.json")
    _check_config_class(root, "scheduler/scheduler_config.json", scheduler_config, frozenset(SCHEDULER_CLASSES))
    _check_scheduler_config(root, scheduler_config)

    meta_transformer = _meta_diffusers_model(root, "transformer", HeliosTransformer3DModel, transformer_config)
    meta_vae = _meta_diffusers_model(root, "vae", AutoencoderKLWan, vae_config)
    weight_files = {
        "transformer": _check_weights(root, "transformer", DIFFUSERS_WEIGHTS, meta_transformer),
        "vae": _check_weights(root, "vae", DIFFUSERS_WEIGHTS, meta_vae),
    }
    text_encoder_config = None
    if present["text_encoder"]:
        text_encoder_config = _read_json(root, root / "text_encoder" / "config.json")
        meta_text_encoder = _meta_text_encoder(root, text_encoder_config)
        weight_files["text_encoder"] = _check_weights(root, "text_encoder", "model", meta_text_encoder)
    if present["tokenizer"]:
        _check_tokenizer_files(root)
    _check_components_agree(root, transformer_config, vae_config, text_encoder_config)
    return ModelFolderInfo(
        path=root,
        pipeline_class=str(index.get("_class_name", "")),
        transformer_config=transformer_config,
        vae_config=vae_config,
        scheduler_config=scheduler_config,
        text_encoder_config=text_encoder_config,
        has_text_encoder=present["text_encoder"],
        has_tokenizer=present["tokenizer"],
        weight_files=weight_files,
    )


def _component_entry(root: Path, index: dict, name: str) -> bool:
    """Whether model_index.json lists component `name`; its folder must then exist. Required ones must be listed."""
    required, classes = COMPONENTS[name]
    entry = index.get(name)
    if entry is None or entry == [None, None]:
        if required:
            raise _fail(root, f"model_index.json lists no {name}; a Helios model needs transformer, vae and scheduler")
        return False
    if not (isinstance(entry, list) and len(entry) == 2 and all(isinstance(part, str) for part in entry)):
        raise _fail(root, f"model_index.json entry {name!r} must be [library, class], not {entry!r}")
    if classes is not None and entry[1] not in classes:
        raise _fail(root, f"model_index.json gives {name} class {entry[1]!r}; expected one of {sorted(classes)}")
    if not (root / name).is_dir():
        raise _fail(root, f"{name}/ is missing (listed in model_index.json)")
    return True


def _check_config_class(root: Path, relative: str, config: dict, classes: frozenset[str]) -> None:
    class_name = config.get("_class_name")
    if class_name is not None and class_name not in classes:
        raise _fail(root, f"{relative} is for class {class_name!r}; expected one of {sorted(classes)}")


def _check_scheduler_config(root: Path, config: dict) -> None:
    scheduler_class = SCHEDULER_CLASSES.get(config.get("_class_name", ""), HeliosScheduler)
    try:  # cheap (a 1000-step sigma table) and catches values the scheduler would reject later
        scheduler_class.from_config(config)
    except (TypeError, ValueError, IndexError, KeyError, NotImplementedError) as error:
        problem = f"is not a valid {scheduler_class.__name__} config ({error})"
        raise _fail(root, f"scheduler/scheduler_config.json {problem}") from error


def _meta_diffusers_model(root: Path, name: str, model_class: type, config: dict) -> torch.nn.Module:
    _check_config_class(root, f"{name}/config.json", config, frozenset({model_class.__name__}))
    if model_class is HeliosTransformer3DModel:
        rope_dim, head_dim = config.get("rope_dim", (44, 42, 42)), config.get("attention_head_dim", 128)
        if not (isinstance(rope_dim, (list, tuple)) and all(isinstance(d, int) for d in rope_dim)):
            raise _fail(root, f"transformer/config.json: rope_dim must be three integers, not {rope_dim!r}")
        if sum(rope_dim) != head_dim:  # the model builds fine either way and only fails inside its first forward
            message = f"rope_dim {list(rope_dim)} sums to {sum(rope_dim)}, but attention_head_dim is {head_dim}"
            raise _fail(root, f"transformer/config.json: {message}; they must be equal")
    try:
        # include_buffers=False: non-persistent buffers (RoPE frequencies) are computed for real, parameters are not.
        with init_empty_weights(include_buffers=False):
            return model_class.from_config(config)
    except (TypeError, ValueError, KeyError, AssertionError, RuntimeError) as error:
        raise _fail(root, f"{name}/config.json is not a valid {model_class.__name__} config ({error})") from error


def _meta_text_encoder(root: Path, config: dict) -> UMT5EncoderModel:
    if config.get("model_type") != "umt5":
        raise _fail(root, f"text_encoder/config.json has model_type {config.get('model_type')!r}; expected 'umt5'")
    try:
        with init_empty_weights(include_buffers=False):
            return UMT5EncoderModel(UMT5Config.from_dict(config))
    except (TypeError, ValueError, KeyError, AssertionError, RuntimeError) as error:
        raise _fail(root, f"text_encoder/config.json is not a valid UMT5 config ({error})") from error


def _check_weights(root: Path, name: str, stem: str, meta_model: torch.nn.Module) -> tuple[Path, ...]:
    """Compare the tensors named in the safetensors headers with the model built from config; return the files."""
    files, found = _read_headers(root, name, stem)
    expected = {key: list(tensor.shape) for key, tensor in meta_model.state_dict().items()}
    ignore = [re.compile(pattern) for pattern in getattr(meta_model, "_keys_to_ignore_on_load_unexpected", None) or []]
    # Tied weights (UMT5's shared embedding) are stored once, under either name.
    optional: set[str] = set()
    for target, source in _tied_pairs(meta_model):
        if target in found or source in found:
            optional |= {target, source}
    config_file = f"{name}/config.json"
    missing = [key for key in expected if key not in found and key not in optional]
    if missing:
        raise _fail(root, f"{name} weights lack tensor {missing[0]} that {config_file} implies{_and_more(missing)}")
    unexpected = [key for key in found if key not in expected and not any(p.search(key) for p in ignore)]
    if unexpected:
        file, more = found[unexpected[0]][0], _and_more(unexpected)
        raise _fail(root, f"{file} holds tensor {unexpected[0]} that {config_file} does not define{more}")
    for key, shape in expected.items():
        if key in found and found[key][1] != shape:
            file, found_shape = found[key]
            raise _fail(root, f"{file}: tensor {key} has shape {found_shape}, but {config_file} implies {shape}")
    return files


def _and_more(keys: list[str]) -> str:
    return f" (and {len(keys) - 1} more)" if len(keys) > 1 else ""


def _tied_pairs(model: torch.nn.Module) -> list[tuple[str, str]]:
    tied = getattr(model, "_tied_weights_keys", None)
    return list(tied.items()) if isinstance(tied, dict) else []


def _read_headers(root: Path, name: str, stem: str) -> tuple[tuple[Path, ...], dict[str, tuple[str, list[int]]]]:
    """Return the component's safetensors files and {tensor name: (file relative to root, shape)} from headers."""
    folder = root / name
    index_file, single_file = folder / f"{stem}.safetensors.index.json", folder / f"{stem}.safetensors"
    weight_map: dict[str, str] | None = None
    if index_file.is_file():
        weight_map = _read_json(root, index_file).get("weight_map")
        index_relative = index_file.relative_to(root)
        if not isinstance(weight_map, dict) or not weight_map:
            raise _fail(root, f"{index_relative} has no weight_map")
        shards = sorted(set(weight_map.values()))
        for shard in shards:
            if not isinstance(shard, str) or Path(shard).name != shard:  # no "../" escaping the component folder
                raise _fail(root, f"{index_relative} names shard {shard!r}, which is not a file name in {name}/")
            if not (folder / shard).is_file():
                raise _fail(root, f"{name}/{shard} is missing (listed in {index_relative})")
        files = tuple(folder / shard for shard in shards)
    elif single_file.is_file():
        files = (single_file,)
    else:
        pickles = sorted(p.name for p in folder.iterdir() if p.suffix in {".bin", ".pt", ".pth", ".ckpt"})
        if pickles:
            fix = "Helios loads safetensors only: convert with save_pretrained(..., safe_serialization=True)"
            raise _fail(root, f"{name}/ holds only pickle weights ({pickles[0]}); {fix}")
        raise _fail(root, f"{name}/ has no weights ({stem}.safetensors or {stem}.safetensors.index.json)")
    found: dict[str, tuple[str, list[int]]] = {}
    for file in files:
        relative = str(file.relative_to(root))
        try:
            with safe_open(file, framework="pt") as handle:
                for key in handle.keys():  # noqa: SIM118 - safe_open handles are not iterable
                    if key in found:
                        raise _fail(root, f"tensor {key} is stored twice: in {found[key][0]} and {relative}")
                    found[key] = (relative, list(handle.get_slice(key).get_shape()))
        except (SafetensorError, OSError) as error:
            raise _fail(root, f"{relative} is not a readable safetensors file ({error})") from error
    for key, shard in (weight_map or {}).items():
        if found.get(key, ("",))[0] != f"{name}/{shard}":
            index_relative = index_file.relative_to(root)
            raise _fail(root, f"{index_relative} lists tensor {key} in {shard}, but that file does not hold it")
    return files, found


def _check_tokenizer_files(root: Path) -> None:
    folder = root / "tokenizer"
    _read_json(root, folder / "tokenizer_config.json")
    if not any((folder / name).is_file() for name in ("tokenizer.json", "spiece.model")):
        raise _fail(root, "tokenizer/ has neither tokenizer.json nor spiece.model")


def _check_components_agree(root: Path, transformer: dict, vae: dict, text_encoder: dict | None) -> None:
    # Defaults are the classes' own __init__ defaults, for keys a config leaves out.
    latent_channels = vae.get("z_dim", 16)
    for key in ("in_channels", "out_channels"):
        channels = transformer.get(key, 16)
        if channels != latent_channels:
            mismatch = f"transformer/config.json {key}={channels} but vae/config.json z_dim={latent_channels}"
            raise _fail(root, f"{mismatch}; the transformer must work on the VAE's latents")
    text_dim = transformer.get("text_dim", 4096)
    if text_encoder is not None and text_encoder.get("d_model") != text_dim:
        mismatch = f"transformer/config.json text_dim={text_dim} but text_encoder/config.json d_model"
        raise _fail(root, f"{mismatch}={text_encoder.get('d_model')}; they must be equal")


# ---- loading ---------------------------------------------------------------------------------------------------


def load_model_folder(
    path: Path,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.bfloat16,
    load_text_encoder: bool = True,
    text_dtype: torch.dtype | None = None,
) -> ModelParts:
    """Validate, then load every part strictly. The tokenizer is loaded whenever the folder has one (it is cheap).

    `text_dtype` defaults to `dtype`; pass torch.float32 on a CPU. With `load_text_encoder=False` (prompt
    embeddings come from a cache) `text_encoder` is None.
    """
    info = validate_model_folder(path)
    root, device = info.path, torch.device(device)
    if load_text_encoder and not info.has_text_encoder:
        fix = "use a folder with one, or load without the text encoder and give precomputed prompt embeddings"
        raise _fail(root, f"has no text_encoder/ (model_index.json lists none); {fix}")
    with _quiet_progress_bars():
        transformer = _load_diffusers_model(info, "transformer", HeliosTransformer3DModel, device, dtype)
        # Always fp32, whatever `dtype` is: the reference runs its VAE in fp32 (reference §1(a), precision).
        vae = _load_diffusers_model(info, "vae", AutoencoderKLWan, device, torch.float32)
        text_encoder = _load_text_encoder(root, device, text_dtype or dtype) if load_text_encoder else None
        tokenizer = _load_tokenizer(root) if info.has_tokenizer else None
    return ModelParts(transformer, vae, text_encoder, tokenizer, dict(info.scheduler_config))


def _load_diffusers_model(
    info: ModelFolderInfo, name: str, model_class: type, device: torch.device, dtype: torch.dtype
) -> torch.nn.Module:
    """Build from config on meta, then assign the safetensors tensors with strict key matching.

    Written by hand rather than with `from_pretrained` so the strictness and the fp32 exceptions are explicit here,
    and no code path that could reach a hub is involved. Tensors are cast one shard at a time, so the peak memory is
    the cast model plus one shard as stored.
    """
    root = info.path
    config = info.transformer_config if name == "transformer" else info.vae_config
    with init_empty_weights(include_buffers=False):
        model = model_class.from_config(config)
    keep_fp32 = model_class._keep_in_fp32_modules or []
    ignore = [re.compile(pattern) for pattern in model_class._keys_to_ignore_on_load_unexpected or []]
    state: dict[str, torch.Tensor] = {}
    for file in info.weight_files[name]:
        for key, tensor in load_file(file, device=str(device)).items():
            if any(pattern.search(key) for pattern in ignore):
                continue
            if tensor.is_floating_point():
                # Same rule as diffusers: a module name anywhere in the dotted key keeps that tensor fp32.
                keep = any(module in key.split(".") for module in keep_fp32)
                tensor = tensor.to(torch.float32 if keep else dtype)
            state[key] = tensor
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as error:  # validation makes this unreachable unless files changed in between
        raise _fail(root, f"{name} weights do not match {name}/config.json ({str(error).splitlines()[0]})") from error
    return model.to(device).eval()  # .to moves the buffers computed on the CPU (RoPE frequencies)


def load_vae(path: Path, *, device: str | torch.device = "cpu") -> AutoencoderKLWan:
    """Only the VAE (validated, strict, fp32 as `load_model_folder` loads it), for uses that need no transformer."""
    info = validate_model_folder(path)
    with _quiet_progress_bars():
        return _load_diffusers_model(info, "vae", AutoencoderKLWan, torch.device(device), torch.float32)


def load_encoding_parts(
    path: Path, *, device: str | torch.device = "cpu"
) -> tuple[AutoencoderKLWan, UMT5EncoderModel, PreTrainedTokenizerBase]:
    """The VAE, text encoder and tokenizer, all fp32 on `device`, without the transformer (which for the 14B model is
    28 GB that data preparation would hold for nothing). One validation; a folder without a text encoder or
    tokenizer fails with a one-line error."""
    info = validate_model_folder(path)
    if not info.has_text_encoder or not info.has_tokenizer:
        raise _fail(info.path, "has no text encoder and tokenizer; encoding captions needs both")
    device = torch.device(device)
    with _quiet_progress_bars():
        vae = _load_diffusers_model(info, "vae", AutoencoderKLWan, device, torch.float32)
        return vae, _load_text_encoder(info.path, device, torch.float32), _load_tokenizer(info.path)


def load_tokenizer(path: Path) -> PreTrainedTokenizerBase:
    """Only the tokenizer (a folder's tokenizer/ must exist: `validate_model_folder` says whether it does)."""
    return _load_tokenizer(Path(path))


def load_text_encoder(path: Path, *, dtype: torch.dtype = torch.float32) -> UMT5EncoderModel:
    """Only the text encoder, on the CPU (the engine moves it to the GPU just while it encodes)."""
    return _load_text_encoder(Path(path), torch.device("cpu"), dtype).eval()


def _load_text_encoder(root: Path, device: torch.device, dtype: torch.dtype) -> UMT5EncoderModel:
    # transformers' loader handles the tied embedding; its loading info lets us stay strict.
    model, loading = UMT5EncoderModel.from_pretrained(
        str(root / "text_encoder"), local_files_only=True, use_safetensors=True, dtype=dtype, output_loading_info=True
    )
    for kind in ("missing_keys", "unexpected_keys", "mismatched_keys"):
        if loading.get(kind):
            keys = sorted(str(key) for key in loading[kind])
            raise _fail(root, f"text_encoder weights: {kind.replace('_', ' ')} {keys[0]}{_and_more(keys)}")
    return model.to(device).eval()


def _load_tokenizer(root: Path) -> PreTrainedTokenizerBase:
    try:
        return AutoTokenizer.from_pretrained(str(root / "tokenizer"), local_files_only=True)
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise _fail(root, f"tokenizer/ cannot be loaded ({str(error).splitlines()[0]})") from error


@contextlib.contextmanager
def _quiet_progress_bars() -> Iterator[None]:
    """The engine never prints: silence the libraries' per-shard progress bars, then restore their setting."""
    was_enabled = (diffusers_logging.is_progress_bar_enabled(), transformers_logging.is_progress_bar_enabled())
    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled[0]:
            diffusers_logging.enable_progress_bar()
        if was_enabled[1]:
            transformers_logging.enable_progress_bar()


# ---- saving ----------------------------------------------------------------------------------------------------


def save_model_folder(
    parts: ModelParts, path: Path, *, max_shard_size: str = "5GB", overwrite: bool = False
) -> None:
    """Write `parts` as a model folder that both `load_model_folder` and diffusers' pipelines load.

    The folder is written next to `path` first and renamed into place, so an interrupted save never leaves a
    half-written model under `path`. An existing non-empty `path` is only replaced with `overwrite=True`, and only
    if it is itself a model folder (has model_index.json), so a wrong path cannot wipe unrelated files.
    """
    target = Path(path).expanduser()
    _check_save_target(target, overwrite)
    scheduler_config = dict(parts.scheduler_config)
    class_name = scheduler_config.get("_class_name", "HeliosScheduler")
    if class_name not in SCHEDULER_CLASSES:
        raise ValueError(f"scheduler_config _class_name {class_name!r} is not one of {sorted(SCHEDULER_CLASSES)}")
    scheduler = SCHEDULER_CLASSES[class_name].from_config(scheduler_config)
    pipeline = _pipeline_for(parts, scheduler)
    staging = target.parent / f".{target.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with _quiet_progress_bars():
            # The pipeline's own save writes model_index.json with the [library, class] pairs diffusers expects.
            pipeline.save_pretrained(staging, safe_serialization=True, max_shard_size=max_shard_size)
        # Move the old folder aside before renaming, so a failed rename still leaves one complete model on disk.
        replaced = target.parent / f".{target.name}.replaced-{os.getpid()}"
        if target.exists():
            target.rename(replaced)
        staging.rename(target)
        shutil.rmtree(replaced, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _check_save_target(target: Path, overwrite: bool) -> None:
    if target.exists() and not target.is_dir():
        raise OutputPathError(f"cannot save a model folder at {target}: it is a file; choose a folder path")
    if target.is_dir() and any(target.iterdir()):
        if not overwrite:
            raise OutputPathError(f"{target} already exists and is not empty; choose a new folder or pass overwrite")
        if not (target / "model_index.json").is_file():
            raise OutputPathError(f"{target} is not a model folder (no model_index.json); refusing to replace it")


def _pipeline_for(parts: ModelParts, scheduler: HeliosScheduler | HeliosDMDScheduler) -> object:
    # Imported here: the pipelines pull in the video processor and more, which only saving needs.
    from diffusers import HeliosPipeline, HeliosPyramidPipeline

    components = {
        "transformer": parts.transformer,
        "vae": parts.vae,
        "text_encoder": parts.text_encoder,
        "tokenizer": parts.tokenizer,
        "scheduler": scheduler,
    }
    is_distilled = isinstance(scheduler, HeliosDMDScheduler)
    if not is_distilled and scheduler.config.stages == 1:
        return HeliosPipeline(**components)  # Helios-Base: one full-resolution stage
    # Helios-Mid samples its pyramid with CFG-Zero*, Helios-Distilled with DMD and no CFG (reference §1(b)).
    return HeliosPyramidPipeline(**components, is_cfg_zero_star=not is_distilled, is_distilled=is_distilled)
