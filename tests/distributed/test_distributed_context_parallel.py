"""diffusers' Ulysses context parallelism on the tiny Helios transformer: 2 gloo processes vs one process.

Runs the real CP code (our plan, our enabling, diffusers' hooks and all-to-alls) on CPUs; the outputs must agree
to fp32 rounding, and each rank must really have worked on half of the tokens.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from helios_core.distributed.context_parallel import enable_context_parallel, helios_cp_plan, needs_uneven_split, \
    sequence_lengths
from helios_core.distributed.launch import launch_workers
from helios_core.errors import ConfigError
from helios_core.model.tiny import build_tiny_model_parts, tiny_generation_config

HEIGHT, WIDTH = 8, 16  # latent size of a 64x128 video: every token count splits evenly in two


def tiny_transformer():
    torch.set_num_threads(1)
    return build_tiny_model_parts(0).transformer.requires_grad_(False)


def transformer_inputs(height: int = HEIGHT, width: int = WIDTH) -> dict:
    g = torch.Generator().manual_seed(1)
    return dict(
        hidden_states=torch.randn(1, 16, 9, height, width, generator=g), timestep=torch.tensor([500.0]),
        encoder_hidden_states=torch.randn(1, 16, 32, generator=g),
        indices_hidden_states=torch.arange(20, 29)[None], indices_latents_history_short=torch.tensor([[0, 19]]),
        indices_latents_history_mid=torch.arange(17, 19)[None], indices_latents_history_long=torch.arange(1, 17)[None],
        latents_history_short=torch.randn(1, 16, 2, HEIGHT, WIDTH, generator=g),
        latents_history_mid=torch.randn(1, 16, 2, HEIGHT, WIDTH, generator=g),
        latents_history_long=torch.randn(1, 16, 16, HEIGHT, WIDTH, generator=g), return_dict=False,
    )


def cp_worker(out_dir: str) -> int:
    """One rank: enable CP, run the transformer, save the output and how many tokens to_q saw."""
    from helios_core.distributed.world import join_world, leave_world

    world = join_world(cuda=False)
    try:
        model = tiny_transformer()
        enable_context_parallel(model, world.world_size, uneven=False)
        seen: list[int] = []
        model.blocks[0].attn1.to_q.register_forward_hook(lambda m, i, o: seen.append(i[0].shape[1]))
        with torch.inference_mode():
            output = model(**transformer_inputs())[0]
        np.save(Path(out_dir) / f"rank{world.rank}.npy", output.numpy())
        np.save(Path(out_dir) / f"seen{world.rank}.npy", np.array(seen))
    finally:
        leave_world()
    return 0


def test_two_rank_ulysses_equals_one_process(tmp_path: Path) -> None:
    with torch.inference_mode():
        reference = tiny_transformer()(**transformer_inputs())[0].numpy()
    assert launch_workers(cp_worker, str(tmp_path), 2) == [0, 0]
    full_tokens = sequence_lengths(tiny_generation_config(), HEIGHT, WIDTH, (1, 2, 2))[-1]
    for rank in range(2):
        np.testing.assert_allclose(np.load(tmp_path / f"rank{rank}.npy"), reference, rtol=1e-5, atol=1e-5)
        assert np.load(tmp_path / f"seen{rank}.npy").tolist() == [full_tokens // 2]  # the split really happened


def test_sequence_lengths_match_what_the_blocks_see() -> None:
    config = tiny_generation_config()
    lengths = sequence_lengths(config, HEIGHT, WIDTH, (1, 2, 2))
    model = tiny_transformer()
    seen: list[int] = []
    model.blocks[0].register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[1]))
    model.blocks[0].attn2.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[1]))
    with torch.inference_mode():
        for stage in range(config.sampler.num_stages):  # the pyramid halves the noisy latents per remaining stage
            shrink = 2 ** (config.sampler.num_stages - 1 - stage)
            model(**transformer_inputs(HEIGHT // shrink, WIDTH // shrink))
    # Per stage: the block sees noisy + history tokens, cross-attention only the noisy ones.
    assert seen[0::2] == list(lengths[1::2]) and seen[1::2] == list(lengths[0::2])


def test_plan_follows_the_model_depth_and_splits() -> None:
    plan = helios_cp_plan(3)
    assert {f"blocks.{i}.{part}" for i in range(3) for part in ("attn1", "attn2", "ffn")} <= set(plan)
    assert "blocks.3.attn1" not in plan
    assert needs_uneven_split(2, (368, 288), 2) is False
    assert needs_uneven_split(2, (9, 184), 2) is True  # 64x64: the first pyramid stage has 9 tokens
    assert needs_uneven_split(40, (368,), 3) is True  # 40 heads over 3 ranks


def test_amplify_history_models_are_refused() -> None:
    model = tiny_transformer()
    model.register_to_config(is_amplify_history=True)
    with pytest.raises(ConfigError, match="is_amplify_history"):
        enable_context_parallel(model, 2, uneven=False)
    assert "RANK" not in os.environ  # nothing above joined a process group in this process
