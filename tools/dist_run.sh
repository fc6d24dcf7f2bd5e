#!/usr/bin/env bash
# Run a tool in NPROC processes through torchrun (PyTorch DDP), with or
# without GPUs: without CUDA the processes use gloo on the CPU.
#
# Usage: bash tools/dist_run.sh TOOL NPROC [tool arguments]   (TOOL: train.py, test.py)
# Environment: NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1),
#              PORT (29500), PYTHON (python3).
set -euo pipefail
TOOL=$1
NPROC=$2
shift 2
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" exec "${PYTHON:-python3}" \
  -m torch.distributed.run \
  --nnodes="${NNODES:-1}" \
  --node_rank="${NODE_RANK:-0}" \
  --master_addr="${MASTER_ADDR:-127.0.0.1}" \
  --master_port="${PORT:-29500}" \
  --nproc_per_node="$NPROC" \
  "$ROOT/tools/$TOOL" "$@" --launcher pytorch
