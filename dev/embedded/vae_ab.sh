#!/bin/bash
# Continue training a VAE two ways side by side on one GPU, then judge both by the VAE ceiling (the world bench of
# the world's own clips through each VAE). One device call; the model card records what it found.
#
# Usage (repo root): PUBLISH=$OUT FIT=400 bash dev/embedded/vae_ab.sh WORKDIR FROM_VAE_FOLDER
#   1. two 80-step probes, each alone on the GPU: cudnn deterministic, then --cudnn-benchmark; the marginal step rate
#      of each (steps 51..80, after start-up) decides which mode the variants use;
#   2. variants a and b at the same time, equal in everything but their own train_vae arguments (VARIANT_A,
#      VARIANT_B), each fitting its whole schedule into FIT seconds (train_vae --fit-seconds);
#   3. the ceiling of each variant (QUALITY_PROMPTS x QUALITY_SECONDS held-out prompts), at the same time.
# Knobs: PROBES (1; 0 skips step 1 and uses --cudnn-benchmark), VAE_BATCH (16), VAE_LR (6e-4: a restart from a
# trained VAE, below its first run's 1.5e-3), VARIANT_A ("--object-weight 0": the loss of the VAE being continued),
# VARIANT_B ("--object-weight 8": object pixels with their halo, 7% of a frame, then weigh about 40%), FIT (400),
# QUALITY_PROMPTS (8), QUALITY_SECONDS (10), VAE_EXTRA (more train_vae arguments for every run, e.g. "--height 32
# --width 64 --num-workers 0" for a quick CPU check).
# Outputs (PUBLISH=dir): vae-a.tar, vae-b.tar, logs.tar.
set -u
W=${1:?work dir}; FROM=${2:?VAE folder to continue}
mkdir -p "$W/logs"
say() { echo "[$(date +%T)] $*" | tee -a "$W/logs/build.log"; }
COMMON=(--init-from "$FROM" --seed 0 --batch-size ${VAE_BATCH:-16} --clip-frames 9,17,33
        --learning-rate ${VAE_LR:-6e-4} --warmup-steps 100 ${VAE_EXTRA:-})

marginal_rate() {  # steps/s between the logged steps 51 and 80 of a probe: (80 - 51) / (t80 - t51), t = steps / rate
  python3 - "$1" <<'EOF'
import re, sys
rates = {int(s): float(r) for s, r in re.findall(r"step (\d+)/\d+ .* ([\d.]+) steps/s", open(sys.argv[1]).read())}
print(f"{(80 - 51) / (80 / rates[80] - 51 / rates[51]):.2f}")
EOF
}
probe() {  # name extra-args...
  python3 -m helios_core.embedded.train_vae --out "$W/probe-$1" --steps 80 --stats-clips 8 --eval-clips 8 \
    --num-workers 12 "${COMMON[@]}" "${@:2}" > "$W/logs/probe-$1.out" 2>&1
  marginal_rate "$W/logs/probe-$1.out"
}
MODE=(--cudnn-benchmark)
if [ "${PROBES:-1}" = 1 ]; then
  DET=$(probe deterministic); FAST=$(probe benchmark --cudnn-benchmark)
  say "probe steps/s (51..80, alone on the GPU): deterministic $DET, cudnn benchmark $FAST"
  python3 -c "import sys; sys.exit(not float(sys.argv[1]) > float(sys.argv[2]))" "$FAST" "$DET" || MODE=()
fi
say "variants use: ${MODE[*]:-deterministic cudnn}"

variant() {  # name train_vae-arguments
  python3 -m helios_core.embedded.train_vae --out "$W/vae-$1" --steps 20000 --num-workers 7 "${COMMON[@]}" \
    "${MODE[@]}" $2 --fit-seconds ${FIT:-400} --max-train-seconds $(( ${FIT:-400} + 30 )) > "$W/logs/vae-$1.out" 2>&1
  say "vae-$1 ($2): $(tail -n 1 "$W/logs/vae-$1.out")"
}
variant a "${VARIANT_A:---object-weight 0}" & variant b "${VARIANT_B:---object-weight 8}" & wait

for name in a b; do
  [ -f "$W/vae-$name/config.json" ] || continue
  [ -n "${PUBLISH:-}" ] && tar cf "$PUBLISH/vae-$name.tar" -C "$W" "vae-$name"
  python3 dev/embedded/vae_ceiling.py "$W/vae-$name" --prompts ${QUALITY_PROMPTS:-8} \
    --seconds ${QUALITY_SECONDS:-10} --out "$W/quality/ceiling-$name" > "$W/logs/ceiling-$name.out" 2>&1 &
done
wait
for name in a b; do say "ceiling vae-$name: $(tail -n 1 "$W/logs/ceiling-$name.out" | cut -c1-500)"; done
[ -n "${PUBLISH:-}" ] && (cd "$W" && tar cf "$PUBLISH/logs.tar" logs $(ls -d vae-*/train_log.json 2>/dev/null))
say "done"
