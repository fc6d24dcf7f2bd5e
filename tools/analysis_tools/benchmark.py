"""Benchmark EfficientViT on the CPU, side by side with timm's
``efficientvit_mX`` as the reference, in one run.

1. Classifier throughput (224x224, eval) for each arch and batch size:
   timm, evit_mm, evit_mm deploy (Conv-BN fused) and evit_mm through
   onnxruntime (deploy graph), all with the same weights (timm's, converted);
   the largest relative output difference to timm is printed beside.
2. Dense-prediction backbone (window 7): time and peak memory of eval and of
   a training step (forward + backward), evit_mm with and without
   ``with_cp``, timm's backbone as the reference.
3. Whole models, batch 1, eval, random weights: RetinaNet and Semantic FPN
   with EfficientViT beside the stock mmdet / mmseg models with ResNet-18
   and MobileNetV2, and the real-time models, RTMDet and SegFormer with
   EfficientViT, beside the stock RTMDet-tiny, RTMDet-s and SegFormer-B0;
   in PyTorch, ONNX Runtime and OpenVINO (mmdeploy's export,
   post-processing in the graph): img/s, the share of the time spent in the
   backbone (timed alone on the same input), parameters and FLOPs, and the
   speed against each family's peer (RetinaNet-R18, Semantic FPN-R18,
   RTMDet-tiny, SegFormer-B0) on the same backend.

Timings interleave the variants (one call of each in turn, the order rotated
every round) so that a busy machine slows all of them alike; the median and
the 10th-90th percentile spread are printed. GFLOP/s count 2 FLOPs per
multiply-accumulate and are printed beside this machine's fp32 matrix
multiply rate, measured in the same run.

Usage:
    python tools/analysis_tools/benchmark.py [--threads N] [--json out.json]
    python tools/analysis_tools/benchmark.py --archs m0 m4 --batch-sizes 1 \\
        --skip-dense
    python tools/analysis_tools/benchmark.py --skip-classifier --skip-dense \\
        --models retinanet-m0 retinanet-r18 --det-sizes 800x1333
    python tools/analysis_tools/benchmark.py --skip-classifier --skip-dense \\
        --models rtmdet-m0 rtmdet-m4 rtmdet-tiny rtmdet-s segformer-m0 \\
        segformer-b0
"""
import argparse
import copy
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
from typing import Dict, List, Optional

import torch
import torch.nn as nn

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from evit_mm.analysis import count_complexity, whole_model  # noqa: E402
from evit_mm.analysis.memory import peak_memory_mib  # noqa: E402
from evit_mm.analysis.numerics import (randomize_statistics,  # noqa: E402
                                      relative_error)
from evit_mm.analysis.timing import (available_cpus, environment,  # noqa: E402
                                     interleaved, matmul_rates, ort_timer,
                                     summary, use_threads)
from evit_mm.deploy import export_onnx  # noqa: E402
from evit_mm.deploy.work_dir import BACKENDS  # noqa: E402
from evit_mm.models import EfficientViT, EfficientViTClassifier  # noqa: E402

GOAL_DEPLOY = 1.3
GOAL_BEST = 2.0
GOAL_CP_SAVING = 0.30

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
# The whole models: EfficientViT's (the COCO / ADE20K configs, the
# quickstart ones and a lighter neck and head) and the peers an mmdet /
# mmseg user would take instead (the stock configs, configs/baselines/).
# A name's first word is its family (FAMILIES).
DETECTORS = {
    'retinanet-m0':
    'configs/retinanet/retinanet_efficientvit-m0_fpn_1x_coco.py',
    'retinanet-m0-fpn128':
    'configs/retinanet/retinanet_efficientvit-m0_fpn-128_1x_coco.py',
    'retinanet-m0-quickstart':
    'configs/quickstart/retinanet_efficientvit-m0_synthetic.py',
    'retinanet-m4':
    'configs/retinanet/retinanet_efficientvit-m4_fpn_1x_coco.py',
    'retinanet-r18': 'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py',
    'retinanet-mobilenetv2':
    'configs/baselines/retinanet_mobilenet-v2_fpn_1x_coco.py',
    'rtmdet-m0': 'configs/rtmdet/rtmdet_efficientvit-m0_8xb32-300e_coco.py',
    'rtmdet-m4': 'configs/rtmdet/rtmdet_efficientvit-m4_8xb32-300e_coco.py',
    'rtmdet-tiny': 'mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py',
    'rtmdet-s': 'mmdet::rtmdet/rtmdet_s_8xb32-300e_coco.py',
}
SEGMENTORS = {
    'fpn-m0': 'configs/sem_fpn/fpn_efficientvit-m0_4xb8-40k_ade20k-512x512.py',
    'fpn-m0-quickstart': 'configs/quickstart/fpn_efficientvit-m0_synthetic.py',
    'fpn-m4': 'configs/sem_fpn/fpn_efficientvit-m4_4xb8-40k_ade20k-512x512.py',
    'fpn-r18': 'configs/baselines/fpn_r18_4xb4-160k_ade20k-512x512.py',
    'fpn-mobilenetv2':
    'configs/baselines/fpn_mobilenet-v2_4xb4-160k_ade20k-512x512.py',
    'segformer-m0':
    'configs/segformer/segformer_efficientvit-m0_8xb2-160k_ade20k-512x512.py',
    'segformer-m4':
    'configs/segformer/segformer_efficientvit-m4_8xb2-160k_ade20k-512x512.py',
    'segformer-b0':
    'mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py',
    'upernet-m0':
    'configs/upernet/upernet_efficientvit-m0_4xb4-160k_ade20k-512x512.py',
}
# Per family: the peer every model is compared with and the image sizes
# (H, W) timed by default: the quickstart size and the size of the
# published results (COCO 800x1333 for RetinaNet, 640x640 for RTMDet,
# ADE20K crops of 512x512).
FAMILIES = {
    'retinanet': dict(peer='retinanet-r18', sizes=[(192, 192), (800, 1333)]),
    'rtmdet': dict(peer='rtmdet-tiny', sizes=[(192, 192), (640, 640)]),
    'fpn': dict(peer='fpn-r18', sizes=[(256, 256), (512, 512)]),
    'segformer': dict(peer='segformer-b0', sizes=[(256, 256), (512, 512)]),
    # No stock UperNet is timed beside it.
    'upernet': dict(peer=None, sizes=[(256, 256), (512, 512)]),
}
# Deployed speed against the family's peer (same backend, the family's
# largest size timed) that these EfficientViT models are to reach.
GOALS_VS_PEER = {
    'retinanet-m0': 1.5,
    'retinanet-m0-fpn128': 1.5,
    'rtmdet-m0': 2.0,
    'rtmdet-m4': 1.3,
    'segformer-m0': 3.0,
}


def family(model: str) -> str:
    """The family of a whole model's name (its first word)."""
    return model.split('-')[0]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.splitlines()[1:]))
    archs = sorted(EfficientViT.arch_zoo)
    parser.add_argument('--archs', nargs='+', default=archs, choices=archs)
    parser.add_argument(
        '--batch-sizes', type=int, nargs='+', default=[1, 16])
    parser.add_argument(
        '--threads',
        type=int,
        default=available_cpus(),
        help='intra-op threads for torch and onnxruntime (default: the CPUs '
        'this process may use)')
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument(
        '--repeats', type=int, default=40, help='timed rounds (classifier)')
    parser.add_argument(
        '--no-ort', action='store_true', help='skip ONNX Runtime')
    parser.add_argument(
        '--no-openvino', action='store_true',
        help='skip OpenVINO (whole models)')
    parser.add_argument('--skip-classifier', action='store_true')
    parser.add_argument('--skip-dense', action='store_true')
    parser.add_argument('--dense-archs', nargs='+', default=['m4'],
                        choices=archs)
    parser.add_argument(
        '--dense-shapes',
        nargs='+',
        default=['1x800x1333', '8x512x512'],
        help='BxHxW inputs of the dense benchmark')
    parser.add_argument('--dense-repeats', type=int, default=5)
    parser.add_argument('--skip-models', action='store_true')
    parser.add_argument(
        '--models',
        nargs='+',
        default=[*DETECTORS, *SEGMENTORS],
        choices=[*DETECTORS, *SEGMENTORS],
        help='whole models to time (default: all)')
    parser.add_argument(
        '--det-sizes',
        nargs='+',
        help='HxW images of all the detectors (default: per family, the '
        'quickstart size 192x192 and COCO: 800x1333 for RetinaNet, 640x640 '
        'for RTMDet)')
    parser.add_argument(
        '--seg-sizes',
        nargs='+',
        help='HxW images of all the segmentors (default: the quickstart '
        'size 256x256 and ADE20K 512x512)')
    parser.add_argument(
        '--graph-tail', action='store_true',
        help='segmentors: also time the deployed graph that draws the label '
        "map itself (backend '<backend>+graph-tail'), beside the default "
        "graph ending at the head's logits and the exact tail after it")
    parser.add_argument('--model-warmup', type=int, default=1)
    parser.add_argument(
        '--model-repeats', type=int, default=5,
        help='timed rounds (whole models)')
    parser.add_argument('--json', help='also write all numbers to this file')
    parser.add_argument('--memory-probe', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ('threads', 'repeats', 'dense_repeats', 'model_repeats'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1.')
    if min(args.warmup, args.model_warmup) < 0 or min(args.batch_sizes) < 1:
        parser.error('--warmup and --model-warmup must be >= 0 and batch '
                     'sizes >= 1.')
    args.dense_shapes = parse_shapes(parser, '--dense-shapes',
                                     args.dense_shapes, 'BxHxW')
    for flag in ('det_sizes', 'seg_sizes'):
        if getattr(args, flag) is not None:
            setattr(args, flag, parse_shapes(
                parser, f'--{flag.replace("_", "-")}', getattr(args, flag),
                'HxW'))
    return args


def parse_shapes(parser: argparse.ArgumentParser, flag: str,
                 values: List[str], pattern: str) -> List[tuple]:
    """``values`` written as ``pattern`` (e.g. ``BxHxW``) as tuples of
    positive integers; a parser error naming ``flag`` otherwise."""
    try:
        shapes = [tuple(int(v) for v in s.lower().split('x')) for s in values]
    except ValueError:
        shapes = []
    if not shapes or any(
            len(s) != len(pattern.split('x')) or min(s) < 1 for s in shapes):
        parser.error(f'{flag} {values}: use {pattern}.')
    return shapes


# ------------------------------------------------------------- classifiers
def classifier_models(arch: str) -> Dict[str, nn.Module]:
    """timm's classifier and evit_mm's with the same (timm's) weights."""
    import timm
    reference = randomize_statistics(
        timm.create_model(f'efficientvit_{arch}')).eval()
    ours = EfficientViTClassifier(arch)
    ours.load_state_dict(reference.state_dict())
    ours.eval()
    deploy = copy.deepcopy(ours)
    deploy.switch_to_deploy()
    return {'timm': reference, 'evit_mm': ours, 'evit_mm deploy': deploy}


def bench_classifiers(args: argparse.Namespace, mm_gflops: float) -> list:
    rows = []
    for arch in args.archs:
        models = classifier_models(arch)
        macs = count_complexity(models['evit_mm deploy'],
                                (torch.zeros(1, 3, 224, 224), ))['flops']
        for batch in args.batch_sizes:
            x = torch.randn(batch, 3, 224, 224)
            fns = {name: (lambda m=model: m(x))
                   for name, model in models.items()}
            if not args.no_ort:
                fns['evit_mm onnxruntime'] = ort_timer(
                    export_onnx(models['evit_mm deploy'], x, ['logits'],
                                dynamic=False), {'input': x}, args.threads)
            with torch.inference_mode():
                outputs = {name: torch.as_tensor(
                    fn()[0] if name.endswith('onnxruntime') else fn())
                    for name, fn in fns.items()}
                times = interleaved(fns, args.warmup, args.repeats)
            base = statistics.median(times['timm'])
            for name, samples in times.items():
                row = dict(arch=arch, batch=batch, variant=name,
                           **summary(samples))
                seconds = row['median_ms'] / 1e3
                row.update(
                    img_per_s=batch / seconds,
                    gflops=2 * macs * batch / seconds / 1e9,
                    speedup_vs_timm=base / seconds,
                    rel_err_vs_timm=relative_error(outputs[name],
                                                   outputs['timm']))
                row['pct_of_matmul'] = 100 * row['gflops'] / mm_gflops
                rows.append(row)
                print_classifier_row(row)
    return rows


def print_classifier_row(row: dict) -> None:
    print(f'{row["arch"]:<4} {row["batch"]:>3}  {row["variant"]:<20}'
          f'{row["median_ms"]:>9.2f} ({row["p10_ms"]:>7.2f}-'
          f'{row["p90_ms"]:>7.2f}){row["img_per_s"]:>9.1f}'
          f'{row["gflops"]:>9.1f}{row["pct_of_matmul"]:>6.0f}%'
          f'{row["speedup_vs_timm"]:>8.2f}x{row["rel_err_vs_timm"]:>10.1e}',
          flush=True)


# ------------------------------------------------------------------ dense
class TimmBackbone(nn.Module):
    """timm's EfficientViT as a backbone (7x7 windows): its stage maps."""

    def __init__(self, arch: str) -> None:
        super().__init__()
        import timm
        self.model = timm.create_model(f'efficientvit_{arch}', img_size=448)

    def forward(self, x: torch.Tensor):
        return self.model.forward_intermediates(x, intermediates_only=True)


def train_step(model: nn.Module, x: torch.Tensor) -> None:
    """Forward, a loss touching every output, backward."""
    model.zero_grad(set_to_none=True)
    loss = sum(out.float().mean() for out in model(x))
    loss.backward()


def dense_models(arch: str) -> Dict[str, nn.Module]:
    reference = randomize_statistics(TimmBackbone(arch))
    ours = EfficientViT(arch)
    with_cp = EfficientViT(arch, with_cp=True)
    weights = randomize_statistics(ours).state_dict()
    with_cp.load_state_dict(weights)
    deploy = copy.deepcopy(ours).eval()
    deploy.switch_to_deploy()
    return dict(reference=reference, ours=ours, with_cp=with_cp,
                deploy=deploy)


def dense_cases(models: Dict[str, nn.Module], x: torch.Tensor) -> list:
    """(mode, variant, function) of the dense benchmark."""
    return [
        ('eval', 'timm', lambda: models['reference'](x)),
        ('eval', 'evit_mm', lambda: models['ours'](x)),
        ('eval', 'evit_mm deploy', lambda: models['deploy'](x)),
        ('train', 'timm', lambda: train_step(models['reference'], x)),
        ('train', 'evit_mm', lambda: train_step(models['ours'], x)),
        ('train', 'evit_mm with_cp', lambda: train_step(models['with_cp'], x)),
    ]


def run_mode(models: Dict[str, nn.Module], mode: str) -> type:
    """Put the models in ``mode`` and return the matching grad context."""
    for model in models.values():
        model.train(mode == 'train' and not getattr(model, 'deploy', False))
    return torch.inference_mode if mode == 'eval' else torch.enable_grad


def bench_dense(args: argparse.Namespace, mm_gflops: float) -> list:
    """Time every case, then measure its peak memory (one process per
    case); print the rows at the end."""
    rows = []
    for arch in args.dense_archs:
        models = dense_models(arch)
        for batch, height, width in args.dense_shapes:
            x = torch.randn(batch, 3, height, width)
            macs = count_complexity(models['deploy'],
                                    (x[:1], ))['flops'] * batch
            cases = dense_cases(models, x)
            for mode in ('eval', 'train'):
                fns = {name: fn for m, name, fn in cases if m == mode}
                with run_mode(models, mode)():
                    times = interleaved(fns, 1, args.dense_repeats)
                for name, samples in times.items():
                    row = dict(arch=arch, shape=[batch, 3, height, width],
                               mode=mode, variant=name, **summary(samples))
                    flops = 2 * macs * (3 if mode == 'train' else 1)
                    row['gflops'] = flops / (row['median_ms'] / 1e3) / 1e9
                    row['pct_of_matmul'] = 100 * row['gflops'] / mm_gflops
                    rows.append(row)
    for row in rows:
        row['peak_mib'] = probe_memory(row, args.threads)
        print_dense_row(row)
    return rows


def probe_memory(row: dict, threads: int) -> Optional[float]:
    """Peak memory of one dense case, in a fresh process whose glibc returns
    every freed block of 64 KiB or more to the system at once, so that the
    resident size follows the live tensors (in a process that has run for a
    while, freed heap memory stays resident and the peak depends on its
    fragmentation)."""
    batch, _, height, width = row['shape']
    command = [
        sys.executable,
        os.path.abspath(__file__), '--threads',
        str(threads), '--memory-probe',
        f'{row["arch"]},{batch}x{height}x{width},{row["mode"]},'
        f'{row["variant"]}'
    ]
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_='65536')
    done = subprocess.run(command, capture_output=True, text=True, env=env,
                          check=False)
    if done.returncode:
        raise RuntimeError(f'memory probe {command} failed:\n'
                           f'{done.stderr[-2000:]}')
    return json.loads(done.stdout.strip().splitlines()[-1])['peak_mib']


def memory_probe(spec: str) -> dict:
    """In the probe process: build the case ``arch,BxHxW,mode,variant``,
    run it once, then measure one more call."""
    arch, shape, mode, variant = spec.split(',')
    batch, height, width = (int(v) for v in shape.split('x'))
    models = dense_models(arch)
    x = torch.randn(batch, 3, height, width)
    step = next(fn for m, name, fn in dense_cases(models, x)
                if m == mode and name == variant)
    with run_mode(models, mode)():
        step()
        return dict(peak_mib=peak_memory_mib(step))


def print_dense_row(row: dict) -> None:
    shape = 'x'.join(map(str, row['shape']))
    memory = 'n/a' if row['peak_mib'] is None else f'{row["peak_mib"]:.0f}'
    print(f'{row["arch"]:<4} {shape:<13} {row["mode"]:<6}'
          f'{row["variant"]:<17}{row["median_ms"]:>9.1f} '
          f'({row["p10_ms"]:>8.1f}-{row["p90_ms"]:>8.1f}){memory:>10}'
          f'{row["gflops"]:>9.1f}{row["pct_of_matmul"]:>6.0f}%', flush=True)


# ----------------------------------------------------------- whole models
def bench_models(args: argparse.Namespace) -> list:
    """Time the chosen models family by family (one interleaved run per
    family and image size); add the ratios to eager and to the peer."""
    backends = [b for b, skip in zip(BACKENDS,
                                     (args.no_ort, args.no_openvino))
                if not skip]
    rows = []
    for name, facts in FAMILIES.items():
        configs = {model: os.path.join(REPO, config) if '::' not in config
                   else config
                   for model, config in {**DETECTORS, **SEGMENTORS}.items()
                   if model in args.models and family(model) == name}
        sizes = args.det_sizes if set(configs) <= set(DETECTORS) \
            else args.seg_sizes
        if configs:
            rows += whole_model.benchmark(
                configs, sizes or facts['sizes'], args.threads,
                args.model_warmup, args.model_repeats, backends,
                args.graph_tail)
    timed = [row for row in rows if 'error' not in row]
    for row in timed:
        def same(name: str, backend: str) -> Optional[dict]:
            return next((r for r in timed if r['model'] == name and
                         r['backend'] == backend and
                         r['size'] == row['size']), None)

        row['img_per_s'] = 1e3 / row['median_ms']
        row['backbone_share'] = row['backbone_ms'] / row['median_ms']
        row['speedup_vs_eager'] = \
            same(row['model'], 'pytorch')['median_ms'] / row['median_ms']
        peer = same(FAMILIES[family(row['model'])]['peer'], row['backend'])
        row['speedup_vs_peer'] = None if peer is None else \
            peer['median_ms'] / row['median_ms']
    return rows


def print_model_rows(rows: list) -> None:
    for row in rows:
        size = 'x'.join(map(str, row['size']))
        if 'error' in row:
            print(f'{row["model"]:<24}{size:>9} {row["backend"]:<12}'
                  f'  not timed: {row["error"]}', flush=True)
            continue
        peer = row['speedup_vs_peer']
        peer = '' if peer is None else f'{peer:.2f}x'
        print(f'{row["model"]:<24}{size:>9} {row["backend"]:<12}'
              f'{row["median_ms"]:>9.1f} ({row["p10_ms"]:>8.1f}-'
              f'{row["p90_ms"]:>8.1f}){row["img_per_s"]:>8.2f}'
              f'{row["backbone_share"]:>9.0%}{1 - row["backbone_share"]:>8.0%}'
              f'{row["speedup_vs_eager"]:>8.2f}x{peer:>8}'
              f'{row["params"] / 1e6:>9.1f}{row["flops"] / 1e9:>8.1f}'
              f'{row["backbone_flops"] / row["flops"]:>9.0%}', flush=True)


# ------------------------------------------------------------------ goals
def check_goals(classifier: list, dense: list, models: list) -> List[dict]:
    goals = []
    for row in classifier:
        goal = {'evit_mm deploy': GOAL_DEPLOY,
                'evit_mm onnxruntime': GOAL_BEST}.get(row['variant'])
        if goal is not None:
            goals.append(dict(
                what=f'{row["variant"]} {row["arch"]} batch {row["batch"]}',
                value=row['speedup_vs_timm'], goal=goal, unit='x timm',
                ok=row['speedup_vs_timm'] >= goal))
    for row in dense:
        if row['variant'] != 'evit_mm with_cp':
            continue
        plain = next(r for r in dense if r['variant'] == 'evit_mm' and
                     r['mode'] == 'train' and r['shape'] == row['shape']
                     and r['arch'] == row['arch'])
        if row['peak_mib'] is None or plain['peak_mib'] is None:
            continue
        saving = 1 - row['peak_mib'] / plain['peak_mib']
        goals.append(dict(
            what=f'with_cp training memory saving {row["arch"]} '
            f'{"x".join(map(str, row["shape"]))}',
            value=saving, goal=GOAL_CP_SAVING, unit='fraction',
            ok=saving >= GOAL_CP_SAVING))
    return goals + model_goals(models)


def model_goals(rows: list) -> List[dict]:
    """The models of :data:`GOALS_VS_PEER` deployed, against their deployed
    peer at their family's largest size; the best backend against eager for
    every EfficientViT model and size; every deployed EfficientViT graph
    runs at every size."""
    goals = []
    deployed = [r for r in rows if r['backend'] != 'pytorch'
                and 'error' not in r]
    for row in deployed:
        goal = GOALS_VS_PEER.get(row['model'])
        largest = max((r['size'] for r in deployed
                       if family(r['model']) == family(row['model'])),
                      key=lambda s: s[0] * s[1])
        if (goal is not None and row['size'] == largest
                and row['speedup_vs_peer'] is not None):
            peer = FAMILIES[family(row['model'])]['peer']
            goals.append(dict(
                what=f'{row["backend"]} {row["model"]} vs {peer} '
                f'{"x".join(map(str, row["size"]))}',
                value=row['speedup_vs_peer'], goal=goal, unit=f'x {peer}',
                ok=row['speedup_vs_peer'] >= goal))
    for row in rows:
        if row['efficientvit'] and 'error' in row:
            goals.append(dict(
                what=f'{row["backend"]} {row["model"]} runs at '
                f'{"x".join(map(str, row["size"]))}',
                value=0., goal=1., unit='x', ok=False))
        if not row['efficientvit'] or row['backend'] != 'pytorch':
            continue
        best = max((r for r in deployed if r['model'] == row['model'] and
                    r['size'] == row['size']),
                   key=lambda r: r['speedup_vs_eager'], default=None)
        if best is not None:
            goals.append(dict(
                what=f'best backend ({best["backend"]}) vs eager '
                f'{row["model"]} {"x".join(map(str, row["size"]))}',
                value=best['speedup_vs_eager'], goal=GOAL_BEST,
                unit='x eager', ok=best['speedup_vs_eager'] >= GOAL_BEST))
    return goals


def main(argv=None) -> int:
    args = parse_args(argv)
    use_threads(args.threads)
    if args.memory_probe:
        print(json.dumps(memory_probe(args.memory_probe)))
        return 0
    env = environment(args.threads, os.path.dirname(os.path.abspath(__file__)))
    print(f'EfficientViT CPU benchmark, {env["date"]}, commit '
          f'{env["commit"]}')
    print(f'machine: {env["cpu"]}, {env["cpus"]} CPUs, {args.threads} '
          f'threads; load average {env["load_start"][0]:.2f}')
    print(f'python {env["python"]}, torch {env["torch"]}, timm '
          f'{env["timm"]}, onnxruntime {env["onnxruntime"]}')
    rates = matmul_rates()
    mm_gflops = max(rates.values())
    print('fp32 matrix multiply 2048^3: ' + ', '.join(
        f'{name} {rate:.1f}' for name, rate in rates.items()) +
        ' GFLOP/s; %mm is of the faster')

    classifier, dense = [], []
    if not args.skip_classifier:
        print(f'\nClassifier, 224x224, eval; median of {args.repeats} '
              f'interleaved runs after {args.warmup} warm-ups')
        print(f'{"arch":<4} {"bs":>3}  {"variant":<20}{"ms (p10-p90)":>27}'
              f'{"img/s":>9}{"GFLOP/s":>9}{"%mm":>7}{"vs timm":>9}'
              f'{"rel err":>10}')
        classifier = bench_classifiers(args, mm_gflops)
    if not args.skip_dense:
        print(f'\nDense backbone (window 7); median of {args.dense_repeats} '
              'interleaved runs; peak = resident memory added by one call '
              '(train: forward + backward), measured in a fresh process that '
              'returns freed memory to the system at once')
        print(f'{"arch":<4} {"input":<13} {"mode":<6}{"variant":<17}'
              f'{"ms (p10-p90)":>29}{"peak MiB":>10}{"GFLOP/s":>9}'
              f'{"%mm":>7}')
        dense = bench_dense(args, mm_gflops)
    models = []
    if not args.skip_models:
        print(f'\nWhole models, batch 1, eval; median of {args.model_repeats} '
              f'interleaved runs after {args.model_warmup} warm-up(s); the '
              'whole model includes post-processing (NMS, label map); '
              'backbone = the backbone alone on the same input; FLOPs = '
              'multiply-accumulates of the network; random weights')
        print(f'{"model":<24}{"HxW":>9} {"backend":<12}{"ms (p10-p90)":>29}'
              f'{"img/s":>8}{"backbone":>9}{"neck+hd":>8}{"vs eager":>9}'
              f'{"vs peer":>8}{"params M":>9}{"GFLOPs":>8}{"bb FLOPs":>9}')
        models = bench_models(args)
        print_model_rows(models)

    env['load_end'] = os.getloadavg()
    goals = check_goals(classifier, dense, models)
    if goals:
        print('\nGoals')
        for goal in goals:
            value = f'{goal["value"]:.0%}' if goal['unit'] == 'fraction' \
                else f'{goal["value"]:.2f}x'
            target = f'{goal["goal"]:.0%}' if goal['unit'] == 'fraction' \
                else f'{goal["goal"]:.1f}x'
            print(f'  {"PASS" if goal["ok"] else "FAIL"}  {goal["what"]}: '
                  f'{value} (goal >= {target})')
    print(f'load average at the end: {env["load_end"][0]:.2f}')
    if args.json:
        with open(args.json, 'w') as file:
            json.dump(dict(environment=env, matmul_gflops=mm_gflops,
                           matmul_rates=rates,
                           classifier=classifier, dense=dense,
                           models=models, goals=goals),
                      file, indent=1)
        print(f'wrote {args.json}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
