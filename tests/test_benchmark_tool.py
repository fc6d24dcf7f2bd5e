"""benchmark.py: its memory probe measures what a step allocates, and tiny
runs of the command write every number the docs tables need (classifier
and backbone; whole models). No timing is asserted."""
import json

import numpy as np
import pytest
import torch

from tool_helpers import load_tool, run_script

TOOL = 'tools/analysis_tools/benchmark.py'


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
@pytest.mark.runs(TOOL, '--archs', '--batch-sizes', '--threads',
                  '--skip-models', '--json')
def test_tiny_run_writes_all_numbers(tmp_path):
    output = tmp_path / 'bench.json'
    printed = run_script(
        TOOL, '--archs', 'm0', '--batch-sizes', '2', '--repeats', '2',
        '--warmup', '1', '--threads', '1', '--dense-archs', 'm0',
        '--dense-shapes', '1x96x128', '--dense-repeats', '1', '--skip-models',
        '--json', output)
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
    assert 'Goals' in printed


@pytest.mark.slow
@pytest.mark.runs(TOOL, '--skip-classifier', '--skip-dense', '--models',
                  '--det-sizes', '--model-repeats', '--model-warmup', '--json')
@pytest.mark.runs(TOOL, '--no-ort', '--no-openvino')
def test_tiny_whole_model_run_writes_all_numbers(tmp_path):
    """A detector and a segmentor of EfficientViT and their ResNet-18 peers,
    eager and in ONNX Runtime, at sizes that are no multiple of 32; with
    ``--no-ort`` too, eager only."""
    output = tmp_path / 'models.json'
    models = ['retinanet-m0', 'retinanet-r18', 'fpn-m0-quickstart', 'fpn-r18']
    options = ['--skip-classifier', '--skip-dense', '--det-sizes', '72x100',
               '--seg-sizes', '48x60', '--model-repeats', '1',
               '--model-warmup', '0', '--threads', '1', '--no-openvino',
               '--json', output]
    printed = run_script(TOOL, '--models', *models, *options)
    result = json.loads(output.read_text())
    rows = {(r['model'], r['backend']): r for r in result['models']}
    assert set(rows) == {(m, b) for m in models
                         for b in ('pytorch', 'onnxruntime')}
    for (model, backend), row in rows.items():
        assert row['size'] == ([72, 100] if model.startswith('retinanet')
                               else [48, 60])
        assert row['efficientvit'] == ('-m0' in model)
        for key in ('img_per_s', 'median_ms', 'backbone_ms',
                    'backbone_share', 'speedup_vs_eager', 'speedup_vs_peer'):
            assert row[key] > 0, (model, backend, key)
        assert 0 < row['backbone_flops'] < row['flops']
        assert row['params'] > 1e6
    # the detectors pad to a multiple of 32, the segmentors do not
    assert rows['retinanet-r18', 'pytorch']['input'] == [1, 3, 96, 128]
    assert rows['fpn-r18', 'pytorch']['input'] == [1, 3, 48, 60]
    assert rows['retinanet-r18', 'onnxruntime']['speedup_vs_peer'] == 1
    goals = {g['what'] for g in result['goals']}
    assert goals == {
        'onnxruntime retinanet-m0 vs retinanet-r18 72x100',
        'best backend (onnxruntime) vs eager retinanet-m0 72x100',
        'best backend (onnxruntime) vs eager fpn-m0-quickstart 48x60'
    }
    assert 'Whole models, batch 1' in printed and 'Goals' in printed

    run_script(TOOL, '--models', models[0], *options, '--no-ort')
    result = json.loads(output.read_text())
    assert [(r['model'], r['backend']) for r in result['models']] == [
        (models[0], 'pytorch')]


@pytest.mark.slow
@pytest.mark.runs(TOOL, '--seg-sizes', '--no-ort')
def test_tiny_real_time_run_against_their_peers(tmp_path):
    """RTMDet and SegFormer with EfficientViT beside RTMDet-tiny and
    SegFormer-B0, eager and in OpenVINO: each is compared with its own
    family's peer, and the deployed-speed goals of issue 18 are printed."""
    output = tmp_path / 'models.json'
    models = ['rtmdet-m0', 'rtmdet-tiny', 'segformer-m0', 'segformer-b0']
    printed = run_script(
        TOOL, '--skip-classifier', '--skip-dense', '--models', *models,
        '--det-sizes', '64x96', '--seg-sizes', '48x60', '--model-repeats',
        '1', '--model-warmup', '0', '--threads', '1', '--no-ort', '--json',
        output)
    result = json.loads(output.read_text())
    rows = {(r['model'], r['backend']): r for r in result['models']}
    assert set(rows) == {(m, b) for m in models
                         for b in ('pytorch', 'openvino')}
    for (model, backend), row in rows.items():
        peer = 'rtmdet-tiny' if model.startswith('rtmdet') else 'segformer-b0'
        assert row['speedup_vs_peer'] == pytest.approx(
            rows[peer, backend]['median_ms'] / row['median_ms'])
        assert row['efficientvit'] == model.endswith('-m0')
        assert 0 < row['backbone_flops'] < row['flops']
    # both take 64x96 as it is: a multiple of their coarsest stride, 32
    assert rows['rtmdet-m0', 'pytorch']['input'] == \
        rows['rtmdet-tiny', 'pytorch']['input'] == [1, 3, 64, 96]
    goals = {g['what']: g['goal'] for g in result['goals']}
    assert goals == {
        'openvino rtmdet-m0 vs rtmdet-tiny 64x96': 2.0,
        'openvino segformer-m0 vs segformer-b0 48x60': 3.0,
        'best backend (openvino) vs eager rtmdet-m0 64x96': 2.0,
        'best backend (openvino) vs eager segformer-m0 48x60': 2.0,
    }
    assert 'Goals' in printed


def test_whole_model_arguments_are_checked(capsys):
    tool = load_tool('analysis_tools', 'benchmark.py')
    with pytest.raises(SystemExit):
        tool.parse_args(['--det-sizes', '800'])
    assert "--det-sizes ['800']: use HxW." in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.parse_args(['--models', 'retinanet-r50'])
    assert 'retinanet-r50' in capsys.readouterr().err


TAIL_TOOL = 'tools/analysis_tools/time_label_map_tail.py'


def test_label_map_tail_is_mmseg_resize_and_argmax():
    """The old tail's graph computes what mmseg computes at the end of a
    segmentor: bilinear resize (align_corners as the head's), argmax over
    the classes."""
    pytest.importorskip('onnxruntime')
    import onnxruntime
    from evit_mm.deploy.label_map import tail_graph
    logits = torch.randn(1, 7, 9, 9)
    for align_corners in (False, True):
        session = onnxruntime.InferenceSession(
            tail_graph(align_corners), providers=['CPUExecutionProvider'])
        labels = session.run(None, {
            'logits': logits.numpy(),
            'size': np.array([1, 7, 40, 40])})[0]
        expected = torch.nn.functional.interpolate(
            logits, size=(40, 40), mode='bilinear',
            align_corners=align_corners).argmax(1, keepdim=True)
        assert torch.equal(torch.from_numpy(labels), expected)


@pytest.mark.runs(TAIL_TOOL, '--size', '--logit-sizes', '--classes',
                  '--threads', '--repeat')
def test_label_map_tail_tool_prints_each_size():
    pytest.importorskip('openvino')
    out = run_script(TAIL_TOOL, '--size', '32', '--logit-sizes', '4', '8',
                     '--classes', '9', '--threads', '1', '--repeat', '2')
    assert [line for line in out.splitlines() if 'classes' in line] == [
        '9 classes 4x4 -> 32x32, 1 threads:',
        '9 classes 8x8 -> 32x32, 1 threads:']
    rows = [line.split()[:2] for line in out.splitlines()
            if 'boundary cells' in line]
    assert rows == [[kind, backend] for _ in range(2)
                    for kind in ('realistic', 'random')
                    for backend in ('onnxruntime', 'openvino')]
    assert out.count('same labels') == 8
    err = run_script(TAIL_TOOL, '--repeat', '0', returncode=2)
    assert '--repeat must be >= 1, got 0' in err
    err = run_script(TAIL_TOOL, '--classes', '5', returncode=2)
    assert '--classes must be >= 8, got 5' in err