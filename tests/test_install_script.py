"""tools/install.sh's decisions, run as bash functions in isolation (the
script, sourced, only defines them): nothing is installed."""
import os
import subprocess
import sys

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
