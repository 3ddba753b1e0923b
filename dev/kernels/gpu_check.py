"""GPU check of helios_core.kernels (H100): tests, micro-benchmarks at Helios-14B shapes, one JSON line.

    python dev/kernels/gpu_check.py                      # from the repo root; about 2-3 minutes
    python dev/kernels/gpu_check.py --skip-tests --iters 50 --json-out $OUT/kernels.json
    python dev/kernels/gpu_check.py --skip-tests --compile-block   # + the block under torch.compile, both ways

(i)   runs `pytest tests/kernels` (the Triton tests run on CUDA here, not under the CPU interpreter);
(ii)  times each op at the 14B model's shapes in bf16 (hidden 5,120; 40 heads x 128; 8,640 noisy tokens at 384x640
      (9 x 24 x 40) + 2,400 history tokens = 11,040; norm2 sees the 8,640 noisy ones), forward (no_grad) and
      forward+backward, for: diffusers' stock code, our PyTorch reference, torch.compile of the reference, Triton.
      Then one 14B-width transformer block, stock vs fused, and whether torch.compile(fullgraph=True) traces the
      Triton ops (autograd.Function + user kernels);
(iii) prints one JSON line (last line of stdout). Timings: CUDA events, median of --iters after 3 warm-ups.
torch.compile work stops once --budget-s seconds have passed (reported as "skipped: budget"). No imageio-ffmpeg.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from diffusers.models.transformers.transformer_helios import (  # noqa: E402
    HeliosOutputNorm,
    HeliosTransformerBlock,
    apply_rotary_emb_transposed,
)

from helios_core.kernels import ops  # noqa: E402
from helios_core.kernels import enable_fused_kernels  # noqa: E402

NOISY, HISTORY, DIM, HEADS, HEAD_DIM, FFN, TEXT = 8640, 2400, 5120, 40, 128, 13824, 512
TOKENS = NOISY + HISTORY
STARTED = time.perf_counter()


def run_tests() -> dict:
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/kernels"],
                          cwd=ROOT, capture_output=True, text=True, timeout=150)
    print(proc.stdout[-4000:], proc.stderr[-2000:], sep="\n", file=sys.stderr)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    return {"returncode": proc.returncode, "summary": lines[-1] if lines else ""}


def median_ms(fn, iters: int) -> float:
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    pairs = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(iters)]
    for start, end in pairs:
        start.record()
        fn()
        end.record()
    torch.cuda.synchronize()
    return statistics.median(start.elapsed_time(end) for start, end in pairs)


def _rand(*shape: int, dtype=torch.bfloat16, grad: bool = False) -> torch.Tensor:
    return torch.randn(*shape, device="cuda", dtype=dtype).requires_grad_(grad)


def op_cases() -> dict:
    """name -> (inputs, names of the inputs differentiated in fwd_bwd, {variant: fn(*inputs)}, bytes of one forward).
    Gradients as LoRA training needs them (x only: the modulation and q/k norm weights come from frozen layers),
    plus the parameter-gradient paths: per-token scale/shift (full fine-tuning) and norm2's weight/bias (sums)."""
    x = _rand(1, TOKENS, DIM)
    # Per-token modulation as a block builds it: fp32 (1, S, 6, D) from a permuted bf16 timestep projection.
    mod = _rand(1, 1, 6, DIM, dtype=torch.float32) + _rand(1, 6, TOKENS, DIM).permute(0, 2, 1, 3).float()
    scale, shift = _rand(1, TOKENS, DIM, dtype=torch.float32), _rand(1, TOKENS, DIM, dtype=torch.float32)
    x2 = _rand(1, NOISY, DIM)
    w2, b2 = _rand(DIM, dtype=torch.float32), _rand(DIM, dtype=torch.float32)
    wq = _rand(DIM)
    q = _rand(1, TOKENS, HEADS, HEAD_DIM)
    freqs = _rand(1, TOKENS, 2 * HEAD_DIM, dtype=torch.float32)
    ln_ref, ln = ops.modulated_layer_norm_reference, ops.modulated_layer_norm
    modulated = {
        "stock": lambda x, sc, sh: (F.layer_norm(x.float(), (DIM,), eps=1e-6) * (1 + sc) + sh).type_as(x),
        "reference": lambda x, sc, sh: ln_ref(x, sc, sh),
        "triton": lambda x, sc, sh: ln(x, sc, sh, impl="triton")}
    return {
        "modulated_layer_norm": ((x, mod[:, :, 1], mod[:, :, 0]), ("x",), modulated, x.numel() * (2 + 4 + 4 + 2)),
        "modulated_layer_norm_param_grads": ((x, scale, shift), ("x", "scale", "shift"), modulated, None),
        "layer_norm_affine": ((x2, w2, b2), ("x", "weight", "bias"), {
            "stock": lambda x, w, b: F.layer_norm(x.float(), (DIM,), w, b, 1e-6).type_as(x),
            "reference": lambda x, w, b: ln_ref(x, w, b, offset=0.0),
            "triton": lambda x, w, b: ln(x, w, b, offset=0.0, impl="triton")}, x2.numel() * 4),
        "rms_norm": ((x, wq), ("x",), {
            "stock": lambda x, w: F.rms_norm(x, (DIM,), w, 1e-6),
            "reference": lambda x, w: ops.rms_norm_reference(x, w),
            "triton": lambda x, w: ops.rms_norm(x, w, impl="triton")}, x.numel() * 4),
        "rope_3d": ((q,), ("q",), {
            "stock": lambda q: apply_rotary_emb_transposed(q, freqs),
            "reference": lambda q: ops.rope_3d_reference(q, freqs),
            "triton": lambda q: ops.rope_3d(q, freqs, impl="triton")}, q.numel() * 4 + freqs.numel() * 4),
    }


def bench_ops(iters: int, budget_s: float) -> dict:
    results: dict = {}
    for grad in (False, True):
        mode = "fwd_bwd" if grad else "fwd"
        for name, (inputs, grad_names, variants, nbytes) in op_cases().items():
            if nbytes is None and not grad:
                continue  # a backward-only case
            inputs = [t.detach().requires_grad_(grad and i < len(grad_names)) for i, t in enumerate(inputs)]
            leaves = inputs[:len(grad_names)] if grad else []
            variants = {**variants, "compiled_reference": torch.compile(variants["reference"], dynamic=False)}
            row: dict = {"grads_of": list(grad_names)} if grad else {}
            outs = {}
            with torch.no_grad():
                upstream = torch.randn_like(variants["reference"](*inputs))  # one upstream gradient for all variants
            for variant, fn in variants.items():
                if variant == "compiled_reference" and time.perf_counter() - STARTED > budget_s:
                    row[variant] = "skipped: budget"
                    continue
                if grad:
                    call = lambda fn=fn: torch.autograd.grad(fn(*inputs), leaves, upstream)  # noqa: E731
                else:
                    def call(fn=fn):
                        with torch.no_grad():
                            return fn(*inputs)
                outs[variant] = call()
                row[variant] = round(median_ms(call, iters), 4)
            ref = outs["reference"] if grad else [outs["reference"]]
            got = outs["triton"] if grad else [outs["triton"]]
            row["max_rel_err_triton_vs_reference"] = max(((a.float() - b.float()).norm() / b.float().norm()).item()
                                                          for a, b in zip(got, ref))
            row["speedup_vs_stock"] = round(row["stock"] / row["triton"], 2)
            if isinstance(row.get("compiled_reference"), float):
                row["speedup_vs_compiled"] = round(row["compiled_reference"] / row["triton"], 2)
            if not grad:
                row["triton_gb_per_s"] = round(nbytes / row["triton"] / 1e6, 1)
            results.setdefault(name, {})[mode] = row
            torch.cuda.empty_cache()
    return results


def bench_block(iters: int, compile_block: bool) -> dict:
    """One 14B-width block (all 11,040 tokens, guidance cross-attention over the 8,640 noisy ones), stock vs fused;
    with `compile_block` also each compiled (fullgraph, as runtime.compile does per block), forward only."""
    with torch.device("cuda"):
        holder = torch.nn.Module()
        holder.blocks = torch.nn.ModuleList([HeliosTransformerBlock(DIM, FFN, HEADS, "rms_norm_across_heads", True,
                                                                    1e-6, None, guidance_cross_attn=True)])
        holder.norm_out = HeliosOutputNorm(DIM, 1e-6)
    block = holder.blocks[0].to(torch.bfloat16).requires_grad_(False)
    block.scale_shift_table.data = block.scale_shift_table.data.float()  # diffusers keeps these in fp32
    block.norm2.float()
    hidden, text = _rand(1, TOKENS, DIM), _rand(1, TEXT, DIM)
    temb = _rand(1, 6, TOKENS, DIM).permute(0, 2, 1, 3)
    freqs = _rand(1, TOKENS, 2 * HEAD_DIM, dtype=torch.float32)
    result: dict = {}
    for label in ("stock", "fused"):
        if label == "fused":
            enable_fused_kernels(holder, impl="triton")
        with torch.no_grad():
            out = block(hidden, text, temb, freqs, NOISY)
            result[f"{label}_fwd_ms"] = round(median_ms(lambda: block(hidden, text, temb, freqs, NOISY), iters), 3)
        x = hidden.detach().requires_grad_()
        up = torch.randn_like(out)
        step = lambda: torch.autograd.grad(block(x, text, temb, freqs, NOISY), x, up)  # noqa: E731
        result[f"{label}_fwd_bwd_ms"] = round(median_ms(step, max(3, iters // 2)), 3)
        result[f"{label}_out"] = out
        if compile_block:
            result[f"{label}_compiled_fwd_ms"] = _compiled_block_ms(block, (hidden, text, temb, freqs, NOISY), iters)
    stock, fused = result.pop("stock_out"), result.pop("fused_out")
    result["relative_error"] = ((fused.float() - stock.float()).norm() / stock.float().norm()).item()
    for mode in ("fwd", "fwd_bwd", "compiled_fwd"):
        stock_ms, fused_ms = result.get(f"stock_{mode}_ms"), result.get(f"fused_{mode}_ms")
        if isinstance(stock_ms, float) and isinstance(fused_ms, float):
            result[f"speedup_{mode}"] = round(stock_ms / fused_ms, 3)
    return result


def _compiled_block_ms(block: torch.nn.Module, args: tuple, iters: int) -> float | str:
    torch._dynamo.reset()
    compiled = torch.compile(block, fullgraph=True, dynamic=False)
    try:
        with torch.no_grad():
            compiled(*args)
            return round(median_ms(lambda: compiled(*args), iters), 3)
    except Exception as err:  # noqa: BLE001 - reported: tells whether runtime.compile + kernels=triton works
        return f"error: {type(err).__name__}: {str(err)[:300]}"


def compile_check() -> dict:
    """Can torch.compile(fullgraph=True) trace the Triton ops, forward and backward?"""
    x, w = _rand(2, 64, 512, grad=True), _rand(512, grad=True)
    mod = _rand(2, 64, 2, 512, dtype=torch.float32, grad=True)
    freqs = _rand(2, 64, 128, dtype=torch.float32)

    def fused(x, w, mod):
        y = ops.modulated_layer_norm(x, mod[:, :, 1], mod[:, :, 0], impl="triton")
        q = ops.rms_norm(y, w, impl="triton").unflatten(2, (8, 64))
        return ops.rope_3d(q, freqs, impl="triton").float().square().sum()

    try:
        compiled = torch.compile(fused, fullgraph=True, dynamic=False)
        eager = torch.autograd.grad(fused(x, w, mod), (x, w, mod))
        traced = torch.autograd.grad(compiled(x, w, mod), (x, w, mod))
        diff = max((a.float() - b.float()).abs().max().item() for a, b in zip(eager, traced))
        return {"ok": True, "max_abs_grad_diff": diff}
    except Exception as err:  # noqa: BLE001 - reported, not fatal: eager use does not depend on it
        return {"ok": False, "error": f"{type(err).__name__}: {str(err)[:300]}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-tests", action="store_true")
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--budget-s", type=float, default=130.0,
                        help="seconds after which no new torch.compile of the reference starts")
    parser.add_argument("--json-out", type=Path, default=None)
    parser.add_argument("--compile-block", action="store_true",
                        help="also time the block compiled, stock and fused (about a minute more)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("error: gpu_check needs a CUDA GPU")
    result: dict = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                    "shapes": {"tokens": TOKENS, "noisy_tokens": NOISY, "dim": DIM, "heads": HEADS,
                               "head_dim": HEAD_DIM, "dtype": "bf16"}}
    import triton

    result["triton"] = triton.__version__
    result["tests"] = None if args.skip_tests else run_tests()
    result["compile_fused_ops"] = compile_check()
    result["block_14b_width"] = bench_block(max(5, args.iters // 2), args.compile_block)
    result["ops_ms"] = bench_ops(args.iters, args.budget_s)
    result["wall_s"] = round(time.perf_counter() - STARTED, 1)
    line = json.dumps(result)
    if args.json_out:
        args.json_out.write_text(line + "\n")
    print(line)


if __name__ == "__main__":
    main()
