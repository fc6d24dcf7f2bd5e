"""docs/troubleshooting.md: every error it shows is triggered here the way
a user meets it, and the text the page shows appears in the real message;
the page shows no message that no test triggers."""
import fractions
import os.path as osp
import re
import subprocess
import sys
from types import SimpleNamespace
from typing import Callable, Dict

import pytest
import torch

from reference import official_state_dict, timm_model
from tool_helpers import REPO_ROOT

PAGE = osp.join(REPO_ROOT, 'docs', 'troubleshooting.md')
# A section: its heading, then the message in a ```text block.
SECTION = re.compile(r'^## (.+?)\n\n```text\n(.+?)\n```', re.MULTILINE)


def shown_messages() -> Dict[str, str]:
    """Heading -> the message text the page shows under it."""
    with open(PAGE, encoding='utf-8') as f:
        return dict(SECTION.findall(f.read()))


def _error_text(call: Callable[[], object]) -> str:
    with pytest.raises(Exception) as info:
        call()
    return str(info.value)


def registry_key_error(tmp_path) -> str:
    """mmdet building EfficientViT in a process that never imported
    evit_mm (a config without custom_imports)."""
    code = ('from mmdet.utils import register_all_modules\n'
            'from mmdet.registry import MODELS\n'
            'register_all_modules()\n'
            "MODELS.build(dict(type='EfficientViT', arch='m0'))\n")
    result = subprocess.run([sys.executable, '-c', code], cwd=tmp_path,
                            text=True, capture_output=True, timeout=300)
    assert result.returncode != 0
    return result.stderr


def weights_only_refusal(tmp_path) -> str:
    """A checkpoint that pickles an object outside the allow-list, read as
    the tools, ``load_from`` and ``init_cfg`` read checkpoints."""
    from evit_mm.checkpoint import read_checkpoint
    path = tmp_path / 'foreign.pth'
    torch.save({'state_dict': {}, 'meta': fractions.Fraction(1, 3)}, path)
    return _error_text(lambda: read_checkpoint(str(path)))


def channel_mismatch(tmp_path) -> str:
    """A RetinaNet config whose neck keeps another backbone's channels,
    built as the tools build it."""
    from evit_mm.deploy import build_from_config
    config = osp.join(REPO_ROOT, 'configs', 'retinanet',
                      'retinanet_efficientvit-m0_fpn_1x_coco.py')
    return _error_text(lambda: build_from_config(config, cfg_options={
        'model.backbone.init_cfg': None,
        'model.neck.in_channels': [128, 256, 512]}))


def wrong_arch_checkpoint(tmp_path) -> str:
    """M4's official ImageNet weights named as M0's init_cfg."""
    from evit_mm.models import EfficientViT
    path = tmp_path / 'efficientvit_m4.pth'
    torch.save({'model': official_state_dict(timm_model('m4'))}, path)
    backbone = EfficientViT(
        'm0', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    return _error_text(backbone.init_weights)


def out_of_memory(tmp_path) -> str:
    """An allocation larger than any machine's memory."""
    return _error_text(lambda: torch.empty(1 << 60, dtype=torch.uint8))


def nan_loss(tmp_path) -> str:
    """mmdet's CheckInvalidLossHook after an iteration whose loss is NaN:
    what it logs before it stops the training."""
    from mmdet.engine.hooks import CheckInvalidLossHook
    logged = []
    runner = SimpleNamespace(iter=0, logger=SimpleNamespace(
        info=logged.append))
    with pytest.raises(AssertionError):
        CheckInvalidLossHook(interval=1).after_train_iter(
            runner, 0, outputs={'loss': torch.tensor(float('nan'))})
    return '\n'.join(logged)


def mmcv_cannot_be_built(tmp_path) -> str:
    """tools/install.sh's plan on a machine without a C++ compiler, where no
    mmcv is installed and no wheel is offered."""
    script = osp.join(REPO_ROOT, 'tools', 'install.sh')
    result = subprocess.run(
        ['bash', '-c', f'source {script}; mmcv_ok() {{ return 1; }}; '
         'mmcv_wheel_offered() { return 1; }; plan'],
        text=True, capture_output=True, timeout=60,
        env={'PATH': '/usr/bin:/bin', 'PYTHON': sys.executable,
             'CXX': 'no-such-compiler'})
    assert result.returncode == 1
    assert 'no-such-compiler' in result.stderr
    return result.stderr


TRIGGERS = {
    'Registry KeyError: EfficientViT is not in the registry':
    registry_key_error,
    'A checkpoint refused by weights-only loading': weights_only_refusal,
    'Channel mismatch between the backbone and the neck or head':
    channel_mismatch,
    'A checkpoint of another arch or another model': wrong_arch_checkpoint,
    'Out of memory': out_of_memory,
    'NaN loss': nan_loss,
    'mmcv cannot be built': mmcv_cannot_be_built,
}


def test_every_message_shown_is_triggered_here():
    assert sorted(shown_messages()) == sorted(TRIGGERS)


@pytest.mark.parametrize('heading', sorted(TRIGGERS))
def test_message_appears_in_the_real_error(heading, tmp_path):
    message = TRIGGERS[heading](tmp_path)
    assert shown_messages()[heading] in message, message[-2000:]
