"""Train the embedded model's Wan VAE on world clips and save it as a diffusers `AutoencoderKLWan` folder.

`python -m helios_core.embedded.train_vae --out DIR --steps N --seed S` (see `--help`): renders clips on the fly
(`world_clips.TrainBatches`, 17- or 33-frame windows at 128x256 by default), trains with AdamW, then measures the
latent statistics and the held-out PSNR and saves `DIR/config.json` + `DIR/diffusion_pytorch_model.safetensors`
(fp32) + `DIR/train_log.json` (arguments, loss curve, statistics, PSNR, timings).

Loss (per element means, pixels in [-1, 1]): L1(recon, x) + gradient_weight * L1 of the finite differences along
x, y and t (edges of flat shapes and frame-to-frame change, which a plain L1 under-weights: they are few pixels)
+ kl_weight * KL(posterior || N(0, 1)). With object_weight W > 0 both L1 terms are weighted means, each pixel
weighing 1 + W where the world's objects are (world_clips' object mask, a 2-pixel halo included) and 1 elsewhere:
objects with their halo are about 7% of a frame, so an unweighted loss is mostly background, and a VAE trained on it
keeps the checkers and stripes while it rounds every object into a blob. The reconstruction is the decoder's
UNCLAMPED output (vae_forward), so no pixel loses its gradient by overshooting. With `decoder_only` (and
`init_from`) only the decoder side learns: the latents, and so any transformer trained on them, stay valid for the
new decoder. With `object_crop_share` (CPU crops) that share of the windows is moved onto an object. On CUDA the
forward runs under bf16 autocast; weights, optimizer state and the loss are fp32.

Determinism: the initial weights come from `seed` (fork_rng, so the caller's RNG is untouched), every batch from
(seed, step) (world_clips), and the posterior noise from a generator seeded with `seed`. On a CPU two runs with the
same arguments are bit-for-bit equal; on CUDA cudnn is put in deterministic mode, but some backward kernels
(nearest upsampling) add with atomics, so GPU runs agree only to rounding. `--cudnn-benchmark` lets cudnn time its
convolution algorithms and pick the fastest instead (nondeterministic ones included): GPU runs then differ by more
than rounding, in exchange for speed (the step rate is in the log).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from diffusers import AutoencoderKLWan

from helios_core.embedded.config import EMBEDDED_HEIGHT, EMBEDDED_WIDTH, embedded_vae_config
from helios_core.embedded.vae_forward import decode_unclamped, encode_moments, sample_latents
from helios_core.embedded.vae_measure import latent_statistics, reconstruction_psnr
from helios_core.embedded.world_clips import TrainBatches, world_pixels
from helios_core.errors import ConfigError


@dataclass
class VaeTrainSettings:
    steps: int
    seed: int = 0
    batch_size: int = 8
    height: int = EMBEDDED_HEIGHT
    width: int = EMBEDDED_WIDTH
    clip_frames: tuple[int, ...] = (17, 33)
    learning_rate: float = 1e-3
    warmup_steps: int = 200
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    gradient_weight: float = 0.5
    object_weight: float = 0.0  # > 0: pixels of the world's objects weigh 1 + this in the L1 terms
    kl_weight: float = 1e-6
    initial_logvar: float = -6.0
    stats_clips: int = 64
    eval_clips: int = 32
    measure_frames: int = 33
    measure_batch: int = 8
    num_workers: int = 0
    crop: tuple[int, int] | None = None  # train on windows of this size cut from height x width renders
    object_crop_share: float = 0.0  # > 0 (with crop and object_weight): this share of crops is moved onto an object
    # Train only the decoder side (post_quant_conv, decoder) of an `init_from` VAE: the encoder and its latent
    # statistics stay bit-for-bit, so a transformer trained on that VAE's latents still fits the new decoder.
    decoder_only: bool = False
    init_from: str | None = None  # start from this saved AutoencoderKLWan folder instead of random weights
    max_train_seconds: float = 0.0  # > 0: stop training early after this long (a safety net for time-limited runs)
    # > 0: fit the whole schedule (warm-up, cosine decay to its end) into about this many seconds of training: the
    # step rate is measured over steps FIT_PROBE_START..FIT_PROBE_END, then the run's length is fixed in steps (at
    # most `steps`) and logged, so a rerun with `--steps` that number repeats it without a clock.
    fit_seconds: float = 0.0
    cudnn_benchmark: bool = False  # CUDA: fastest convolution algorithms instead of deterministic ones
    device: str = "cuda" if torch.cuda.is_available() else "cpu"
    vae_config: dict = field(default_factory=embedded_vae_config)


@dataclass
class VaeTrainResult:
    vae: AutoencoderKLWan
    losses: list[float]
    latents_mean: list[float]
    latents_std: list[float]
    heldout_psnr: float
    seconds: dict[str, float]
    planned_steps: int = 0  # the schedule's length: `steps`, or what `fit_seconds` chose
    final_lr: float = 0.0  # the learning rate of the last step taken


def train_vae(settings: VaeTrainSettings, on_progress: Callable[[str], None] | None = None,
              clock: Callable[[], float] = time.perf_counter) -> VaeTrainResult:
    """Train a VAE from scratch; returns it (eval mode, fp32, measured latents_mean/std set in its config).
    `clock` times the run (and `fit_seconds`' step rate); tests pass a fake one."""
    _check(settings)
    report = on_progress or (lambda _line: None)
    device = torch.device(settings.device)
    if device.type == "cuda":
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn_modes(settings)
    if settings.init_from:
        # Continue training a saved VAE (e.g. one trained on the GPU, refined on a CPU); its config wins.
        vae = AutoencoderKLWan.from_pretrained(settings.init_from, local_files_only=True).float()
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(settings.seed)
            vae = AutoencoderKLWan.from_config(settings.vae_config)
        _start_nearly_deterministic(vae, settings.initial_logvar)
    vae = vae.to(device).train()
    if settings.decoder_only:
        for module in (vae.encoder, vae.quant_conv):
            module.requires_grad_(False)
    trained = [p for p in vae.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    plan = {"steps": settings.steps}  # fit_seconds may shorten it once the step rate is known
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _lr_factor(step, settings, plan["steps"]))
    noise = torch.Generator(device).manual_seed(settings.seed)
    batches = TrainBatches(settings.seed, settings.steps, settings.batch_size, settings.clip_frames,
                           settings.height, settings.width, settings.crop,
                           with_object_masks=settings.object_weight > 0,
                           object_crop_share=settings.object_crop_share)
    loader = torch.utils.data.DataLoader(batches, batch_size=None, shuffle=False, num_workers=settings.num_workers,
                                         worker_init_fn=_quiet_worker, persistent_workers=False,
                                         prefetch_factor=4 if settings.num_workers else None)
    losses: list[float] = []
    started = clock()
    waited, fetch_started = 0.0, started  # time spent waiting for rendered batches (is rendering the bottleneck?)
    final_lr = 0.0
    for step, batch in enumerate(loader):
        pixels, objects = batch if isinstance(batch, (tuple, list)) else (batch, None)
        waited += clock() - fetch_started
        if step == FIT_PROBE_START:
            probe_started = clock()
        if settings.fit_seconds > 0 and step == FIT_PROBE_END:
            plan["steps"] = _fitted_steps(settings, step, clock() - started,
                                          (FIT_PROBE_END - FIT_PROBE_START) / (clock() - probe_started))
            report(f"fitting the schedule into {settings.fit_seconds:.0f} s: {plan['steps']} steps")
            # This step's rate was set under the old length: recompute it, as a rerun with --steps would have it.
            for group, base_lr in zip(optimizer.param_groups, schedule.base_lrs):
                group["lr"] = base_lr * _lr_factor(step, settings, plan["steps"])
        final_lr = optimizer.param_groups[0]["lr"]
        pixels = pixels.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            with torch.set_grad_enabled(not settings.decoder_only):  # a frozen encoder needs no graph
                mean, logvar = encode_moments(vae, pixels)
            recon = decode_unclamped(vae, sample_latents(mean, logvar, noise))
        weights = None
        if objects is not None:
            weights = 1.0 + settings.object_weight * objects.to(device, non_blocking=True).float()
        loss, parts = _loss(recon.float(), pixels, mean.float(), logvar.float(), settings, weights)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, settings.grad_clip)
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
        if step % 50 == 0 or step == plan["steps"] - 1:
            rate = (step + 1) / (clock() - started)
            report(f"step {step + 1}/{plan['steps']} loss {losses[-1]:.4f} (l1 {parts['l1']:.4f} grad "
                   f"{parts['grad']:.4f} kl {parts['kl']:.1f}) frames {pixels.shape[2]} {rate:.2f} steps/s, "
                   f"{waited:.0f} s waiting for data")
        fetch_started = clock()
        if step + 1 >= plan["steps"]:
            break
        if settings.max_train_seconds > 0 and fetch_started - started > settings.max_train_seconds:
            report(f"stopping after step {step + 1} of {settings.steps}: --max-train-seconds reached")
            break
    train_seconds = clock() - started
    vae.eval()
    started = clock()
    if settings.decoder_only:  # the encoder did not change, so neither did its latents: keep their statistics
        latents_mean, latents_std = list(vae.config.latents_mean), list(vae.config.latents_std)
    else:
        latents_mean, latents_std = latent_statistics(vae, _measure_batches(settings, "stats"), settings.seed)
        vae.register_to_config(latents_mean=latents_mean, latents_std=latents_std)
    heldout_psnr = reconstruction_psnr(vae, _measure_batches(settings, "eval"))
    report(f"held-out reconstruction PSNR {heldout_psnr:.2f} dB over {settings.eval_clips} clips "
           f"of {settings.measure_frames} frames")
    seconds = {"train": train_seconds, "data_wait": waited, "measure": clock() - started}
    return VaeTrainResult(vae.cpu(), losses, latents_mean, latents_std, heldout_psnr, seconds,
                          planned_steps=plan["steps"], final_lr=final_lr)


def save_trained_vae(result: VaeTrainResult, settings: VaeTrainSettings, out_dir: Path) -> Path:
    """Write the diffusers folder (fp32 safetensors) plus train_log.json; returns `out_dir`."""
    out_dir = Path(out_dir)
    result.vae.save_pretrained(out_dir, safe_serialization=True)
    # diffusers records the folder a continued VAE came from (`_name_or_path`): a path on the training machine,
    # meaningless in a shipped model, so it is dropped.
    config_path = out_dir / "config.json"
    config = json.loads(config_path.read_text())
    if config.pop("_name_or_path", None) is not None:
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    log = {
        "settings": {k: v for k, v in asdict(settings).items()},
        "latents_mean": result.latents_mean,
        "latents_std": result.latents_std,
        "heldout_psnr_db": result.heldout_psnr,
        "seconds": result.seconds,
        "parameters": sum(p.numel() for p in result.vae.parameters()),
        "steps_done": len(result.losses),
        "steps_planned": result.planned_steps,  # pass as --steps (without --fit-seconds) to repeat the run
        "final_lr": result.final_lr,
        "losses_every_10": result.losses[::10],
        "final_loss_mean_last_50": sum(result.losses[-50:]) / max(len(result.losses[-50:]), 1),
        "torch": torch.__version__,
        "cuda_device": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }
    (out_dir / "train_log.json").write_text(json.dumps(log, indent=1) + "\n")
    return out_dir


def _loss(recon: torch.Tensor, target: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor,
          settings: VaeTrainSettings, weights: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """The training loss (module docstring); `weights` (B, 1, T, H, W) per pixel, None for plain means."""
    l1 = _weighted_mean((recon - target).abs(), weights)
    grad = sum(
        _weighted_mean((recon.diff(dim=d) - target.diff(dim=d)).abs(), _pair_weights(weights, d))
        for d in (2, 3, 4) if target.shape[d] > 1
    )
    kl = 0.5 * (mean.square() + logvar.exp() - 1.0 - logvar).mean()
    loss = l1 + settings.gradient_weight * grad + settings.kl_weight * kl
    return loss, {"l1": float(l1.detach()), "grad": float(grad.detach()), "kl": float(kl.detach())}


def _weighted_mean(error: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    if weights is None:
        return error.mean()
    weights = weights.expand_as(error)
    return (error * weights).sum() / weights.sum()


def _pair_weights(weights: torch.Tensor | None, dim: int) -> torch.Tensor | None:
    """The weight of each finite difference along `dim`: the larger of its two pixels' (an object's edge counts)."""
    if weights is None:
        return None
    length = weights.shape[dim] - 1
    return torch.maximum(weights.narrow(dim, 0, length), weights.narrow(dim, 1, length))


def _start_nearly_deterministic(vae: AutoencoderKLWan, initial_logvar: float) -> None:
    """Start the posterior's log-variance near `initial_logvar` (quant_conv's logvar half: zero weights, that bias).

    With diffusers' default init the posterior std starts near 1, as large as the latents themselves, so for the
    first hundreds of steps the decoder learns from noise and training spikes (seen at lr 3e-3 on CPU). The KL term
    still moves the variance wherever it wants to go from there.
    """
    z_dim = vae.config.z_dim
    with torch.no_grad():
        vae.quant_conv.weight[z_dim:].zero_()
        vae.quant_conv.bias[z_dim:].fill_(initial_logvar)


def cudnn_modes(settings: VaeTrainSettings) -> tuple[bool, bool]:
    """(cudnn.deterministic, cudnn.benchmark) for a CUDA run of these settings."""
    return (not settings.cudnn_benchmark, settings.cudnn_benchmark)


def _lr_factor(step: int, settings: VaeTrainSettings, total_steps: int) -> float:
    """Linear warm-up, then cosine decay to 10% of the peak rate at the last step (`total_steps - 1`)."""
    if step < settings.warmup_steps:
        return (step + 1) / settings.warmup_steps
    progress = (step - settings.warmup_steps) / max(total_steps - 1 - settings.warmup_steps, 1)
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


# Steps whose rate decides a fitted schedule: after cudnn's autotuning and the data workers' start, within the warm-up.
FIT_PROBE_START, FIT_PROBE_END = 20, 60


def _fitted_steps(settings: VaeTrainSettings, done: int, elapsed: float, rate: float) -> int:
    """Steps that fit `fit_seconds` at `rate` steps/s after `done` steps in `elapsed` s; within [done + 1, steps]."""
    return max(done + 1, min(settings.steps, done + int(rate * max(settings.fit_seconds - elapsed, 0.0))))


def _measure_batches(settings: VaeTrainSettings, purpose: str):
    total = settings.stats_clips if purpose == "stats" else settings.eval_clips
    for first in range(0, total, settings.measure_batch):
        indices = range(first, min(first + settings.measure_batch, total))
        yield world_pixels(settings.seed, purpose, indices, settings.measure_frames, settings.height, settings.width)


def _quiet_worker(_worker_id: int) -> None:
    # Each render worker is single-threaded: parallelism comes from the workers, not from threads inside each.
    torch.set_num_threads(1)


def _check(settings: VaeTrainSettings) -> None:
    spatial = settings.vae_config.get("scale_factor_spatial", 8)
    if settings.steps < 1 or settings.batch_size < 1:
        raise ConfigError(f"--steps and --batch-size must be >= 1, got {settings.steps} and {settings.batch_size}")
    if settings.fit_seconds > 0 and settings.warmup_steps < FIT_PROBE_END:
        # The rate is probed during the warm-up, whose rates do not depend on the run's length: so a rerun with the
        # logged --steps takes exactly the same steps.
        raise ConfigError(f"--fit-seconds needs --warmup-steps >= {FIT_PROBE_END} (the step rate is measured during "
                          f"the warm-up), got {settings.warmup_steps}")
    if settings.decoder_only and not settings.init_from:
        raise ConfigError("--decoder-only trains the decoder of an existing VAE: pass --init-from FOLDER")
    if settings.object_crop_share > 0 and (settings.crop is None or settings.object_weight <= 0):
        raise ConfigError("--object-crop-share moves crops onto objects: it needs --crop and --object-weight > 0")
    if settings.height % spatial or settings.width % spatial:
        raise ConfigError(f"--height/--width must be multiples of {spatial}, got {settings.height}x{settings.width}")


def _parse(argv: Sequence[str] | None) -> tuple[VaeTrainSettings, Path]:
    parser = argparse.ArgumentParser(prog="python -m helios_core.embedded.train_vae", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the diffusers AutoencoderKLWan")
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    defaults = VaeTrainSettings(steps=1)
    for name in ("batch_size", "height", "width", "learning_rate", "warmup_steps", "gradient_weight", "object_weight",
                 "kl_weight", "object_crop_share", "initial_logvar", "stats_clips", "eval_clips", "num_workers",
                 "max_train_seconds", "fit_seconds", "device", "init_from"):
        value = getattr(defaults, name)
        parser.add_argument("--" + name.replace("_", "-"), type=str if value is None else type(value), default=value)
    parser.add_argument("--cudnn-benchmark", action="store_true",
                        help="CUDA: let cudnn pick its fastest convolution algorithms "
                             "(runs no longer agree to rounding)")
    parser.add_argument("--decoder-only", action="store_true",
                        help="train only the decoder of --init-from; its encoder and latent statistics stay as "
                             "they are")
    parser.add_argument("--clip-frames", default="17,33", help="comma-separated clip lengths (1 + 4k frames)")
    parser.add_argument("--crop", default=None, help="HxW windows cut from the renders, e.g. 64x64 (CPU training)")
    parser.add_argument("--vae-overrides", default="{}", help="JSON object of AutoencoderKLWan config keys to change")
    args = parser.parse_args(argv)
    try:
        overrides = json.loads(args.vae_overrides)
    except json.JSONDecodeError as error:
        raise ConfigError(f"--vae-overrides is not JSON ({error}); pass an object such as '{{\"base_dim\": 8}}'")
    if not isinstance(overrides, dict):
        raise ConfigError("--vae-overrides must be a JSON object such as '{\"base_dim\": 8}'")
    unknown = set(overrides) - set(embedded_vae_config())
    if unknown:
        raise ConfigError(f"--vae-overrides: unknown key(s) {sorted(unknown)}; known: {sorted(embedded_vae_config())}")
    values = {k: v for k, v in vars(args).items() if k not in ("out", "clip_frames", "vae_overrides", "crop")}
    crop = tuple(int(side) for side in args.crop.lower().split("x")) if args.crop else None
    if crop is not None and len(crop) != 2:
        raise ConfigError(f"--crop must look like 64x64, got {args.crop!r}")
    settings = VaeTrainSettings(**values, clip_frames=tuple(int(f) for f in args.clip_frames.split(",")), crop=crop,
                                vae_config={**embedded_vae_config(), **overrides})
    return settings, args.out


def main(argv: Sequence[str] | None = None) -> int:
    settings, out_dir = _parse(argv)
    # A developer recipe run by hand or on the GPU machine: progress goes to stdout, one line at a time.
    result = train_vae(settings, on_progress=lambda line: print(line, flush=True))
    save_trained_vae(result, settings, out_dir)
    print(f"saved {out_dir} ({sum(p.numel() for p in result.vae.parameters())} parameters); "
          f"held-out PSNR {result.heldout_psnr:.2f} dB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
