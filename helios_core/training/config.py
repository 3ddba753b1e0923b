"""Training settings as typed, frozen dataclasses, loaded from `presets/train/{base,mid,distilled}.yaml` + overrides.

Same rules as generation settings (`helios_core.config`): a YAML preset is applied over the dataclass defaults and then
`key=value` overrides (`--set optim.lr=1e-4`), every value type-checked with `coerce`, and an unknown key is a
ConfigError naming it. The resolved config is saved beside every checkpoint (`config.yaml`) and compared on resume:
only the keys in `RESUME_MAY_CHANGE` may differ (the reference aborts on any mismatch; extending a run's step count
is the one change that cannot alter the steps already taken).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from helios_core.config import apply_overrides, flatten
from helios_core.errors import ConfigError
from helios_core.presets import preset_dir, read_yaml_mapping

STAGES = ("base", "mid", "distilled")
# Validation videos draw from their own generator, so when and what they show cannot alter the training steps; the
# data workers build the same batches with the same draws as the main process would (`prefetch.py`).
RESUME_MAY_CHANGE = frozenset({"loop.max_steps", "loop.checkpoint_every", "loop.keep_last", "loop.log_every",
                               "loop.validate_every", "loop.validation_prompts", "loop.data_workers",
                               "loop.compile"})


@dataclass(frozen=True)
class LoopConfig:
    max_steps: int = 1000
    batch_size: int = 1
    seed: int = 0
    checkpoint_every: int = 500
    keep_last: int = 3
    log_every: int = 1
    gradient_checkpointing: bool = True
    precision: Literal["auto", "bf16", "fp32"] = "auto"  # auto: bf16 autocast on GPU, fp32 on CPU
    validate_every: int = 0  # steps between validation videos (OUT/validation/step_*.mp4); 0 = none
    validation_prompts: tuple[str, ...] = ("a red fox running through snow",)
    # Worker processes that read and augment the coming steps' batches (base and mid; 0 = in the main process).
    data_workers: int = 0
    # Regional torch.compile of the transformer's blocks (base and mid; static shapes, one compile per pyramid level).
    # The embedded model's steps ran at about 1% of an H100's peak at full resolution (launch and elementwise bound);
    # Inductor fuses those ops. Results equal the eager step within rounding (tested), so resume may toggle it.
    compile: bool = False


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 5e-5
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 1e-4
    eps: float = 1e-8
    grad_clip: float = 1.0
    warmup_steps: int = 0  # linear warm-up, then constant (the reference's only schedule)


@dataclass(frozen=True)
class LoraSettings:
    enabled: bool = True  # false: full fine-tuning of the transformer
    rank: int = 128
    alpha: float = 128.0
    target_modules: tuple[str, ...] = ("to_q", "to_k", "to_v", "to_out.0", "ffn.net.0.proj", "ffn.net.2")


@dataclass(frozen=True)
class EmaConfig:
    enabled: bool = False
    decay: float = 0.99
    start_step: int = 0


@dataclass(frozen=True)
class HistorySettings:
    sizes: tuple[int, int, int] = (16, 2, 1)
    latent_frames_per_chunk: int = 9
    keep_first_frame: bool = True  # the first-frame anchor; off for the embedded-model ablation


@dataclass(frozen=True)
class DropConfig:
    """Unified history injection: probabilities are tried in order (T2V, else V2V, else I2V layout)."""

    enabled: bool = True
    t2v_prob: float = 0.4
    v2v_prob: float = 0.4
    i2v_prob: float = 0.1
    # Each sample's caption is replaced by the negative prompt's embedding with this probability, so the model also
    # learns the unconditional branch that classifier-free guidance (and CFG teachers in distillation) need. 0 as
    # the reference, whose starting weights already had that branch; a model trained from scratch needs it (~0.1).
    caption_prob: float = 0.0


@dataclass(frozen=True)
class CorruptConfig:
    """Frame-Aware Corrupt (Easy Anti-Drifting) on the history; each operation has its own probability."""

    enabled: bool = True
    skip_prob: float = 0.1
    noise_prob: float = 0.9
    noise_max_sigma: float = 1 / 3
    blur_prob: float = 0.1
    blur_min_scale: float = 0.9
    saturation_prob: float = 0.9
    saturation_range: tuple[float, float] = (0.3, 1.7)


@dataclass(frozen=True)
class TimestepConfig:
    sampling: Literal["logit_normal", "uniform"] = "logit_normal"
    logit_mean: float = 0.0
    logit_std: float = 1.0


@dataclass(frozen=True)
class PyramidConfig:
    num_stages: int = 3
    gamma: float = 1 / 3
    stage_range: tuple[float, ...] = (0.0, 1 / 3, 2 / 3, 1.0)
    sample_ratios: tuple[float, ...] = (1.0, 2.0, 1.0)  # relative frequency of each stage (coarsest first)


@dataclass(frozen=True)
class GanConfig:
    """DMD's adversarial heads on intermediate critic blocks and its output (`stages/dmd_gan.py`). Off by default, as
    in the reference's stage_3_post; its GAN version turns them on from step 1000 with these settings."""

    enabled: bool = False
    start_step: int = 0  # generator steps before the adversarial terms join the losses
    generator_weight: float = 0.05
    critic_weight: float = 0.01
    r1_weight: float = 100.0  # approximate R1, mean((D(x + sigma eps) - D(x))^2) on real inputs; 0 = off
    r1_sigma: float = 0.1
    head_channels: int = 768
    head_layers: int = 6  # 3x3x3 Conv3d + GroupNorm + SiLU layers per head
    final_head: bool = True  # a head on the critic's output for the noisy chunk too, besides the block heads
    crop_fraction: float = 0.5  # heads see a random window of this fraction of the height and width; 1 = no crop

    def validate(self) -> None:
        if min(self.generator_weight, self.critic_weight, self.r1_weight, self.r1_sigma) < 0 or self.start_step < 0:
            raise ConfigError("distill.gan weights, r1_sigma and start_step must be >= 0")
        if self.head_channels < 1 or self.head_layers < 0:
            raise ConfigError("distill.gan.head_channels must be >= 1 and distill.gan.head_layers >= 0")
        if not 0 < self.crop_fraction <= 1:
            raise ConfigError(f"distill.gan.crop_fraction must be in (0, 1] (1 = no crop), got {self.crop_fraction}")


@dataclass(frozen=True)
class DistillConfig:
    """Stage 3. `method: ode` is phase (i), the ODE-pair regression warm start; `method: dmd` is phase (ii),
    Distribution Matching Distillation (`stages/dmd.py`); the `teacher_*`/`student_*` keys belong to ode, the rest
    to dmd. `method: pyramid_ode` is phase (i) on the one-step-per-stage pyramid DMD sampler's own inputs
    (`stages/pyramid_ode.py`; it uses the `teacher_*` keys and regression_weight, not student_sigmas)."""

    method: Literal["ode", "dmd", "pyramid_ode"] = "ode"
    teacher_sampler: Literal["flow_unipc", "pyramid_unipc"] = "pyramid_unipc"
    teacher_steps: tuple[int, ...] = (20, 20, 20)
    teacher_guidance: float = 5.0
    teacher_cfg_zero_star: bool = True
    student_sigmas: tuple[float, ...] = (1.0, 0.75, 0.5, 0.25)
    regression_weight: float = 80.0
    # DMD: the generator's rollout (pyramid DMD sampler steps per stage; the reference trains with [2, 2, 2]).
    generator_steps: tuple[int, ...] = (2, 2, 2)
    generator_init: str = ""  # an ODE run's checkpoint (step_* or run folder) to start the generator adapter from
    real_guidance_scale: float = 3.0  # CFG of the real score (the teacher) on the dataset's negative prompt
    critic_steps_per_generator_step: int = 5
    critic_lr: float = 4e-7
    critic_grad_clip: float = 10.0
    critic_lora_rank: int = 256
    critic_lora_alpha: float = 256.0
    dmd_min_timestep: float = 20.0  # re-noising timesteps of the DMD and critic losses are clamped to [min, max]
    dmd_max_timestep: float = 980.0
    dmd_timestep_shift: float = 5.0
    generator_timestep_beta: tuple[float, float] = (4.0, 1.5)  # the generator's re-noising draw at step 0 ...
    generator_beta_anneal_steps: int = 500  # ... annealed linearly to Beta(1, 1) = uniform over this many steps
    gan: GanConfig = field(default_factory=GanConfig)

    def validate(self, lora_enabled: bool) -> None:
        self.gan.validate()
        if self.method != "dmd":
            if self.gan.enabled:
                raise ConfigError("distill.gan.enabled needs distill.method=dmd (the heads sit on the DMD critic)")
            return
        if not lora_enabled:
            raise ConfigError("distill.method=dmd needs lora.enabled=true: the teacher and the critic share the "
                              "frozen base weights with the generator's adapter")
        if len(self.generator_steps) < 2 or any(s < 1 for s in self.generator_steps):
            raise ConfigError("distill.generator_steps needs one positive step count per pyramid stage (at least 2), "
                              f"got {list(self.generator_steps)}")
        if self.critic_steps_per_generator_step < 1 or self.critic_lora_rank < 1:
            raise ConfigError("distill.critic_steps_per_generator_step and distill.critic_lora_rank must be >= 1")
        if not self.critic_lr > 0 or not self.critic_grad_clip > 0 or not self.dmd_timestep_shift > 0:
            raise ConfigError("distill.critic_lr, distill.critic_grad_clip and distill.dmd_timestep_shift must be > 0")
        if not 0 <= self.dmd_min_timestep < self.dmd_max_timestep <= 1000:
            raise ConfigError("distill.dmd_min_timestep and dmd_max_timestep need 0 <= min < max <= 1000, got "
                              f"{self.dmd_min_timestep} and {self.dmd_max_timestep}")
        if any(v <= 0 for v in self.generator_timestep_beta) or self.generator_beta_anneal_steps < 0:
            raise ConfigError("distill.generator_timestep_beta needs two values > 0 and "
                              "distill.generator_beta_anneal_steps >= 0")
        if self.real_guidance_scale < 0:
            raise ConfigError(f"distill.real_guidance_scale must be >= 0, got {self.real_guidance_scale}")


@dataclass(frozen=True)
class TrainConfig:
    stage: Literal["base", "mid", "distilled"] = "base"
    loop: LoopConfig = field(default_factory=LoopConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    lora: LoraSettings = field(default_factory=LoraSettings)
    ema: EmaConfig = field(default_factory=EmaConfig)
    history: HistorySettings = field(default_factory=HistorySettings)
    drop: DropConfig = field(default_factory=DropConfig)
    corrupt: CorruptConfig = field(default_factory=CorruptConfig)
    timestep: TimestepConfig = field(default_factory=TimestepConfig)
    pyramid: PyramidConfig = field(default_factory=PyramidConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)

    def validate(self) -> TrainConfig:
        loop, optim = self.loop, self.optim
        positives = {"loop.max_steps": loop.max_steps, "loop.batch_size": loop.batch_size,
                     "loop.checkpoint_every": loop.checkpoint_every, "loop.keep_last": loop.keep_last,
                     "loop.log_every": loop.log_every, "lora.rank": self.lora.rank,
                     "history.latent_frames_per_chunk": self.history.latent_frames_per_chunk}
        for key, value in positives.items():
            if value < 1:
                raise ConfigError(f"config key '{key}' must be at least 1, got {value}")
        if loop.data_workers < 0:
            raise ConfigError(f"loop.data_workers must be >= 0 (0 = batches built in the main process), got "
                              f"{loop.data_workers}")
        if loop.compile and self.stage == "distilled":
            raise ConfigError("loop.compile applies to the base and mid stages (the distilled stages switch adapters "
                              "or copy the model, which compiled blocks do not follow); set it to false")
        if loop.validate_every < 0:
            raise ConfigError(f"loop.validate_every must be >= 0 (0 = no validation videos), got {loop.validate_every}")
        if loop.validate_every and (not loop.validation_prompts or not all(p.strip() for p in loop.validation_prompts)):
            raise ConfigError("loop.validate_every needs loop.validation_prompts: one or more non-empty prompts")
        if not optim.lr > 0 or optim.warmup_steps < 0 or optim.grad_clip <= 0:
            raise ConfigError("optim.lr and optim.grad_clip must be > 0 and optim.warmup_steps >= 0")
        probs = {f"drop.{k}": getattr(self.drop, k) for k in ("t2v_prob", "v2v_prob", "i2v_prob", "caption_prob")}
        probs |= {f"corrupt.{k}": getattr(self.corrupt, k) for k in ("skip_prob", "noise_prob", "blur_prob",
                                                                     "saturation_prob", "noise_max_sigma")}
        probs["ema.decay"] = self.ema.decay
        for key, value in probs.items():
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"config key '{key}' must be in [0, 1], got {value}")
        if any(s < 1 for s in self.history.sizes):
            raise ConfigError(f"history.sizes must be three positive integers, got {list(self.history.sizes)}")
        pyramid = self.pyramid
        if len(pyramid.stage_range) != pyramid.num_stages + 1 or len(pyramid.sample_ratios) != pyramid.num_stages:
            raise ConfigError("pyramid.stage_range needs num_stages + 1 values and pyramid.sample_ratios num_stages")
        if any(s < 0 or s > 1 for s in self.distill.student_sigmas) or not self.distill.student_sigmas:
            raise ConfigError("distill.student_sigmas must be a non-empty list of values in [0, 1]")
        self.distill.validate(self.lora.enabled)
        if self.distill.gan.enabled and self.stage != "distilled":
            raise ConfigError("distill.gan.enabled needs stage distilled with distill.method=dmd")
        return self

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))  # tuples -> lists, plain JSON types only

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return apply_train_overrides(cls(), flatten(data))


def train_preset_path(stage_or_path: str) -> Path:
    path = Path(stage_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ConfigError(f"training config file {path} does not exist")
        return path
    if stage_or_path not in STAGES:
        raise ConfigError(f"unknown training stage '{stage_or_path}' (choose {', '.join(STAGES)} or a .yaml file)")
    return preset_dir() / "train" / f"{stage_or_path}.yaml"


def load_train_config(stage_or_path: str, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """The preset of a stage (or a YAML file) over the defaults, then dotted-key overrides."""
    path = train_preset_path(stage_or_path)
    data = flatten(read_yaml_mapping(path, "training config"))
    data.update(overrides or {})
    return apply_train_overrides(TrainConfig(), data)


def apply_train_overrides(config: TrainConfig, values: dict[str, Any]) -> TrainConfig:
    return apply_overrides(config, values, label="training config")


def changed_keys(old: TrainConfig, new: TrainConfig) -> list[str]:
    """Dotted keys whose values differ between two configs."""
    old_flat, new_flat = flatten(old.to_dict()), flatten(new.to_dict())
    return sorted(k for k in new_flat if old_flat.get(k) != new_flat[k])

