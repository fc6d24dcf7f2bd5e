"""get_flops.py: FLOPs and parameters of the classifiers match the paper;
configs of the toolboxes are analysed too."""
import argparse
import os.path as osp
import re
import textwrap

import pytest
import torch
import torch.nn as nn

from evit_mm.analysis import count_complexity
from evit_mm.deploy import build_from_config
from evit_mm.models import EfficientViT, EfficientViTClassifier
from reference import ARCHS, PAPER_FLOPS_PARAMS
from tool_helpers import REPO_ROOT, load_tool, run_script


def run_tool(argv, capsys) -> dict:
    assert load_tool('analysis_tools', 'get_flops.py').main(argv) == 0
    printed = capsys.readouterr().out
    return dict(
        flops=float(re.search(r'FLOPs: ([\d.]+) M', printed).group(1)),
        params=float(re.search(r'Params: ([\d.]+) M', printed).group(1)),
        printed=printed)


@pytest.mark.parametrize('arch', [
    'm0', *[pytest.param(a, marks=pytest.mark.slow) for a in ARCHS[1:]]
])
def test_classifier_matches_paper(arch, capsys):
    result = run_tool(['--arch', arch, '--depth', '0'], capsys)
    flops, params = PAPER_FLOPS_PARAMS[arch]
    assert abs(result['flops'] / flops - 1) < .03
    assert abs(result['params'] / params - 1) < .03
    assert 'Paper:' in result['printed']


def test_counts_match_a_hand_count():
    """A 1x1 conv, a 3x3 depth-wise conv and a batched matrix product
    counted by hand; BatchNorm only on request."""

    class Tiny(nn.Module):

        def __init__(self):
            super().__init__()
            self.pw = nn.Conv2d(8, 16, 1)
            self.bn = nn.BatchNorm2d(16)
            self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16)

        def forward(self, x):
            x = self.dw(self.bn(self.pw(x)))
            tokens = x.flatten(2)
            return torch.baddbmm(tokens.new_zeros(1), tokens,
                                 tokens.transpose(1, 2))

    x = torch.zeros(2, 8, 5, 5)
    expected = 2 * 25 * (8 * 16 + 16 * 9) + 2 * 16 * 25 * 16
    assert count_complexity(Tiny().eval(), (x, ))['flops'] == expected
    with_bn = count_complexity(Tiny().eval(), (x, ), count_bn=True)
    # eval BatchNorm: a scale and a shift per element
    assert with_bn['flops'] == expected + 2 * (2 * 16 * 25)
    assert not with_bn['unsupported']


def test_mmpretrain_config(tmp_path, capsys):
    """A config's model is built from its scope's registry: this classifier
    is the --arch preset's backbone with a plain linear head."""
    config = tmp_path / 'cls.py'
    config.write_text(textwrap.dedent("""
        default_scope = 'mmpretrain'
        custom_imports = dict(imports=['evit_mm'], allow_failed_imports=False)
        model = dict(
            type='ImageClassifier',
            backbone=dict(type='EfficientViT', arch='m0',
                          window_size=(7, 7, 4), out_indices=(2, )),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=1000,
                      in_channels=192))
        """))
    preset = run_tool(['--arch', 'm0', '--depth', '0'], capsys)
    from_config = run_tool([str(config), '--depth', '0'], capsys)
    assert from_config['flops'] == preset['flops']
    assert from_config['params'] == pytest.approx(preset['params'], abs=.01)
    # Exactly (the tool prints two decimals): the preset's BN-Linear head
    # has 2 * 192 more parameters (the BN's scale and shift).
    assert count_params(build_from_config(str(config))) == count_params(
        EfficientViTClassifier('m0')) - 2 * 192


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.slow
def test_mmdet_config_backbone(tmp_path, capsys):
    config = tmp_path / 'det.py'
    config.write_text(textwrap.dedent("""
        _base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
        custom_imports = dict(imports=['evit_mm'], allow_failed_imports=False)
        model = dict(
            backbone=dict(_delete_=True, type='EfficientViT', arch='m0'),
            neck=dict(in_channels=[64, 128, 192], start_level=0))
        """))
    backbone = run_tool([
        str(config), '--task', 'backbone', '--shape', '256', '320',
        '--depth', '0'
    ], capsys)
    expected = count_complexity(
        EfficientViT('m0').eval(), (torch.zeros(1, 3, 256, 320), ))
    assert backbone['flops'] == pytest.approx(expected['flops'] / 1e6,
                                              abs=.05)
    whole = run_tool([str(config), '--shape', '256', '320', '--depth', '0'],
                     capsys)
    assert whole['flops'] > backbone['flops']


SEGFORMER_QUICKSTART = ('configs/quickstart/'
                        'segformer_efficientvit-m0_synthetic.py')
# The stride-4 patch-embedding map as a fifth level of SegFormer's head.
WITH_STRIDE4 = ('model.backbone.embed_out_strides=(4,8)',
                'model.decode_head.in_channels=[16,32,64,128,192]',
                'model.decode_head.in_index=[0,1,2,3,4]')


@pytest.mark.slow
@pytest.mark.runs('tools/analysis_tools/get_flops.py', '--shape',
                  '--cfg-options', '--depth')
def test_cfg_options_change_the_model_counted():
    """``--cfg-options`` edits the config as tools/train.py does: the
    parameters printed are those of the model built with the same edits,
    and the head reading a 4x larger map costs more."""
    def numbers(*options) -> tuple:
        output = run_script('tools/analysis_tools/get_flops.py',
                            SEGFORMER_QUICKSTART, '--shape', '64', '64',
                            '--depth', '0', *options)
        return tuple(float(re.search(rf'{name}: ([\d.]+) M', output).group(1))
                     for name in ('FLOPs', 'Params'))

    from mmengine.config import DictAction
    parser = argparse.ArgumentParser()
    parser.add_argument('--o', nargs='+', action=DictAction)
    edits = parser.parse_args(['--o', *WITH_STRIDE4]).o
    model = build_from_config(osp.join(REPO_ROOT, SEGFORMER_QUICKSTART),
                              cfg_options=edits)
    assert model.backbone.embed_out_strides == [4, 8]
    flops, params = numbers()
    edited_flops, edited_params = numbers('--cfg-options', *WITH_STRIDE4)
    assert edited_params == pytest.approx(
        sum(p.numel() for p in model.parameters()) / 1e6, abs=0.005)
    assert edited_params > params and edited_flops > flops
    refused = run_script('tools/analysis_tools/get_flops.py', '--arch', 'm0',
                         '--cfg-options', 'a=1', returncode=2)
    assert '--cfg-options needs a CONFIG' in refused
