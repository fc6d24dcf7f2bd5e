"""The package layout: no import cycle between evit_mm's modules (lazy
imports inside functions included), every module imports alone in a fresh
interpreter, and each subpackage (or top-level module) imports only the layers below it."""
import ast
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Set

import pytest

from tool_helpers import REPO_ROOT

PACKAGE_DIR = Path(REPO_ROOT) / 'evit_mm'

# What each subpackage may import from evit_mm (besides itself); the map
# docs/development.md draws.
ALLOWED_IMPORTS = {
    'checkpoint': set(),
    'datasets': set(),
    'hooks': {'checkpoint', 'datasets', 'engine', 'models'},
    'models': {'checkpoint'},
    'engine': {'checkpoint', 'datasets', 'models'},
    'deploy': {'checkpoint', 'datasets', 'engine', 'hooks', 'models'},
    'analysis': {'checkpoint', 'deploy', 'models'},
    'version': set(),
    'visualization': set(),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix('').parts)
    if parts[-1] == '__init__':
        parts.pop()
    return '.'.join(parts)


MODULES = {
    module_name(path): path
    for path in sorted(PACKAGE_DIR.rglob('*.py')) if '.mim' not in path.parts
}


def imported_modules(name: str, source: str, is_package: bool) -> Set[str]:
    """The evit_mm modules that module ``name`` (code ``source``) imports
    explicitly, anywhere in its code (imports inside functions included)."""
    package = name if is_package else name.rpartition('.')[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source_module = node.module or ''
            if node.level:
                parts = package.split('.')
                base = parts[:len(parts) - node.level + 1]
                source_module = '.'.join(base + ([node.module]
                                                 if node.module else []))
            targets = [source_module] + [
                f'{source_module}.{alias.name}' for alias in node.names
            ]
        else:
            continue
        found.update(t for t in targets if t in MODULES and t != name)
    return found


def import_graph() -> Dict[str, Set[str]]:
    return {
        name: imported_modules(name, path.read_text(),
                               path.name == '__init__.py')
        for name, path in MODULES.items()
    }


def find_cycle(graph: Dict[str, Set[str]]) -> List[str]:
    """One import cycle of ``graph`` as a list of modules, or []."""
    state: Dict[str, int] = {}  # 1: on the current path, 2: finished
    path: List[str] = []

    def visit(node: str) -> List[str]:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return []


def test_cycle_finder_sees_a_lazy_import_cycle():
    assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}) == \
        ['a', 'b', 'c', 'a']
    assert find_cycle({'a': {'b'}, 'b': set()}) == []
    lazy = ('def load():\n'
            '    from ...checkpoint import read_checkpoint\n'
            '    from ..layers import fuse_conv_bn\n')
    assert imported_modules('evit_mm.models.backbones.efficientvit', lazy,
                            False) == {'evit_mm.checkpoint',
                                       'evit_mm.models.layers'}


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert not cycle, 'import cycle: ' + ' -> '.join(cycle)


def test_subpackages_import_only_the_layers_below():
    wrong = []
    for name, targets in import_graph().items():
        layer = name.split('.')[1] if name.count('.') else None
        if layer not in ALLOWED_IMPORTS:
            continue
        for target in targets:
            other = target.split('.')[1] if target.count('.') else 'evit_mm'
            if other != layer and other not in ALLOWED_IMPORTS[layer]:
                wrong.append(f'{name} imports {target}')
    assert not wrong, wrong


def test_every_subpackage_has_a_layer_rule():
    layers = {name.split('.')[1] for name in MODULES if name != 'evit_mm'}
    assert layers == set(ALLOWED_IMPORTS)


# One fresh interpreter loads the heavy third-party packages once, then
# imports each evit_mm module in a forked child that has never imported
# evit_mm: "alone", without paying torch's import per module.
IMPORT_EACH_ALONE = """
import importlib, os, sys, traceback
import torch, mmcv.cnn, mmengine.runner, mmpretrain.models  # noqa
failed = 0
for name in sys.argv[1:]:
    pid = os.fork()
    if pid == 0:
        try:
            importlib.import_module(name)
        except BaseException:
            print(name + ': ' + traceback.format_exc()[-800:], flush=True)
            os._exit(1)
        os._exit(0)
    failed += os.waitpid(pid, 0)[1] != 0
sys.exit(failed)
"""


@pytest.mark.slow
def test_every_module_imports_alone():
    result = subprocess.run(
        [sys.executable, '-c', IMPORT_EACH_ALONE, *MODULES], cwd=REPO_ROOT,
        capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
