"""Shared by the tests of the scripts in ``tools/``: a script imported as a
module, so that a test calls its ``main(argv)`` in-process."""
import importlib.util
import os.path as osp
from types import ModuleType

TOOLS = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'tools')


def load_tool(*path: str) -> ModuleType:
    """``tools/<path>`` as a fresh module, e.g.
    ``load_tool('analysis_tools', 'benchmark.py')``."""
    filename = osp.join(TOOLS, *path)
    spec = importlib.util.spec_from_file_location(
        osp.splitext(osp.basename(filename))[0], filename)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
