"""benchmark.py: its memory probe measures what a step allocates, and a tiny
run writes every number the README table needs. No timing is asserted."""
import json
import os

import pytest
import torch

from tool_helpers import TOOLS, load_tool


def test_peak_memory_sees_a_temporary_allocation():
    tool = load_tool('analysis_tools', 'benchmark.py')

    def step():
        block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched, then freed
        return block.sum()

    peak = tool.peak_memory_mib(step)
    if peak is None:
        pytest.skip('the peak resident size cannot be reset here')
    assert 60 < peak < 100
    assert tool.peak_memory_mib(lambda: None) < 8


@pytest.mark.slow
def test_tiny_run_writes_all_numbers(tmp_path, capsys):
    output = tmp_path / 'bench.json'
    code = load_tool('analysis_tools', 'benchmark.py').main([
        '--archs', 'm0', '--batch-sizes', '2', '--repeats', '2', '--warmup',
        '1', '--threads', '1', '--dense-archs', 'm0', '--dense-shapes',
        '1x96x128', '--dense-repeats', '1', '--json',
        str(output)
    ])
    assert code == 0
    result = json.loads(output.read_text())
    assert result['matmul_gflops'] > 0
    assert result['environment']['threads'] == 1
    variants = {row['variant']: row for row in result['classifier']}
    assert set(variants) == {
        'timm', 'evit_mm', 'evit_mm deploy', 'evit_mm onnxruntime'
    }
    for row in variants.values():
        # same weights as timm: the outputs agree
        assert row['rel_err_vs_timm'] < 1e-5
        assert row['p10_ms'] <= row['median_ms'] <= row['p90_ms']
    assert {(r['mode'], r['variant']) for r in result['dense']} == {
        ('eval', 'timm'), ('eval', 'evit_mm'), ('eval', 'evit_mm deploy'),
        ('train', 'timm'), ('train', 'evit_mm'), ('train', 'evit_mm with_cp')
    }
    goals = {g['what'] for g in result['goals']}
    assert 'evit_mm deploy m0 batch 2' in goals
    assert 'evit_mm onnxruntime m0 batch 2' in goals
    assert 'Goals' in capsys.readouterr().out


@pytest.mark.slow
def test_compare_revisions_runs_a_folder(tmp_path):
    tool = load_tool('analysis_tools', 'compare_revisions.py')
    output = tmp_path / 'compare.json'
    repo = os.path.dirname(TOOLS)
    assert tool.main([
        repo, '--archs', 'm0', '--batch-sizes', '1', '--rounds', '1',
        '--warmup', '0', '--repeats', '1', '--threads', '1', '--json',
        str(output)
    ]) == 0
    result = json.loads(output.read_text())
    assert result['rel_err_vs_timm'][repo] < 1e-5
    assert set(result['ratios'][repo]['m0 1']) == {'evit_mm',
                                                   'evit_mm deploy'}
