#!/bin/bash
# The embedded default model's recipe, end to end, as run on one H100 (the model card records each run's output).
# Usage (from the repo root): PHASES="vae init world prepare base mid distilled" bash dev/embedded/build.sh WORKDIR
# Each phase skips itself when its output exists, so a second call can carry on where a first one stopped.
# Time limits (seconds, env): VAE_SECONDS, BASE_SECONDS, MID_SECONDS, DISTILL_SECONDS. A training phase stopped by
# its limit keeps its newest checkpoint (every 100 steps); the step it reached is in WORKDIR/logs/*.json lines.
# Other knobs: VAE_FROM (copy this VAE folder instead of training one), MID_FROM (the mid stage's starting folder:
# WORKDIR/base_model by default, WORKDIR/init to train the pyramid from scratch), DISTILL_FROM (the distilled stage's
# teacher and first student: WORKDIR/mid_model by default; helios_core/default_model distils the shipped model),
# BATCH, BASE_LR, MID_LR, DATA_WORKERS (loop.data_workers), TRAIN_COMPILE (loop.compile, base and mid), CAPTION_DROP
# (drop.caption_prob), EMA_DECAY (0 = off; exports use the EMA) and EMA_START, DISTILL_METHOD (ode | pyramid_ode),
# DISTILL_BATCH, DISTILL_LR, TEACHER_STEPS (e.g. [8,8,8]), TEACHER_CFG, REGRESSION_WEIGHT, and QUALITY_MODELS /
# QUALITY_SPECS / QUALITY_PROMPTS / QUALITY_SECONDS (phase "quality": the world bench of every exported model on this
# machine; phase "vaeceiling": the same bench of the world's clips through the VAE). VAE knobs: VAE_BATCH, VAE_FRAMES,
# VAE_LR, VAE_FIT.
# Outputs (PUBLISH=dir): one tar per exported model and one logs.tar, within the device's 8-files-a-call limit.
set -u
W=${1:?work dir}
mkdir -p "$W/logs"
SEED=${SEED:-0}
H=128; WD=256
CLIPS=${CLIPS:-800}
say() { echo "[$(date +%T)] $*" | tee -a "$W/logs/build.log"; }
START=$(date +%s)
DEADLINE=${DEADLINE:-100000}  # seconds after START by which every phase must have finished (time-boxed machines)
limit() {  # the smaller of the phase's own limit and what the deadline leaves after $2 seconds of reserve
  local left=$(( DEADLINE - ($(date +%s) - START) - $2 ))
  (( left < $1 )) && echo $left || echo $1
}
publish() {  # copy a finished folder out as a tar file right away (PUBLISH=dir), so a later failure loses nothing
  # A model folder goes out without its vae/ (published once on its own): the files coming back are capped at 16 MB.
  [ -n "${PUBLISH:-}" ] && [ -d "$W/$1" ] && tar cf "$PUBLISH/$1.tar" --exclude="$1/vae" -C "$W" "$1" \
    && say "published $1 ($(du -h "$PUBLISH/$1.tar" | cut -f1))"
}
publish_logs() {  # every log, run log and quality JSON so far, in ONE file that each call rewrites: the device
  # returns at most 8 files a call (a fourth-session run lost its model's tar to that limit), so model tars + this
  [ -n "${PUBLISH:-}" ] || return 0
  (cd "$W" && tar cf "$PUBLISH/logs.tar" logs $(ls -d */log.jsonl quality/*/world_quality.json data/index.jsonl 2>/dev/null))
}
has() { [[ " $PHASES " == *" $1 "* ]]; }
TRAIN_COMMON=(--set lora.enabled=false --set loop.gradient_checkpointing=false --set loop.checkpoint_every=100
              --set loop.keep_last=2 --set loop.log_every=20 --set loop.seed=$SEED --set optim.weight_decay=0.01
              --set loop.data_workers=${DATA_WORKERS:-0} --set drop.caption_prob=${CAPTION_DROP:-0})
EMA_DECAY=${EMA_DECAY:-0}
EMA_ARGS=(--set ema.enabled=false); EXPORT_EMA=()
# The average starts at EMA_START (steps): one that starts at step 0 keeps decay^steps of the random init, 42% after
# 860 steps at 0.999, and its export made noise (the first run of 2026-11-23's fourth session).
if [ "$EMA_DECAY" != "0" ]; then
  EMA_ARGS=(--set ema.enabled=true --set ema.decay=$EMA_DECAY --set ema.start_step=${EMA_START:-200}); EXPORT_EMA=(--ema)
fi

train_stage() {  # name stage model seconds extra-args...
  local name=$1 stage=$2 model=$3 seconds=$(limit $4 ${RESERVE:-40}); shift 4
  if (( seconds < 20 )); then say "$name: no time left"; return; fi
  if [ -f "$W/$name/done" ]; then say "$name: already trained"; return; fi
  say "$name: helios train --stage $stage (limit ${seconds}s)"
  timeout -s INT "$seconds" helios train --stage "$stage" --model "$model" --data "$W/data" --out "$W/$name" \
    --resume "${TRAIN_COMMON[@]}" "$@" > "$W/logs/$name.out" 2>&1
  local code=$?
  if [ $code -ne 0 ] && [ $code -ne 124 ] && [[ " $* " == *"loop.compile=true"* ]]; then
    # A compiled run that failed (not one stopped by its limit) goes on eagerly from its newest checkpoint.
    say "$name: exit $code with loop.compile=true ($(tail -n 1 "$W/logs/$name.out" | cut -c1-200)); again eagerly"
    seconds=$(limit $seconds ${RESERVE:-40})
    timeout -s INT "$seconds" helios train --stage "$stage" --model "$model" --data "$W/data" --out "$W/$name" \
      --resume "${TRAIN_COMMON[@]}" "$@" --set loop.compile=false >> "$W/logs/$name.out" 2>&1
    code=$?
  fi
  say "$name: exit $code ; last log line: $(tail -n 1 "$W/$name/log.jsonl" 2>/dev/null)"
  # 0: max_steps reached; 124: stopped by its time limit (the newest checkpoint is the result). Anything else failed.
  if [ $code -eq 0 ] || [ $code -eq 124 ]; then touch "$W/$name/done"; else tail -n 3 "$W/logs/$name.out"; fi
  # The run's log goes out at once: a later phase that overruns the machine's time limit must not lose it.
  publish_logs
}

export_stage() {  # name base-model scheduler
  local name=$1 base=$2 scheduler=$3
  [ -d "$W/${name}_model" ] && return
  local ema=("${EXPORT_EMA[@]}"); [ "$name" = distilled ] && ema=()  # the distilled run keeps EMA off
  helios train export "$W/$name" --base "$base" --out "$W/${name}_model" --scheduler "$scheduler" --dtype bf16 \
    "${ema[@]}" \
    >> "$W/logs/export.out" 2>&1 && say "exported $W/${name}_model" && publish "${name}_model"
}

render_world() {
  helios data world --out "$W/world" --clips $CLIPS --seconds 8 --seed $SEED --height $H --width $WD \
    --workers ${WORKERS:-14} > "$W/logs/world.out" 2>&1
  say "world: $(tail -n 1 "$W/logs/world.out")"
}
WORLD_PID=
if has world && [ ! -f "$W/world/manifest.jsonl" ]; then render_world & WORLD_PID=$!; fi  # CPU work beside the VAE
if [ -n "${VAE_FROM:-}" ] && [ ! -f "$W/vae/config.json" ]; then
  cp -r "$VAE_FROM" "$W/vae" && say "vae: copied from $VAE_FROM"
fi
if has vae && [ ! -f "$W/vae/config.json" ]; then
  say "vae: training"
  # VAE_FIT (s): fit the whole schedule, cosine decay included, into that long (train_log.json records the step count
  # it chose: pass it as VAE_STEPS with VAE_FIT=0 to repeat the run without a clock).
  python3 -m helios_core.embedded.train_vae --out "$W/vae" --steps ${VAE_STEPS:-1500} --seed $SEED \
    --batch-size ${VAE_BATCH:-12} --clip-frames ${VAE_FRAMES:-17,33} --num-workers 12 \
    --learning-rate ${VAE_LR:-1.5e-3} --warmup-steps 150 --fit-seconds ${VAE_FIT:-0} \
    --max-train-seconds ${VAE_SECONDS:-200} > "$W/logs/vae.out" 2>&1
  say "vae: $(tail -n 1 "$W/logs/vae.out")"
  publish vae
fi
if has vaeceiling; then  # the world bench of the world's own clips through this VAE: what no transformer can beat
  python3 dev/embedded/vae_ceiling.py "$W/vae" --prompts ${QUALITY_PROMPTS:-5} --seconds ${QUALITY_SECONDS:-10} \
    --out "$W/quality/vae_ceiling" > "$W/logs/vae_ceiling.out" 2>&1
  say "vae ceiling: $(tail -n 1 "$W/logs/vae_ceiling.out" | cut -c1-600)"
  publish_logs
fi
if has init && [ ! -d "$W/init" ]; then
  python3 -m helios_core.embedded.init_folder --vae "$W/vae" --out "$W/init" --transformer-seed $SEED \
    > "$W/logs/init.out" 2>&1
  say "init: $(tail -n 1 "$W/logs/init.out")"
fi
[ -n "$WORLD_PID" ] && wait $WORLD_PID
if has prepare; then
  # PREPARE_PROFILE=1: under cProfile (the main thread), its 40 costliest calls in logs/prepare_profile.txt
  PROFILE=(); [ -n "${PREPARE_PROFILE:-}" ] && PROFILE=(-m cProfile -o "$W/logs/prepare.prof")
  python3 "${PROFILE[@]}" -m helios_cli data prepare "$W/world/manifest.jsonl" --out "$W/data" \
    --model "${PREPARE_MODEL:-$W/init}" \
    --height $H --width $WD --workers 12 --device ${DEVICE:-cuda} --max-seq-len 64 > "$W/logs/prepare.out" 2>&1
  [ -n "${PREPARE_PROFILE:-}" ] && python3 -c "import pstats, sys; pstats.Stats(sys.argv[1]).sort_stats('cumtime').print_stats(40)" \
    "$W/logs/prepare.prof" > "$W/logs/prepare_profile.txt" 2>&1
  say "prepare: $(tail -n 1 "$W/logs/prepare.out")"
  PREPARED_AT=$(date +%s); say "prepare took $(( PREPARED_AT - START )) s since the start"
fi
if has base; then
  train_stage base base "$W/init" ${BASE_SECONDS:-200} --set loop.max_steps=${BASE_STEPS:-20000} \
    --set loop.batch_size=${BATCH:-16} --set optim.lr=${BASE_LR:-4e-4} --set optim.warmup_steps=200 "${EMA_ARGS[@]}" \
    --set loop.compile=${TRAIN_COMPILE:-false}
  export_stage base "$W/init" unipc
fi
if has mid; then
  MID_FROM=${MID_FROM:-$W/base_model}
  train_stage mid mid "$MID_FROM" ${MID_SECONDS:-150} --set loop.max_steps=${MID_STEPS:-20000} \
    --set loop.batch_size=${BATCH:-16} --set optim.lr=${MID_LR:-2e-4} --set optim.warmup_steps=100 "${EMA_ARGS[@]}" \
    --set loop.compile=${TRAIN_COMPILE:-false}
  export_stage mid "$MID_FROM" unipc3
fi
if has distilled; then
  DISTILL_FROM=${DISTILL_FROM:-$W/mid_model}
  train_stage distilled distilled "$DISTILL_FROM" ${DISTILL_SECONDS:-150} --set loop.max_steps=${DISTILL_STEPS:-20000} \
    --set loop.batch_size=${DISTILL_BATCH:-${BATCH:-16}} --set optim.lr=${DISTILL_LR:-1e-4} --set optim.betas=[0.0,0.999] \
    --set ema.enabled=false \
    --set distill.method=${DISTILL_METHOD:-ode} --set distill.teacher_guidance=${TEACHER_CFG:-1.0} \
    --set distill.teacher_steps=${TEACHER_STEPS:-[10,10,10]} --set distill.teacher_cfg_zero_star=false \
    --set distill.regression_weight=${REGRESSION_WEIGHT:-80} --set loop.checkpoint_every=20  # short runs: each step is slow
  export_stage distilled "$DISTILL_FROM" keep  # the DMD tables the stage trained on: the folder's own
fi
if has quality; then  # the world bench of each exported model, sampled by its own preset on this machine's GPU
  for name in ${QUALITY_MODELS:-mid distilled}; do
    [ -d "$W/${name}_model" ] || continue
    for spec in ${QUALITY_SPECS:-default}; do  # PRESET or PRESET:KEY=VALUE+KEY=VALUE
      preset=${spec%%:*}; sets=(); [[ "$spec" == *:* ]] && IFS=+ read -ra kv <<< "${spec#*:}" && for x in "${kv[@]}"; do sets+=(--set "$x"); done
      tag="${name}-${spec//[^A-Za-z0-9_.=-]/_}"
      helios bench quality --world --model "$W/${name}_model" --preset "$preset" "${sets[@]}"  \
        --prompts ${QUALITY_PROMPTS:-8} --seconds ${QUALITY_SECONDS:-20} --no-videos --out "$W/quality/$tag" \
        > "$W/logs/quality-$tag.out" 2>&1
      say "quality $tag: $(tail -n 1 "$W/logs/quality-$tag.out" | python3 -c 'import json, sys
m = json.loads(sys.stdin.read())["models"][0]
print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in m.items() if k not in ("model", "checks")})' 2>&1 | cut -c1-700)"
      publish_logs
    done
  done
fi
say "done: $PHASES"
publish_logs
