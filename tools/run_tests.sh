#!/usr/bin/env bash
# Install what the tests need (idempotent, quick when already installed), then
# run the test suite in parallel, one pytest-xdist worker per CPU (most of a
# test's time is single-threaded: imports, tool subprocesses starting up).
# Extra arguments go to pytest, e.g. -m "not slow"; TEST_WORKERS=0 runs the
# tests in this one process.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash tools/install.sh
echo "[tests] the whole suite takes about 25 min on 2 cores (docs/development.md); -m \"not slow\" about 6"
exec "${PYTHON:-python3}" -m pytest tests -n "${TEST_WORKERS:-$(nproc)}" \
  --dist worksteal "$@"
