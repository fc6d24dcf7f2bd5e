#!/usr/bin/env bash
# The project's main job on data it makes itself. Installs what it needs on
# first use (idempotent), then builds EfficientViT M0-M5 and prints their
# parameters, FLOPs and feature shapes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash tools/install.sh
"${PYTHON:-python3}" tools/analysis_tools/backbone_summary.py "$@"
