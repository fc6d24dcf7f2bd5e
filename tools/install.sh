#!/usr/bin/env bash
# Install everything evit_mm needs into one Python environment: torch and
# torchvision (kept when present), mmengine, mmcv with compiled ops, mmdet,
# mmsegmentation, mmpretrain, the test tools, the deployment tools (mmdeploy
# 1.3.1 without its protobuf pin, OpenVINO) and evit_mm (editable).
#
# Idempotent: when everything is in place it only checks (a few seconds).
# `bash tools/install.sh --help` says what it installs, where, how long it
# takes and how to use a virtual environment.
set -euo pipefail

PYTHON=${PYTHON:-python3}
PIP=("$PYTHON" -m pip install --disable-pip-version-check)
TORCH_DEFAULT=2.14.1
TORCHVISION_DEFAULT=0.29.1

die() { echo "install.sh: $*" >&2; exit 1; }
log() { echo "[install] $*"; }

usage() {
  cat <<'EOF'
Usage: bash tools/install.sh [--check | --help]

Installs what evit_mm needs, with pip, into the Python that PYTHON names
(default: the python3 on PATH): torch 2.14.1 + torchvision 0.29.1 (kept
when a torch is already there), mmengine 0.10.7, mmcv 2.1.0 with its
compiled ops, mmdet 3.3.0, mmsegmentation 1.2.2, mmpretrain 1.2.0, the
test and deployment tools, and evit_mm itself (editable). pip may upgrade
or downgrade packages already in that environment (setuptools, for one,
is held below 81: mmengine and mmcv's build need its pkg_resources).

How long it takes:
  - everything in place: a few seconds (it only checks);
  - with a prebuilt mmcv 2.1.0 wheel for your torch and Python
    (PIP_FIND_LINKS=/folder/with/the/wheel): 5-10 minutes, mostly
    downloads (torch alone is about 1 GB);
  - without one, mmcv is compiled from source against your torch: 15-20
    minutes on 2 idle cores, up to an hour on a busy or slower machine.
    That needs a C++ compiler and the Python headers (Debian/Ubuntu:
    apt-get install g++ python3-dev), checked before anything is
    installed; the build reports every minute how many files it compiled.

To keep evit_mm apart from your other packages, use a virtual environment:
  python3 -m venv .venv && . .venv/bin/activate && bash tools/install.sh
or name its interpreter: PYTHON=.venv/bin/python bash tools/install.sh
Outside a virtual environment, in a terminal, it asks before installing
(INSTALL_YES=1 answers yes).

Options:
  --check  say what is missing and what installing it would take; change
           nothing (exit status 1 when something is missing)
  --help   this text
EOF
}

# Whether PYTHON runs in a virtual (or conda) environment.
in_venv() {
  [ -n "${CONDA_PREFIX:-}" ] || "$PYTHON" -c \
    'import sys; sys.exit(sys.prefix == sys.base_prefix)' 2>/dev/null
}

# Whether a prebuilt mmcv 2.1.0 wheel may be offered: one lies in a folder
# of PIP_FIND_LINKS, or a link is a URL (which cannot be looked into).
mmcv_wheel_offered() {
  local link
  for link in ${PIP_FIND_LINKS:-}; do
    case "$link" in
      file://*) link=${link#file://} ;;
      *://*) return 0 ;;
    esac
    compgen -G "$link/mmcv-2.1.0-*.whl" >/dev/null && return 0
  done
  return 1
}

# What building mmcv here lacks (a C++ compiler, the Python headers), one
# line each; nothing when it can be built.
build_blockers() {
  command -v "${CXX:-g++}" >/dev/null ||
    echo "a C++ compiler (${CXX:-g++}; Debian/Ubuntu: apt-get install g++)"
  "$PYTHON" - <<'PY' 2>/dev/null ||
import os, sysconfig
include = sysconfig.get_paths()['include']
raise SystemExit(not os.path.exists(os.path.join(include, 'Python.h')))
PY
    echo "the Python headers, Python.h (Debian/Ubuntu: apt-get install" \
      "python3-dev, or python3.X-dev for a python3.X)"
}

# Every PROGRESS_EVERY seconds (default 60): how many of TOTAL source files
# have been compiled into objects under DIR. Runs until killed.
build_progress() {
  local dir=$1 total=$2 start compiled
  start=$(date +%s)
  while sleep "${PROGRESS_EVERY:-60}"; do
    compiled=$(find "$dir" -name '*.o' 2>/dev/null | wc -l)
    log "mmcv build: $compiled of $total files compiled," \
      "$(( ($(date +%s) - start) / 60 )) min so far"
  done
}

# Prints the first missing piece, or nothing when the environment is complete.
missing() {
  "$PYTHON" - "$(dirname "${BASH_SOURCE[0]}")/../requirements/tested.txt" <<'EOF'
import importlib.metadata as md
import os
import sys

with open(sys.argv[1]) as f:
    WANT = dict(line.strip().split('==') for line in f
                if '==' in line and not line.startswith('#'))
WANT['mmdeploy'] = '1.3.1'
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

mmcv_ok() {
  "$PYTHON" -c "import mmcv; assert mmcv.__version__ == '2.1.0'; from mmcv.ops import nms" 2>/dev/null
}

# What installing will do, and how long it will take; stops early when mmcv
# must be built and cannot be.
plan() {
  local where blockers
  if in_venv; then
    where="a virtual environment"
  else
    where="NOT a virtual environment: packages already installed there may be upgraded or downgraded"
  fi
  log "python: $(command -v "$PYTHON") ($("$PYTHON" -V 2>&1)), $where"
  log "installs: torch (kept when present), mmengine, mmcv 2.1.0, mmdet, mmseg, mmpretrain, test and deployment tools, evit_mm (editable)"
  if mmcv_ok || mmcv_wheel_offered; then
    log "time: 5-10 minutes, mostly downloads (no mmcv build)"
    return
  fi
  blockers=$(build_blockers)
  [ -z "$blockers" ] || die "mmcv 2.1.0 must be compiled here (no prebuilt wheel in PIP_FIND_LINKS), which needs:
$blockers
Install it and rerun, or point PIP_FIND_LINKS at a folder holding an mmcv 2.1.0 wheel built for your torch."
  log "time: 15-60 minutes: mmcv 2.1.0 is compiled from source (no prebuilt wheel in PIP_FIND_LINKS); progress every minute"
}

# Outside a virtual environment, in a terminal, ask before installing.
confirm() {
  in_venv || [ "${INSTALL_YES:-0}" = 1 ] || [ ! -t 0 ] && return 0
  log "to install into a virtual environment instead, answer no and run:"
  log "  python3 -m venv .venv && . .venv/bin/activate && bash tools/install.sh"
  local answer
  read -r -p "[install] install into $(command -v "$PYTHON") anyway? [y/N] " answer
  [[ "$answer" == [yY]* ]] || die "nothing installed."
}

build_mmcv() {
  local src watcher total cleanup
  log "building mmcv 2.1.0 from source against torch $TORCH_VERSION"
  src=$(mktemp -d)
  # The trap runs at the script's exit, where this function's locals are
  # gone (and unset under set -u): it carries the folder's name itself.
  printf -v cleanup 'rm -rf -- %q' "$src"
  trap "$cleanup" EXIT
  "$PYTHON" -m pip download -q --no-deps --no-binary :all: "mmcv==2.1.0" -d "$src"
  tar xzf "$src"/mmcv-2.1.0.tar.gz -C "$src"
  # torch >= 2.14 headers require C++20; mmcv's setup.py hard-codes C++17.
  if "$PYTHON" -c "import torch,sys; v=tuple(map(int,torch.__version__.split('+')[0].split('.')[:2])); sys.exit(v < (2, 14))"; then
    sed -i 's/-std=c++17/-std=c++20/g' "$src"/mmcv-2.1.0/setup.py
  fi
  # The sources mmcv's setup.py compiles without CUDA (more with it).
  total=$(find "$src"/mmcv-2.1.0/mmcv/ops/csrc/pytorch -maxdepth 2 \
    \( -path '*/pytorch/*.cpp' -o -path '*/pytorch/cpu/*.cpp' \) | wc -l)
  if "$PYTHON" -c "import torch,sys; sys.exit(not torch.cuda.is_available())"; then
    total="$total+"
  fi
  build_progress "$src"/mmcv-2.1.0/build "$total" &
  watcher=$!
  (cd "$src"/mmcv-2.1.0 && MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
    "${PIP[@]}" -q --no-build-isolation --no-cache-dir --no-deps .) ||
    { kill "$watcher"; die "building mmcv failed; see the compiler output above."; }
  kill "$watcher"
  mmcv_ok || die "mmcv was built but its ops do not load; see the log above."
}

main() {
  case "${1:-}" in
    -h|--help) usage; return 0 ;;
    --check|"") ;;
    *) die "unknown option '$1'; see bash tools/install.sh --help" ;;
  esac
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  command -v "$PYTHON" >/dev/null || die "no '$PYTHON' on PATH; set PYTHON=/path/to/python3.11"
  "$PYTHON" - <<'EOF' || die "evit_mm needs Python 3.10-3.12 (tested on 3.11); found $("$PYTHON" -V 2>&1). Use PYTHON=/path/to/python3.11."
import sys
sys.exit(0 if (3, 10) <= sys.version_info[:2] <= (3, 12) else 1)
EOF

  local gap start
  gap=$(missing 2>/dev/null || echo "python environment")
  if [ -z "$gap" ]; then
    log "environment complete ($(command -v "$PYTHON"))"
    return 0
  fi
  log "missing: $gap"
  plan
  [ "${1:-}" != --check ] || return 1
  confirm
  # pip's warning about running as root says what the plan above said.
  export PIP_ROOT_USER_ACTION=ignore
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
  "${PIP[@]}" "setuptools>=77,<81" wheel ninja "$(grep '^mmengine==' requirements/tested.txt)"

  # 3. mmcv 2.1.0 with compiled ops, matching this torch.
  if ! mmcv_ok; then
    if "${PIP[@]}" --no-deps --only-binary mmcv "mmcv==2.1.0" 2>/dev/null && mmcv_ok; then
      log "mmcv 2.1.0 from a prebuilt wheel"
    else
      "$PYTHON" -m pip uninstall -y mmcv >/dev/null 2>&1 || true
      build_mmcv
    fi
  fi

  # 4. The toolboxes, the test and deployment tools and evit_mm itself.
  "${PIP[@]}" -e ".[all,tests,deploy]" -r requirements/tested.txt "torch==$TORCH_VERSION"
  # mmdeploy 1.3.1 pins protobuf<=3.20.2, which breaks onnx/onnxruntime: its
  # code without its pins (requirements/deploy.txt has what it needs).
  "${PIP[@]}" --no-deps "mmdeploy==1.3.1"

  gap=$(missing || echo "python environment")
  [ -z "$gap" ] || die "installation finished but '$gap' is still missing; see the log above."
  log "done in $(( $(date +%s) - start )) s"
}

# Sourced (by the tests) it only defines the functions above.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
