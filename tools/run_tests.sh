#!/usr/bin/env bash
# Install what the tests need (idempotent, quick when already installed), then
# run the test suite. Extra arguments go to pytest, e.g. -m "not slow".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash tools/install.sh
exec "${PYTHON:-python3}" -m pytest tests "$@"
