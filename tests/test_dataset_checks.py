"""``check_dataset.py`` on datasets that configs point at, in the three
layouts (COCO json, ADE20K image/label-map pairs, ImageNet class folders
and annotation file), made small in temporary folders and then damaged:
each problem is a line naming the file."""
import json
import os
import shutil
from pathlib import Path

import cv2
import pytest
from mmengine.config import Config

from evit_mm.datasets.synthetic import CLASSES, generate
from evit_mm.datasets.validate import DatasetError, check_config_datasets
from tool_helpers import REPO_ROOT, run_script

QUICKSTART = Path(REPO_ROOT) / 'configs' / 'quickstart'
TOOL = 'tools/analysis_tools/check_dataset.py'


@pytest.fixture(scope='module')
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp('synthetic')
    return generate(str(root), num_train=3, num_val=3, img_size=(32, 32))


@pytest.fixture
def data(source, tmp_path):
    """A fresh copy of the generated folders for each test to damage."""
    return {fmt: Path(shutil.copytree(root, str(tmp_path / fmt)))
            for fmt, root in source.items()}


def coco_config(root: Path, path: Path) -> Path:
    """The detection quickstart config over ``root``."""
    base = str(QUICKSTART / 'retinanet_efficientvit-m0_synthetic.py')
    path.write_text(f"""_base_ = {base!r}
train_dataloader = dict(dataset=dict(data_root={f'{root}/'!r}))
val_dataloader = dict(dataset=dict(data_root={f'{root}/'!r}))
test_dataloader = val_dataloader
""")
    return path


def ade20k_config(root: Path, path: Path) -> Path:
    """An mmseg ``ADE20KDataset`` (reduce_zero_label: stored 1..150 are the
    classes 0..149) over the synthetic layout, which is ADE20K's."""
    base = str(QUICKSTART / 'fpn_efficientvit-m0_synthetic.py')
    path.write_text(f"""_base_ = {base!r}
dataset = dict(type='ADE20KDataset', data_root={str(root)!r})
train_dataloader = dict(dataset=dict(_delete_=True, data_prefix=dict(
    img_path='images/training', seg_map_path='annotations/training'),
    **dataset))
val_dataloader = dict(dataset=dict(_delete_=True, data_prefix=dict(
    img_path='images/validation', seg_map_path='annotations/validation'),
    **dataset))
test_dataloader = val_dataloader
""")
    return path


def imagenet_config(root: Path, path: Path) -> Path:
    """The classification quickstart config: class folders for training,
    an ImageNet-style annotation file (``meta/val.txt``: path, label) for
    validation."""
    lines = [f'{p.relative_to(root / "val")} {CLASSES.index(p.parent.name)}'
             for p in sorted((root / 'val').rglob('*.jpg'))]
    (root / 'meta').mkdir()
    (root / 'meta' / 'val.txt').write_text('\n'.join(lines) + '\n')
    base = str(QUICKSTART / 'efficientvit-m0_synthetic.py')
    path.write_text(f"""_base_ = {base!r}
train_dataloader = dict(dataset=dict(data_root={str(root)!r}))
val_dataloader = dict(dataset=dict(data_root={str(root)!r},
                                   ann_file='meta/val.txt',
                                   data_prefix='val'))
test_dataloader = val_dataloader
""")
    return path


def problems(config: Path, **kwargs) -> list:
    reports = check_config_datasets(Config.fromfile(str(config)), **kwargs)
    return [line for report in reports for line in report.problems]


def _edit_json(path, change):
    with open(path) as f:
        content = json.load(f)
    change(content)
    with open(path, 'w') as f:
        json.dump(content, f)


def test_good_datasets_pass(data, tmp_path):
    configs = [coco_config(data['coco'], tmp_path / 'det.py'),
               ade20k_config(data['ade'], tmp_path / 'seg.py'),
               imagenet_config(data['imagenet'], tmp_path / 'cls.py')]
    for config in configs:
        reports = check_config_datasets(Config.fromfile(str(config)),
                                        check_images=True)
        assert [(r.dataloader, r.samples, r.problems) for r in reports] == [
            ('train_dataloader', 3, []), ('val_dataloader', 3, []),
            ('test_dataloader', 3, [])], config


def test_coco_problems_name_the_file(data, tmp_path):
    root = data['coco']
    config = coco_config(root, tmp_path / 'det.py')
    ann = root / 'annotations' / 'instances_val.json'
    _edit_json(ann, lambda c: (c['annotations'][0].update(category_id=7),
                               c['annotations'][1].update(bbox=[1, 2, -3, 4]),
                               c['categories'][2].update(name='hexagon')))
    os.remove(root / 'train' / '000001.jpg')
    found = problems(config, dataloaders=['train_dataloader',
                                          'val_dataloader'])
    assert found == [
        f'{root}/train/000001.jpg: no such file',
        f"{ann}: classes ['triangle'] of the config are not categories of "
        "the file (its categories: ['circle', 'hexagon', 'square'])",
        f'{ann}: annotation 1 has category_id 7; allowed: [1, 2, 3]',
        f'{ann}: annotation 2 has bbox [1, 2, -3, 4]; a box is [x, y, '
        'width, height] with width, height >= 0',
    ]
    ann.write_text('{"images": [')
    found = problems(config, dataloaders=['val_dataloader'])
    assert found[0].startswith(f'{ann}: not valid JSON: ')
    assert 'CocoDataset cannot be built' in found[1]


def test_ade20k_problems_name_the_file(data, tmp_path):
    root = data['ade']
    config = ade20k_config(root, tmp_path / 'seg.py')
    label = root / 'annotations' / 'validation' / '000002.png'
    label_map = cv2.imread(str(label), cv2.IMREAD_UNCHANGED)
    label_map[0, 0] = 151
    cv2.imwrite(str(label), label_map)
    os.remove(root / 'annotations' / 'training' / '000000.png')
    (root / 'images' / 'training' / '000001.jpg').write_bytes(b'')
    found = problems(config, dataloaders=['train_dataloader',
                                          'val_dataloader'],
                     check_images=True)
    assert found == [
        f'{root}/annotations/training/000000.png: no such file',
        f'{root}/images/training/000001.jpg: empty file (0 bytes)',
        f'{label}: label values [150] after reduce_zero_label (stored '
        'values minus 1) are outside 0..149 (150 classes) and not the '
        'ignore index 255',
    ]


def test_imagenet_problems_name_the_file(data, tmp_path):
    root = data['imagenet']
    config = imagenet_config(root, tmp_path / 'cls.py')
    with open(root / 'meta' / 'val.txt', 'a') as f:
        f.write('circle/missing.jpg 0\nsquare/000001.jpg 3\n')
    found = problems(config, dataloaders=['val_dataloader'])
    assert found == [
        f'{root}/val/circle/missing.jpg: no such file',
        f'{root}/val/square/000001.jpg: labels [3] are outside 0..2 '
        '(3 classes)',
    ]
    shutil.rmtree(root / 'train')
    found = problems(config, dataloaders=['train_dataloader'])
    assert len(found) == 1 and 'CustomDataset cannot be built' in found[0]
    with pytest.raises(DatasetError, match='no val_dataloader; it has'):
        check_config_datasets(Config(dict(default_scope='mmpretrain')),
                              ['val_dataloader'])


def test_wrapped_datasets_are_checked_inside_their_wrappers(data):
    """A RepeatDataset, a ConcatDataset and a CheckedImageDataset are
    looked through: one report per dataset they read, each with its
    problems."""
    root = data['coco']
    coco = dict(type='CocoDataset', data_root=f'{root}/',
                ann_file='annotations/instances_train.json',
                data_prefix=dict(img='train/'), metainfo=dict(classes=CLASSES))
    (root / 'train' / '000000.jpg').write_bytes(b'x')
    cfg = Config(dict(
        default_scope='mmdet',
        train_dataloader=dict(dataset=dict(
            type='RepeatDataset', times=2, dataset=coco)),
        val_dataloader=dict(dataset=dict(type='ConcatDataset', datasets=[
            coco, dict(type='CheckedImageDataset', dataset=coco)]))))
    reports = check_config_datasets(
        cfg, ['train_dataloader', 'val_dataloader'], check_images=True)
    assert [(r.dataloader, r.dataset, r.samples) for r in reports] == [
        ('train_dataloader', 'CocoDataset', 3),
        ('val_dataloader', 'CocoDataset', 3),
        ('val_dataloader', 'CocoDataset', 3)]
    for report in reports:
        assert len(report.problems) == 1, report
        assert report.problems[0].startswith(
            f'{root}/train/000000.jpg: not an image'), report


@pytest.mark.slow
@pytest.mark.runs(TOOL, '--dataloaders', '--check-images')
def test_tool_as_documented(data, tmp_path):
    """The tool in a fresh process, as the docs print it: OK lines and
    status 0 for a good dataset, one line per problem and status 1 for a
    broken one."""
    config = coco_config(data['coco'], tmp_path / 'det.py')
    output = run_script(TOOL, config)
    assert 'train_dataloader: CocoDataset, 3 samples: OK' in output
    assert 'val_dataloader: CocoDataset, 3 samples: OK' in output
    config = ade20k_config(data['ade'], tmp_path / 'seg.py')
    (data['ade'] / 'images' / 'validation' / '000000.jpg').write_bytes(b'x')
    output = run_script(TOOL, config, '--dataloaders', 'val_dataloader',
                        '--check-images', returncode=1)
    assert 'val_dataloader: ADE20KDataset, 3 samples: 1 problem(s)' in output
    assert f'{data["ade"]}/images/validation/000000.jpg: not an image' in \
        output
