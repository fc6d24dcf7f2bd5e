"""The classification inference demo."""
import os.path as osp

import cv2
import numpy as np
import pytest
import torch

pytest.importorskip('mmpretrain')

from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmpretrain.registry import MODELS  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
QUICKSTART = osp.join(REPO, 'configs', 'quickstart',
                      'efficientvit-m0_synthetic.py')


def test_demo_prints_topk_classes(tmp_path, capsys):
    """A checkpoint whose head favours 'triangle' over 'circle' over
    'square' gives exactly that ranking."""
    import runpy
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(QUICKSTART)
    cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
    model = MODELS.build(cfg.model)
    state = model.state_dict()
    state['head.classifier.linear.weight'].zero_()
    state['head.classifier.linear.bias'].copy_(torch.tensor([1., 0., 3.]))
    checkpoint = str(tmp_path / 'model.pth')
    torch.save(
        dict(
            state_dict=state,
            meta=dict(dataset_meta=dict(
                classes=['circle', 'square', 'triangle']))), checkpoint)
    image = str(tmp_path / 'image.jpg')
    cv2.imwrite(image, np.full((120, 100, 3), 128, np.uint8))

    demo = runpy.run_path(
        osp.join(REPO, 'demo', 'image_classification_demo.py'))
    demo['main']([image, QUICKSTART, checkpoint, '--topk', '3'])
    lines = capsys.readouterr().out.strip().splitlines()
    expected = np.exp([3., 1., 0.]) / np.exp([3., 1., 0.]).sum()
    header = f'Top-3 classes of {image} (100x120):'
    assert header in lines, lines
    lines = lines[lines.index(header):]
    assert len(lines) == 5, lines
    assert lines[4] == '1 image(s) used, 0 skipped'
    for line, name, index, score in zip(lines[1:], ['triangle', 'circle',
                                                    'square'], [2, 0, 1],
                                        expected):
        assert line.split(':')[0].endswith(f'{name} (index {index})')
        assert float(line.rsplit(' ', 1)[1]) == pytest.approx(score, abs=1e-4)
    with pytest.raises(SystemExit, match='exceeds the 3 classes'):
        demo['main']([image, QUICKSTART, checkpoint, '--topk', '5'])
