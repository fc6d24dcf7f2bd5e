#!/usr/bin/env bash
# Install everything evit_mm needs into the current Python environment:
# torch/torchvision (kept when present), mmengine, mmcv with compiled ops,
# mmdet, mmsegmentation, mmpretrain, the test tools, the deployment tools
# (mmdeploy 1.3.1 without its protobuf pin, OpenVINO) and evit_mm (editable).
#
# Idempotent: when everything is in place it only checks (a few seconds).
# mmcv 2.1.0 is taken from a matching prebuilt wheel when PIP_FIND_LINKS
# offers one, and otherwise built from source against the installed torch
# (about 15-18 minutes on 2 cores).
#
# Usage: bash tools/install.sh        (PYTHON=/path/to/python to choose one)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python3}
PIP=("$PYTHON" -m pip install --disable-pip-version-check)
TORCH_DEFAULT=2.14.1
TORCHVISION_DEFAULT=0.29.1

die() { echo "install.sh: $*" >&2; exit 1; }
log() { echo "[install] $*"; }

command -v "$PYTHON" >/dev/null || die "no '$PYTHON' on PATH; set PYTHON=/path/to/python3.11"
"$PYTHON" - <<'EOF' || die "evit_mm needs Python 3.10-3.12 (tested on 3.11); found $("$PYTHON" -V 2>&1). Use PYTHON=/path/to/python3.11."
import sys
sys.exit(0 if (3, 10) <= sys.version_info[:2] <= (3, 12) else 1)
EOF

# Prints the first missing piece, or nothing when the environment is complete.
missing() {
  "$PYTHON" - <<'EOF'
import importlib.metadata as md
import os

WANT = {'mmengine': '0.10.7', 'mmcv': '2.1.0', 'mmdet': '3.3.0',
        'mmsegmentation': '1.2.2', 'mmpretrain': '1.2.0', 'mmdeploy': '1.3.1'}
for name in ('torch', 'torchvision', *WANT, 'timm', 'pytest', 'pytest-xdist',
             'hypothesis', 'onnxruntime', 'onnx', 'safetensors', 'pycocotools',
             'aenum', 'multiprocess', 'six', 'prettytable', 'terminaltables',
             'openvino', 'evit_mm'):
    try:
        version = md.version(name)
    except md.PackageNotFoundError:
        print(name)
        raise SystemExit
    if name in WANT and version != WANT[name]:
        print(f'{name}=={WANT[name]} (found {version})')
        raise SystemExit
try:
    from mmcv.ops import nms  # noqa: F401  (compiled ops load)
except Exception as err:
    print(f'mmcv ops ({err})')
    raise SystemExit
try:
    from mmdeploy.apis import torch2onnx  # noqa: F401  (its deps are in)
except Exception as err:
    print(f'mmdeploy ({err})')
    raise SystemExit
import evit_mm
if os.path.dirname(os.path.dirname(os.path.abspath(evit_mm.__file__))) != os.getcwd():
    print('evit_mm (installed from another folder)')
EOF
}

gap=$(missing 2>/dev/null || echo "python environment")
if [ -z "$gap" ]; then
  log "environment complete"
  exit 0
fi
log "missing: $gap"
start=$(date +%s)

# 1. torch + torchvision: keep what is installed.
if ! "$PYTHON" -c "import torch" 2>/dev/null; then
  log "installing torch==$TORCH_DEFAULT torchvision==$TORCHVISION_DEFAULT"
  "${PIP[@]}" "torch==$TORCH_DEFAULT" "torchvision==$TORCHVISION_DEFAULT"
elif ! "$PYTHON" -c "import torchvision" 2>/dev/null; then
  torch_version=$("$PYTHON" -c "import torch; print(torch.__version__.split('+')[0])")
  log "installing torchvision for the installed torch $torch_version"
  "${PIP[@]}" torchvision "torch==$torch_version"
fi
TORCH_VERSION=$("$PYTHON" -c "import torch; print(torch.__version__.split('+')[0])")

# 2. Build helpers mmcv's setup needs (pkg_resources: setuptools < 81).
"${PIP[@]}" "setuptools>=77,<81" wheel ninja "mmengine==0.10.7"

# 3. mmcv 2.1.0 with compiled ops, matching this torch.
mmcv_ok() { "$PYTHON" -c "import mmcv; assert mmcv.__version__ == '2.1.0'; from mmcv.ops import nms" 2>/dev/null; }
if ! mmcv_ok; then
  if "${PIP[@]}" --no-deps --only-binary mmcv "mmcv==2.1.0" 2>/dev/null && mmcv_ok; then
    log "mmcv 2.1.0 from a prebuilt wheel"
  else
    "$PYTHON" -m pip uninstall -y mmcv >/dev/null 2>&1 || true
    command -v g++ >/dev/null || die "building mmcv needs a C++ compiler (g++); install it (Debian: apt-get install g++) and rerun."
    "$PYTHON" - <<'EOF' || die "building mmcv needs the Python headers (Python.h); install python3-dev and rerun."
import os, sysconfig
raise SystemExit(not os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))
EOF
    log "building mmcv 2.1.0 from source against torch $TORCH_VERSION (15-18 min on 2 cores)"
    src=$(mktemp -d)
    trap 'rm -rf "$src"' EXIT
    "$PYTHON" -m pip download --no-deps --no-binary :all: "mmcv==2.1.0" -d "$src"
    tar xzf "$src"/mmcv-2.1.0.tar.gz -C "$src"
    # torch >= 2.14 headers require C++20; mmcv's setup.py hard-codes C++17.
    if "$PYTHON" -c "import torch,sys; v=tuple(map(int,torch.__version__.split('+')[0].split('.')[:2])); sys.exit(v < (2, 14))"; then
      sed -i 's/-std=c++17/-std=c++20/g' "$src"/mmcv-2.1.0/setup.py
    fi
    (cd "$src"/mmcv-2.1.0 && MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
      "${PIP[@]}" --no-build-isolation --no-cache-dir --no-deps .)
    mmcv_ok || die "mmcv was built but its ops do not load; see the log above."
  fi
fi

# 4. The toolboxes, the test and deployment tools and evit_mm itself.
"${PIP[@]}" -e ".[all,tests,deploy]" "torch==$TORCH_VERSION"
# mmdeploy 1.3.1 pins protobuf<=3.20.2, which breaks onnx/onnxruntime: its
# code without its pins (requirements/deploy.txt has what it needs).
"${PIP[@]}" --no-deps "mmdeploy==1.3.1"

gap=$(missing || echo "python environment")
[ -z "$gap" ] || die "installation finished but '$gap' is still missing; see the log above."
log "done in $(( $(date +%s) - start )) s"
