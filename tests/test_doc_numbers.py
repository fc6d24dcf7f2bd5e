"""A number the docs state on two pages has one value: docs/choose_a_model.md
copies its speed, GMACs and parameter columns from the benchmark output
that docs/performance.md shows whole (with its command and conditions),
and its quickstart accuracies from performance.md's compare_backbones.sh
table; each copied cell must equal its source cell."""
import os.path as osp
import re
from typing import Dict, List, Tuple

import pytest

from tool_helpers import REPO_ROOT

CHOOSE = osp.join(REPO_ROOT, 'docs', 'choose_a_model.md')
PERFORMANCE = osp.join(REPO_ROOT, 'docs', 'performance.md')
# choose_a_model.md's backend columns and benchmark.py's backend names.
BACKENDS = {'PyTorch ms': 'pytorch', 'ONNX Runtime ms': 'onnxruntime',
            'OpenVINO ms': 'openvino'}
BACKEND_NAMES = {'ONNX Runtime': 'onnxruntime', 'OpenVINO': 'openvino'}


def tables(path: str) -> List[List[Dict[str, str]]]:
    """The Markdown tables of a page, each a list of ``{header: cell}``."""
    with open(path, encoding='utf-8') as f:
        lines = f.read().splitlines()
    found, i = [], 0
    while i < len(lines) - 1:
        if lines[i].startswith('|') and re.match(r'^\|[-| ]+\|$',
                                                 lines[i + 1]):
            header = [c.strip() for c in lines[i].strip('|').split('|')]
            rows, i = [], i + 2
            while i < len(lines) and lines[i].startswith('|'):
                cells = [c.strip() for c in lines[i].strip('|').split('|')]
                rows.append(dict(zip(header, cells)))
                i += 1
            found.append(rows)
        else:
            i += 1
    return found


def benchmark_rows() -> Dict[Tuple[str, str, str], Dict[str, str]]:
    """performance.md's real-time benchmark output: (model, image,
    backend) -> row."""
    rows = {}
    for table in tables(PERFORMANCE):
        if table and 'vs peer' in table[0]:
            for row in table:
                rows[row['model'], row['image'], row['backend']] = row
    return rows


def choose_rows() -> List[Tuple[str, Dict[str, str]]]:
    """(image size, row) of every row of choose_a_model.md's speed tables
    that has a speed."""
    found = []
    for table in tables(CHOOSE):
        if not table or 'PyTorch ms' not in table[0]:
            continue
        size = next(re.search(r'GMACs (\d+x\d+)', key).group(1)
                    for key in table[0] if key.startswith('GMACs'))
        found += [(size, row) for row in table if row['PyTorch ms']]
    return found


def _number(cell: str) -> str:
    """The first number of a cell: ``'138 (132-145)'`` -> ``'138'``."""
    return re.search(r'\d+(?:\.\d+)?', cell).group(0)


def _name(cell: str) -> str:
    """benchmark.py's model name of a choose_a_model.md model cell:
    ``'RTMDet-tiny (CSPNeXt)'`` -> ``'rtmdet-tiny'``."""
    return cell.split(' (')[0].lower()


def test_both_pages_have_the_tables():
    assert len(benchmark_rows()) >= 30
    assert len(choose_rows()) >= 6


@pytest.mark.parametrize('size, row', choose_rows(),
                         ids=lambda value: value if isinstance(value, str)
                         else _name(value['model']))
def test_copied_cells_equal_the_benchmark_output(size, row):
    name, source = _name(row['model']), benchmark_rows()
    for column, backend in BACKENDS.items():
        assert _number(row[column]) == _number(
            source[name, size, backend]['ms (p10-p90)']), (name, column)
    pytorch = source[name, size, 'pytorch']
    gmacs = next(key for key in row if key.startswith('GMACs'))
    assert _number(row[gmacs]) == _number(pytorch['GMACs (backbone)']), name
    assert _number(row['params (M)']) == _number(pytorch['params']), name
    # "**1.83x** (ONNX Runtime)": the best deployed ratio to the peer, and
    # the backend(s) that reach it.
    verdict = next(key for key in row if key.startswith('deployed vs'))
    ratio = float(_number(row[verdict]))
    deployed = {backend: float(_number(source[name, size, backend]['vs peer']))
                for backend in BACKEND_NAMES.values()}
    assert ratio == max(deployed.values()), name
    if set(deployed.values()) == {1.0}:
        return  # the peer itself
    named = re.findall('|'.join(BACKEND_NAMES), row[verdict])
    assert named, f'{name}: the verdict names no backend'
    assert all(deployed[BACKEND_NAMES[n]] == ratio for n in named), name


def backbone_comparison() -> Dict[str, str]:
    """performance.md's compare_backbones.sh table: model -> accuracy cell
    (``'mIoU 33.9'``)."""
    return {row['model']: row['accuracy (val)']
            for table in tables(PERFORMANCE)
            if table and 'accuracy (val)' in table[0] for row in table}


def quickstart_rows() -> List[Tuple[str, str]]:
    """(config cell, accuracy cell at compare_backbones.sh's budget) of
    choose_a_model.md's same-training tables."""
    found = []
    for table in tables(CHOOSE):
        if not table or 'quickstart config' not in table[0]:
            continue
        column = next(key for key in table[0]
                      if '300 iterations' in key or 'bbox mAP' in key)
        found += [(row['quickstart config'], row[column]) for row in table]
    return found


def test_quickstart_accuracies_equal_the_backbone_comparison():
    """Each model of choose_a_model.md's same-training tables that
    compare_backbones.sh's table in performance.md also has shows the same
    accuracy (``'79.2 / 82.8'`` for two configs in one row)."""
    source, compared = backbone_comparison(), 0
    assert len(source) >= 6
    for configs, cell in quickstart_rows():
        names = re.findall(r'([\w.-]+)_synthetic\.py`', configs) or \
            re.findall(r'\[([\w.-]+)_synthetic\.py\]', configs)
        values = re.findall(r'\d+\.\d+', cell)
        assert len(names) == len(values), (configs, cell)
        for name, value in zip(names, values):
            if name in source:
                assert value == _number(source[name]), (name, cell)
                compared += 1
    assert compared >= 6
