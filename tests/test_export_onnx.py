"""ONNX export in deploy mode: the graph, run by onnxruntime at input sizes
other than the traced one, matches PyTorch and timm."""
import os

import pytest
import torch

from evit_mm.deploy import (build_from_config, export_onnx, ort_session,
                            run_session)
from evit_mm.models import EfficientViT, EfficientViTClassifier
from reference import randomize_, relative_error, timm_model
from tool_helpers import TOOLS

pytest.importorskip('onnxruntime')


def test_backbone_graph_is_correct_at_every_size():
    """Traced at one size, the dynamic graph must redo the window padding
    and partition for other sizes: smaller than a window, not a multiple of
    it, exactly one window per stage (the eager shortcut), another batch."""
    model = randomize_(EfficientViT('m1')).eval()
    model.switch_to_deploy()
    session = ort_session(
        export_onnx(model, torch.randn(1, 3, 160, 224),
                    ['stride16', 'stride32', 'stride64']))
    for shape in [(1, 3, 160, 224), (2, 3, 97, 161), (1, 3, 32, 48),
                  (1, 3, 112, 112)]:
        x = torch.randn(shape)
        with torch.no_grad():
            expected = model(x)
        outputs = run_session(session, x)
        assert [o.shape for o in outputs] == [e.shape for e in expected]
        for out, ref in zip(outputs, expected):
            assert relative_error(out, ref) < 1e-4, shape


def test_classifier_from_timm_weights_matches_timm():
    """timm's weights loaded and fused: the graph reproduces timm's own
    logits at the export batch and at another one."""
    reference = timm_model('m0')
    model = EfficientViTClassifier('m0')
    model.load_state_dict(reference.state_dict())
    model.eval().switch_to_deploy()
    session = ort_session(
        export_onnx(model, torch.randn(1, 3, 224, 224), ['logits']))
    for shape in [(1, 3, 224, 224), (3, 3, 224, 224)]:
        x = torch.randn(shape)
        with torch.no_grad():
            expected = reference(x)
        assert relative_error(run_session(session, x)[0], expected) < 1e-4


def test_static_export_keeps_the_example_shape():
    """A static graph is fixed to the example and skips the window steps of
    maps that are exactly one window (stages 2 and 3 at 224x224)."""
    import onnx
    model = randomize_(EfficientViTClassifier('m0')).eval()
    model.switch_to_deploy()
    x = torch.randn(2, 3, 224, 224)
    static = export_onnx(model, x, ['logits'], dynamic=False)
    graph = onnx.load_from_string(static).graph
    dims = [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims == [2, 3, 224, 224]
    dynamic = onnx.load_from_string(export_onnx(model, x, ['logits'])).graph

    def pads(g):
        return sum(node.op_type == 'Pad' for node in g.node)

    assert pads(graph) == 1 < pads(dynamic) == 6
    with torch.no_grad():
        expected = model(x)
    assert relative_error(run_session(ort_session(static), x)[0],
                          expected) < 1e-4


def test_export_rejects_wrong_output_names():
    model = EfficientViT('m0').eval()
    with pytest.raises(ValueError, match='names 1 outputs; the model '
                       'returns 3'):
        export_onnx(model, torch.randn(1, 3, 64, 64), ['logits'])


def test_config_model_loads_a_training_checkpoint(tmp_path):
    """``--config X --checkpoint work_dirs/.../epoch_N.pth``: a checkpoint
    written by training, training logs included, loads (through the safe
    reader, which allows mmengine's log objects) into the config's model."""
    from mmengine.logging import HistoryBuffer
    config = os.path.join(os.path.dirname(TOOLS), 'configs', 'quickstart',
                          'efficientvit-m0_synthetic.py')
    trained = build_from_config(config)
    path = str(tmp_path / 'epoch_1.pth')
    torch.save(
        dict(state_dict=trained.state_dict(), meta=dict(epoch=1),
             message_hub=dict(log_scalars={'train/loss': HistoryBuffer(
                 [1.0, 0.5], [1, 1])})), path)
    loaded = build_from_config(config, path).state_dict()
    for key, value in trained.state_dict().items():
        assert torch.equal(loaded[key], value), key
