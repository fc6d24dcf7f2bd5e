"""The synthetic shapes dataset: determinism, and annotations that agree with
the pixels (checked with pycocotools' own rasteriser and the images)."""
import hashlib
import json
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest

from evit_mm.datasets.synthetic import CLASSES, generate

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _digests(root):
    digests = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = osp.join(folder, name)
            with open(path, 'rb') as f:
                digests[osp.relpath(path, root)] = hashlib.md5(
                    f.read()).hexdigest()
    return digests


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('synthetic')
    generate(str(root), num_train=6, num_val=3, img_size=(96, 80), seed=3)
    return root


def test_same_arguments_same_bytes_and_prefix_stable(dataset, tmp_path):
    generate(str(tmp_path / 'again'), num_train=6, num_val=3,
             img_size=(96, 80), seed=3)
    assert _digests(dataset) == _digests(tmp_path / 'again')

    generate(str(tmp_path / 'fewer'), formats=['coco'], num_train=2,
             num_val=1, img_size=(96, 80), seed=3)
    full = _digests(dataset / 'coco')
    for name, digest in _digests(tmp_path / 'fewer' / 'coco').items():
        if name.endswith('.jpg'):
            assert full[name] == digest, name

    marker = tmp_path / 'fewer' / 'coco' / 'train' / '000000.jpg'
    marker.write_bytes(b'kept')
    generate(str(tmp_path / 'fewer'), formats=['coco'], num_train=2,
             num_val=1, img_size=(96, 80), seed=3, skip_existing=True)
    assert marker.read_bytes() == b'kept'
    generate(str(tmp_path / 'fewer'), formats=['coco'], num_train=3,
             num_val=1, img_size=(96, 80), seed=3, skip_existing=True)
    assert marker.read_bytes() != b'kept'  # other arguments: rewritten

    generate(str(tmp_path / 'other'), formats=['coco'], num_train=2,
             num_val=1, img_size=(96, 80), seed=4)
    other = _digests(tmp_path / 'other' / 'coco')
    assert other['train/000000.jpg'] != full['train/000000.jpg']


def test_coco_annotations_match_pycocotools_masks(dataset):
    from pycocotools.coco import COCO
    coco = COCO(str(dataset / 'coco' / 'annotations' / 'instances_train.json'))
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == \
        list(CLASSES)
    assert len(coco.getImgIds()) == 6
    annotations = coco.loadAnns(coco.getAnnIds())
    assert len(annotations) >= 6  # at least one object per image
    for ann in annotations:
        mask = coco.annToMask(ann)
        ys, xs = np.nonzero(mask)
        x, y, w, h = ann['bbox']
        assert abs(xs.min() - x) <= 1 and abs(ys.min() - y) <= 1
        assert abs(xs.max() + 1 - (x + w)) <= 1.5
        assert abs(ys.max() + 1 - (y + h)) <= 1.5
        assert abs(mask.sum() - ann['area']) <= 0.1 * ann['area'] + 5
        assert ann['iscrowd'] == 0 and 1 <= ann['category_id'] <= 3
    # instances never overlap
    for image_id in coco.getImgIds():
        masks = [coco.annToMask(a) for a in
                 coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))]
        assert np.stack(masks).sum(0).max() == 1


def test_coco_objects_are_drawn_where_annotated(dataset):
    """Inside an (eroded) object mask the image is one flat colour; the
    noisy background around it is not."""
    with open(dataset / 'coco' / 'annotations' / 'instances_val.json') as f:
        data = json.load(f)
    for image in data['images']:
        pixels = cv2.imread(
            str(dataset / 'coco' / 'val' / image['file_name'])).astype(float)
        for ann in (a for a in data['annotations']
                    if a['image_id'] == image['id']):
            mask = np.zeros(pixels.shape[:2], np.uint8)
            points = np.array(ann['segmentation'][0]).reshape(-1, 2)
            cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
            inner = cv2.erode(mask, np.ones((5, 5), np.uint8)).astype(bool)
            ring = (cv2.dilate(mask, np.ones((7, 7), np.uint8)) -
                    cv2.dilate(mask, np.ones((3, 3), np.uint8))).astype(bool)
            if inner.sum() < 10:
                continue
            assert pixels[inner].std(axis=0).max() < 6
            assert pixels[ring].std(axis=0).max() > 6


def test_ade_label_maps(dataset):
    root = dataset / 'ade'
    for split, count in (('training', 6), ('validation', 3)):
        images = sorted(os.listdir(root / 'images' / split))
        labels = sorted(os.listdir(root / 'annotations' / split))
        assert len(images) == count
        assert [n[:-4] for n in images] == [n[:-4] for n in labels]
    label = cv2.imread(str(root / 'annotations' / 'training' / labels[0]),
                       cv2.IMREAD_UNCHANGED)
    image = cv2.imread(str(root / 'images' / 'training' / images[0]))
    assert label.shape == (80, 96) and label.dtype == np.uint8
    assert set(np.unique(label)) <= {0, 1, 2, 3} and label.max() > 0
    # every labelled object is one flat colour
    count, objects = cv2.connectedComponents((label > 0).astype(np.uint8))
    assert count > 1
    for index in range(1, count):
        assert len(np.unique(label[objects == index])) == 1
        inner = cv2.erode((objects == index).astype(np.uint8),
                          np.ones((5, 5), np.uint8)).astype(bool)
        if inner.sum() > 10:
            assert image[inner].astype(float).std(axis=0).max() < 6


def test_imagenet_folders_are_balanced(dataset):
    root = dataset / 'imagenet'
    assert sorted(os.listdir(root / 'train')) == sorted(CLASSES)
    counts = [len(os.listdir(root / 'train' / c)) for c in CLASSES]
    assert counts == [2, 2, 2]
    assert sum(len(os.listdir(root / 'val' / c)) for c in CLASSES) == 3


@pytest.mark.parametrize('kwargs, message', [
    (dict(formats=['voc']), 'voc'),
    (dict(img_size=(16, 64)), '16x64'),
    (dict(num_train=-1), 'num_train=-1'),
])
def test_bad_arguments_are_named(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate(str(tmp_path), **kwargs)


def test_cli(tmp_path):
    result = subprocess.run(
        [sys.executable,
         osp.join(REPO_ROOT, 'tools', 'dataset_converters',
                  'make_synthetic_data.py'),
         str(tmp_path), '--formats', 'imagenet', '--num-train', '3',
         '--num-val', '0', '--img-size', '64', '48'],
        capture_output=True, text=True, check=True)
    assert 'imagenet' in result.stdout
    image = cv2.imread(str(tmp_path / 'imagenet' / 'train' / 'circle' /
                           '000000.jpg'))
    assert image.shape == (48, 64, 3)
    with open(tmp_path / 'imagenet' / 'meta.json') as f:
        assert json.load(f)['img_size'] == [64, 48]
