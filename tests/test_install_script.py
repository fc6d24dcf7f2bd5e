"""tools/install.sh's decisions, run as bash functions in isolation (the
script, sourced, only defines them): nothing is installed."""
import json
import os
import subprocess
import sys
import tarfile

import pytest

from tool_helpers import REPO_ROOT, run_command

SCRIPT = os.path.join(REPO_ROOT, 'tools', 'install.sh')


def _bash(code, **env):
    return subprocess.run(
        ['bash', '-c', f'source {SCRIPT}; {code}'], text=True,
        capture_output=True, timeout=60,
        env={**os.environ, 'PYTHON': sys.executable, **env})


@pytest.mark.runs('tools/install.sh', '--help')
def test_help_and_unknown_option():
    output = run_command(['bash', 'tools/install.sh', '--help'])
    for text in ('python3 -m venv .venv', 'PIP_FIND_LINKS', 'up to an hour',
                 'python3-dev', '--check'):
        assert text in output, text
    result = subprocess.run(['bash', SCRIPT, '--fast'], text=True,
                            capture_output=True, timeout=60)
    assert result.returncode == 1
    assert "unknown option '--fast'" in result.stderr


def test_build_blockers_name_what_is_missing(tmp_path):
    assert _bash('build_blockers').stdout == ''  # this machine builds
    result = _bash('build_blockers', CXX='no-such-compiler')
    assert result.stdout.startswith('a C++ compiler (no-such-compiler;')
    # an interpreter whose include folder has no Python.h
    fake = tmp_path / 'python'
    fake.write_text(f'#!/bin/sh\nexec {sys.executable} -c "raise '
                    'SystemExit(1)"\n')
    fake.chmod(0o755)
    result = _bash('build_blockers', PYTHON=str(fake))
    assert 'the Python headers, Python.h' in result.stdout


def test_prebuilt_wheel_is_looked_for_in_find_links(tmp_path):
    offered = 'mmcv_wheel_offered && echo yes || echo no'
    assert _bash(offered, PIP_FIND_LINKS=str(tmp_path)).stdout == 'no\n'
    (tmp_path / 'mmcv-2.1.0-cp311-cp311-linux_x86_64.whl').write_bytes(b'')
    assert _bash(offered, PIP_FIND_LINKS=str(tmp_path)).stdout == 'yes\n'
    assert _bash(offered, PIP_FIND_LINKS=f'file://{tmp_path}').stdout == \
        'yes\n'
    assert _bash(offered, PIP_FIND_LINKS='https://example.org/w').stdout \
        == 'yes\n'  # cannot be looked into: may offer one
    assert _bash(offered, PIP_FIND_LINKS='').stdout == 'no\n'


def test_build_progress_counts_compiled_files(tmp_path):
    (tmp_path / 'temp' / 'cpu').mkdir(parents=True)
    for name in ('temp/a.o', 'temp/cpu/b.o', 'temp/cpu/c.o', 'temp/x.cpp'):
        (tmp_path / name).write_bytes(b'')
    result = _bash(f'build_progress {tmp_path} 120 & sleep 1.5; kill $!',
                   PROGRESS_EVERY='1')
    assert result.stdout.splitlines()[0] == \
        '[install] mmcv build: 3 of 120 files compiled, 0 min so far'


def _requirements(name):
    from packaging.requirements import Requirement
    with open(os.path.join(REPO_ROOT, 'requirements', f'{name}.txt')) as f:
        return {req.name: req for req in map(Requirement, (
            line.strip() for line in f
            if line.strip() and not line.startswith('#')))}


def test_tested_versions_lie_in_the_supported_ranges():
    """requirements/tested.txt (what install.sh installs and the tests run
    on) pins one version of each toolbox, inside the ranges setup.py
    declares; the mmcv that install.sh builds is the pinned one."""
    supported = {}
    for name in ('runtime', 'det', 'seg', 'cls'):
        supported.update(_requirements(name))
    tested = _requirements('tested')
    assert set(tested) == {'mmengine', 'mmcv', 'mmdet', 'mmsegmentation',
                           'mmpretrain'}
    for name, req in tested.items():
        (pin, ) = req.specifier
        assert pin.operator == '==', req
        assert supported[name].specifier.contains(pin.version), \
            (name, pin.version, str(supported[name].specifier))
    (mmcv, ) = tested['mmcv'].specifier
    with open(SCRIPT) as f:
        script = f.read()
    assert f'"mmcv=={mmcv.version}"' in script
    assert f"mmcv.__version__ == '{mmcv.version}'" in script


@pytest.mark.slow
@pytest.mark.parametrize('command', [
    'pip install --no-deps -e .', 'pip install -e ".[all]"'])
def test_install_into_an_existing_environment_changes_nothing(command):
    """docs/installation.md's commands for an environment that has the
    toolboxes, as printed, asked what they would do (``--dry-run``): on the
    tested versions, install evit_mm and nothing else."""
    with open(os.path.join(REPO_ROOT, 'docs', 'installation.md')) as f:
        assert command in f.read()
    args = command.replace('pip', f'{sys.executable} -m pip', 1).split()
    result = subprocess.run(
        [arg.strip('"') for arg in args] + [
            '--dry-run', '--no-build-isolation',
            '--disable-pip-version-check'],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    would = [line for line in result.stdout.splitlines()
             if line.startswith('Would install')]
    assert len(would) == 1, result.stdout[-2000:]
    packages = would[0].split()[2:]
    assert len(packages) == 1 and packages[0].startswith('evit_mm-'), would


# A stand-in for ``$PYTHON -m pip``: every call is logged; ``download``
# puts the tiny mmcv sdist where it is asked; ``install --only-binary`` finds
# no wheel; ``install .`` (the build) checks what install.sh prepared and
# marks mmcv as built.
FAKE_PIP = '''\
import json, os, shutil, sys
state = os.environ['FAKE_PIP_STATE']
args = sys.argv[1:]
with open(os.path.join(state, 'calls.jsonl'), 'a') as log:
    log.write(json.dumps({'args': args, 'cwd': os.getcwd()}) + '\\n')
if args[0] == 'download':
    dest = args[args.index('-d') + 1]
    shutil.copy(os.environ['FAKE_MMCV_SDIST'], dest)
elif args[0] == 'install' and '--only-binary' in args:
    sys.exit('ERROR: No matching distribution found for mmcv==2.1.0')
elif args[0] == 'install' and args[-1] == '.':
    if os.environ.get('FAKE_BUILD_FAILS'):
        sys.exit('error: command g++ failed with exit code 1')
    setup = open('setup.py').read()
    assert '-std=c++20' in setup and '-std=c++17' not in setup, setup
    assert os.environ['MMCV_WITH_OPS'] == '1'
    open(os.path.join(state, 'built'), 'w').close()
'''

STUB_TORCH = """\
__version__ = '2.14.1+cpu'


class cuda:
    is_available = staticmethod(lambda: False)
"""


def _mmcv_sdist(folder):
    """A tarball laid out like mmcv 2.1.0's sdist, with two sources."""
    root = folder / 'mmcv-2.1.0'
    (root / 'mmcv' / 'ops' / 'csrc' / 'pytorch' / 'cpu').mkdir(parents=True)
    (root / 'setup.py').write_text("extra_compile_args = ['-std=c++17']\n")
    (root / 'mmcv' / 'ops' / 'csrc' / 'pytorch' / 'nms.cpp').write_text('')
    (root / 'mmcv' / 'ops' / 'csrc' / 'pytorch' / 'cpu' / 'nms.cpp') \
        .write_text('')
    sdist = folder / 'mmcv-2.1.0.tar.gz'
    with tarfile.open(sdist, 'w:gz') as tar:
        tar.add(root, arcname='mmcv-2.1.0')
    return sdist


@pytest.mark.parametrize('build_fails', [False, True])
def test_mmcv_built_from_source_end_to_end(tmp_path, build_fails):
    """``main`` with no prebuilt mmcv wheel, under the script's own shell
    options (set -euo pipefail), to the shell's exit: pip and torch are
    stand-ins, and the two probes of the installed packages (``missing``,
    ``mmcv_ok``) answer from what the stand-in pip did. Whether the build
    works or fails, the build folder is gone at the end and the exit status
    is the script's own."""
    state = tmp_path / 'state'
    state.mkdir()
    (tmp_path / 'fake_pip.py').write_text(FAKE_PIP)
    # torch as installed here (2.14.1, no CUDA), without its import time
    stubs = tmp_path / 'stubs'
    for name, text in (('torch', STUB_TORCH), ('torchvision', '')):
        (stubs / name).mkdir(parents=True)
        (stubs / name / '__init__.py').write_text(text)
    python = tmp_path / 'python'
    python.write_text(
        '#!/bin/sh\n'
        'if [ "$1" = -m ] && [ "$2" = pip ]; then shift 2; exec '
        f'{sys.executable} {tmp_path / "fake_pip.py"} "$@"; fi\n'
        f'PYTHONPATH={stubs} exec {sys.executable} "$@"\n')
    python.chmod(0o755)
    probes = (f'missing() {{ [ -e {state}/built ] || echo mmcv; }}; '
              f'mmcv_ok() {{ [ -e {state}/built ]; }}; ')
    result = _bash(probes + 'main', PYTHON=str(python), PROGRESS_EVERY='1',
                   PIP_FIND_LINKS='', FAKE_PIP_STATE=str(state),
                   FAKE_MMCV_SDIST=str(_mmcv_sdist(tmp_path)),
                   FAKE_BUILD_FAILS='1' if build_fails else '')
    assert '[install] building mmcv 2.1.0 from source' in result.stdout
    if build_fails:
        assert result.returncode == 1
        assert result.stderr.splitlines() == [
            'error: command g++ failed with exit code 1',
            'install.sh: building mmcv failed; see the compiler output '
            'above.']
    else:
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stderr == '', result.stderr
        assert result.stdout.splitlines()[-1].startswith('[install] done in ')
    calls = [json.loads(line)
             for line in (state / 'calls.jsonl').read_text().splitlines()]
    download = calls[[c['args'][0] for c in calls].index('download')]
    src = download['args'][download['args'].index('-d') + 1]
    build = [c for c in calls if c['args'][-1] == '.']
    assert [c['cwd'] for c in build] == [os.path.join(src, 'mmcv-2.1.0')]
    assert not os.path.exists(src)  # the build folder is removed at exit
    # a failed build stops there; a good one goes on to the toolboxes
    assert calls[-1]['args'][-1] == ('.' if build_fails else 'mmdeploy==1.3.1')
