#!/usr/bin/env bash
# Distributed training (PyTorch DDP through torchrun); on a machine without
# CUDA the processes train on the CPU with gloo. See tools/dist_run.sh for
# the environment variables (NNODES, NODE_RANK, MASTER_ADDR, PORT).
#
# Usage: bash tools/dist_train.sh CONFIG NPROC [tools/train.py options]
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 CONFIG NPROC [train.py options]" >&2; exit 2; }
exec bash "$(dirname "${BASH_SOURCE[0]}")/dist_run.sh" train.py "$2" "$1" "${@:3}"
