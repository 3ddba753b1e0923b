#!/bin/bash
# One device call that leaves a complete model: continue the VAE two ways (vae_ab.sh), keep the variant with the
# higher VAE ceiling, then fine-tune the model folder's transformer on that VAE's latents (build.sh's prepare, mid and
# quality phases) and judge it. The world clips render on the CPU while the GPU trains the VAEs.
#
# Usage (repo root): PUBLISH=$OUT CALL_SECONDS=580 FIT=170 bash dev/embedded/vae_then_mid.sh WORKDIR
# Knobs: MODEL (the folder to continue, helios_core/default_model), CALL_SECONDS (when everything must be done,
# counted from the start), FIT (each VAE variant's seconds), CEILING_PROMPTS (5), and build.sh's CLIPS (600),
# BATCH (64), MID_LR (5e-4), CAPTION_DROP (0.1), EMA_DECAY (0.99), EMA_START (200), DATA_WORKERS (12), RESERVE (70:
# seconds kept after the mid stage for its export and quality phase), QUALITY_PROMPTS (5), QUALITY_SECONDS (10).
# Outputs (PUBLISH=dir): vae-a.tar, vae-b.tar, mid_model.tar (without its vae/: the kept variant's tar is that),
# logs.tar (every log, the train logs of both VAEs, the mid run's log.jsonl, the quality JSONs).
set -u
W=${1:?work dir}; START=$(date +%s); MODEL=${MODEL:-helios_core/default_model}
mkdir -p "$W/logs"
say() { echo "[$(date +%T)] $*" | tee -a "$W/logs/build.log"; }

PUBLISH= CLIPS=${CLIPS:-600} WORKERS=${WORLD_WORKERS:-6} PHASES=world bash dev/embedded/build.sh "$W" \
  > "$W/logs/world-phase.out" 2>&1 &
WORLD=$!
PROBES=0 QUALITY_PROMPTS=${CEILING_PROMPTS:-5} bash dev/embedded/vae_ab.sh "$W" "$MODEL/vae"

BEST=$(python3 - "$W" <<'EOF'
import json, sys
from pathlib import Path

work, scores = Path(sys.argv[1]), {}
for name in "ab":  # ceiling adherence first, then its shape part, then held-out PSNR
    try:
        row = json.loads((work / "logs" / f"ceiling-{name}.out").read_text().strip().splitlines()[-1])
        psnr = json.loads((work / f"vae-{name}" / "train_log.json").read_text())["heldout_psnr_db"]
    except (OSError, ValueError, IndexError, KeyError):
        continue
    scores[name] = (row["adherence"], row["shape_adherence"], psnr)
print(max(scores, key=scores.get) if scores else "")
EOF
)
[ -n "$BEST" ] || { say "no VAE variant finished"; exit 1; }
say "kept vae-$BEST"
rm -rf "$W/start" && cp -r "$MODEL" "$W/start" && rm -rf "$W/start/vae" && cp -r "$W/vae-$BEST" "$W/start/vae" \
  && rm -f "$W/start/vae/train_log.json"
wait $WORLD
say "world: $(tail -n 1 "$W/logs/world.out")"

PUBLISH=${PUBLISH:-} DEADLINE=$(( ${CALL_SECONDS:-580} - ($(date +%s) - START) )) RESERVE=${RESERVE:-70} \
  PHASES="prepare mid quality" PREPARE_MODEL="$W/start" MID_FROM="$W/start" CLIPS=${CLIPS:-600} \
  BATCH=${BATCH:-64} MID_LR=${MID_LR:-5e-4} MID_SECONDS=100000 DATA_WORKERS=${DATA_WORKERS:-12} \
  CAPTION_DROP=${CAPTION_DROP:-0.1} EMA_DECAY=${EMA_DECAY:-0.99} EMA_START=${EMA_START:-200} QUALITY_MODELS=mid \
  QUALITY_SPECS=default QUALITY_PROMPTS=${QUALITY_PROMPTS:-5} QUALITY_SECONDS=${QUALITY_SECONDS:-10} \
  bash dev/embedded/build.sh "$W"

[ -n "${PUBLISH:-}" ] && (cd "$W" && tar cf "$PUBLISH/logs.tar" logs $(ls -d vae-*/train_log.json mid/log.jsonl \
  quality/*/world_quality.json data/index.jsonl 2>/dev/null))
say "all done in $(( $(date +%s) - START )) s"
