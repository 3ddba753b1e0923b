#!/bin/bash
# One device call: profile the mid-stage training step (profile_mid_step.py), then go on training the model folder's
# transformer with build.sh's world, prepare and mid phases until the call's time is spent. The world clips render on
# the CPU while the GPU profiles.
#
# Usage (repo root): PUBLISH=$OUT CALL_SECONDS=570 bash dev/embedded/profile_then_mid.sh WORKDIR
# Knobs: MODEL (the folder to continue, helios_core/default_model), PROFILE_SECONDS (200; 0 skips the profile), SEED
# (the world's clips and the run's draws, 1), TRAIN_PHASES (build.sh's phases after the world: "prepare mid"; "prepare
# mid distilled" distils the mid run's export in the same call, given MID_SECONDS for the mid run and build.sh's
# DISTILL_* and TEACHER_* knobs; "prepare distilled" with DISTILL_FROM=MODEL distils MODEL itself), and build.sh's
# CLIPS (600), BATCH (64), MID_LR (5e-4), MID_SECONDS (no limit but the call's), CAPTION_DROP (0.1), EMA_DECAY
# (0.99), EMA_START (200), DATA_WORKERS (12), TRAIN_COMPILE (auto: see below), RESERVE (30: seconds kept for the
# export), TEXT_ENCODER (a text_encoder folder written by `python -m helios_core.embedded.train_text_encoder`: the
# run starts from a copy of MODEL with it swapped in, so prepare embeds the captions with it, the transformer is
# trained to read it, and the exports carry it). Outputs (PUBLISH=dir): mid_step_profile.json / .txt, mid_model.tar
# and/or distilled_model.tar (without their vae/, which is MODEL's), logs.tar.
set -u
W=${1:?work dir}; START=$(date +%s); MODEL=${MODEL:-helios_core/default_model}; SEED=${SEED:-1}
mkdir -p "$W/logs"
say() { echo "[$(date +%T)] $*" | tee -a "$W/logs/build.log"; }
if [ -n "${TEXT_ENCODER:-}" ]; then
  bash dev/embedded/with_text_encoder.sh "$MODEL" "$TEXT_ENCODER" "$W/start_model" || exit 1
  MODEL=$W/start_model; say "text encoder: $TEXT_ENCODER swapped into $MODEL"
fi
PROFILE_SECONDS=${PROFILE_SECONDS:-200}
PROFILE_JSON=${PUBLISH:-$W/logs}/mid_step_profile.json  # written by the profile, read by TRAIN_COMPILE=auto

PUBLISH= SEED=$SEED CLIPS=${CLIPS:-600} WORKERS=${WORLD_WORKERS:-6} PHASES=world bash dev/embedded/build.sh "$W" \
  > "$W/logs/world-phase.out" 2>&1 &
WORLD=$!
if (( PROFILE_SECONDS > 0 )); then
  timeout "$PROFILE_SECONDS" python3 dev/embedded/profile_mid_step.py "$MODEL" --out "$PROFILE_JSON" \
    > "$W/logs/profile.out" 2>&1
  say "profile: exit $? ; $(grep -E '^(eager|gpu_noise|noise|batch|compiled)' "$W/logs/profile.out" \
    | tr '\n' ' ' | cut -c1-900)"
fi
# TRAIN_COMPILE=auto (the default): compile the training run's blocks when the profile's compiled step, weighted as
# the mid stage draws its levels (1:2:1), took at most 0.75x the eager one (the rest pays for compiling three shapes).
TRAIN_COMPILE=${TRAIN_COMPILE:-auto}
if [ "$TRAIN_COMPILE" = auto ]; then
  TRAIN_COMPILE=$(python3 - "$PROFILE_JSON" <<'EOF2'
import json, sys
try:
    result = json.load(open(sys.argv[1]))
    weighted = lambda times: (times["0"]["median"] + 2 * times["1"]["median"] + times["2"]["median"]) / 4
    print("true" if weighted(result["compiled"]) <= 0.75 * weighted(result["eager"]) else "false")
except (OSError, ValueError, KeyError):
    print("false")
EOF2
)
  say "TRAIN_COMPILE=auto -> $TRAIN_COMPILE"
fi
wait $WORLD
say "world: $(tail -n 1 "$W/logs/world.out")"

PUBLISH=${PUBLISH:-} SEED=$SEED DEADLINE=$(( ${CALL_SECONDS:-570} - ($(date +%s) - START) )) RESERVE=${RESERVE:-30} \
  PHASES="${TRAIN_PHASES:-prepare mid}" PREPARE_MODEL="$MODEL" MID_FROM="$MODEL" CLIPS=${CLIPS:-600} \
  BATCH=${BATCH:-64} MID_LR=${MID_LR:-5e-4} MID_SECONDS=${MID_SECONDS:-100000} DATA_WORKERS=${DATA_WORKERS:-12} \
  TRAIN_COMPILE=$TRAIN_COMPILE CAPTION_DROP=${CAPTION_DROP:-0.1} EMA_DECAY=${EMA_DECAY:-0.99} \
  EMA_START=${EMA_START:-200} bash dev/embedded/build.sh "$W"
say "all done in $(( $(date +%s) - START )) s"
