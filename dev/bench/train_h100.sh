#!/bin/bash
# `helios bench train` on one H100: the 14B Helios transformer with random bf16 weights built directly on the GPU,
# the mid stage (a random pyramid level per step, as training does), LoRA rank 256 (alpha 256) on the training target
# modules, 384x640 synthetic latents, gradient checkpointing on, bf16 autocast, AdamW on the adapter.
# 2 warm-up steps (more until each pyramid level has run once) + 6 timed steps. Expected runtime: about 1-2 minutes
# (imports, ~30 s to build the 14B model + 1.2 B adapter parameters on the GPU, ~12-20 steps of 1-5 s); the timeout
# below stops it at 280 s in any case.
#
# Run from the repository root on the GPU box, carrying `.whl` (diffusers 0.42.1, imageio-ffmpeg, importlib_metadata):
#     bash dev/bench/train_h100.sh
# Human summary, then the last line one JSON object (seconds_per_step, peak_gpu_memory_gib, tflops_achieved, mfu,
# per-step records). Both land in $OUT/bench_train.txt and $OUT/bench_train.json.
set -o pipefail
if ls .whl/*.whl > /dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || exit 1
  export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
OUT=${OUT:-.}
export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True  # as the reference's training launcher
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $OUT/bench_train_gpu.txt
PYTHONUNBUFFERED=1 timeout 280 python3 -m helios_cli bench train --size full --stage mid --lora-rank 256 \
  --height 384 --width 640 --steps 6 --warmup 2 --gradient-checkpointing --device cuda \
  2>&1 | grep -v -i warn | tee $OUT/bench_train.txt
status=$?
tail -n 1 $OUT/bench_train.txt > $OUT/bench_train.json
exit $status
