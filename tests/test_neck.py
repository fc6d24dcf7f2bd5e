"""EfficientViTFPN: equal to mmdet's FPN on the backbone levels, transposed
-conv levels checked against a functional re-computation, and output strides
at odd input sizes."""
import math

import pytest
import torch
import torch.nn.functional as F

from evit_mm.models import EfficientViT, EfficientViTFPN

IN_CHANNELS = [16, 24, 32]


def _inputs(size=(20, 28)):
    h, w = size
    return [
        torch.randn(2, c, math.ceil(h / 2**i), math.ceil(w / 2**i))
        for i, c in enumerate(IN_CHANNELS)
    ]


def _copy_to_mmdet_fpn(ours, fpn):
    """Copy our weights into an mmdet FPN of the same configuration."""
    state = {}
    for name, value in ours.state_dict().items():
        if name.startswith('extra_convs.'):
            index = int(name.split('.')[1])
            name = name.replace(f'extra_convs.{index}.',
                                f'fpn_convs.{len(IN_CHANNELS) + index}.')
        state[name] = value
    fpn.load_state_dict(state, strict=True)


@pytest.mark.parametrize('add_extra_convs, relu', [
    (False, False), ('on_input', False), ('on_lateral', False),
    ('on_output', True)
])
def test_matches_mmdet_fpn_without_transposed_levels(add_extra_convs, relu):
    from mmdet.models.necks import FPN
    kwargs = dict(in_channels=IN_CHANNELS, out_channels=8, num_outs=5,
                  add_extra_convs=add_extra_convs,
                  relu_before_extra_convs=relu)
    ours = EfficientViTFPN(**kwargs)
    ours.init_weights()
    for param in ours.parameters():  # non-zero biases too
        torch.nn.init.normal_(param)
    reference = FPN(**kwargs)
    _copy_to_mmdet_fpn(ours, reference)
    inputs = _inputs()
    ours_out, ref_out = ours(inputs), reference(inputs)
    assert len(ours_out) == len(ref_out) == 5
    for a, b in zip(ours_out, ref_out):
        torch.testing.assert_close(a, b)


def test_transposed_levels_match_functional_computation():
    neck = EfficientViTFPN(IN_CHANNELS, 8, num_outs=5,
                           num_extra_trans_convs=2)
    for param in neck.parameters():
        torch.nn.init.normal_(param, std=0.2)
    inputs = _inputs()

    def conv(module, x, padding=0):
        return F.conv2d(x, module.conv.weight, module.conv.bias,
                        padding=padding)

    def deconv(module, x):
        return F.conv_transpose2d(x, module.conv.weight, module.conv.bias,
                                  stride=2)

    laterals = [conv(m, x) for m, x in zip(neck.lateral_convs, inputs)]
    for i in (2, 1):
        laterals[i - 1] = laterals[i - 1] + F.interpolate(
            laterals[i], size=laterals[i - 1].shape[2:], mode='nearest')
    stride8 = deconv(neck.trans_convs[0], laterals[0])
    stride4 = deconv(neck.trans_convs[1], stride8)
    expected = [
        conv(neck.trans_fpn_convs[1], stride4, padding=1),
        conv(neck.trans_fpn_convs[0], stride8, padding=1),
        *[conv(m, x, padding=1) for m, x in zip(neck.fpn_convs, laterals)]
    ]
    outputs = neck(inputs)
    assert len(outputs) == 5
    for got, want in zip(outputs, expected):
        torch.testing.assert_close(got, want)


def _conv_out(size, stride=2):
    return (size + 2 - 3) // stride + 1


@pytest.mark.parametrize('height, width', [(256, 320), (97, 131), (33, 65)])
@pytest.mark.parametrize('num_trans, extra, strides', [
    (1, 'on_input', (8, 16, 32, 64, 128)),  # RetinaNet
    (2, False, (4, 8, 16, 32, 64)),  # Mask R-CNN
])
def test_output_strides_with_backbone(height, width, num_trans, extra,
                                      strides):
    backbone = EfficientViT('m0').eval()
    neck = EfficientViTFPN([64, 128, 192], 16, num_outs=5,
                           num_extra_trans_convs=num_trans,
                           add_extra_convs=extra).eval()
    with torch.no_grad():
        outputs = neck(backbone(torch.randn(1, 3, height, width)))
    # sizes of the stride-16/32/64 maps: repeated 3x3 stride-2 convs
    sizes = [(height, width)]
    for _ in range(6):
        sizes.append(tuple(_conv_out(s) for s in sizes[-1]))
    levels = {16: sizes[4], 32: sizes[5], 64: sizes[6]}
    for stride in (8, 4):
        levels[stride] = tuple(2 * s for s in levels[2 * stride])
    levels[128] = tuple(_conv_out(s) for s in levels[64])
    assert [tuple(o.shape[2:]) for o in outputs] == \
        [levels[s] for s in strides]
    assert all(o.shape[:2] == (1, 16) for o in outputs)
    if height % 128 == 0 and width % 128 == 0:
        assert [tuple(o.shape[2:]) for o in outputs] == \
            [(height // s, width // s) for s in strides]


@pytest.mark.parametrize('kwargs, message', [
    (dict(num_outs=3, num_extra_trans_convs=1), 'num_outs=3'),
    (dict(num_extra_trans_convs=-1), 'num_extra_trans_convs=-1'),
    (dict(add_extra_convs='on_top'), "'on_top'"),
    (dict(in_channels=[]), 'in_channels=\\[\\]'),
])
def test_bad_arguments_are_named(kwargs, message):
    args = dict(in_channels=IN_CHANNELS, out_channels=8, num_outs=5)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        EfficientViTFPN(**args)


def test_wrong_number_of_levels_is_named():
    neck = EfficientViTFPN(IN_CHANNELS, 8, num_outs=3)
    with pytest.raises(ValueError, match='got 2 input levels'):
        neck(_inputs()[:2])


@pytest.mark.parametrize('registry', ['mmdet', 'mmseg'])
def test_built_by_toolbox_registries(registry):
    import importlib
    models = importlib.import_module(f'{registry}.registry').MODELS
    neck = models.build(
        dict(type='EfficientViTFPN', in_channels=IN_CHANNELS,
             out_channels=8, num_outs=4))
    assert isinstance(neck, EfficientViTFPN)
