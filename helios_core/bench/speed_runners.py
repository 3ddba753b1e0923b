"""One timed video from our engine (`StreamingGenerator.stream`) or from diffusers' Helios pipeline.

Both sides get the same transformer and VAE objects (same weights, same dtypes), the same prompt embeddings,
sizes, history settings and steps, and are measured by the same `ChunkRecorder`. End-to-end time is the host
wall clock from just before the call (after a device synchronize) until the last frame is on the host: for ours
the last chunk yielded by `stream` (frames already uint8 numpy), for diffusers the return of `pipe(...)` with
`output_type="np"` (its float32 post-processing included). Model build, text encoding (not run) and file writing
are outside it, as in the paper's figure.

diffusers' `sample_block_noise` factors a singular matrix with a 1e-8 jitter in fp32: cuSOLVER accepts it, CPU
LAPACK raises. Only off CUDA is it swapped for our float64-factored `block_noise` (same draw count and layout).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch
from diffusers import HeliosPipeline, HeliosPyramidPipeline

from helios_core.bench.speed_models import TEXT_TOKENS, BenchModels
from helios_core.bench.speed_timing import ChunkRecorder, Clock
from helios_core.config import GenerationConfig
from helios_core.model.tiny import scheduler_config_for
from helios_core.devices import DTYPES
from helios_core.model.vae import WHOLE_CHUNK_DECODE, LatentCodec
from helios_core.pipeline import StreamingGenerator
from helios_core.request import GenerationRequest
from helios_core.samplers import build_scheduler
from helios_core.samplers.pyramid import block_noise

BENCH_PROMPT = "a red fox runs across a snowy field at sunrise"  # a dictionary key only: embeddings are random
SCHEDULER_FOR_SAMPLER = {"pyramid_dmd": "dmd", "pyramid_unipc": "unipc3", "flow_unipc": "unipc"}


@dataclass
class TimedVideo:
    e2e_s: float
    frames: int
    first_chunk_wall_s: float | None  # host time to the first chunk in hand (ours only: diffusers returns at the end)
    chunks: list[dict[str, Any]]
    peak_allocated_bytes: int | None
    peak_reserved_bytes: int | None
    extra: dict[str, Any] = field(default_factory=dict)


def text_embeddings(models: BenchModels, config: GenerationConfig, seed: int) -> dict[str, torch.Tensor]:
    """Random prompt (and, with guidance, negative-prompt) embeddings keyed as our engine asks for them."""
    embeds = {BENCH_PROMPT: models.prompt_embeds(seed)}
    if config.sampler.guidance_scale > 1.0:
        embeds[config.prompt.negative_prompt] = models.prompt_embeds(seed + 1)
    return embeds


def recorder_for(models: BenchModels, config: GenerationConfig, clock: Clock) -> ChunkRecorder:
    latent_width = config.video.width // models.vae.config.scale_factor_spatial
    return ChunkRecorder(models.transformer, models.vae, clock, latent_width=latent_width,
                         num_stages=config.sampler.num_stages, text_tokens=TEXT_TOKENS)


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _peaks(device: torch.device) -> tuple[int | None, int | None]:
    if device.type != "cuda":
        return None, None
    return torch.cuda.max_memory_allocated(device), torch.cuda.max_memory_reserved(device)


def our_generator(models: BenchModels, config: GenerationConfig) -> StreamingGenerator:
    """Our streaming generator over the bench models, with the codec runtime.vae_dtype / vae_decode / vae_norm ask
    for (as the engine builds it)."""
    runtime = config.runtime
    codec = LatentCodec(models.vae_in(DTYPES[runtime.vae_dtype]),
                        whole_chunk_decode=WHOLE_CHUNK_DECODE[runtime.vae_decode], vae_norm=runtime.vae_norm)
    scheduler_config = scheduler_config_for(SCHEDULER_FOR_SAMPLER[config.sampler.kind])
    return StreamingGenerator(models.transformer, codec, scheduler_config, None, models.device)


def time_ours(models: BenchModels, config: GenerationConfig, embeds: dict[str, torch.Tensor], seed: int,
              recorder: ChunkRecorder) -> TimedVideo:
    generator = our_generator(models, config)
    # The recorder hooks the shared `vae.decode`; a codec that does not call it (a VAE copy in bf16, the whole-chunk
    # decode) is timed around `codec.decode`.
    codec = generator.codec
    if codec.vae is not models.vae or codec.uses_whole_decode():
        codec.decode = recorder.timed_decode(codec.decode)
    request = GenerationRequest(config=config, seed=seed, prompt=BENCH_PROMPT)
    clock = recorder.clock
    clock.synchronize()
    _reset_peak(models.device)
    frames, first_chunk = 0, None
    started = time.perf_counter()
    recorder.start()
    with torch.inference_mode():  # as HeliosEngine.generate runs it
        for chunk in generator.stream(request, text_embeds=embeds):
            frames += len(chunk.pixel_frames)
            if first_chunk is None:
                first_chunk = time.perf_counter() - started
    clock.synchronize()
    e2e = time.perf_counter() - started
    return TimedVideo(e2e, frames, first_chunk, recorder.chunks(), *_peaks(models.device))


def first_chunk_frames(models: BenchModels, config: GenerationConfig, embeds: dict[str, torch.Tensor],
                       seed: int) -> torch.Tensor:
    """Our first chunk's uint8 frames for this seed (a one-chunk video), to compare two numeric paths."""
    generator = our_generator(models, config)
    one_chunk = config.with_values({"video.num_frames": 1})
    with torch.inference_mode():
        chunk = next(iter(generator.stream(GenerationRequest(config=one_chunk, seed=seed, prompt=BENCH_PROMPT),
                                           text_embeds=embeds)))
    return torch.as_tensor(chunk.pixel_frames)


def build_diffusers_pipeline(models: BenchModels, config: GenerationConfig) -> HeliosPipeline | HeliosPyramidPipeline:
    sampler = config.sampler
    scheduler = build_scheduler(sampler.kind, scheduler_config_for(SCHEDULER_FOR_SAMPLER[sampler.kind]),
                                sampler.num_stages)
    parts = dict(tokenizer=None, text_encoder=None, vae=models.vae, scheduler=scheduler, transformer=models.transformer)
    if sampler.kind == "flow_unipc":
        pipe = HeliosPipeline(**parts)
    else:
        pipe = HeliosPyramidPipeline(**parts, is_distilled=sampler.kind == "pyramid_dmd",
                                     is_cfg_zero_star=sampler.cfg_zero_star)
        if models.device.type != "cuda":
            _patch_block_noise(pipe)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _patch_block_noise(pipe: HeliosPyramidPipeline) -> None:
    def sample_block_noise(batch_size, channel, num_frames, height, width, patch_size=(1, 2, 2), device=None,
                           generator=None):
        generator = generator[0] if isinstance(generator, list) else generator
        noise = block_noise((batch_size, channel, num_frames, height, width), pipe.scheduler.config.gamma,
                            generator, tuple(patch_size[1:]))
        return noise.to(device)

    pipe.sample_block_noise = sample_block_noise


def diffusers_call_kwargs(config: GenerationConfig, embeds: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Arguments for `pipe(...)` equal to our config (fresh lists: diffusers mutates `history_sizes`)."""
    sampler, video, history = config.sampler, config.video, config.history
    kwargs: dict[str, Any] = dict(
        prompt_embeds=embeds[BENCH_PROMPT], height=video.height, width=video.width,
        num_frames=video.requested_pixel_frames, guidance_scale=sampler.guidance_scale, output_type="np",
        history_sizes=list(history.sizes), num_latent_frames_per_chunk=history.latent_frames_per_chunk,
        keep_first_frame=history.keep_first_frame, is_skip_first_chunk=history.skip_first_chunk,
    )
    if sampler.guidance_scale > 1.0:
        kwargs["negative_prompt_embeds"] = embeds[config.prompt.negative_prompt]
    if sampler.kind == "flow_unipc":
        kwargs["num_inference_steps"] = sampler.steps[0]
    else:
        kwargs.update(pyramid_num_inference_steps_list=list(sampler.steps),
                      is_amplify_first_chunk=sampler.amplify_first_chunk,
                      use_zero_init=sampler.zero_init, zero_steps=sampler.zero_init_steps)
    return kwargs


def time_diffusers(pipe: HeliosPipeline | HeliosPyramidPipeline, models: BenchModels, config: GenerationConfig,
                   embeds: dict[str, torch.Tensor], seed: int, recorder: ChunkRecorder) -> TimedVideo:
    kwargs = diffusers_call_kwargs(config, embeds)
    generator = torch.Generator(models.device).manual_seed(seed)
    clock = recorder.clock
    clock.synchronize()
    _reset_peak(models.device)
    started = time.perf_counter()
    recorder.start()
    output = pipe(**kwargs, generator=generator)
    clock.synchronize()
    e2e = time.perf_counter() - started
    frames = int(output.frames.shape[1])  # (batch, frames, H, W, 3)
    patched = "sample_block_noise" in pipe.__dict__
    return TimedVideo(e2e, frames, None, recorder.chunks(), *_peaks(models.device),
                      extra={"block_noise_patched": patched})
