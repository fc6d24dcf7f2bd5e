"""Time ``tools/train.py`` from its start to the first training iteration on
a large COCO-format dataset, with the image check (default) and with
``--no-image-check``, side by side.

The dataset (made once, reused when its ``meta.json`` matches): N JPEGs of
640x480 for training and N/20 for validation (COCO's proportion), copies
of a few synthetic scenes with their boxes and polygons, written quickly
(no encoding per file). The run is the detection quickstart config
(RetinaNet-M0) pointed at it. Each variant runs in a fresh process, the
variants alternating (A B, B A, ...), ``--repeat`` times; a run is stopped
once it logs its first iteration::

    python .dev_scripts/benchmark_startup.py --num-images 100000
"""
import argparse
import json
import os
import os.path as osp
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from typing import Dict, List

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))
REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

from evit_mm.datasets.synthetic import generate  # noqa: E402

BASE_CONFIG = osp.join(REPO_ROOT, 'configs', 'quickstart',
                       'retinanet_efficientvit-m0_synthetic.py')
FIRST_ITERATION = re.compile(r'Epoch\(train\)\s*\[1\]\[\s*1/')
VARIANTS = {'image check': [], '--no-image-check': ['--no-image-check']}
IMAGE_SIZE = (640, 480)


def _copy_split(source: str, root: str, split: str, count: int) -> None:
    """``count`` images for ``split``: the generated scenes of ``source``
    repeated, under new file names and ids."""
    with open(osp.join(source, 'annotations',
                       'instances_train.json')) as f:
        scenes = json.load(f)
    by_image = {image['id']: [] for image in scenes['images']}
    for ann in scenes['annotations']:
        by_image[ann['image_id']].append(ann)
    blobs = []
    for image in scenes['images']:
        with open(osp.join(source, 'train', image['file_name']), 'rb') as f:
            blobs.append((image, f.read()))
    os.makedirs(osp.join(root, split), exist_ok=True)
    images, annotations = [], []
    for index in range(count):
        image, blob = blobs[index % len(blobs)]
        name = f'{index:012d}.jpg'
        with open(osp.join(root, split, name), 'wb') as f:
            f.write(blob)
        images.append(dict(image, id=index + 1, file_name=name))
        for ann in by_image[image['id']]:
            annotations.append(dict(ann, id=len(annotations) + 1,
                                    image_id=index + 1))
    with open(osp.join(root, 'annotations', f'instances_{split}.json'),
              'w') as f:
        json.dump(dict(images=images, annotations=annotations,
                       categories=scenes['categories']), f)


def make_dataset(root: str, num_images: int, scenes: int) -> str:
    """The benchmark's COCO-format dataset in ``root`` (reused if made with
    the same arguments); returns ``root``."""
    meta = dict(num_images=num_images, scenes=scenes,
                img_size=list(IMAGE_SIZE))
    meta_file = osp.join(root, 'meta.json')
    if osp.exists(meta_file):
        with open(meta_file) as f:
            if json.load(f) == meta:
                return root
    shutil.rmtree(root, ignore_errors=True)
    source = osp.join(root, 'scenes')
    generate(source, formats=['coco'], num_train=scenes, num_val=0,
             img_size=IMAGE_SIZE)
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    for split, count in (('train', num_images),
                         ('val', max(1, num_images // 20))):
        _copy_split(osp.join(source, 'coco'), root, split, count)
    with open(meta_file, 'w') as f:
        json.dump(meta, f)
    return root


def write_config(root: str, path: str) -> str:
    """The quickstart RetinaNet-M0 config over the dataset in ``root``,
    logging every iteration."""
    with open(path, 'w') as f:
        f.write(f"""_base_ = {BASE_CONFIG!r}
data_root = {osp.abspath(root) + '/'!r}
train_dataloader = dict(dataset=dict(
    data_root=data_root, ann_file='annotations/instances_train.json',
    data_prefix=dict(img='train/')))
val_dataloader = dict(dataset=dict(
    data_root=data_root, ann_file='annotations/instances_val.json',
    data_prefix=dict(img='val/')))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
default_hooks = dict(logger=dict(interval=1))
""")
    return path


def time_to_first_iteration(config: str, work_dir: str,
                            options: List[str]) -> float:
    """Seconds from starting ``tools/train.py`` to its log of the first
    training iteration; the run is then stopped."""
    command = [sys.executable, osp.join(REPO_ROOT, 'tools', 'train.py'),
               config, '--work-dir', work_dir, *options]
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO_ROOT, text=True,
                               stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT,
                               start_new_session=True,
                               env=dict(os.environ, PYTHONPATH=REPO_ROOT))
    tail: List[str] = []
    try:
        for line in process.stdout:
            if FIRST_ITERATION.search(line):
                return time.perf_counter() - start
            tail = (tail + [line])[-30:]
        process.wait()
        raise RuntimeError(f'{" ".join(command)} ended (status '
                           f'{process.returncode}) before its first '
                           'iteration:\n' + ''.join(tail))
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        process.stdout.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--num-images', type=int, default=100000,
                        help='training images (validation: 1/20 of it)')
    parser.add_argument('--scenes', type=int, default=16,
                        help='distinct scenes the images are copies of')
    parser.add_argument('--data', default='work_dirs/startup_benchmark/data',
                        help='folder of the dataset (made or reused)')
    parser.add_argument('--work-dir', default='work_dirs/startup_benchmark',
                        help='folder of the runs\' work dirs and config')
    parser.add_argument('--repeat', type=int, default=2,
                        help='runs of each variant')
    parser.add_argument('--json', help='also write the timings here')
    args = parser.parse_args(argv)
    for name in ('num_images', 'scenes', 'repeat'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be at least 1, '
                         f'not {getattr(args, name)}')
    start = time.perf_counter()
    make_dataset(args.data, args.num_images, args.scenes)
    print(f'dataset {args.data}: {args.num_images} training images of '
          f'{IMAGE_SIZE[0]}x{IMAGE_SIZE[1]} (ready in '
          f'{time.perf_counter() - start:.0f} s)', flush=True)
    os.makedirs(args.work_dir, exist_ok=True)
    config = write_config(args.data, osp.join(args.work_dir, 'config.py'))
    times: Dict[str, List[float]] = {name: [] for name in VARIANTS}
    for run in range(args.repeat):
        # A B, then B A, ...: a machine getting busier or quieter during
        # the runs slows or speeds both variants alike.
        order = list(VARIANTS.items())[::-1 if run % 2 else 1]
        for name, options in order:
            seconds = time_to_first_iteration(
                config, osp.join(args.work_dir, f'run{run}'), options)
            times[name].append(seconds)
            print(f'run {run + 1}, {name}: {seconds:.1f} s', flush=True)
    medians = {name: statistics.median(t) for name, t in times.items()}
    ratio = medians['image check'] / medians['--no-image-check']
    print(f'\nstart to first iteration, {args.num_images} images, median '
          f'of {args.repeat}:')
    for name, seconds in medians.items():
        print(f'  {name:<18} {seconds:8.1f} s')
    print(f'  ratio              {ratio:8.3f}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(num_images=args.num_images, times=times,
                           medians=medians, ratio=ratio), f, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
