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
