"""Accuracy per cost of models trained and tested by compare_backbones.sh:
reads each model's test metrics, times it (eager PyTorch, batch 1, eval
mode, on one validation image at the size its test pipeline gives, with
its post-processing), counts its parameters, and writes a markdown table
and a plot of accuracy against latency.

Example::

    python tools/analysis_tools/compare_backbones.py \\
        work_dirs/compare_backbones \\
        --detectors retinanet_efficientvit-m0 retinanet_r18 \\
        --segmentors fpn_efficientvit-m0 fpn_r18

Each ``WORK_DIR/NAME`` holds ``last_checkpoint`` and the config as trained
(written by tools/train.py) and ``test/`` (``tools/test.py --work-dir``: the config it ran, dumped with
its options, and ``TIMESTAMP/TIMESTAMP.json`` with the metrics).
"""
import argparse
import glob
import json
import os.path as osp
import sys
from typing import Callable, Dict, List

import torch

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from evit_mm.analysis.timing import interleaved, summary  # noqa: E402
from evit_mm.deploy import build_from_config  # noqa: E402

# The metric each task is ranked by, its key in the test metrics and the
# factor that turns it into percent (mmdet reports COCO AP in [0, 1], mmseg
# mIoU in percent).
METRICS = {
    'detection': ('bbox mAP', 'coco/bbox_mAP', 100.),
    'segmentation': ('mIoU', 'mIoU', 1.),
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('work_dir', help='the WORK_DIR of '
                        'compare_backbones.sh')
    parser.add_argument('--detectors', nargs='*', default=[],
                        metavar='NAME', help='detector folders in WORK_DIR')
    parser.add_argument('--segmentors', nargs='*', default=[],
                        metavar='NAME', help='segmentor folders in WORK_DIR')
    parser.add_argument('--runs', type=int, default=50,
                        help='timed calls per model')
    parser.add_argument('--warmup', type=int, default=5,
                        help='untimed calls per model first')
    args = parser.parse_args(argv)
    if not args.detectors and not args.segmentors:
        parser.error('name at least one model with --detectors or '
                     '--segmentors')
    if args.runs < 1:
        parser.error(f'--runs must be at least 1, got {args.runs}')
    return args


def _only_file(pattern: str, what: str) -> str:
    found = sorted(glob.glob(pattern))
    if len(found) != 1:
        raise FileNotFoundError(
            f'expected one {what} matching {pattern}, found {found}')
    return found[0]


def test_metrics(model_dir: str) -> dict:
    """The metrics ``tools/test.py --work-dir MODEL_DIR/test`` wrote.

    Args:
        model_dir (str): ``WORK_DIR/NAME``.

    Raises:
        FileNotFoundError: when there is not exactly one test run in it.
    """
    path = _only_file(osp.join(model_dir, 'test', '*', '*.json'),
                      'test metrics file')
    with open(path) as f:
        return json.loads(f.readline())


def load_model(model_dir: str):
    """The tested model (config as tools/test.py dumped it, last training
    checkpoint), in eval mode, and one preprocessed validation image.

    Args:
        model_dir (str): ``WORK_DIR/NAME``.

    Returns:
        tuple: the model, its config and the ``(inputs, data_samples)``
        its ``predict`` mode takes.
    """
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import DATASETS

    config = _only_file(osp.join(model_dir, 'test', '*.py'), 'test config')
    with open(osp.join(model_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    model = build_from_config(config, checkpoint)  # sets the default scope
    cfg = Config.fromfile(config)
    sample = DATASETS.build(cfg.test_dataloader.dataset)[0]
    with torch.no_grad():
        data = model.data_preprocessor(pseudo_collate([sample]), False)
    return model, cfg, (data['inputs'], data['data_samples'])


def training_budget(model_dir: str) -> str:
    """How long the model was trained, as the config tools/train.py dumped
    into ``model_dir`` (with its options) says.

    Args:
        model_dir (str): ``WORK_DIR/NAME``.
    """
    from mmengine.config import Config

    cfg = Config.fromfile(_only_file(osp.join(model_dir, '*.py'),
                                     'training config'))
    loop = cfg.train_cfg
    length, unit = ((loop.max_epochs, 'epoch') if 'max_epochs' in loop else
                    (loop.max_iters, 'iteration'))
    plural = '' if length == 1 else 's'
    batch = cfg.train_dataloader.batch_size
    return f'{length} {unit}{plural} at batch {batch}'


def predict_call(model, inputs, data_samples) -> Callable[[], object]:
    """One batch-1 inference with the model's post-processing."""

    def call():
        with torch.no_grad():
            return model(inputs, data_samples, mode='predict')

    return call


def measure(work_dir: str, task: str, names: List[str], runs: int,
            warmup: int) -> List[dict]:
    """One row per model of a task: accuracy, latency, params; the models
    of the task are timed interleaved.

    Args:
        work_dir (str): The WORK_DIR of compare_backbones.sh.
        task (str): A key of :data:`METRICS`.
        names (list[str]): Model folders in ``work_dir``.
        runs (int): Timed calls per model.
        warmup (int): Untimed calls per model first.
    """
    label, key, scale = METRICS[task]
    rows, calls = [], {}
    for name in names:
        model_dir = osp.join(work_dir, name)
        metrics = test_metrics(model_dir)
        if key not in metrics:
            raise KeyError(f'{model_dir}: the test metrics have no {key!r} '
                           f'(got {sorted(metrics)})')
        model, cfg, (inputs, samples) = load_model(model_dir)
        calls[name] = predict_call(model, inputs, samples)
        rows.append(dict(
            task=task, model=name, backbone=cfg.model.backbone.type,
            trained=training_budget(model_dir), metric=label,
            accuracy=metrics[key] * scale,
            input_size='x'.join(map(str, inputs.shape[-2:])),
            params_m=sum(p.numel() for p in model.parameters()) / 1e6))
    times = interleaved(calls, warmup, runs)
    for row in rows:
        row.update(summary(times[row['model']]))
        row['img_per_s'] = 1e3 / row['median_ms']
    return rows


def markdown_table(rows: List[dict]) -> str:
    """The comparison as a markdown table, after a line that says how each
    task's models were trained."""
    budgets = {r['task']: r['trained'] for r in rows}
    lines = [
        'Trained: ' +
        ', '.join(f'{task} {budget}' for task, budget in budgets.items()) +
        '.', '',
        '| task | model | backbone | accuracy (val) | input | latency ms '
        '(median, p10-p90) | img/s | params (M) |',
        '|---|---|---|---|---|---|---|---|'
    ]
    for r in rows:
        lines.append(
            f"| {r['task']} | {r['model']} | {r['backbone']} | "
            f"{r['metric']} {r['accuracy']:.1f} | {r['input_size']} | "
            f"{r['median_ms']:.1f} ({r['p10_ms']:.1f}-{r['p90_ms']:.1f}) | "
            f"{r['img_per_s']:.1f} | {r['params_m']:.2f} |")
    return '\n'.join(lines) + '\n'


def plot(rows: List[dict], path: str) -> None:
    """Accuracy against latency, one labelled point per model and one panel
    per task, saved as a PNG."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(r['task'] for r in rows))
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.5 * len(tasks), 3.6),
                             squeeze=False)
    for ax, task in zip(axes[0], tasks):
        task_rows = [r for r in rows if r['task'] == task]
        for r in task_rows:
            ax.scatter(r['median_ms'], r['accuracy'])
            ax.annotate(r['model'], (r['median_ms'], r['accuracy']),
                        textcoords='offset points', xytext=(4, 4),
                        fontsize=8)
        ax.set_xlabel(f"latency (ms, batch 1, {task_rows[0]['input_size']})")
        ax.set_ylabel(f"val {task_rows[0]['metric']}")
        ax.set_title(task)
        ax.margins(0.25)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv=None) -> List[dict]:
    args = parse_args(argv)
    rows: List[dict] = []
    tasks: Dict[str, List[str]] = dict(
        detection=args.detectors, segmentation=args.segmentors)
    for task, names in tasks.items():
        if names:
            rows += measure(args.work_dir, task, names, args.runs,
                            args.warmup)
    table = markdown_table(rows)
    out = osp.join(args.work_dir, 'compare_backbones')
    with open(out + '.md', 'w') as f:
        f.write(table)
    with open(out + '.json', 'w') as f:
        json.dump(rows, f, indent=1)
    plot(rows, out + '.png')
    print(table)
    print(f'table: {out}.md, rows: {out}.json, plot: {out}.png '
          f'({torch.get_num_threads()} threads)')
    return rows


if __name__ == '__main__':
    main()
