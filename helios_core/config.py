"""Generation settings as typed, frozen dataclasses, and the rules that resolve them.

A resolved `GenerationConfig` comes from three sources, in increasing precedence: the dataclass defaults here, a preset
(a YAML mapping of the same sections, see `presets.py`), and `key=value` overrides (`--set sampler.steps=[2,2,2]`, or
the CLI's own flags, which it turns into the same dotted keys). Unknown keys and values of the wrong type fail with a
`ConfigError` naming the key, before any weights load. The resolved config is what the JSON sidecar records, and
`GenerationConfig.from_dict(sidecar["config"])` rebuilds it exactly (`helios generate --from NAME.json`).

This module knows nothing of YAML files or of the CLI; it only turns plain data into checked config objects.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

from helios_core.errors import ConfigError

# Wan 2.1's standard negative prompt (English rendering), which Helios' official scripts pass by default.
DEFAULT_NEGATIVE_PROMPT = (
    "Bright tones, overexposed, static, blurred details, subtitles, style, works, paintings, images, static, overall "
    "gray, worst quality, low quality, JPEG compression residue, ugly, incomplete, extra fingers, poorly drawn hands, "
    "poorly drawn faces, deformed, disfigured, misshapen limbs, fused fingers, still picture, messy background, three "
    "legs, many people in the background, walking backwards"
)

ConfigT = TypeVar("ConfigT")
SamplerKind = Literal["flow_unipc", "pyramid_unipc", "pyramid_dmd"]
TrimRule = Literal["request", "reference"]


@dataclass(frozen=True)
class SamplerConfig:
    """How each chunk is denoised. `steps` has one entry per pyramid stage (one entry: no pyramid)."""

    kind: SamplerKind = "pyramid_dmd"
    steps: tuple[int, ...] = (1, 1, 1)
    guidance_scale: float = 1.0  # > 1 runs classifier-free guidance (two forwards per step)
    # Guide only this many of the coarsest pyramid stages (None: every stage). Where objects are placed and coloured
    # is settled at the coarse stages, whose forwards are the cheap ones. A count rather than a list of stage numbers,
    # so a preset's value still means something when --steps or sampler.kind change the number of stages.
    guidance_coarse_stages: int | None = None
    cfg_zero_star: bool = False  # CFG-Zero*: optimised scale s* = <v_c, v_u> / |v_u|^2
    zero_init: bool = False  # CFG-Zero* zero-init: prediction forced to 0 for the first steps of stage 0
    zero_init_steps: int = 1  # steps with index <= this are zeroed (the reference's `zero_steps`)
    amplify_first_chunk: bool = False  # DMD only: 2*steps+1 timesteps per stage on chunk 0

    def validate(self) -> None:
        if not self.steps or any(s < 1 for s in self.steps):
            raise ConfigError(f"sampler.steps must be a non-empty list of positive integers, got {list(self.steps)}")
        if self.kind == "flow_unipc" and len(self.steps) != 1:
            raise ConfigError("sampler.steps must have one entry for the flow_unipc sampler (no pyramid)")
        if self.kind != "flow_unipc" and len(self.steps) < 2:
            raise ConfigError(f"sampler.steps needs one entry per pyramid stage for {self.kind}, got {list(self.steps)}")
        if self.guidance_scale < 0:
            raise ConfigError(f"sampler.guidance_scale must be >= 0, got {self.guidance_scale}")
        if self.guidance_coarse_stages is not None and self.guidance_coarse_stages < 1:
            raise ConfigError("sampler.guidance_coarse_stages must be at least 1 (or null for every stage), got "
                              f"{self.guidance_coarse_stages}")

    def guided(self, stage: int) -> bool:
        """Whether pyramid stage `stage` (0 = the coarsest) runs classifier-free guidance (two forwards per step)."""
        coarse = self.guidance_coarse_stages
        return self.guidance_scale > 1.0 and (coarse is None or stage < coarse)

    @property
    def partly_guided(self) -> bool:
        """Guidance on in some stages and off in others."""
        return len({self.guided(stage) for stage in range(self.num_stages)}) > 1

    @property
    def num_stages(self) -> int:
        return len(self.steps)


@dataclass(frozen=True)
class VideoConfig:
    """What comes out: size, rate and length. Exactly one of `seconds` and `num_frames` decides the length."""

    seconds: float | None = 10.0
    num_frames: int | None = None  # pixel frames; wins over `seconds` when set
    height: int = 384
    width: int = 640
    fps: float = 24.0
    trim: TrimRule = "request"  # "request": exactly the frames asked for; "reference": 33*chunks cut to 4k+1 frames

    # A minute-scale tool, not an hour-scale one: longer requests are almost always a typo (e.g. frames for seconds).
    max_seconds: typing.ClassVar[float] = 3600.0

    def validate(self) -> None:
        if self.num_frames is not None and self.num_frames < 1:
            raise ConfigError(f"video.num_frames must be positive, got {self.num_frames}")
        if self.num_frames is None and (self.seconds is None or not self.seconds > 0 or math.isinf(self.seconds)):
            raise ConfigError(f"video length must be positive, got {self.seconds} seconds")
        if not self.fps > 0 or self.fps > 240:
            raise ConfigError(f"video.fps must be in (0, 240], got {self.fps}")
        if self.requested_pixel_frames > self.max_seconds * self.fps:
            raise ConfigError(
                f"video length {self.requested_pixel_frames / self.fps:.0f} s is over the {self.max_seconds:.0f} s limit"
            )
        if self.height <= 0 or self.width <= 0:
            raise ConfigError(f"video size must be positive, got {self.height}x{self.width}")

    @property
    def requested_pixel_frames(self) -> int:
        if self.num_frames is not None:
            return self.num_frames
        return max(1, round((self.seconds or 0.0) * self.fps))


@dataclass(frozen=True)
class HistoryConfig:
    """The compressed memory: latent frames kept per term, the chunk size, and how I2V/V2V inputs are noised."""

    sizes: tuple[int, int, int] = (16, 2, 1)  # long, mid, short(1x) latent frames
    latent_frames_per_chunk: int = 9  # 33 pixel frames with the Wan VAE's 4x temporal compression
    keep_first_frame: bool = True  # the first-frame anchor
    skip_first_chunk: bool = False  # take the anchor from chunk 1 instead of chunk 0
    image_noise_sigma: tuple[float, float] = (0.111, 0.135)
    video_noise_sigma: tuple[float, float] = (0.111, 0.135)

    def validate(self) -> None:
        if len(self.sizes) != 3 or any(s < 1 for s in self.sizes):
            raise ConfigError(f"history.sizes must be three positive integers (long, mid, short), got {self.sizes}")
        if self.latent_frames_per_chunk < 1:
            raise ConfigError("history.latent_frames_per_chunk must be positive")
        for name in ("image_noise_sigma", "video_noise_sigma"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi <= 1:
                raise ConfigError(f"history.{name} must be a range [lo, hi] within [0, 1], got {[lo, hi]}")


@dataclass(frozen=True)
class PromptConfig:
    negative_prompt: str = DEFAULT_NEGATIVE_PROMPT
    max_sequence_length: int = 512
    interpolation_chunks: int = 3  # chunks over which text embeddings blend at a prompt switch


@dataclass(frozen=True)
class DriftSettings:
    detect: bool = True
    anti_drift: bool = False  # on a drift warning, noise the history latents (the paper's adaptive remedy)
    noise_strength: float = 0.1
    # What triggers the remedy: "latent" is the paper's rule alone; "any" also acts on the pixel checks
    # (brightness, saturation, colour, sharpness; not seams, which history noise cannot mend), which catch the drift
    # people see and fire far more often than the latent rule on small models.
    remedy_on: Literal["latent", "any"] = "any"


@dataclass(frozen=True)
class OutputConfig:
    crf: int = 18
    x264_preset: str = "medium"

    def validate(self) -> None:
        if not 0 <= self.crf <= 51:
            raise ConfigError(f"output.crf must be in [0, 51], got {self.crf}")


@dataclass(frozen=True)
class RuntimeConfig:
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    dtype: str = "auto"  # auto | bf16 | fp16 | fp32 (auto: bf16 on GPU, fp32 on CPU)
    compile: bool = False
    offload: Literal["none", "group"] = "none"  # group: stream transformer blocks from CPU memory (small GPUs)
    # The reference decodes in fp32; bf16 saves about a third of the decode on an H100 at a small pixel difference
    # (`helios bench speed` reports both). Kept fp32 by default so outputs match the reference.
    vae_dtype: Literal["fp32", "bf16"] = "fp32"
    overlap_decode: bool = True  # decode each chunk on a side CUDA stream while the next one is denoised
    # triton: fused Triton kernels for the transformer's modulated norms, q/k RMSNorm and 3-D RoPE (CUDA only;
    # helios_core.kernels). torch: diffusers' stock modules.
    kernels: Literal["torch", "triton"] = "torch"
    # sdpa: PyTorch picks the attention kernel (the reference). cudnn: cuDNN's fused attention through the same SDPA
    # call, a FlashAttention-3-class kernel on Hopper (CUDA, bf16/fp16 only; helios_core.model.attention).
    attention: Literal["sdpa", "cudnn"] = "sdpa"
    # frames: diffusers' decode, one latent frame at a time with a causal cache (the reference). whole: every latent
    # frame of the chunk through each layer at once (helios_core.model.vae_fast; equal within rounding; 1.5x faster
    # on an H100, 5-7x on a CPU; on a GPU it holds ~24 GB more reserved memory at 384x640). auto: whole on a CPU,
    # frames on a GPU.
    vae_decode: Literal["auto", "frames", "whole"] = "auto"
    # RMS norm + SiLU of the whole-chunk decode (only that path uses it). triton: one fused Triton kernel per norm
    # instead of PyTorch's 5-6 passes over the activation (CUDA only; helios_core.kernels.vae_norm; equal within
    # the dtype's rounding). torch: the PyTorch reference. auto: triton when the whole-chunk decode runs on a CUDA
    # device and triton imports, else torch.
    vae_norm: Literal["auto", "torch", "triton"] = "auto"
    # fp8: the transformer blocks' linears as FP8 matmuls (torchao, per-row scales; Ada/Hopper GPUs; changes the
    # outputs beyond rounding, so opt-in; helios_core.model.quantize). none: bf16, the reference.
    quantize: Literal["none", "fp8"] = "none"


@dataclass(frozen=True)
class GenerationConfig:
    preset: str = "distilled"
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    video: VideoConfig = field(default_factory=VideoConfig)
    history: HistoryConfig = field(default_factory=HistoryConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    drift: DriftSettings = field(default_factory=DriftSettings)
    output: OutputConfig = field(default_factory=OutputConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    def validate(self) -> GenerationConfig:
        for part in (self.sampler, self.video, self.history, self.output):
            part.validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        return _to_plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationConfig:
        return apply_overrides(cls(), flatten(data))

    def with_values(self, values: dict[str, Any]) -> GenerationConfig:
        """Return a copy with dotted keys replaced (values already typed or plain YAML data)."""
        return apply_overrides(self, values)


def _to_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    return value


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"sampler": {"steps": [1]}} -> {"sampler.steps": [1]} (lists stay values)."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def config_keys(config_cls: type = GenerationConfig, prefix: str = "") -> list[str]:
    """Every settable dotted key, e.g. ["preset", "sampler.kind", ...]."""
    keys: list[str] = []
    hints = get_type_hints(config_cls)
    for f in fields(config_cls):
        hint = hints[f.name]
        if is_dataclass(hint):
            keys.extend(config_keys(hint, f"{prefix}{f.name}."))
        else:
            keys.append(f"{prefix}{f.name}")
    return keys


def apply_overrides(config: ConfigT, values: dict[str, Any], *, label: str = "config") -> ConfigT:
    """Set dotted keys on a frozen config tree, type-checking each value against its field's annotation, then
    validate the result. Works for any tree of frozen dataclasses with a `validate()` (generation and training)."""
    known = set(config_keys(type(config)))
    for key, value in values.items():
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=3)
            hint = f"did you mean {' or '.join(close)}?" if close else "no similar key exists"
            raise ConfigError(f"unknown {label} key '{key}': {hint}")
        config = _set_path(config, key.split("."), value, key)
    return config.validate()


def _set_path(obj: Any, path: list[str], value: Any, full_key: str) -> Any:
    name = path[0]
    hint = get_type_hints(type(obj))[name]
    if len(path) == 1:
        return replace(obj, **{name: coerce(value, hint, full_key)})
    return replace(obj, **{name: _set_path(getattr(obj, name), path[1:], value, full_key)})


def coerce(value: Any, hint: Any, key: str) -> Any:
    """Check `value` against a type annotation, converting only where no information is lost (int -> float,
    list -> tuple). Anything else is a ConfigError naming the key and the expected type."""
    origin = get_origin(hint)
    args = get_args(hint)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in args:
            try:
                return coerce(value, option, key)
            except ConfigError as err:
                errors.append(err)
        raise ConfigError(f"config key '{key}' expects {_type_name(hint)}, got {value!r}")
    if hint is type(None):
        if value is None:
            return None
        raise ConfigError(f"config key '{key}' expects null, got {value!r}")
    if origin is Literal:
        if value in args:
            return value
        raise ConfigError(f"config key '{key}' must be one of {', '.join(map(str, args))}, got {value!r}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{key}' expects a list like [1, 2, 3], got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(v, args[0], key) for v in value)
        if len(value) != len(args):
            raise ConfigError(f"config key '{key}' expects a list of {len(args)} values, got {list(value)}")
        return tuple(coerce(v, a, key) for v, a in zip(value, args, strict=True))
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key '{key}' expects true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"config key '{key}' expects an integer, got {value!r}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        raise ConfigError(f"config key '{key}' expects a number, got {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"config key '{key}' expects text, got {value!r}")
    raise ConfigError(f"config key '{key}' cannot be set directly")


def _type_name(hint: Any) -> str:
    origin, args = get_origin(hint), get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if hint is type(None):
        return "null"
    return getattr(hint, "__name__", str(hint))
