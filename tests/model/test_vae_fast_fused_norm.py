"""decode_chunk_whole(fused_norm=True): the fused Triton RMS norm + SiLU gives the reference decode's pixels, runs
where it should (CUDA, or the CPU interpreter in tests) and nowhere else; runtime.vae_norm reaches it."""

from __future__ import annotations

import pytest
import torch
from diffusers import AutoencoderKLWan
from diffusers.models.autoencoders.autoencoder_kl_wan import WanRMS_norm

from helios_core.config import GenerationConfig, RuntimeConfig
from helios_core.errors import ConfigError
from helios_core.model.runtime_checks import require_runtime_choices
from helios_core.model.vae import LatentCodec
from helios_core.model.vae_fast import decode_chunk_whole

TINY = {"z_dim": 16, "base_dim": 8, "num_res_blocks": 1, "dim_mult": [1, 2, 2, 2],
        "temperal_downsample": [False, True, True]}


def _vae(**overrides: object) -> AutoencoderKLWan:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        vae = AutoencoderKLWan(**{**TINY, **overrides}).eval()
    with torch.no_grad():  # gamma away from ones, so a dropped or misread gain shows in the pixels
        for module in vae.decoder.modules():
            if isinstance(module, WanRMS_norm):
                module.gamma.mul_(torch.linspace(0.5, 1.5, module.gamma.numel()).view(module.gamma.shape))
    return vae


def _latents(vae: AutoencoderKLWan, frames: int, height: int = 3, width: int = 5) -> torch.Tensor:
    generator = torch.Generator().manual_seed(frames)
    return torch.randn(1, vae.config.z_dim, frames, height, width, generator=generator).to(vae.device, vae.dtype)


def _decoder_norms(vae: AutoencoderKLWan) -> int:
    """RMS norms that `_activated_padded` runs per pass: every residual block's two, and the head's (the mid block's
    attention normalises inside diffusers' own module)."""
    attention_norms = {id(m) for a in vae.decoder.mid_block.attentions if a is not None for m in a.modules()}
    return sum(isinstance(m, WanRMS_norm) and id(m) not in attention_norms for m in vae.decoder.modules())


@pytest.fixture
def kernel_calls(monkeypatch) -> list[torch.dtype]:
    """Each call of the fused kernel, by input dtype (the kernel still runs)."""
    from helios_core.kernels import vae_norm

    calls: list[torch.dtype] = []
    kernel = vae_norm.rms_norm_silu_into

    def counted(x, *args, **kwargs):  # noqa: ANN001, ANN202
        calls.append(x.dtype)
        return kernel(x, *args, **kwargs)

    monkeypatch.setattr(vae_norm, "rms_norm_silu_into", counted)
    return calls


@pytest.fixture
def cpu_interpreter() -> None:
    """Skip (with the reason) unless Triton's CPU interpreter runs here (tests/conftest.py turns it on without CUDA)."""
    from helios_core.kernels.backend import interpreting, triton_import_error

    if triton_import_error() is not None:
        pytest.skip(f"Triton is not importable here: {triton_import_error()}")
    if not interpreting():
        pytest.skip("TRITON_INTERPRET is not 1 in this process (a CUDA machine), so the CPU cannot run Triton")
    import triton.language as tl
    from triton.runtime.interpreter import InterpretedFunction

    if not isinstance(tl.standard.sum, InterpretedFunction):
        pytest.skip("triton was imported before TRITON_INTERPRET=1 was set, so its interpreter cannot run here")


@pytest.mark.parametrize("frames_per_pass", [None, 1], ids=["one_pass", "per_frame_passes"])
def test_fused_decode_equals_the_reference_on_cpu_interpreter(cpu_interpreter, kernel_calls, frames_per_pass) -> None:
    vae = _vae()
    latents = _latents(vae, 2)
    reference = decode_chunk_whole(vae, latents, latent_frames_per_pass=frames_per_pass)
    assert kernel_calls == []  # fused_norm defaults to False
    fused = decode_chunk_whole(vae, latents, latent_frames_per_pass=frames_per_pass, fused_norm=True)
    passes = 1 if frames_per_pass is None else 2
    assert len(kernel_calls) == passes * _decoder_norms(vae)  # every norm of every pass went through the kernel
    assert reference.std() > 0.05
    torch.testing.assert_close(fused, reference, rtol=0, atol=1e-4)  # measured 1.3e-6; gamma left out: 1.2


def test_fused_norm_falls_back_to_the_reference_where_the_kernel_cannot_run(kernel_calls) -> None:
    # float64 is not a kernel dtype: fused_norm=True then runs the PyTorch reference, bit for bit.
    vae = _vae().double()
    latents = _latents(vae, 2)
    fused = decode_chunk_whole(vae, latents, fused_norm=True)
    assert kernel_calls == []
    assert torch.equal(fused, decode_chunk_whole(vae, latents))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the fused norm's GPU path needs a CUDA GPU")
@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 2e-2), (torch.bfloat16, 0.1)])
def test_fused_decode_equals_the_reference_on_gpu(kernel_calls, dtype: torch.dtype, tolerance: float) -> None:
    """As the reference within the dtype's rounding (the limits of test_vae_fast's GPU test: fp32 convs run in TF32,
    and bf16 compounds its rounding over the decoder's depth)."""
    vae = _vae(dim_mult=[1, 2, 4, 4], base_dim=16).to("cuda", dtype)
    latents = _latents(vae, 9, height=6, width=10)
    reference = decode_chunk_whole(vae, latents)
    fused = decode_chunk_whole(vae, latents, fused_norm=True)
    assert len(kernel_calls) == _decoder_norms(vae)
    assert reference.std() > 0.05
    assert (fused.float() - reference.float()).abs().max().item() <= tolerance


def test_codec_picks_the_norm_from_runtime_vae_norm(cpu_interpreter, kernel_calls) -> None:
    vae = _vae()
    assert not LatentCodec(vae, vae_norm="auto").uses_fused_norm()  # auto: the kernel on CUDA devices only
    assert not LatentCodec(vae, vae_norm="torch").uses_fused_norm()
    codec = LatentCodec(vae, whole_chunk_decode=True, vae_norm="triton")
    assert codec.uses_fused_norm()
    codec.decode(_latents(vae, 1))  # the CPU interpreter stands in for the GPU here
    assert len(kernel_calls) == _decoder_norms(vae)
    with pytest.raises(ConfigError, match="runtime.vae_norm must be one of auto, torch, triton"):
        LatentCodec(vae, vae_norm="fast")


def test_vae_norm_triton_is_refused_on_cpu_before_weights_load(tmp_path, monkeypatch) -> None:
    from helios_core.engine import HeliosEngine

    runtime = RuntimeConfig(device="cpu", vae_norm="triton")
    with pytest.raises(ConfigError, match="runtime.vae_norm=triton needs a CUDA device") as caught:
        require_runtime_choices(runtime, torch.device("cpu"), torch.float32)
    assert "\n" not in str(caught.value)

    def must_not_load(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("weights were loaded before runtime.vae_norm was checked")

    monkeypatch.setattr("helios_core.engine.load_model_folder", must_not_load)
    with pytest.raises(ConfigError, match="runtime.vae_norm=triton needs a CUDA device"):
        HeliosEngine.load(tmp_path / "no-model-here", runtime)
    for choice in ("auto", "torch"):  # nothing to check for these
        require_runtime_choices(RuntimeConfig(vae_norm=choice), torch.device("cpu"), torch.float32)


def test_runtime_vae_norm_config_key() -> None:
    assert RuntimeConfig().vae_norm == "auto"
    assert GenerationConfig().with_values({"runtime.vae_norm": "torch"}).runtime.vae_norm == "torch"
    with pytest.raises(ConfigError, match="runtime.vae_norm' must be one of auto, torch, triton"):
        GenerationConfig().with_values({"runtime.vae_norm": "cuda"})
