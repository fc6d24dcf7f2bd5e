"""Compare the eager inference speed of evit_mm revisions, each as a ratio
to timm measured in the same process: what each change bought.

Every revision (a git commit, or a folder that holds an ``evit_mm``
package) runs in its own process with its own ``evit_mm``; the backbone of
the ImageNet classifier (windows 7, 7, 4; 224x224) is timed, normal and
fused, interleaved with timm's ``forward_features`` on the same weights.
The revisions take turns over several rounds (the order rotated), and the
median ratio over the rounds is printed, so that a load that changes during
the comparison affects every revision alike.

On a machine shared with other jobs, ``--clock cpu --threads 1`` times the
CPU time each call takes instead of the wall time it waits.

Usage:
    python .dev_scripts/compare_revisions.py REV [REV ...] \\
        [--archs m0 m4] [--batch-sizes 1 16] [--threads 2] [--rounds 3] \\
        [--clock wall|cpu]
"""
import argparse
import importlib.util
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from types import ModuleType
from typing import Dict, List, Sequence

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def harness_module(name: str) -> ModuleType:
    """``evit_mm/analysis/<name>.py`` of this checkout, loaded from its file:
    the measuring child imports the ``evit_mm`` of the revision measured,
    which may predate the harness."""
    path = os.path.join(REPO, 'evit_mm', 'analysis', f'{name}.py')
    spec = importlib.util.spec_from_file_location(f'_harness_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


timing = harness_module('timing')
numerics = harness_module('numerics')
CLOCKS = {'wall': time.perf_counter, 'cpu': time.process_time}


def docstring_parser(doc: str) -> argparse.ArgumentParser:
    """A parser whose help is a script's docstring: its first line, then the
    rest as written."""
    return argparse.ArgumentParser(
        description=doc.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(doc.splitlines()[1:]))


def parse_args(argv=None) -> argparse.Namespace:
    parser = docstring_parser(__doc__)
    parser.add_argument(
        'revisions',
        nargs='*',
        help='git revisions, or folders holding an evit_mm package')
    parser.add_argument('--archs', nargs='+', default=['m0', 'm4'])
    parser.add_argument(
        '--batch-sizes', type=int, nargs='+', default=[1, 16])
    parser.add_argument(
        '--threads', type=int, default=timing.available_cpus())
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--repeats', type=int, default=20)
    parser.add_argument(
        '--clock',
        choices=CLOCKS,
        default='wall',
        help='wall time, or the CPU time of the measuring process')
    parser.add_argument('--json', help='also write the numbers here')
    parser.add_argument(
        '--measure', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.rounds, args.repeats, args.threads) < 1:
        parser.error('--rounds, --repeats and --threads must be >= 1.')
    if not args.measure and not args.revisions:
        parser.error('name at least one revision.')
    return args


def measure(args: argparse.Namespace) -> Dict[str, dict]:
    """In the child: time timm and this process's evit_mm, per arch and
    batch size (median milliseconds)."""
    import timm

    from evit_mm.checkpoint import convert_to_evit
    from evit_mm.models.backbones.efficientvit import EfficientViT
    from evit_mm.models.layers import fuse_conv_bn
    torch.set_num_threads(args.threads)
    results = {}
    for arch in args.archs:
        reference = numerics.randomize_statistics(
            timm.create_model(f'efficientvit_{arch}')).eval()
        weights, _ = convert_to_evit(reference.state_dict())
        ours = EfficientViT(arch, window_size=(7, 7, 4), out_indices=(2, ))
        ours.load_state_dict({
            k[len('backbone.'):]: v
            for k, v in weights.items() if k.startswith('backbone.')
        })
        ours.eval()
        fused = EfficientViT(arch, window_size=(7, 7, 4), out_indices=(2, ))
        fused.load_state_dict(ours.state_dict())
        fused.eval()
        fuse_conv_bn(fused)
        for batch in args.batch_sizes:
            x = torch.randn(batch, 3, 224, 224)
            fns = {
                'timm': lambda: reference.forward_features(x),
                'evit_mm': lambda: ours(x),
                'evit_mm deploy': lambda: fused(x),
            }
            with torch.inference_mode():
                expected = fns['timm']()
                errors = [numerics.relative_error(fns[name]()[-1], expected)
                          for name in ('evit_mm', 'evit_mm deploy')]
                times = timing.interleaved(fns, args.warmup, args.repeats,
                                           CLOCKS[args.clock])
            results[f'{arch} {batch}'] = {
                name: statistics.median(samples) * 1e3
                for name, samples in times.items()
            }
            results[f'{arch} {batch}']['rel_err'] = max(errors)
    return results


def materialize(revision: str, folder: str,
                parts: Sequence[str] = ('evit_mm', )) -> str:
    """A folder whose ``evit_mm`` (and other ``parts``: ``tools``,
    ``configs``) is that of ``revision``."""
    if os.path.isdir(os.path.join(revision, 'evit_mm')):
        return os.path.abspath(revision)
    archive = subprocess.run(
        ['git', '-C', REPO, 'archive', '--format=tar', revision, *parts],
        capture_output=True, check=False)
    if archive.returncode:
        raise SystemExit(f'{revision!r} is neither a folder with evit_mm '
                         f'nor a git revision: {archive.stderr.decode()}')
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(folder, filter='data')
    return folder


def run_child(path: str, args: argparse.Namespace) -> Dict[str, dict]:
    command = [
        sys.executable,
        os.path.abspath(__file__), '--measure', '--threads',
        str(args.threads), '--warmup',
        str(args.warmup), '--repeats',
        str(args.repeats), '--clock', args.clock, '--archs', *args.archs,
        '--batch-sizes',
        *map(str, args.batch_sizes)
    ]
    env = dict(os.environ, PYTHONPATH=path)
    done = subprocess.run(command, capture_output=True, text=True, env=env,
                          check=False)
    if done.returncode:
        raise SystemExit(f'measuring {path} failed:\n{done.stderr[-3000:]}')
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args)))
        return 0
    ratios: Dict[str, Dict[str, Dict[str, List[float]]]] = {}
    errors: Dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = [
            materialize(rev, os.path.join(tmp, str(i)))
            for i, rev in enumerate(args.revisions)
        ]
        for round_ in range(args.rounds):
            order = list(range(len(paths)))
            order = order[round_ % len(order):] + order[:round_ % len(order)]
            for index in order:
                result = run_child(paths[index], args)
                for case, times in result.items():
                    rev = args.revisions[index]
                    errors[rev] = max(errors.get(rev, 0.), times['rel_err'])
                    for name in ('evit_mm', 'evit_mm deploy'):
                        ratios.setdefault(rev, {}) \
                            .setdefault(case, {}).setdefault(name, []) \
                            .append(times['timm'] / times[name])
            print(f'round {round_ + 1}/{args.rounds} done', flush=True)
    cases = [f'{a} {b}' for a in args.archs for b in args.batch_sizes]
    print(f'\nSpeed vs timm (median over {args.rounds} rounds of '
          f'{args.repeats} interleaved runs; {args.threads} threads; '
          f'{args.clock} time; backbone of the 224x224 classifier)')
    print(f'{"revision":<24}' + ''.join(
        f'{c + " normal":>14}{c + " fused":>14}' for c in cases) +
        '  rel err vs timm')
    table = {}
    for rev in args.revisions:
        table[rev] = {
            case: {name: statistics.median(values)
                   for name, values in ratios[rev][case].items()}
            for case in cases
        }
        print(f'{rev:<24}' + ''.join(
            f'{table[rev][c]["evit_mm"]:>13.2f}x'
            f'{table[rev][c]["evit_mm deploy"]:>13.2f}x' for c in cases) +
            f'{errors[rev]:>17.1e}')
    if args.json:
        with open(args.json, 'w') as file:
            json.dump(dict(threads=args.threads, clock=args.clock,
                           rounds=args.rounds,
                           repeats=args.repeats, ratios=table,
                           rel_err_vs_timm=errors), file, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
