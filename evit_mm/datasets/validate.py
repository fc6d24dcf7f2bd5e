"""Checks of a dataset in the synthetic generator's layouts (COCO json,
ADE20K-style PNG label maps, ImageNet-style class folders) before a run
uses it: every problem is a :class:`DatasetError` naming the file.

The toolboxes' own datasets fail late and vaguely on such data (a missing
image deep in a worker, a label id out of range as a CUDA assert or a
silently wrong loss), so this is meant to run first, from
``tools/analysis_tools/check_dataset.py``.
"""
import json
import os
import os.path as osp
from typing import Dict, Sequence

import cv2
import numpy as np

from .synthetic import _SPLITS, CLASSES, FORMATS


class DatasetError(ValueError):
    """A dataset file that is missing, empty or holds invalid labels."""


def _need(path: str, what: str) -> None:
    if not osp.exists(path):
        raise DatasetError(f'{what} not found: {path}')


def check_coco(root: str, split: str, classes: Sequence[str]) -> int:
    """Check ``root/annotations/instances_<split>.json`` and its images;
    returns the number of images."""
    ann_file = osp.join(root, 'annotations', f'instances_{split}.json')
    _need(ann_file, 'Annotation file')
    try:
        with open(ann_file) as f:
            data = json.load(f)
    except json.JSONDecodeError as err:
        raise DatasetError(f'{ann_file} is not valid JSON: {err}') from err
    images = data.get('images') or []
    if not images:
        raise DatasetError(f'Empty dataset: {ann_file} lists no images.')
    allowed = sorted(c['id'] for c in data.get('categories', []))
    if len(allowed) != len(classes):
        raise DatasetError(
            f'{ann_file} has {len(allowed)} categories, the classes are '
            f'{len(classes)}: {list(classes)}.')
    image_ids = {image['id'] for image in images}
    for ann in data.get('annotations', []):
        if ann.get('category_id') not in allowed:
            raise DatasetError(
                f'{ann_file}: annotation {ann.get("id")} has category_id '
                f'{ann.get("category_id")!r}; allowed: {allowed}.')
        if ann.get('image_id') not in image_ids:
            raise DatasetError(
                f'{ann_file}: annotation {ann.get("id")} refers to image_id '
                f'{ann.get("image_id")!r}, which is not in its images.')
    for image in images:
        _need(osp.join(root, split, image['file_name']), 'Image')
    return len(images)


def check_ade(root: str, split: str, classes: Sequence[str]) -> int:
    """Check ``root/images/<split>/*.jpg`` and their label maps
    ``root/annotations/<split>/*.png`` (values 0..len(classes)); returns the
    number of images."""
    image_dir = osp.join(root, 'images', split)
    _need(image_dir, 'Image folder')
    names = sorted(n for n in os.listdir(image_dir) if n.endswith('.jpg'))
    if not names:
        raise DatasetError(f'Empty dataset: no .jpg images in {image_dir}.')
    for name in names:
        label_file = osp.join(root, 'annotations', split,
                              name[:-len('.jpg')] + '.png')
        _need(label_file, 'Label map')
        label = cv2.imread(label_file, cv2.IMREAD_UNCHANGED)
        if label is None or label.ndim != 2:
            raise DatasetError(f'{label_file} is not a single-channel PNG '
                               'label map.')
        bad = np.unique(label[label > len(classes)])
        if bad.size:
            raise DatasetError(
                f'{label_file} has label values {bad.tolist()}; allowed: 0 '
                f'(background) and 1..{len(classes)} for {list(classes)}.')
    return len(names)


def check_imagenet(root: str, split: str, classes: Sequence[str]) -> int:
    """Check ``root/<split>/<class>/*.jpg``: only known class folders, at
    least one image; returns the number of images."""
    split_dir = osp.join(root, split)
    _need(split_dir, 'Split folder')
    unknown = sorted(set(os.listdir(split_dir)) - set(classes))
    if unknown:
        raise DatasetError(
            f'{split_dir} has folders {unknown} that are not classes; '
            f'allowed: {sorted(classes)}.')
    count = sum(
        len([n for n in os.listdir(osp.join(split_dir, c))
             if n.endswith('.jpg')])
        for c in classes if osp.isdir(osp.join(split_dir, c)))
    if not count:
        raise DatasetError(f'Empty dataset: no images in {split_dir}.')
    return count


_CHECKS = {'coco': check_coco, 'ade': check_ade, 'imagenet': check_imagenet}


def check_dataset(root: str,
                  fmt: str,
                  classes: Sequence[str] = CLASSES) -> Dict[str, int]:
    """Check both splits of a dataset in one of the generator's layouts.

    Args:
        root (str): The format's folder (e.g. ``data/synthetic/coco``).
        fmt (str): ``'coco'``, ``'ade'`` or ``'imagenet'``.
        classes (Sequence[str]): The class names; defaults to the
            generator's.

    Returns:
        dict: The number of images of each split.

    Raises:
        DatasetError: naming the missing or invalid file.
    """
    if fmt not in FORMATS:
        raise ValueError(f'Unknown dataset format {fmt!r}; allowed: '
                         f'{list(FORMATS)}.')
    _need(root, 'Dataset folder')
    return {split: _CHECKS[fmt](root, split, classes)
            for split in _SPLITS[fmt]}
