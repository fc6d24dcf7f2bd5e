"""Shared by the tests of the scripts in ``tools/`` and ``demo/``: a script
imported as a module (to call its ``main(argv)`` in-process), or run as a
user runs it, in a subprocess."""
import importlib.util
import os
import os.path as osp
import subprocess
import sys
import tempfile
from types import ModuleType
from typing import Tuple

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOLS = osp.join(REPO_ROOT, 'tools')


def load_tool(*path: str) -> ModuleType:
    """``tools/<path>`` as a fresh module, e.g.
    ``load_tool('analysis_tools', 'benchmark.py')``."""
    filename = osp.join(TOOLS, *path)
    spec = importlib.util.spec_from_file_location(
        osp.splitext(osp.basename(filename))[0], filename)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_measured(args, **env: str) -> Tuple[int, str, int]:
    """Run ``args`` in the repository root with this checkout's evit_mm
    first on the path and ``env`` added to the environment. Returns the
    exit status, stdout and stderr together, and the command's peak
    resident memory in bytes."""
    with tempfile.TemporaryFile('w+') as output:
        process = subprocess.Popen(
            [str(arg) for arg in args], cwd=REPO_ROOT, text=True,
            stdout=output, stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONPATH=REPO_ROOT, **env))
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        output.seek(0)
        return process.returncode, output.read(), usage.ru_maxrss * 1024


def run_command(args, returncode: int = 0, **env: str) -> str:
    """:func:`run_measured`, and the test fails with the end of the output
    unless the command exits with ``returncode``. Returns stdout and stderr
    together."""
    code, output, _ = run_measured(args, **env)
    assert code == returncode, output[-4000:]
    return output


def run_script(script: str, *args, returncode: int = 0, **env: str) -> str:
    """:func:`run_command` of a Python script given relative to the
    repository root, e.g. ``run_script('tools/train.py', CONFIG)``."""
    return run_command([sys.executable, osp.join(REPO_ROOT, script), *args],
                       returncode=returncode, **env)
