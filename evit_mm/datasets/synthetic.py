"""A small, deterministic synthetic dataset of shapes on cluttered backgrounds.

Every image is drawn from its own random generator, seeded by
``(seed, format, split, index)``, so the same arguments always give the same
files and asking for more images leaves the first ones unchanged. Objects are
filled polygons (a circle is a 48-gon) of the classes :data:`CLASSES`, with
random size, rotation and colour; they never overlap, so each instance mask is
exactly its polygon. The background is a colour gradient with noise, line
segments and arcs (clutter that belongs to no class).

Three layouts are written, each under its own folder of ``out_dir``:

* ``coco/``: ``{train,val}/*.jpg`` and ``annotations/instances_{train,val}.json``
  (COCO detection format: ``bbox`` as ``[x, y, w, h]``, polygon
  ``segmentation``, ``area``, ``iscrowd=0``; category ids 1..K);
* ``ade/``: ``images/{training,validation}/*.jpg`` and
  ``annotations/{training,validation}/*.png``, single-channel label maps
  where 0 is background and ``i`` (1..K) is ``CLASSES[i - 1]``. As with
  ADE20K, ``reduce_zero_label=True`` turns 0 into the ignore index 255 and
  the classes into 0..K-1; with ``reduce_zero_label=False`` the background is
  a class of its own (label 0) and there are K + 1 classes;
* ``imagenet/``: ``{train,val}/<class>/*.jpg``, one object per image, classes
  in equal numbers (folder names sorted alphabetically give the class
  indices of :data:`CLASSES`).

Each folder also gets a ``meta.json`` with the arguments that made it.
"""
import json
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

CLASSES: Tuple[str, ...] = ('circle', 'square', 'triangle')
FORMATS: Tuple[str, ...] = ('coco', 'ade', 'imagenet')
_SPLITS = {
    'coco': ('train', 'val'),
    'ade': ('training', 'validation'),
    'imagenet': ('train', 'val'),
}
_CIRCLE_VERTICES = 48
_SUBPIXEL_BITS = 4  # cv2.fillPoly draws at 1/16 pixel precision


@dataclass
class ShapeInstance:
    """One object: its class index (into :data:`CLASSES`) and its outline
    as a float ``(N, 2)`` array of ``(x, y)`` pixel coordinates."""
    label: int
    polygon: np.ndarray

    @property
    def bbox(self) -> List[float]:
        """``[x, y, w, h]`` of the outline."""
        x0, y0 = self.polygon.min(axis=0)
        x1, y1 = self.polygon.max(axis=0)
        return [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]

    @property
    def area(self) -> float:
        """Area enclosed by the outline (shoelace formula)."""
        x, y = self.polygon[:, 0], self.polygon[:, 1]
        return float(abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))) /
                     2)


@dataclass
class Scene:
    """An RGB ``uint8`` image and the objects drawn on it."""
    image: np.ndarray
    instances: List[ShapeInstance] = field(default_factory=list)


def shape_polygon(label: int, center: Sequence[float], radius: float,
                  angle: float) -> np.ndarray:
    """Outline of a class-``label`` shape inscribed in a circle.

    Args:
        label (int): Index into :data:`CLASSES`.
        center (Sequence[float]): ``(x, y)`` of the centre.
        radius (float): Circumradius in pixels.
        angle (float): Rotation in radians.

    Returns:
        np.ndarray: ``(N, 2)`` float vertices, counter-clockwise on screen.
    """
    if not 0 <= label < len(CLASSES):
        raise ValueError(f'label={label!r} is not a class index; allowed: '
                         f'0..{len(CLASSES) - 1} for {CLASSES}.')
    vertices = {'circle': _CIRCLE_VERTICES, 'square': 4, 'triangle': 3}
    count = vertices[CLASSES[label]]
    theta = angle + np.arange(count) * (2 * np.pi / count)
    return np.stack([center[0] + radius * np.cos(theta),
                     center[1] + radius * np.sin(theta)], axis=1)


def fill_polygon(canvas: np.ndarray, polygon: np.ndarray, value) -> None:
    """Fill ``polygon`` on ``canvas`` in place, with sub-pixel vertices."""
    points = np.round(polygon * (1 << _SUBPIXEL_BITS)).astype(np.int32)
    cv2.fillPoly(canvas, [points], value, lineType=cv2.LINE_8,
                 shift=_SUBPIXEL_BITS)


def draw_background(rng: np.random.Generator, width: int,
                    height: int) -> np.ndarray:
    """A cluttered RGB background: a two-colour gradient, Gaussian noise,
    thin line segments and arcs."""
    ramp = np.linspace(0., 1., width)[None, :, None] * np.cos(
        rng.uniform(0, np.pi)) + np.linspace(0., 1., height)[:, None, None] * \
        np.sin(rng.uniform(0, np.pi))
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    start, end = rng.uniform(0, 255, size=(2, 3))
    image = start + ramp * (end - start)
    image += rng.normal(0, 12, size=image.shape)
    image = np.clip(image, 0, 255).astype(np.uint8)
    side = min(width, height)
    for _ in range(int(rng.integers(4, 10))):
        p0 = rng.uniform(0, [width, height])
        p1 = p0 + rng.uniform(-0.5, 0.5, size=2) * side
        cv2.line(image, tuple(int(v) for v in p0), tuple(int(v) for v in p1),
                 _color(rng), int(rng.integers(1, 3)), cv2.LINE_AA)
    for _ in range(int(rng.integers(2, 6))):
        center = tuple(int(v) for v in rng.uniform(0, [width, height]))
        axes = tuple(int(v) for v in rng.uniform(0.05, 0.3, size=2) * side)
        start_angle = float(rng.uniform(0, 360))
        cv2.ellipse(image, center, axes, 0., start_angle,
                    start_angle + float(rng.uniform(60, 200)), _color(rng),
                    int(rng.integers(1, 3)), cv2.LINE_AA)
    return image


def _color(rng: np.random.Generator) -> Tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(0, 256, size=3))


def _contrasting_color(rng: np.random.Generator, image: np.ndarray,
                       polygon: np.ndarray) -> Tuple[int, int, int]:
    """A random colour at least 80 (L1 over RGB) away from the mean colour
    of the background under ``polygon`` (the best of 20 draws otherwise)."""
    mask = np.zeros(image.shape[:2], np.uint8)
    fill_polygon(mask, polygon, 1)
    under = image[mask.astype(bool)].mean(axis=0) if mask.any() else \
        image.reshape(-1, 3).mean(axis=0)
    best, best_gap = None, -1.
    for _ in range(20):
        color = rng.integers(0, 256, size=3)
        gap = float(np.abs(color - under).sum())
        if gap > best_gap:
            best, best_gap = color, gap
        if gap >= 80:
            break
    return tuple(int(v) for v in best)


def make_scene(rng: np.random.Generator,
               width: int,
               height: int,
               num_objects: Tuple[int, int] = (1, 6),
               size_range: Tuple[float, float] = (0.12, 0.35),
               labels: Sequence[int] = tuple(range(len(CLASSES)))) -> Scene:
    """Draw up to ``num_objects`` non-overlapping shapes on a background.

    Args:
        rng (np.random.Generator): Source of randomness.
        width (int): Image width.
        height (int): Image height.
        num_objects (tuple[int, int]): Inclusive range of objects to try to
            place; fewer are placed when the image is too crowded (at least
            one always is).
        size_range (tuple[float, float]): Range of an object's diameter as a
            fraction of ``min(width, height)``.
        labels (Sequence[int]): Class indices to draw from. Defaults to all.

    Returns:
        Scene: The image and its objects.
    """
    image = draw_background(rng, width, height)
    side = min(width, height)
    placed: List[Tuple[np.ndarray, float]] = []
    instances = []
    target = int(rng.integers(num_objects[0], num_objects[1] + 1))
    for _ in range(target * 30):
        if len(instances) == target:
            break
        radius = rng.uniform(*size_range) * side / 2
        center = rng.uniform([radius + 1, radius + 1],
                             [width - radius - 1, height - radius - 1])
        if any(np.hypot(*(center - c)) < radius + r + 2 for c, r in placed):
            continue
        label = int(labels[rng.integers(len(labels))])
        polygon = shape_polygon(label, center, radius,
                                rng.uniform(0, 2 * np.pi))
        fill_polygon(image, polygon, _contrasting_color(rng, image, polygon))
        placed.append((center, radius))
        instances.append(ShapeInstance(label, polygon))
    return Scene(image, instances)


def _check_args(width: int, height: int, counts: Dict[str, int],
                formats: Sequence[str]) -> None:
    if min(width, height) < 32:
        raise ValueError(f'Image size {width}x{height} is too small; both '
                         'sides must be at least 32 pixels.')
    for name, count in counts.items():
        if not isinstance(count, int) or count < 0:
            raise ValueError(f'{name}={count!r} must be a non-negative int.')
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ValueError(f'Unknown dataset format(s) {unknown or formats!r}; '
                         f'allowed: {list(FORMATS)}.')


def _rng(seed: int, fmt: str, split_index: int,
         index: int) -> np.random.Generator:
    return np.random.default_rng([seed, FORMATS.index(fmt), split_index,
                                  index])


def _write_rgb(path: str, image: np.ndarray) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    cv2.imwrite(path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 95])


def _coco_split(root: str, split: str, split_index: int, count: int,
                width: int, height: int, seed: int) -> None:
    images, annotations = [], []
    for index in range(count):
        scene = make_scene(_rng(seed, 'coco', split_index, index), width,
                           height)
        file_name = f'{index:06d}.jpg'
        _write_rgb(osp.join(root, split, file_name), scene.image)
        images.append(
            dict(id=index + 1, file_name=file_name, width=width,
                 height=height))
        for instance in scene.instances:
            annotations.append(
                dict(id=len(annotations) + 1, image_id=index + 1,
                     category_id=instance.label + 1,
                     bbox=[round(v, 2) for v in instance.bbox],
                     area=round(instance.area, 2),
                     segmentation=[[round(float(v), 2)
                                    for v in instance.polygon.ravel()]],
                     iscrowd=0))
    categories = [
        dict(id=i + 1, name=name, supercategory='shape')
        for i, name in enumerate(CLASSES)
    ]
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    with open(osp.join(root, 'annotations', f'instances_{split}.json'),
              'w') as f:
        json.dump(dict(images=images, annotations=annotations,
                       categories=categories), f)


def scene_label_map(scene: Scene) -> np.ndarray:
    """The ADE20K-layout label map of a scene: 0 for the background, each
    object's class + 1 inside its polygon (uint8, the image's size)."""
    label_map = np.zeros(scene.image.shape[:2], np.uint8)
    for instance in scene.instances:
        fill_polygon(label_map, instance.polygon, instance.label + 1)
    return label_map


def _ade_split(root: str, split: str, split_index: int, count: int,
               width: int, height: int, seed: int) -> None:
    os.makedirs(osp.join(root, 'annotations', split), exist_ok=True)
    for index in range(count):
        scene = make_scene(_rng(seed, 'ade', split_index, index), width,
                           height)
        label_map = scene_label_map(scene)
        _write_rgb(osp.join(root, 'images', split, f'{index:06d}.jpg'),
                   scene.image)
        cv2.imwrite(
            osp.join(root, 'annotations', split, f'{index:06d}.png'),
            label_map)


def _imagenet_split(root: str, split: str, split_index: int, count: int,
                    width: int, height: int, seed: int) -> None:
    for index in range(count):
        label = index % len(CLASSES)
        scene = make_scene(_rng(seed, 'imagenet', split_index, index), width,
                           height, num_objects=(1, 1),
                           size_range=(0.4, 0.9), labels=(label, ))
        _write_rgb(osp.join(root, split, CLASSES[label], f'{index:06d}.jpg'),
                   scene.image)


_WRITERS = {'coco': _coco_split, 'ade': _ade_split,
            'imagenet': _imagenet_split}


def generate(out_dir: str,
             formats: Sequence[str] = FORMATS,
             num_train: int = 200,
             num_val: int = 50,
             img_size: Tuple[int, int] = (256, 256),
             seed: int = 0,
             skip_existing: bool = False) -> Dict[str, str]:
    """Write the synthetic dataset in the given layouts.

    Args:
        out_dir (str): Root folder; each format goes to ``out_dir/<format>``.
        formats (Sequence[str]): Any of ``'coco'``, ``'ade'``,
            ``'imagenet'``.
        num_train (int): Training images per format.
        num_val (int): Validation images per format.
        img_size (tuple[int, int]): ``(width, height)`` of every image.
        seed (int): Seed; equal arguments give byte-identical files.
        skip_existing (bool): Leave a format's folder alone when its
            ``meta.json`` records these same arguments.

    Returns:
        dict: The folder of each format (written or kept).
    """
    width, height = img_size
    _check_args(width, height, dict(num_train=num_train, num_val=num_val),
                formats)
    written = {}
    for fmt in formats:
        root = osp.join(out_dir, fmt)
        meta = dict(format=fmt, classes=list(CLASSES), num_train=num_train,
                    num_val=num_val, img_size=[width, height], seed=seed)
        written[fmt] = root
        if skip_existing and _read_meta(root) == meta:
            continue
        for split_index, (split, count) in enumerate(
                zip(_SPLITS[fmt], (num_train, num_val))):
            _WRITERS[fmt](root, split, split_index, count, width, height,
                          seed)
        with open(osp.join(root, 'meta.json'), 'w') as f:
            json.dump(meta, f, indent=2)
    return written


def _read_meta(root: str) -> dict:
    try:
        with open(osp.join(root, 'meta.json')) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}
