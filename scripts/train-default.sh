#!/usr/bin/env bash
# How the shipped checkpoint (fingerprinting/weights/default.*) is made: the default training zoo, then `genprint train`.
#
#   scripts/train-default.sh WORK_DIR [extra `genprint train` options, e.g. --device cuda]
#
# Writes WORK_DIR/zoo (200 members x 60 images, 64 px, seed 13: many designs, few images each, since
# parsing learns from designs), WORK_DIR/default.safetensors + .json and its verdict calibration
# WORK_DIR/default.verdict.safetensors (`genprint calibrate`); copy those three files to
# fingerprinting/weights/ to ship them. ZOO_WORKERS sets the build's processes (default: 2). On 2 CPU
# cores the zoo takes about 35 min and the training about 7; data/MODEL_CARD.md gives the figures.
set -euo pipefail
work=${1:?usage: scripts/train-default.sh WORK_DIR [genprint train options]}
shift
genprint=${GENPRINT:-genprint}

$genprint zoo build "$work/zoo" --members 200 --images-per-member 60 --size 64 --seed 13 --workers "${ZOO_WORKERS:-2}" --quiet
$genprint train "$work/zoo" --out "$work/default.safetensors" --epochs 8 --steps-per-epoch 300 --patience 4 --seed 0 --quiet "$@"
$genprint calibrate --model "$work/default.safetensors"
