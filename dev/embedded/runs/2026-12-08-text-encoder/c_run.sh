set -e
cd /work/main
W=/tmp/abc
OMP_NUM_THREADS=2 python -m helios_core.embedded.train_text_encoder --model helios_core/default_model --out $W/te_a0 --anchor-weight 0 > $W/te.out 2>&1
bash dev/embedded/with_text_encoder.sh helios_core/default_model $W/te_a0 $W/model_C
OMP_NUM_THREADS=2 helios data prepare /tmp/ab/world/manifest.jsonl --out $W/data_C --model $W/model_C --height 128 --width 256 --device cpu --max-seq-len 64 > $W/prep.out 2>&1
OMP_NUM_THREADS=2 helios train --stage mid --model $W/model_C --data $W/data_C --out $W/run_C \
    --resume --set lora.enabled=false --set loop.gradient_checkpointing=false --set loop.checkpoint_every=100 \
    --set loop.keep_last=2 --set loop.log_every=20 --set loop.seed=1 --set optim.weight_decay=0.01 \
    --set drop.caption_prob=0.1 --set loop.batch_size=8 --set optim.lr=3e-4 \
    --set optim.warmup_steps=20 --set loop.max_steps=500 --set ema.enabled=false > $W/train.out 2>&1
helios train export $W/run_C --base $W/model_C --out $W/export_C --scheduler unipc3 --dtype bf16 > $W/export.out 2>&1
OMP_NUM_THREADS=2 python dev/embedded/role_swap_gap.py C_start=$W/model_C,$W/data_C C=$W/export_C,$W/data_C > $W/role_swap.out 2>&1
OMP_NUM_THREADS=2 python dev/embedded/background_binding.py C=$W/export_C --out $W/background_binding.json > $W/binding.out 2>&1
echo done > $W/done
