"""Check the JSON of the benchmarks against the project's speed targets and
print one PASS / FAIL line per target; exit 1 when one fails.

Targets: against timm, the fused classifier >= 1.3x and ONNX Runtime >= 2x
(``benchmark_classifier.py``); ``with_cp`` saves >= 30% of the training
peak (``benchmark_backbone.py``); whole models (``benchmark.py``): the best
deployed backend >= 2x eager for every EfficientViT model and size, every
deployed EfficientViT graph runs at every size, and the models of
:data:`VS_PEER` deployed against their deployed peer at their family's
largest size.

Usage:
    python .dev_scripts/check_goals.py classifier.json backbone.json \\
        models.json
"""
import argparse
import json
import sys
from typing import List

VS_TIMM = {'evit_mm deploy': 1.3, 'evit_mm onnxruntime': 2.0}
CP_SAVING = 0.30
DEPLOYED_VS_EAGER = 2.0
VS_PEER = {
    'retinanet-m0': 1.5,
    'retinanet-m0-fpn128': 1.5,
    'rtmdet-m0': 2.0,
    'rtmdet-m4': 1.3,
    'segformer-m0': 3.0,
}


def goal(what: str, value: float, target: float, unit: str) -> dict:
    return dict(what=what, value=value, goal=target, unit=unit,
                ok=value >= target)


def size_text(shape: list) -> str:
    return 'x'.join(map(str, shape))


def classifier_goals(rows: List[dict]) -> List[dict]:
    """The classifier variants of :data:`VS_TIMM` against timm."""
    return [
        goal(f'{row["variant"]} {row["arch"]} batch {row["batch"]}',
             row['speedup_vs_timm'], VS_TIMM[row['variant']], 'x timm')
        for row in rows if row['variant'] in VS_TIMM
    ]


def backbone_goals(rows: List[dict]) -> List[dict]:
    """The training memory ``with_cp`` saves (where it was measured)."""
    goals = []
    for row in rows:
        if row['variant'] != 'evit_mm with_cp':
            continue
        plain = next(r for r in rows if r['variant'] == 'evit_mm' and
                     r['mode'] == 'train' and r['shape'] == row['shape']
                     and r['arch'] == row['arch'])
        if row['peak_mib'] is not None and plain['peak_mib'] is not None:
            goals.append(goal(
                f'with_cp training memory saving {row["arch"]} '
                f'{size_text(row["shape"])}',
                1 - row['peak_mib'] / plain['peak_mib'], CP_SAVING,
                'fraction'))
    return goals


def model_goals(rows: List[dict]) -> List[dict]:
    """Deployed against eager, against the peer, and every deployed graph
    runs."""
    goals = []
    deployed = [r for r in rows if r['backend'] != 'pytorch'
                and 'error' not in r]
    for row in deployed:
        largest = max((r['size'] for r in deployed
                       if r['peer'] == row['peer']),
                      key=lambda s: s[0] * s[1])
        if (row['model'] in VS_PEER and row['size'] == largest
                and row['speedup_vs_peer'] is not None):
            goals.append(goal(
                f'{row["backend"]} {row["model"]} vs {row["peer"]} '
                f'{size_text(row["size"])}', row['speedup_vs_peer'],
                VS_PEER[row['model']], f'x {row["peer"]}'))
    for row in rows:
        if row['efficientvit'] and 'error' in row:
            goals.append(goal(
                f'{row["backend"]} {row["model"]} runs at '
                f'{size_text(row["size"])}', 0., 1., 'x'))
        if not row['efficientvit'] or row['backend'] != 'pytorch':
            continue
        best = max((r for r in deployed if r['model'] == row['model'] and
                    r['size'] == row['size']),
                   key=lambda r: r['speedup_vs_eager'], default=None)
        if best is not None:
            goals.append(goal(
                f'best backend ({best["backend"]}) vs eager '
                f'{row["model"]} {size_text(row["size"])}',
                best['speedup_vs_eager'], DEPLOYED_VS_EAGER, 'x eager'))
    return goals


def check(result: dict) -> List[dict]:
    """The goals of one benchmark's JSON."""
    return (classifier_goals(result.get('classifier', [])) +
            backbone_goals(result.get('backbone', [])) +
            model_goals(result.get('models', [])))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('json', nargs='+',
                        help='JSON written by the benchmarks (--json)')
    args = parser.parse_args(argv)
    goals = []
    for path in args.json:
        with open(path) as file:
            goals += check(json.load(file))
    if not goals:
        parser.error(f'{args.json}: no classifier, backbone or model rows.')
    for one in goals:
        fraction = one['unit'] == 'fraction'
        value = f'{one["value"]:.0%}' if fraction else f'{one["value"]:.2f}x'
        target = f'{one["goal"]:.0%}' if fraction else f'{one["goal"]:.1f}x'
        print(f'{"PASS" if one["ok"] else "FAIL"}  {one["what"]}: {value} '
              f'(goal >= {target})')
    return 0 if all(one['ok'] for one in goals) else 1


if __name__ == '__main__':
    sys.exit(main())
