"""Compare the deployed models of evit_mm revisions: each revision exports
the same models with the same weights through its own
``tools/deployment/deploy.py`` (ONNX Runtime, a fresh process each), and
the graphs are timed here side by side, interleaved, on one input, with
the largest difference of their outputs from the first revision's and
whether they are the first revision's graph (the same operators in the
same order, the same weights): the same graph runs at the same speed, and
its timings differ only by the noise of the sessions.

Usage:
    python .dev_scripts/compare_deployments.py REV [REV ...] \\
        [--models NAME ...] [--threads 2] [--repeats 30]
"""
import argparse
import hashlib
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
from typing import Dict, List

import numpy as np
import torch

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))
sys.path.insert(1, osp.dirname(osp.abspath(__file__)))

from compare_revisions import (REPO, docstring_parser,  # noqa: E402
                               materialize, timing)

# name: (config, input height and width, whether it is a segmentor). A
# segmentor's graph ends in its label map where the revision's deploy.py
# can put it there (--label-map-in-graph; before that option it always
# did), so that every revision's graph computes the same.
MODELS = {
    'classifier-m0': ('configs/efficientvit/efficientvit-m0_8xb256_in1k.py',
                      (224, 224), False),
    'retinanet-m0': ('configs/quickstart/retinanet_efficientvit-m0_'
                     'synthetic.py', (192, 192), False),
    'fpn-m0': ('configs/quickstart/fpn_efficientvit-m0_synthetic.py',
               (256, 256), True),
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = docstring_parser(__doc__)
    parser.add_argument(
        'revisions', nargs='+',
        help='git revisions, or folders holding evit_mm, tools and configs')
    parser.add_argument('--models', nargs='+', default=list(MODELS),
                        choices=MODELS)
    parser.add_argument('--threads', type=int,
                        default=timing.available_cpus())
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--repeats', type=int, default=30)
    return parser.parse_args(argv)


def random_checkpoint(config: str, path: str) -> str:
    """The model of ``config`` with seeded random weights and BatchNorm
    statistics, saved at ``path``."""
    from mmengine.config import Config
    from mmengine.registry import MODELS as REGISTRY, init_default_scope

    import evit_mm  # noqa: F401
    cfg = Config.fromfile(os.path.join(REPO, config))
    init_default_scope(cfg.default_scope)
    if 'data_preprocessor' in cfg and 'data_preprocessor' not in cfg.model:
        cfg.model.data_preprocessor = cfg.data_preprocessor
    torch.manual_seed(0)
    model = REGISTRY.build(cfg.model)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    torch.save(dict(state_dict=model.state_dict()), path)
    return path


def deploy(folder: str, config: str, checkpoint: str, shape: tuple,
           segmentor: bool, work_dir: str) -> str:
    """``folder``'s deploy tool, run as the docs print it; its graph."""
    tool = os.path.join('tools', 'deployment', 'deploy.py')
    with open(os.path.join(folder, tool)) as f:
        label_map_option = '--label-map-in-graph' in f.read()
    command = [sys.executable, tool, config, checkpoint, '--backend',
               'onnxruntime', '--work-dir', work_dir, '--shape',
               str(shape[0]), str(shape[1])]
    if segmentor and label_map_option:
        command.append('--label-map-in-graph')
    done = subprocess.run(
        command,
        cwd=folder, env=dict(os.environ, PYTHONPATH=folder),
        capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f'deploy.py of {folder} failed:\n'
                         f'{done.stderr[-3000:]}')
    return os.path.join(work_dir, 'end2end.onnx')


def graph_signature(path: str) -> tuple:
    """The operators of an ONNX graph in order and the bytes of its
    weights: equal signatures compute the same in the same time."""
    import onnx
    graph = onnx.load(path).graph
    return ([node.op_type for node in graph.node],
            hashlib.sha256(b''.join(t.raw_data
                                    for t in graph.initializer)).digest())


def time_graphs(graphs: Dict[str, str], shape: tuple,
                args: argparse.Namespace) -> Dict[str, dict]:
    """Median milliseconds of each graph, its largest output difference
    from the first one's, and whether it is the first one's graph."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    sessions = {rev: ort.InferenceSession(path, options,
                                          providers=['CPUExecutionProvider'])
                for rev, path in graphs.items()}
    image = np.random.default_rng(0).uniform(
        0, 255, (1, 3, *shape)).astype(np.float32)
    feeds = {rev: {s.get_inputs()[0].name: image}
             for rev, s in sessions.items()}
    outputs = {rev: s.run(None, feeds[rev]) for rev, s in sessions.items()}
    first = next(iter(outputs.values()))
    first_graph = graph_signature(next(iter(graphs.values())))
    times = timing.interleaved(
        {rev: (lambda s=s, f=feeds[rev]: s.run(None, f))
         for rev, s in sessions.items()}, args.warmup, args.repeats)
    return {
        rev: dict(ms=statistics.median(times[rev]) * 1e3,
                  same_graph=graph_signature(graphs[rev]) == first_graph,
                  diff=max(float(np.abs(a.astype(np.float64) - b).max())
                           if a.size else 0.
                           for a, b in zip(outputs[rev], first)))
        for rev in sessions
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    rows: List[tuple] = []
    with tempfile.TemporaryDirectory() as tmp:
        folders = [
            materialize(rev, os.path.join(tmp, f'rev{i}'),
                        ('evit_mm', 'tools', 'configs'))
            for i, rev in enumerate(args.revisions)
        ]
        for name in args.models:
            config, shape, segmentor = MODELS[name]
            checkpoint = random_checkpoint(
                config, os.path.join(tmp, f'{name}.pth'))
            graphs = {
                rev: deploy(folder, config, checkpoint, shape, segmentor,
                            os.path.join(tmp, f'{name}-{i}'))
                for i, (rev, folder) in enumerate(
                    zip(args.revisions, folders))
            }
            for rev, result in time_graphs(graphs, shape, args).items():
                rows.append((name, rev, result['ms'], result['diff'],
                             result['same_graph']))
    print(f'\nDeployed models, ONNX Runtime, batch 1, {args.threads} '
          f'threads, median of {args.repeats} interleaved runs')
    print(f'{"model":<16}{"revision":<14}{"ms":>9}{"vs first":>10}'
          f'{"same graph":>12}{"max |diff|":>12}')
    for name, rev, ms, diff, same in rows:
        base = next(r[2] for r in rows if r[0] == name)
        print(f'{name:<16}{rev:<14}{ms:>9.2f}{base / ms:>9.2f}x'
              f'{"yes" if same else "no":>12}{diff:>12.1e}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
