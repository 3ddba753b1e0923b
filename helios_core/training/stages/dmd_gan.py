"""Adversarial Hierarchical Distillation: discriminator heads on intermediate blocks of the DMD critic.

The critic (the fake score: frozen base + the "critic" adapter) doubles as the discriminator's backbone. Forward
hooks on a few of its transformer blocks copy the noisy chunk's hidden states (the sequence's last tokens: history
tokens come first) while a `capture()` is open. Each head maps one block's tokens to `head_channels`, folds them back
into the (T, h, w) patch grid, runs `head_layers` x (3x3x3 Conv3d, GroupNorm, SiLU), averages over space-time and
ends in one logit. The reference (§1(a), §1(e)) hooks blocks 5/15/25/35 of 40 and adds a head on the final output,
768 channels, six layers; here `gan_block_indices` spaces the hooks the same way for any depth, and
`distill.gan.final_head` adds the output head (see `HiddenStateDiscriminator`). Before the heads, every sample's
tokens are cropped to a random window of `crop_fraction` of the grid's height and width (`dmd_gan_crop`).

Losses, non-saturating as the reference, each a mean over heads and samples:
    critic      softplus(-D(real)) + softplus(D(fake)) + r1_weight * mean((D(real + sigma eps) - D(real))^2)
    generator   softplus(-D(fake))
Real inputs are the batch's target latents (VAE latents of real clips), fake ones the generator's samples, both
re-noised to the same timestep. The approximate R1 is APT's finite-difference stand-in for the gradient penalty.

The generator's term needs gradients through the critic, but the trainer backpropagates the generator loss with the
generator adapter active, and gradient checkpointing would then recompute the critic's blocks with the wrong adapter.
So, as the reference's "cached grad", the term's gradient w.r.t. the sample is taken at once with the critic active
(`torch.autograd.grad`, which touches no parameter's .grad), and only a surrogate carrying it reaches the trainer.

Hooks record only inside `capture()`, so every other forward (the teacher's, the generator's, the critic's DMD score)
and the block recomputations of checkpointed backward passes go through untouched.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from helios_core.training.config import GanConfig
from helios_core.training.stages.dmd_gan_crop import CropWindows, crop_tokens, draw_windows

NUM_HEADS = 4


def gan_block_indices(num_layers: int, heads: int = NUM_HEADS) -> tuple[int, ...]:
    """The blocks at the centres of `heads` equal slices of the depth: 40 layers -> (5, 15, 25, 35)."""
    if num_layers < 1 or heads < 1:
        raise ValueError(f"need num_layers >= 1 and heads >= 1, got {num_layers} and {heads}")
    return tuple(sorted({(2 * i + 1) * num_layers // (2 * heads) for i in range(heads)}))


class DiscriminatorHead(nn.Module):
    def __init__(self, dim: int, channels: int, layers: int) -> None:
        super().__init__()
        self.project = nn.Linear(dim, channels)
        body: list[nn.Module] = []
        for _ in range(layers):
            body += [nn.Conv3d(channels, channels, 3, padding=1), nn.GroupNorm(math.gcd(32, channels), channels),
                     nn.SiLU()]
        self.body = nn.Sequential(*body)
        self.logit = nn.Linear(channels, 1)

    def forward(self, tokens: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        """(B, T*h*w, dim) tokens in the patch grid's row-major order -> (B,) logits."""
        batch = tokens.shape[0]
        x = self.project(tokens).transpose(1, 2).reshape(batch, -1, *grid)
        return self.logit(self.body(x).mean(dim=(2, 3, 4))).squeeze(-1)


@dataclass
class BlockFeatures:
    grid: tuple[int, int, int]
    tokens: list[torch.Tensor] = field(default_factory=list)  # one (B, N, dim) per hooked block, in block order
    final: torch.Tensor | None = None  # (B, N, out_channels * prod(patch)) the output projection's tokens


class HiddenStateDiscriminator(nn.Module):
    """The heads (fp32, on the transformer's device) and the hooks; the transformer is not a submodule.

    The final head reads the output projection's tokens (`proj_out`, after the output norm): that is the critic's
    prediction for the noisy chunk itself, the tensor the reference's final head sees, only before unpatchify, which
    merely moves each token's (pt, ph, pw, C) values back into latent pixels. Taken there it sits on the same
    (T, h, w) patch grid, in the same token order, as the block features, so one hook mechanism, one crop and one head
    class serve all heads, and it includes whatever adapter the critic puts on proj_out (the hidden states after the
    output norm would miss that projection).
    """

    def __init__(self, transformer: nn.Module, settings: GanConfig, seed: int) -> None:
        super().__init__()
        config = transformer.config
        self.block_indices = gan_block_indices(int(config.num_layers))
        self.patch_size = tuple(config.patch_size)
        dim = int(config.num_attention_heads) * int(config.attention_head_dim)
        device = next(transformer.parameters()).device
        # A bf16 base (LoRA on a GPU) runs the heads under bf16 autocast too; their weights stay fp32.
        self.autocast_dtype = transformer.dtype if transformer.dtype in (torch.bfloat16, torch.float16) else None
        with torch.random.fork_rng(devices=[]):  # a seeded init (on the CPU) that leaves the caller's RNG alone
            torch.manual_seed(seed)
            heads = [DiscriminatorHead(dim, settings.head_channels, settings.head_layers) for _ in self.block_indices]
            # Made after the block heads: they draw the same initial weights with or without it.
            out_dim = int(config.out_channels or config.in_channels) * math.prod(self.patch_size)
            final = DiscriminatorHead(out_dim, settings.head_channels, settings.head_layers) if settings.final_head \
                else None
        self.heads = nn.ModuleList(heads).to(device)
        self.final_head = final.to(device) if final is not None else None
        self.crop_fraction = settings.crop_fraction
        self._capturing: BlockFeatures | None = None
        for index in self.block_indices:  # for the stage's lifetime: they record nothing outside `capture()`
            transformer.blocks[index].register_forward_hook(self._record)
        if self.final_head is not None:  # registered after the adapters are added: on the wrapper if one is
            transformer.proj_out.register_forward_hook(self._record_final)

    @property
    def num_heads(self) -> int:
        return len(self.heads) + (self.final_head is not None)

    def _record(self, module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        if self._capturing is not None:
            noisy_tokens = math.prod(self._capturing.grid)
            self._capturing.tokens.append(output[:, -noisy_tokens:])

    def _record_final(self, module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        if self._capturing is not None:
            if self._capturing.final is not None:
                raise RuntimeError("the critic's output projection ran twice in one GAN capture")
            # The output norm already keeps only the noisy chunk's tokens; the slice states it.
            self._capturing.final = output[:, -math.prod(self._capturing.grid):]

    @contextlib.contextmanager
    def capture(self, latents_shape: torch.Size) -> Iterator[BlockFeatures]:
        """Record the hooked blocks' noisy-chunk tokens of the transformer forwards run inside (one forward)."""
        frames, height, width = latents_shape[-3:]
        pt, ph, pw = self.patch_size
        self._capturing = BlockFeatures((frames // pt, height // ph, width // pw))
        try:
            yield self._capturing
        finally:
            self._capturing = None

    def draw_windows(self, features: BlockFeatures, generator: torch.Generator) -> CropWindows | None:
        return draw_windows(features.grid, features.tokens[0].shape[0], self.crop_fraction, generator)

    def logits(self, features: BlockFeatures, windows: CropWindows | None) -> torch.Tensor:
        """(heads, B) float32 logits of one captured forward, every head on the same crop `windows` (None: whole)."""
        pairs = list(zip(self.heads, features.tokens))
        if self.final_head is not None and features.final is not None:
            pairs.append((self.final_head, features.final))
        if len(features.tokens) != len(self.heads) or len(pairs) != self.num_heads:
            raise RuntimeError(f"captured {len(features.tokens)} block outputs and {int(features.final is not None)} "
                               f"final output for {self.num_heads} GAN heads; capture exactly one transformer forward")
        out = []
        for head, tokens in pairs:
            tokens, grid = crop_tokens(tokens, features.grid, windows)
            if self.autocast_dtype is None:
                out.append(head(tokens.float(), grid))
                continue
            with torch.autocast(tokens.device.type, dtype=self.autocast_dtype):
                out.append(head(tokens, grid).float())
        return torch.stack(out)


def critic_gan_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_gan_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    return F.softplus(-fake_logits).mean()


def approximate_r1(real_logits: torch.Tensor, perturbed_logits: torch.Tensor) -> torch.Tensor:
    return (perturbed_logits - real_logits).pow(2).mean()


def cached_gradient_loss(x: torch.Tensor, gradient: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """A float64 scalar equal to `value` whose gradient w.r.t. `x` is `gradient` (the critic's graph is gone)."""
    inner = (x.double() * gradient.double()).sum()
    return inner - inner.detach() + value.detach().double()


# (noisy latents, timestep) -> critic velocity; the caller has the critic adapter active.
CriticFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class DmdAdversary:
    """The GAN terms DmdStage adds when `distill.gan.enabled`; their parameters train with the critic."""

    def __init__(self, transformer: nn.Module, settings: GanConfig, seed: int) -> None:
        self.settings = settings
        self.discriminator = HiddenStateDiscriminator(transformer, settings, seed)

    def named_parameters(self) -> dict[str, nn.Parameter]:
        return {f"gan_heads.{name}": p for name, p in self.discriminator.named_parameters()}

    def active(self, generator_step: int) -> bool:
        return generator_step >= self.settings.start_step

    def critic_term(self, critic: CriticFn, fake_features: BlockFeatures, real_noisy: torch.Tensor,
                    timestep: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        """critic_weight x (GAN loss + r1_weight x R1), given the captured forward on the re-noised fake sample."""
        s, disc = self.settings, self.discriminator
        with disc.capture(real_noisy.shape) as real_features:
            critic(real_noisy, timestep)
        real_windows = disc.draw_windows(real_features, generator)
        real_logits = disc.logits(real_features, real_windows)
        loss = critic_gan_loss(real_logits, disc.logits(fake_features, disc.draw_windows(fake_features, generator)))
        metrics = {"gan_critic_loss": float(loss.detach())}
        if s.r1_weight > 0:
            eps = torch.randn(real_noisy.shape, generator=generator).to(real_noisy)
            with disc.capture(real_noisy.shape) as perturbed:
                critic(real_noisy + s.r1_sigma * eps, timestep)
            r1 = approximate_r1(real_logits, disc.logits(perturbed, real_windows))  # same windows: same region
            metrics["gan_r1"] = float(r1.detach())
            loss = loss + s.r1_weight * r1
        return s.critic_weight * loss, metrics

    def generator_term(self, critic: CriticFn, sample: torch.Tensor, noise: torch.Tensor, timestep: torch.Tensor,
                       sigma: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, float]:
        """(generator_weight x softplus(-D(fake)) as a surrogate on `sample` (gradient cached, see the docstring),
        the unweighted loss)."""
        disc = self.discriminator
        if not torch.is_grad_enabled():  # evaluation: the value is all that is needed
            with disc.capture(sample.shape) as features:
                critic((1 - sigma) * sample + sigma * noise, timestep)
            value = generator_gan_loss(disc.logits(features, disc.draw_windows(features, generator))).double()
            return self.settings.generator_weight * value, float(value)
        x = sample.detach().requires_grad_(True)
        with disc.capture(sample.shape) as features:
            critic((1 - sigma) * x + sigma * noise, timestep)
        value = generator_gan_loss(disc.logits(features, disc.draw_windows(features, generator)))
        (gradient,) = torch.autograd.grad(value, x)
        return self.settings.generator_weight * cached_gradient_loss(sample, gradient, value), float(value.detach())
