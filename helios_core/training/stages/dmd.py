"""Stage 3, phase (ii): Distribution Matching Distillation (DMD) of the few-step pyramid generator.

Three networks, one set of frozen base weights (peft adapters switched per forward):
    generator   the "default" LoRA adapter (the one the trainer's optimizer, EMA, checkpoint and export handle)
    real score  the teacher: the base weights with every adapter off, CFG `real_guidance_scale` on the dataset's
                negative-prompt embedding
    fake score  the critic: a second adapter, "critic" (rank `critic_lora_rank`), trained with its own AdamW
                (`critic_lr`, `critic_grad_clip`; betas, weight decay and eps from `optim`)

One trainer step = `critic_steps_per_generator_step` critic updates (each on a fresh batch: a no-grad generator
rollout, re-noised at a uniform shifted timestep, flow-matching loss) then one generator update (rollout with
gradient at one exit step per stage, re-noised at a Beta-annealed shifted timestep, loss 0.5 ||x - sg(x - g)||^2 with
the DMD gradient g; see `dmd_losses`). With `distill.gan.enabled`, discriminator heads on intermediate critic blocks
(and its output) add a GAN loss to both updates (`dmd_gan`). The history is the batch's real latents after drop + Frame-Aware Corrupt
(teacher forcing: the reference's `is_use_gt_history`), and the batch's target latents are never used.

Invariants: outside this class's methods the generator adapter is the active one, so the trainer's trainables
(requires_grad) are exactly the generator's; every backward runs while the adapter set that made its forward is
still active (gradient checkpointing recomputes the forward during backward). Every random draw comes from the
run's generator, and the critic's weights and AdamW state travel in the checkpoint (`extra_state`), so resume is
exact. Not implemented: the reference's separate real-score model (the
teacher here is whatever base the run loads: point `model_path` at the pre-distillation model and start the
generator from the ODE run with `generator_init`), and DDP/multi-process DMD.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from peft import LoraConfig
from safetensors.torch import load_file

from helios_core.errors import ConfigError
from helios_core.samplers.guidance import guide
from helios_core.training.checkpoint import latest_checkpoint, load_optimizer_state, optimizer_state_tensors
from helios_core.training.config import TrainConfig
from helios_core.training.dataset import TrainingBatch
from helios_core.training.model_setup import teacher_view
from helios_core.training.stages.common import HistoryLayout, broadcast
from helios_core.training.stages.dmd_losses import (
    annealed_beta,
    critic_loss,
    dmd_gradient,
    generator_loss,
    renoise_timesteps,
    unit_draws,
)
from helios_core.training.stages.dmd_gan import DmdAdversary
from helios_core.training.stages.dmd_rollout import PyramidRollout

GENERATOR_ADAPTER = "default"  # the name peft gives the adapter `add_lora` creates
CRITIC_ADAPTER = "critic"


def adapter_parameters(model: torch.nn.Module, adapter: str) -> dict[str, torch.nn.Parameter]:
    """Name -> parameter of one peft adapter (names like `...to_q.lora_A.critic.weight`), in a fixed order."""
    marker = f".{adapter}."
    return {name: p for name, p in model.named_parameters() if marker in name}


@contextlib.contextmanager
def active_adapter(model: torch.nn.Module, adapter: str) -> Iterator[None]:
    """Only `adapter` applied and trainable (peft flips requires_grad); the generator's again afterwards."""
    model.set_adapter(adapter)
    try:
        yield
    finally:
        model.set_adapter(GENERATOR_ADAPTER)


def add_critic_adapter(model: torch.nn.Module, config: TrainConfig) -> None:
    d = config.distill
    lora = LoraConfig(r=d.critic_lora_rank, lora_alpha=d.critic_lora_alpha,
                      target_modules=list(config.lora.target_modules), init_lora_weights=True)
    devices = [model.device] if model.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):  # as add_lora: a seeded init that leaves the caller's RNG alone
        torch.manual_seed(config.loop.seed + 1)
        with warnings.catch_warnings():  # peft warns that a second adapter is being added: that is the point
            warnings.filterwarnings("ignore", message="Already found a `peft_config`")
            model.add_adapter(lora, adapter_name=CRITIC_ADAPTER)  # zero B: the critic starts as the teacher
    model.set_adapter(GENERATOR_ADAPTER)


def load_generator_init(model: torch.nn.Module, source: str) -> None:
    """Copy an earlier run's generator adapter (e.g. the ODE warm start) into this run's generator adapter."""
    path = Path(source)
    checkpoint = path if (path / "state.json").is_file() else latest_checkpoint(path)
    if checkpoint is None:
        raise ConfigError(f"distill.generator_init {source} is neither a checkpoint (step_*/ with state.json) nor a "
                          "run folder holding checkpoints")
    weights = load_file(str(checkpoint / "trainable.safetensors"))
    generator = adapter_parameters(model, GENERATOR_ADAPTER)
    if set(weights) != set(generator) or any(weights[n].shape != p.shape for n, p in generator.items()):
        raise ConfigError(f"distill.generator_init {checkpoint} holds other weights than this run's generator adapter;"
                          " use the same lora.rank, lora.alpha and lora.target_modules as that run")
    with torch.no_grad():
        for name, param in generator.items():
            param.copy_(weights[name])


class DmdStage:
    extra_state_names = ("critic", "critic_optimizer")

    def __init__(self, config: TrainConfig, layout: HistoryLayout, scheduler_config: dict,
                 patch_size: tuple[int, int, int], negative_text: torch.Tensor, transformer: torch.nn.Module) -> None:
        self.config = config
        self.settings = config.distill
        self.layout = layout
        self.rollout = PyramidRollout(self.settings.generator_steps, scheduler_config, patch_size)
        self.negative_text = negative_text  # (L, D)
        self.raw_model = transformer  # unwrapped: adapters are switched on it
        add_critic_adapter(transformer, config)
        if self.settings.generator_init:
            load_generator_init(transformer, self.settings.generator_init)
        self.critic_params = adapter_parameters(transformer, CRITIC_ADAPTER)
        self.gan = DmdAdversary(transformer, self.settings.gan, config.loop.seed + 2) if self.settings.gan.enabled \
            else None
        if self.gan is not None:  # the heads train with the critic: same optimizer, clip and checkpoint files
            self.critic_params |= self.gan.named_parameters()
        o = config.optim
        self.critic_optimizer = torch.optim.AdamW(list(self.critic_params.values()), lr=self.settings.critic_lr,
                                                  betas=o.betas, weight_decay=o.weight_decay, eps=o.eps)
        self.generator_step = 0  # set by `train_critic`; drives the Beta annealing and the GAN start step
        self._gan_metrics: list[dict[str, float]] = []
        self.last_metrics: dict[str, float] = {}

    # ---- the three networks
    def _velocity(self, model: torch.nn.Module, noisy: torch.Tensor, timestep: torch.Tensor, text: torch.Tensor,
                  batch: TrainingBatch) -> torch.Tensor:
        return self.layout.forward(model, noisy, timestep, text, batch.history, batch.anchor).float()

    def _scorer(self, model: torch.nn.Module, batch: TrainingBatch) -> Callable[[torch.Tensor, torch.Tensor],
                                                                               torch.Tensor]:
        """(noisy, timestep) -> velocity of whichever adapter set is active, for the batch's caption and history."""
        return lambda noisy, timestep: self._velocity(model, noisy, timestep, batch.text, batch)

    def generate(self, model: torch.nn.Module, batch: TrainingBatch, generator: torch.Generator, *,
                 with_grad: bool) -> torch.Tensor:
        """The generator's few-step sample for the batch's caption and history (the generator adapter is active)."""
        noise = torch.randn(batch.target.shape, generator=generator).to(batch.target.device)
        exits = self.rollout.draw_exits(generator)

        def velocity_of(latents: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
            return self._velocity(model, latents, timestep, batch.text, batch)

        return self.rollout.run(noise, velocity_of, generator, exits, with_grad=with_grad)

    def _renoise(self, clean: torch.Tensor, unit: torch.Tensor, generator: torch.Generator):
        timestep = renoise_timesteps(unit, self.settings)
        noise = torch.randn(clean.shape, generator=generator).to(clean.device)
        sigma = broadcast(timestep / 1000.0, clean)
        return (1 - sigma) * clean + sigma * noise, timestep.to(clean.device), sigma, noise

    @torch.no_grad()
    def distribution_gradient(self, batch: TrainingBatch, sample: torch.Tensor,
                              generator: torch.Generator) -> torch.Tensor:
        beta = annealed_beta(self.settings, self.generator_step)
        noisy, timestep, sigma, _ = self._renoise(sample, unit_draws(sample.shape[0], generator, beta), generator)
        model = self.raw_model
        with active_adapter(model, CRITIC_ADAPTER):
            fake_x0 = noisy - sigma * self._velocity(model, noisy, timestep, batch.text, batch)
        uncond = self.negative_text.to(batch.text).unsqueeze(0).expand_as(batch.text)
        with teacher_view(model, None) as teacher:
            cond_v = self._velocity(teacher, noisy, timestep, batch.text, batch)
            real_v = cond_v
            if self.settings.real_guidance_scale != 1.0:
                uncond_v = self._velocity(teacher, noisy, timestep, uncond, batch)
                real_v = guide(cond_v, uncond_v, self.settings.real_guidance_scale, cfg_zero_star=False,
                               zero_out=False)
        real_x0 = noisy - sigma * real_v
        return dmd_gradient(sample, fake_x0, real_x0)

    # ---- the two updates
    def _gan_on(self) -> bool:
        return self.gan is not None and self.gan.active(self.generator_step)

    def loss(self, model: torch.nn.Module, batch: TrainingBatch, generator: torch.Generator) -> torch.Tensor:
        """The generator's DMD loss (+ the adversarial term); the trainer backpropagates it into the generator."""
        sample = self.generate(model, batch, generator, with_grad=torch.is_grad_enabled())
        gradient = self.distribution_gradient(batch, sample.detach(), generator)
        loss = generator_loss(sample, gradient)
        if self._gan_on():
            unit = torch.rand(sample.shape[0], generator=generator)
            timestep = renoise_timesteps(unit, self.settings).to(sample.device)
            noise = torch.randn(sample.shape, generator=generator).to(sample.device)
            sigma = broadcast(timestep / 1000.0, sample)
            with active_adapter(self.raw_model, CRITIC_ADAPTER):
                term, self.last_metrics["gan_generator_loss"] = self.gan.generator_term(
                    self._scorer(model, batch), sample, noise, timestep, sigma, generator)
            loss = loss + term
        return loss

    def critic_loss(self, model: torch.nn.Module, batch: TrainingBatch, sample: torch.Tensor,
                    generator: torch.Generator) -> torch.Tensor:
        """Flow-matching loss of the critic on a (detached) generator sample, plus the GAN loss of the critic and
        heads when on; call inside `active_adapter(critic)`."""
        unit = torch.rand(sample.shape[0], generator=generator)
        noisy, timestep, sigma, noise = self._renoise(sample, unit, generator)
        gan = self.gan if self._gan_on() else None
        with gan.discriminator.capture(noisy.shape) if gan else contextlib.nullcontext() as fake_features:
            loss = critic_loss(self._velocity(model, noisy, timestep, batch.text, batch), noise, sample)
        if gan is not None:
            real = batch.target
            real_noisy = (1 - sigma) * real + sigma * torch.randn(real.shape, generator=generator).to(real.device)
            term, metrics = gan.critic_term(self._scorer(model, batch), fake_features, real_noisy, timestep, generator)
            self._gan_metrics.append(metrics)
            loss = loss + term
        return loss

    def train_critic(self, model: torch.nn.Module, next_batch: Callable[[], TrainingBatch],
                     generator: torch.Generator, generator_step: int) -> list[float]:
        """`critic_steps_per_generator_step` critic updates, each on a new batch; returns their losses."""
        self.generator_step = generator_step
        self._gan_metrics = []
        losses = []
        for _ in range(self.settings.critic_steps_per_generator_step):
            batch = next_batch()
            with torch.no_grad():
                sample = self.generate(model, batch, generator, with_grad=False)
            with active_adapter(self.raw_model, CRITIC_ADAPTER):
                loss = self.critic_loss(model, batch, sample, generator)
                loss.backward()  # inside the context: checkpointed blocks recompute with the critic applied
                torch.nn.utils.clip_grad_norm_(list(self.critic_params.values()), self.settings.critic_grad_clip)
                self.critic_optimizer.step()
                self.critic_optimizer.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
        self.last_metrics = {"critic_loss": sum(losses) / len(losses)}
        for key in self._gan_metrics[0] if self._gan_metrics else ():
            self.last_metrics[key] = sum(m[key] for m in self._gan_metrics) / len(self._gan_metrics)
        return losses

    # ---- checkpoint
    def extra_state(self) -> dict[str, dict[str, torch.Tensor]]:
        names = list(self.critic_params)
        return {"critic": {n: p.detach().float().cpu().contiguous() for n, p in self.critic_params.items()},
                "critic_optimizer": optimizer_state_tensors(self.critic_optimizer, names)}

    def load_extra_state(self, tensors: dict[str, dict[str, torch.Tensor]]) -> None:
        weights = tensors["critic"]
        if set(weights) != set(self.critic_params):
            raise ConfigError("the checkpoint's critic adapter or GAN heads do not match distill.critic_lora_rank, the "
                              "lora targets or distill.gan")
        with torch.no_grad():
            for name, param in self.critic_params.items():
                param.copy_(weights[name])
        load_optimizer_state(self.critic_optimizer, list(self.critic_params), tensors["critic_optimizer"])
