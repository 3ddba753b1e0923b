"""Parity with diffusers' Helios pipelines: same tiny weights, seed and inputs -> the same latents (fp32, CPU).

diffusers' HeliosPipeline / HeliosPyramidPipeline are the reference implementation. One bug of theirs is patched in
these tests, and the test compares against the corrected behaviour: `sample_block_noise` factors a singular
covariance in fp32 with a 1e-8 jitter below fp32's resolution, which CPU LAPACK rejects ("not positive-definite").
The patch factors in float64 (our `block_noise`); draw order and layout are unchanged.
A second one shows in CFG-Zero*: the pipeline calls `.view(batch, -1)` on the transformer's output, which is not
contiguous on CPU ("view size is not compatible"); the Mid test hands diffusers a contiguous output (values unchanged).

One deliberate difference is outside these tests' inputs: for V2V we encode only the trailing chunks that can still
fit in the history (diffusers encodes the whole clip, drawing VAE samples for chunks it then discards). Inputs here
are at most that long, so both consume the random stream identically.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import HeliosDMDScheduler, HeliosPipeline, HeliosPyramidPipeline, HeliosScheduler
from PIL import Image

from helios_core.config import GenerationConfig
from helios_core.model.tiny import build_tiny_model_parts
from helios_core.model.vae import LatentCodec
from helios_core.pipeline import StreamingGenerator
from helios_core.request import GenerationRequest
from helios_core.samplers.pyramid import block_noise

SIZE, FRAMES, SEED, TEXT_LEN = 64, 99, 7, 16  # 99 frames = 3 chunks of 33


def _fixed_block_noise(self, batch_size, channel, num_frames, height, width, patch_size=(1, 2, 2), device=None,
                       generator=None):
    return block_noise((batch_size, channel, num_frames, height, width), self.scheduler.config.gamma, generator,
                       tuple(patch_size[1:]))


@pytest.fixture(scope="module")
def models():
    parts = {kind: build_tiny_model_parts(seed=3, scheduler=kind) for kind in ("dmd", "unipc3", "unipc")}
    torch.manual_seed(0)
    embeds = torch.randn(1, TEXT_LEN, parts["dmd"].transformer.config.text_dim)
    negative = torch.randn(1, TEXT_LEN, parts["dmd"].transformer.config.text_dim)
    return parts, embeds, negative


def _ours(parts, config: GenerationConfig, embeds, negative, **inputs) -> torch.Tensor:
    generator = StreamingGenerator(parts.transformer, LatentCodec(parts.vae), parts.scheduler_config, None,
                                   torch.device("cpu"))
    request = GenerationRequest(config=config, seed=SEED, prompt="p", **inputs)
    table = {"p": embeds, config.prompt.negative_prompt: negative}
    return torch.cat([c.latents for c in generator.stream(request, text_embeds=table)], dim=2)


def _config(**values) -> GenerationConfig:
    base = {"video.height": SIZE, "video.width": SIZE, "video.num_frames": FRAMES, "video.trim": "reference",
            "prompt.max_sequence_length": TEXT_LEN}
    return GenerationConfig().with_values({**base, **values})


def _pyramid_pipe(parts, monkeypatch, *, distilled: bool, cfg_zero_star: bool) -> HeliosPyramidPipeline:
    monkeypatch.setattr(HeliosPyramidPipeline, "sample_block_noise", _fixed_block_noise)
    scheduler_cls = HeliosDMDScheduler if distilled else HeliosScheduler
    scheduler = scheduler_cls.from_config(parts.scheduler_config)
    return HeliosPyramidPipeline(tokenizer=None, text_encoder=None, vae=parts.vae, scheduler=scheduler,
                                 transformer=parts.transformer, is_distilled=distilled, is_cfg_zero_star=cfg_zero_star)


def _assert_same(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    assert ours.shape == theirs.shape
    assert ours.abs().mean() > 0.1  # a real video's latents, not zeros
    assert (ours - theirs).abs().max().item() <= 1e-4


def _image() -> np.ndarray:
    rng = np.random.default_rng(1)
    return (rng.random((SIZE, SIZE, 3)) * 255).astype(np.uint8)


def _video(num_frames: int) -> np.ndarray:
    rng = np.random.default_rng(2)
    return (rng.random((num_frames, SIZE, SIZE, 3)) * 255).astype(np.uint8)


def _diffusers_pyramid(pipe, embeds, negative, steps, guidance, **kwargs) -> torch.Tensor:
    return pipe(prompt_embeds=embeds, negative_prompt_embeds=negative if guidance > 1 else None, height=SIZE,
                width=SIZE, num_frames=FRAMES, guidance_scale=guidance, pyramid_num_inference_steps_list=steps,
                generator=torch.Generator("cpu").manual_seed(SEED), output_type="latent", **kwargs).frames


def test_distilled_dmd_matches_diffusers(models, monkeypatch):
    parts, embeds, negative = models
    ours = _ours(parts["dmd"], _config(**{"sampler.steps": [2, 2, 2], "sampler.amplify_first_chunk": True}),
                 embeds, negative)
    pipe = _pyramid_pipe(parts["dmd"], monkeypatch, distilled=True, cfg_zero_star=False)
    theirs = _diffusers_pyramid(pipe, embeds, negative, [2, 2, 2], 1.0, is_amplify_first_chunk=True)
    _assert_same(ours, theirs)


def test_mid_pyramid_cfg_zero_star_matches_diffusers(models, monkeypatch):
    parts, embeds, negative = models
    config = _config(**{"sampler.kind": "pyramid_unipc", "sampler.steps": [3, 2, 2], "sampler.guidance_scale": 5.0,
                        "sampler.cfg_zero_star": True, "sampler.zero_init": True, "sampler.zero_init_steps": 1})
    ours = _ours(parts["unipc3"], config, embeds, negative)
    transformer = parts["unipc3"].transformer
    original_forward = transformer.forward

    def contiguous_forward(*args, **kwargs):
        return tuple(out.contiguous() for out in original_forward(*args, **kwargs))

    monkeypatch.setattr(transformer, "forward", contiguous_forward)
    pipe = _pyramid_pipe(parts["unipc3"], monkeypatch, distilled=False, cfg_zero_star=True)
    theirs = _diffusers_pyramid(pipe, embeds, negative, [3, 2, 2], 5.0, use_zero_init=True, zero_steps=1)
    _assert_same(ours, theirs)


def test_base_flow_unipc_with_cfg_matches_diffusers(models):
    parts, embeds, negative = models
    config = _config(**{"sampler.kind": "flow_unipc", "sampler.steps": [4], "sampler.guidance_scale": 5.0})
    ours = _ours(parts["unipc"], config, embeds, negative)
    pipe = HeliosPipeline(tokenizer=None, text_encoder=None, vae=parts["unipc"].vae,
                          scheduler=HeliosScheduler.from_config(parts["unipc"].scheduler_config),
                          transformer=parts["unipc"].transformer)
    theirs = pipe(prompt_embeds=embeds, negative_prompt_embeds=negative, height=SIZE, width=SIZE, num_frames=FRAMES,
                  guidance_scale=5.0, num_inference_steps=4, generator=torch.Generator("cpu").manual_seed(SEED),
                  output_type="latent").frames
    _assert_same(ours, theirs)


def test_image_to_video_matches_diffusers(models, monkeypatch):
    parts, embeds, negative = models
    image = _image()
    ours = _ours(parts["dmd"], _config(), embeds, negative, image=image)
    pipe = _pyramid_pipe(parts["dmd"], monkeypatch, distilled=True, cfg_zero_star=False)
    theirs = _diffusers_pyramid(pipe, embeds, negative, [1, 1, 1], 1.0, image=Image.fromarray(image))
    # diffusers' latent output also holds the conditioning's latent frames in front; compare the generated ones.
    _assert_same(ours, theirs[:, :, -ours.shape[2]:])


def test_video_to_video_matches_diffusers(models, monkeypatch):
    parts, embeds, negative = models
    video = _video(70)  # two whole chunks of 33 from the end, 4 leading frames dropped as the reference does
    ours = _ours(parts["dmd"], _config(), embeds, negative, video=video)
    pipe = _pyramid_pipe(parts["dmd"], monkeypatch, distilled=True, cfg_zero_star=False)
    theirs = _diffusers_pyramid(pipe, embeds, negative, [1, 1, 1], 1.0, video=[Image.fromarray(f) for f in video])
    assert theirs.shape[2] == ours.shape[2] + 18  # the clip's two encoded chunks come first
    _assert_same(ours, theirs[:, :, -ours.shape[2]:])


def test_history_really_conditions_the_next_chunk(models):
    """Guard against a loop that ignores its history: with another image, chunk 2 must differ."""
    parts, embeds, negative = models
    a = _ours(parts["dmd"], _config(), embeds, negative, image=_image())
    b = _ours(parts["dmd"], _config(), embeds, negative, image=255 - _image())
    assert (a[:, :, -9:] - b[:, :, -9:]).abs().max() > 1e-3
