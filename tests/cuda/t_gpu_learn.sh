#!/usr/bin/env bash
# t_gpu_learn.sh — learning on the GPU: tests/t_learn_synth.sh (every backbone reaches >= 95%
# all-six-heads agreement with the synthetic rule on held-out games) with --device cuda.
CPHIL_TRAIN_DEVICE=cuda exec bash "$(dirname "$0")/../t_learn_synth.sh"
