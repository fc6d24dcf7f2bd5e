"""Shared by the tests of the scripts in ``tools/`` and ``demo/``: a script
imported as a module (to call its ``main(argv)`` in-process), or run as a
user runs it, in a subprocess.

Every script run here is recorded in :data:`RUNS`: a test marked
``@pytest.mark.runs(SCRIPT, *OPTIONS)`` must run ``SCRIPT`` (relative to
the repository root) in a fresh process with each of ``OPTIONS``, which
``tests/conftest.py`` checks when the test passed, and
``tests/test_commands.py`` requires such a test for every command the
README and docs/ print."""
import importlib.util
import os
import os.path as osp
import subprocess
import sys
import tempfile
from types import ModuleType
from typing import List, Tuple

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOLS = osp.join(REPO_ROOT, 'tools')
SCRIPT_SUFFIXES = ('.py', '.sh')
# (script relative to the repository root, its arguments) of every script
# run by this test process since the current test began.
RUNS: List[Tuple[str, List[str]]] = []


def load_tool(*path: str) -> ModuleType:
    """``tools/<path>`` as a fresh module, e.g.
    ``load_tool('analysis_tools', 'benchmark.py')``."""
    filename = osp.join(TOOLS, *path)
    spec = importlib.util.spec_from_file_location(
        osp.splitext(osp.basename(filename))[0], filename)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def record_run(args: List[str]) -> None:
    """Note in :data:`RUNS` the first argument of ``args`` that names a
    script of this repository (``.py`` or ``.sh``), with the arguments
    after it."""
    for index, arg in enumerate(args):
        path = osp.abspath(osp.join(REPO_ROOT, arg))
        if arg.endswith(SCRIPT_SUFFIXES) and osp.isfile(path) and \
                path.startswith(REPO_ROOT + os.sep):
            RUNS.append((osp.relpath(path, REPO_ROOT), args[index + 1:]))
            return


def ran(script: str, options) -> bool:
    """Whether :data:`RUNS` holds a run of ``script`` given every one of
    ``options`` (``--name`` alone or as ``--name=value``)."""
    for name, args in RUNS:
        given = {arg.split('=', 1)[0] for arg in args}
        if name == script and set(options) <= given:
            return True
    return False


def run_measured(args, **env: str) -> Tuple[int, str, int]:
    """Run ``args`` in the repository root with this checkout's evit_mm
    first on the path (PYTHONPATH, unless ``env`` gives one) and ``env``
    added to the environment. Returns the
    exit status, stdout and stderr together, and the command's peak
    resident memory in bytes."""
    record_run([str(arg) for arg in args])
    with tempfile.TemporaryFile('w+') as output:
        process = subprocess.Popen(
            [str(arg) for arg in args], cwd=REPO_ROOT, text=True,
            stdout=output, stderr=subprocess.STDOUT,
            env={**os.environ, 'PYTHONPATH': REPO_ROOT, **env})
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
