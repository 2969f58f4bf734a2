#!/usr/bin/env bash
# How the shipped checkpoint (fingerprinting/weights/default.*) is made: the default training zoo, then `genprint train`.
#
#   scripts/train-default.sh WORK_DIR [extra `genprint train` options, e.g. --device cuda]
#
# Writes WORK_DIR/zoo (200 members x 60 images, 64 px, seed 13: many designs, few images each, since
# parsing learns from designs), WORK_DIR/default.safetensors + .json, its stacked detector
# WORK_DIR/default.detector.skops (`genprint fit-detector`: 24 upscalers trained here, a 24-member zoo of
# the same recipe whose members the network never saw (seed 31: none shares a member with seed 13's),
# photograph crops) and its verdict calibration WORK_DIR/default.verdict.safetensors
# (`genprint calibrate`, on the detector's scores); copy those files to fingerprinting/weights/ to ship
# them (the parsing policy, default.parsing.json, is decided by `python -m bench.parsing_part`).
# ZOO_WORKERS sets the builds' processes (default: 2). On 2 CPU cores the zoo takes about 35 min, the
# training about 7 and the detector about 15; data/MODEL_CARD.md gives the figures.
set -euo pipefail
work=${1:?usage: scripts/train-default.sh WORK_DIR [genprint train options]}
shift
genprint=${GENPRINT:-genprint}

$genprint zoo build "$work/zoo" --members 200 --images-per-member 60 --size 64 --seed 13 --workers "${ZOO_WORKERS:-2}" --quiet
$genprint train "$work/zoo" --out "$work/default.safetensors" --epochs 8 --steps-per-epoch 300 --patience 4 --seed 0 --quiet "$@"
$genprint zoo build "$work/detector-zoo" --members 24 --images-per-member 40 --size 64 --seed 31 --workers "${ZOO_WORKERS:-2}" --quiet
$genprint fit-detector --model "$work/default.safetensors" --zoo "$work/detector-zoo"
$genprint calibrate --model "$work/default.safetensors"
