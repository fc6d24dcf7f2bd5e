"""Bad data in the synthetic generator's layouts: each problem is an error
naming the file."""
import json
import os
import shutil

import cv2
import pytest

from evit_mm.datasets.synthetic import generate
from evit_mm.datasets.validate import DatasetError, check_dataset


@pytest.fixture(scope='module')
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp('synthetic')
    return generate(str(root), num_train=3, num_val=3, img_size=(32, 32))


@pytest.fixture
def data(source, tmp_path):
    """A fresh copy of the generated folders for each test to damage."""
    return {fmt: shutil.copytree(root, str(tmp_path / fmt))
            for fmt, root in source.items()}


def test_generated_data_passes(data):
    for fmt, root in data.items():
        assert sum(check_dataset(root, fmt).values()) == 6


def _edit_json(path, change):
    with open(path) as f:
        content = json.load(f)
    change(content)
    with open(path, 'w') as f:
        json.dump(content, f)


def test_coco_problems_name_the_file(data):
    root = data['coco']
    ann = os.path.join(root, 'annotations', 'instances_val.json')
    _edit_json(ann, lambda c: c['annotations'][0].update(category_id=7))
    with pytest.raises(DatasetError,
                       match=f'{ann}: annotation 1 has category_id 7; '
                       r'allowed: \[1, 2, 3\]'):
        check_dataset(root, 'coco')
    _edit_json(ann, lambda c: c.update(images=[], annotations=[]))
    with pytest.raises(DatasetError, match=f'Empty dataset: {ann}'):
        check_dataset(root, 'coco')
    os.remove(os.path.join(root, 'train', '000001.jpg'))
    with pytest.raises(DatasetError,
                       match='Image not found: .*train/000001.jpg'):
        check_dataset(root, 'coco')
    os.remove(os.path.join(root, 'annotations', 'instances_train.json'))
    with pytest.raises(DatasetError,
                       match='Annotation file not found: .*instances_train'):
        check_dataset(root, 'coco')


def test_ade_problems_name_the_file(data):
    root = data['ade']
    label = os.path.join(root, 'annotations', 'validation', '000002.png')
    label_map = cv2.imread(label, cv2.IMREAD_UNCHANGED)
    label_map[0, 0] = 9
    cv2.imwrite(label, label_map)
    with pytest.raises(DatasetError,
                       match=rf'{label} has label values \[9\]; allowed'):
        check_dataset(root, 'ade')
    os.remove(os.path.join(root, 'annotations', 'training', '000000.png'))
    with pytest.raises(DatasetError,
                       match='Label map not found: .*training/000000.png'):
        check_dataset(root, 'ade')
    shutil.rmtree(os.path.join(root, 'images', 'training'))
    os.makedirs(os.path.join(root, 'images', 'training'))
    with pytest.raises(DatasetError,
                       match='Empty dataset: no .jpg images in .*training'):
        check_dataset(root, 'ade')


def test_imagenet_problems_name_the_folder(data):
    root = data['imagenet']
    os.makedirs(os.path.join(root, 'val', 'hexagon'))
    with pytest.raises(DatasetError,
                       match=r"val has folders \['hexagon'\] that are not "
                       'classes'):
        check_dataset(root, 'imagenet')
    shutil.rmtree(os.path.join(root, 'train'))
    with pytest.raises(DatasetError,
                       match='Split folder not found: .*imagenet/train'):
        check_dataset(root, 'imagenet')
    with pytest.raises(ValueError, match="format 'voc'; allowed"):
        check_dataset(root, 'voc')
