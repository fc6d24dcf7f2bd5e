#!/usr/bin/env bash
# Distributed testing (torchrun), with or without GPUs (gloo on the CPU).
# See tools/dist_run.sh for the environment variables.
#
# Usage: bash tools/dist_test.sh CONFIG CHECKPOINT NPROC [tools/test.py options]
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 CONFIG CHECKPOINT NPROC [test.py options]" >&2; exit 2; }
exec bash "$(dirname "${BASH_SOURCE[0]}")/dist_run.sh" test.py "$3" "$1" "$2" "${@:4}"
