"""Overlapped decoding returns exactly the frames of a plain decode; bf16 decoding stays close to fp32."""

import numpy as np
import pytest
import torch

from helios_core.decode_queue import ChunkDecode
from helios_core.model.tiny import build_tiny_model_parts
from helios_core.model.vae import LatentCodec, to_uint8_video


@pytest.fixture(scope="module")
def codec():
    return LatentCodec(build_tiny_model_parts(seed=0).vae)


def test_immediate_decode_equals_the_codec(codec):
    latents = torch.randn(1, 16, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    job = ChunkDecode(codec, latents, stream=None)
    expected = to_uint8_video(codec.decode(latents)).numpy()
    assert np.array_equal(job.frames(), expected) and job.frames().shape == (9, 64, 64, 3)
    assert job.seconds > 0


def test_bf16_decode_is_close_to_fp32(codec):
    latents = torch.randn(1, 16, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    fp32 = to_uint8_video(codec.decode(latents)).numpy().astype(np.int16)
    bf16_codec = LatentCodec(build_tiny_model_parts(seed=0).vae.to(torch.bfloat16))
    bf16 = to_uint8_video(bf16_codec.decode(latents)).numpy().astype(np.int16)
    difference = np.abs(fp32 - bf16)
    print(f"bf16 vs fp32 decode: mean {difference.mean():.3f} levels, max {difference.max()}")
    assert difference.mean() < 2.0  # bf16 keeps ~3 significant digits: about one level of 255 on average


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (side-stream decode)")
def test_side_stream_decode_matches_plain_decode_on_gpu(codec):
    codec.vae.to("cuda")
    latents = torch.randn(1, 16, 9, 8, 8, generator=torch.Generator().manual_seed(2)).cuda()
    expected = to_uint8_video(codec.decode(latents)).cpu().numpy()
    job = ChunkDecode(codec, latents, torch.cuda.Stream())
    busy = torch.randn(2048, 2048, device="cuda")
    for _ in range(20):  # keep the main stream busy while the side stream decodes
        busy = busy @ busy / 2048
    assert np.array_equal(job.frames(), expected)


def test_codec_uses_the_whole_chunk_decode_on_cpu_with_the_reference_result(codec, monkeypatch):
    import helios_core.model.vae as vae_module

    calls = []
    original = vae_module.decode_chunk_whole
    monkeypatch.setattr(vae_module, "decode_chunk_whole", lambda *a, **k: calls.append(1) or original(*a, **k))
    latents = torch.randn(1, 16, 9, 8, 8, generator=torch.Generator().manual_seed(3))
    reference = LatentCodec(codec.vae, whole_chunk_decode=False).decode(latents)
    assert calls == []
    fast = LatentCodec(codec.vae).decode(latents)  # auto: whole-chunk on the CPU
    assert calls == [1]
    assert fast.shape == reference.shape == (1, 3, 33, 64, 64)
    assert (fast - reference).abs().max() <= 1e-4
