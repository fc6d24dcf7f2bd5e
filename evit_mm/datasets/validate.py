"""Checks of the datasets a config points at, before a run uses them:
COCO-format detection (mmdet), segmentation label maps (mmseg: ADE20K and
the other ``BaseSegDataset`` layouts), classification (mmpretrain:
ImageNet-style class folders or an annotation file). Each problem is one
line naming the file.

The toolboxes fail late and vaguely on such data (a missing image deep in
a dataloader worker, a label id out of range as a CUDA assert or a silently
wrong loss), and some mistakes they take silently: a class name of the
config that is not a category of the COCO file leaves that class without
any box. Each dataset is built the way the run builds it (its toolbox
parses the annotations), so what is checked is what the run would read.
"""
import json
import os.path as osp
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import cv2
import numpy as np
from mmengine.config import Config, ConfigDict
from mmengine.registry import DATASETS, init_default_scope

from .checked import map_datasets, unusable

DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


class DatasetError(ValueError):
    """A config whose datasets cannot be checked (none found, an unknown
    dataloader)."""


@dataclass
class DatasetReport:
    """What :func:`check_config_datasets` found in one dataset: where it
    is (``dataloader`` and its type), how many samples it has, and the
    problems, one line each naming the file."""
    dataloader: str
    dataset: str
    samples: int = 0
    problems: List[str] = field(default_factory=list)


def _ann_file(dataset: dict) -> Optional[str]:
    ann_file = dataset.get('ann_file')
    if not ann_file:
        return None
    return osp.join(dataset.get('data_root') or '', ann_file)


def check_coco_json(ann_file: str, classes: Sequence[str]) -> List[str]:
    """The problems of a COCO annotation file: unreadable, not the COCO
    layout, a class of the config that is not a category, annotations of
    unknown categories or images, malformed boxes, repeated ids."""
    try:
        with open(ann_file) as f:
            data = json.load(f)
    except OSError as err:
        return [f'{ann_file}: cannot be read: {err.strerror or err}']
    except ValueError as err:
        return [f'{ann_file}: not valid JSON: {err}']
    missing = [key for key in ('images', 'annotations', 'categories')
               if not isinstance(data.get(key), list)]
    if missing:
        return [f'{ann_file}: not a COCO annotation file: no {missing} '
                'list']
    problems = []
    names = {c.get('name'): c.get('id') for c in data['categories']}
    absent = [c for c in classes if c not in names]
    if absent:
        problems.append(
            f'{ann_file}: classes {absent} of the config are not categories '
            f'of the file (its categories: {sorted(names, key=str)})')
    image_ids = [image.get('id') for image in data['images']]
    if len(set(image_ids)) < len(image_ids):
        problems.append(f'{ann_file}: {len(image_ids) - len(set(image_ids))}'
                        ' image ids are repeated')
    image_ids, category_ids = set(image_ids), set(names.values())
    for ann in data['annotations']:
        where = f'{ann_file}: annotation {ann.get("id")}'
        if ann.get('category_id') not in category_ids:
            problems.append(f'{where} has category_id '
                            f'{ann.get("category_id")!r}; allowed: '
                            f'{sorted(category_ids)}')
        if ann.get('image_id') not in image_ids:
            problems.append(f'{where} refers to image_id '
                            f'{ann.get("image_id")!r}, which is not among '
                            'the images')
        bbox = ann.get('bbox')
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(
                isinstance(v, (int, float)) for v in bbox)
                and bbox[2] >= 0 and bbox[3] >= 0):
            problems.append(f'{where} has bbox {bbox!r}; a box is [x, y, '
                            'width, height] with width, height >= 0')
    return problems


def _label_map_problems(path: str, dataset) -> List[str]:
    label = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if label is None or label.ndim != 2:
        return [f'{path}: not a single-channel label map']
    num_classes = len(dataset.metainfo['classes'])
    ignore = dataset.ignore_index
    values = np.unique(label).astype(np.int64)
    if dataset.reduce_zero_label:
        # As mmseg's LoadAnnotations: 0 becomes 255, the rest minus 1.
        values = np.where(values == 0, 255, values - 1)
        values = np.where(values == 254, 255, values)
    bad = sorted(int(v) for v in values if v >= num_classes and v != ignore)
    if not bad:
        return []
    shift = ' after reduce_zero_label (stored values minus 1)' \
        if dataset.reduce_zero_label else ''
    return [f'{path}: label values {bad}{shift} are outside 0..'
            f'{num_classes - 1} ({num_classes} classes) and not the '
            f'ignore index {ignore}']


def _labels(info: dict) -> List[int]:
    labels = [i['bbox_label'] for i in info.get('instances', [])
              if 'bbox_label' in i]
    gt_label = info.get('gt_label')
    if gt_label is not None:
        labels += np.atleast_1d(np.asarray(gt_label)).tolist()
    return [int(v) for v in labels]


def check_samples(dataset,
                  check_images: bool = False,
                  max_pixels: Optional[int] = None) -> List[str]:
    """The problems of a built dataset's samples: missing (or, with
    ``check_images``, unusable) image files, segmentation label maps
    missing or with values outside the classes, class labels outside the
    classes."""
    problems = []
    classes = dataset.metainfo.get('classes') or ()
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        for key in ('img_path', 'seg_map_path'):
            path = info.get(key)
            if not path:
                continue
            reason = unusable(path, max_pixels) if check_images else None
            if reason is not None:
                problems.append(f'{path}: {reason}')
                continue
            if not osp.isfile(path):
                problems.append(f'{path}: no such file')
                continue
            if key == 'seg_map_path':
                problems += _label_map_problems(path, dataset)
        bad = [v for v in _labels(info) if classes and
               not 0 <= v < len(classes)]
        if bad:
            problems.append(f'{info.get("img_path")}: labels {bad} are '
                            f'outside 0..{len(classes) - 1} '
                            f'({len(classes)} classes)')
    if not len(dataset):
        problems.append('the dataset has no samples')
    return problems


def _check_dataset(dataloader: str, dataset: dict, scope: str,
                   check_images: bool,
                   max_pixels: Optional[int]) -> DatasetReport:
    report = DatasetReport(dataloader, str(dataset.get('type')))
    ann_file = _ann_file(dataset)
    coco = scope == 'mmdet' and bool(ann_file) and ann_file.endswith('.json')
    try:
        built = DATASETS.build(ConfigDict(dataset, pipeline=[],
                                          lazy_init=False))
    except Exception as err:  # the toolbox's own message, kept whole
        if coco:
            report.problems += check_coco_json(ann_file, ())
        report.problems.append(
            f'{report.dataset} cannot be built: {type(err).__name__}: {err}')
        return report
    if coco:
        report.problems += check_coco_json(ann_file,
                                           built.metainfo['classes'])
    report.samples = len(built)
    report.problems += check_samples(built, check_images, max_pixels)
    return report


def check_config_datasets(cfg: Config,
                          dataloaders: Sequence[str] = DATALOADERS,
                          check_images: bool = False,
                          max_pixels: Optional[int] = None
                          ) -> List[DatasetReport]:
    """Check the datasets of ``cfg``'s ``dataloaders``.

    Args:
        cfg (Config): A training or test config (mmdet, mmseg or
            mmpretrain: its ``default_scope``).
        dataloaders (Sequence[str]): Which ones; a dataloader the config
            sets to None is left out, one it lacks is an error.
        check_images (bool): Check every image and label map file with
            :func:`~evit_mm.datasets.images.check_image` (one decode each)
            instead of only that it exists.
        max_pixels (int, optional): The pixel limit of ``check_images``.

    Returns:
        list[DatasetReport]: One per dataset (a wrapper's inner datasets
        each).

    Raises:
        DatasetError: for a dataloader the config lacks, or when none of
            them has a dataset.
    """
    scope = cfg.get('default_scope')
    init_default_scope(scope)
    reports = []
    for name in dataloaders:
        if name not in cfg:
            raise DatasetError(f'The config has no {name}; it has: '
                               f'{[k for k in DATALOADERS if k in cfg]}.')
        loader = cfg.get(name)
        if not loader or 'dataset' not in loader:
            continue
        inner: List[dict] = []
        map_datasets(loader.dataset, inner.append)
        reports += [_check_dataset(name, dataset, scope, check_images,
                                   max_pixels) for dataset in inner]
    if not reports:
        raise DatasetError(f'None of {list(dataloaders)} in the config has a '
                           'dataset.')
    return reports
