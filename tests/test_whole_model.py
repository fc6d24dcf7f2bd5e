"""evit_mm.analysis.whole_model: the models the whole-model benchmark times
are the stock ones, built without fetching weights, fed what their data
pre-processor makes; bad configs are refused by name."""
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from evit_mm.analysis import whole_model

R18_RETINANET = 'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py'


def test_package_configs_resolve_and_missing_ones_are_named():
    assert whole_model.resolve_config(R18_RETINANET).endswith(
        'configs/retinanet/retinanet_r18_fpn_1x_coco.py')
    with pytest.raises(FileNotFoundError, match='configs/no_such.py'):
        whole_model.resolve_config('configs/no_such.py')


def test_other_toolboxes_are_refused():
    with pytest.raises(ValueError, match="default_scope='mmpretrain'"):
        whole_model.build_untrained(
            'configs/efficientvit/efficientvit-m0_8xb256_in1k.py')


def test_stock_peer_is_built_without_its_pretrained_weights():
    model, cfg = whole_model.build_untrained(
        'configs/baselines/fpn_r18_4xb4-160k_ade20k-512x512.py')
    assert cfg.model.pretrained is None
    assert cfg.model.backbone.init_cfg is None
    assert not model.training
    # the same network as mmseg builds from the config as written
    stock_cfg = Config.fromfile(
        'configs/baselines/fpn_r18_4xb4-160k_ade20k-512x512.py')
    init_default_scope('mmseg')
    from mmseg.registry import MODELS
    stock = MODELS.build(stock_cfg.model)
    assert {k: v.shape for k, v in model.state_dict().items()} == \
        {k: v.shape for k, v in stock.state_dict().items()}
    inputs, samples = whole_model.example_batch(model, 48, 60)
    assert inputs.shape == (1, 3, 48, 60)
    with torch.inference_mode():
        label_map = model.predict(inputs, samples)[0].pred_sem_seg.data
    assert label_map.shape == (1, 48, 60)


def test_detector_input_is_padded_as_its_preprocessor_pads():
    model, _ = whole_model.build_untrained(R18_RETINANET)
    inputs, samples = whole_model.example_batch(model, 72, 100)
    assert inputs.shape == (1, 3, 96, 128)
    assert samples[0].img_shape == (72, 100)
    assert samples[0].batch_input_shape == (96, 128)
    stats = whole_model.complexity(model, inputs)
    assert stats['params'] == sum(p.numel() for p in model.parameters())
    assert 0 < stats['backbone_flops'] < stats['flops']
