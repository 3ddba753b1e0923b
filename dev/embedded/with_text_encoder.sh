#!/bin/bash
# Copy a model folder with another text encoder swapped in: bash dev/embedded/with_text_encoder.sh MODEL TEXT_ENCODER OUT
# TEXT_ENCODER is a folder written by `python -m helios_core.embedded.train_text_encoder` (config.json and
# model.safetensors; its train_log.json stays behind). OUT is replaced.
set -eu
MODEL=${1:?model folder}; TEXT_ENCODER=${2:?text_encoder folder}; OUT=${3:?output folder}
rm -rf "$OUT" && cp -r "$MODEL" "$OUT" && rm -rf "$OUT/text_encoder" && mkdir "$OUT/text_encoder"
cp "$TEXT_ENCODER/config.json" "$TEXT_ENCODER/model.safetensors" "$OUT/text_encoder/"
