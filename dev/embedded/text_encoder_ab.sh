#!/bin/bash
# CPU A/B of the text encoder: fine-tune MODEL's transformer for the same steps on the same world clips, once with its
# own text encoder (arm A) and once with TEXT_ENCODER swapped in (arm B: a folder written by
# `python -m helios_core.embedded.train_text_encoder`), then measure both exports with background_binding.py and
# role_swap_gap.py.
# Both arms run side by side, one CPU thread each, so they share the machine equally.
#
# Usage (repo root): TEXT_ENCODER=DIR bash dev/embedded/text_encoder_ab.sh WORKDIR
# Knobs: MODEL (helios_core/default_model), CLIPS (240, of 4 s, world seed SEED=7), STEPS (500), BATCH (8), LR (3e-4).
set -eu
W=${1:?work dir}; MODEL=${MODEL:-helios_core/default_model}; TEXT_ENCODER=${TEXT_ENCODER:?a trained text_encoder folder}
SEED=${SEED:-7}; STEPS=${STEPS:-500}
mkdir -p "$W/logs"
say() { echo "[$(date +%T)] $*" | tee -a "$W/logs/ab.log"; }
[ -f "$W/world/manifest.jsonl" ] || helios data world --clips ${CLIPS:-240} --seconds 4 --seed $SEED --out "$W/world" \
  --height 128 --width 256 --workers 2 > "$W/logs/world.out" 2>&1
[ -d "$W/model_B" ] || bash dev/embedded/with_text_encoder.sh "$MODEL" "$TEXT_ENCODER" "$W/model_B"
declare -A START=([A]="$MODEL" [B]="$W/model_B")
for arm in A B; do
  [ -f "$W/data_$arm/index.jsonl" ] && continue
  helios data prepare "$W/world/manifest.jsonl" --out "$W/data_$arm" --model "${START[$arm]}" --height 128 \
    --width 256 --device cpu --max-seq-len 64 > "$W/logs/prepare_$arm.out" 2>&1
  say "prepare $arm: $(tail -n 1 "$W/logs/prepare_$arm.out")"
done
for arm in A B; do
  OMP_NUM_THREADS=1 helios train --stage mid --model "${START[$arm]}" --data "$W/data_$arm" --out "$W/run_$arm" \
    --resume --set lora.enabled=false --set loop.gradient_checkpointing=false --set loop.checkpoint_every=100 \
    --set loop.keep_last=2 --set loop.log_every=20 --set loop.seed=1 --set optim.weight_decay=0.01 \
    --set drop.caption_prob=0.1 --set loop.batch_size=${BATCH:-8} --set optim.lr=${LR:-3e-4} \
    --set optim.warmup_steps=20 --set loop.max_steps=$STEPS --set ema.enabled=false \
    > "$W/logs/train_$arm.out" 2>&1 &
done
wait
for arm in A B; do
  say "train $arm: $(tail -n 1 "$W/run_$arm/log.jsonl")"
  [ -d "$W/export_$arm" ] || helios train export "$W/run_$arm" --base "${START[$arm]}" --out "$W/export_$arm" \
    --scheduler unipc3 --dtype bf16 > "$W/logs/export_$arm.out" 2>&1
done
OMP_NUM_THREADS=2 python dev/embedded/background_binding.py start=$MODEL A=$W/export_A B=$W/export_B \
  --out "$W/background_binding.json" | tee -a "$W/logs/ab.log"
OMP_NUM_THREADS=2 python dev/embedded/role_swap_gap.py start=$MODEL,$W/data_A A=$W/export_A,$W/data_A \
  B_start=$W/model_B,$W/data_B B=$W/export_B,$W/data_B | tee -a "$W/logs/ab.log"
