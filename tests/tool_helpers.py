"""Shared by the tests of the scripts in ``tools/`` and ``demo/``: a script
imported as a module (to call its ``main(argv)`` in-process), or run as a
user runs it, in a subprocess."""
import importlib.util
import os
import os.path as osp
import subprocess
import sys
from types import ModuleType

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


def run_command(args, **env: str) -> str:
    """Run ``args`` in the repository root with this checkout's evit_mm
    first on the path and ``env`` added to the environment; the test fails
    with the end of the output unless the command exits 0. Returns stdout
    and stderr together."""
    result = subprocess.run(
        [str(arg) for arg in args], cwd=REPO_ROOT, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env=dict(os.environ, PYTHONPATH=REPO_ROOT, **env))
    assert result.returncode == 0, result.stdout[-4000:]
    return result.stdout


def run_script(script: str, *args, **env: str) -> str:
    """:func:`run_command` of a Python script given relative to the
    repository root, e.g. ``run_script('tools/train.py', CONFIG)``."""
    return run_command([sys.executable, osp.join(REPO_ROOT, script), *args],
                       **env)
