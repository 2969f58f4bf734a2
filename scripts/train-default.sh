#!/usr/bin/env bash
# How the shipped checkpoint (fingerprinting/weights/default.*) is made: the default training zoo, then `genprint train`.
#
#   scripts/train-default.sh WORK_DIR [extra `genprint train` options, e.g. --device cuda]
#
# Writes WORK_DIR/zoo (100 members x 500 images, 64 px, seed 7) and WORK_DIR/default.safetensors + .json;
# copy those two files to fingerprinting/weights/ to ship them. ZOO_WORKERS sets the build's processes
# (default: 2). The training options below are the shipped model's; data/MODEL_CARD.md gives its figures.
set -euo pipefail
work=${1:?usage: scripts/train-default.sh WORK_DIR [genprint train options]}
shift
genprint=${GENPRINT:-genprint}

$genprint zoo build "$work/zoo" --members 100 --images-per-member 500 --size 64 --seed 7 --workers "${ZOO_WORKERS:-2}" --quiet
$genprint train "$work/zoo" --out "$work/default.safetensors" --epochs 8 --steps-per-epoch 300 --patience 4 --seed 0 --quiet "$@"
