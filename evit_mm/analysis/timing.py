"""The benchmark harness: interleaved timing, its summary, thread control,
a description of the machine and its fp32 matrix-multiply rate, shapes
given on the command line, and ONNX Runtime and OpenVINO sessions that can
be timed beside PyTorch.

Timings interleave the variants (one call of each in turn, the order
rotated every round) so that a busy machine slows all of them alike; the
median and the 10th-90th percentile spread summarize them.

Only torch and the standard library are imported at module level, so that
tools can load this file beside an older ``evit_mm``
(``.dev_scripts/compare_revisions.py``).
"""
import argparse
import datetime
import importlib
import json
import os
import platform
import statistics
import subprocess
import time
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np
import torch


def interleaved(
        fns: Dict[str, Callable[[], object]],
        warmup: int,
        repeats: int,
        clock: Callable[[], float] = time.perf_counter
) -> Dict[str, List[float]]:
    """Seconds per call of each function, calling them in turn (the order
    rotated each round).

    Args:
        fns (dict): Name to a function without arguments.
        warmup (int): Untimed rounds first.
        repeats (int): Timed rounds.
        clock (callable): The clock read around each call: wall time by
            default; ``time.process_time`` counts this process's CPU time,
            which other jobs on the machine hardly change (use it with one
            thread, since waiting threads may spin).

    Returns:
        dict: name to ``repeats`` durations in seconds.
    """
    names = list(fns)
    times = {name: [] for name in names}
    for _ in range(warmup):
        for name in names:
            fns[name]()
    for round_ in range(repeats):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            start = clock()
            fns[name]()
            times[name].append(clock() - start)
    return times


def summary(times: List[float]) -> dict:
    """``median_ms``, ``p10_ms``, ``p90_ms`` and ``runs`` of durations in
    seconds."""
    ordered = sorted(times)

    def percentile(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return dict(
        median_ms=statistics.median(ordered) * 1e3,
        p10_ms=percentile(.1) * 1e3,
        p90_ms=percentile(.9) * 1e3,
        runs=len(ordered))


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask)."""
    return len(os.sched_getaffinity(0))


def use_threads(threads: int) -> int:
    """Run PyTorch's intra-op work on ``threads`` threads (sessions made by
    :func:`ort_timer` take the same number).

    Raises:
        ValueError: for fewer than one thread.
    """
    if threads < 1:
        raise ValueError(f'threads must be >= 1, got {threads}.')
    torch.set_num_threads(threads)
    return threads


def cpu_name() -> str:
    """The CPU's model name (Linux), or what :mod:`platform` knows."""
    try:
        with open('/proc/cpuinfo') as file:
            for line in file:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown'


def git_commit(folder: str) -> str:
    """The short commit of the checkout holding ``folder``, or
    ``'unknown'``."""
    try:
        return subprocess.run(['git', 'rev-parse', '--short', 'HEAD'],
                              capture_output=True, text=True, timeout=10,
                              cwd=folder).stdout.strip() or 'unknown'
    except (OSError, subprocess.SubprocessError):
        return 'unknown'


def environment(threads: int, folder: str,
                packages: Sequence[str] = ('timm', 'onnxruntime')) -> dict:
    """What a benchmark result depends on: date, CPU, threads, Python and
    package versions (None where not installed), the commit of ``folder``
    and the load average at the start.

    Args:
        threads (int): The intra-op threads used.
        folder (str): A folder inside the checkout benchmarked.
        packages (Sequence[str]): Packages whose versions are recorded
            besides torch.
    """
    env = dict(
        date=datetime.datetime.now(datetime.timezone.utc).strftime(
            '%Y-%m-%d %H:%M UTC'),
        cpu=cpu_name(),
        cpus=os.cpu_count(),
        threads=threads,
        python=platform.python_version(),
        torch=torch.__version__)
    for package in packages:
        try:
            env[package] = importlib.import_module(package).__version__
        except ImportError:
            env[package] = None
    env.update(commit=git_commit(folder), load_start=os.getloadavg())
    return env


# The keys of :func:`environment` that are not package versions.
ENVIRONMENT_FACTS = ('date', 'cpu', 'cpus', 'threads', 'python', 'torch',
                     'commit', 'load_start', 'load_end')


def describe(env: dict, title: str,
             rates: Optional[Dict[str, float]] = None) -> str:
    """The lines a benchmark prints first: ``title``, the date and commit,
    the machine and its load, the versions of ``env``, and the matrix
    multiply ``rates``.

    Args:
        env (dict): What :func:`environment` returned.
        title (str): What the benchmark measures.
        rates (dict, optional): What :func:`matmul_rates` returned.
    """
    packages = ''.join(f', {name} {env[name]}' for name in env
                       if name not in ENVIRONMENT_FACTS)
    lines = [
        f'{title}, {env["date"]}, commit {env["commit"]}',
        f'machine: {env["cpu"]}, {env["cpus"]} CPUs, {env["threads"]} '
        f'threads; load average {env["load_start"][0]:.2f}',
        f'python {env["python"]}, torch {env["torch"]}{packages}'
    ]
    if rates:
        lines.append(
            'fp32 matrix multiply 2048^3: ' + ', '.join(
                f'{name} {rate:.1f}' for name, rate in rates.items()) +
            ' GFLOP/s; %mm is of the faster')
    return '\n'.join(lines)


def finish(env: dict, json_file: Optional[str], **numbers) -> None:
    """End a benchmark: record and print the load average at the end, and
    write ``env`` and ``numbers`` to ``json_file`` when one is given.

    Args:
        env (dict): What :func:`environment` returned; gets ``load_end``.
        json_file (str, optional): Where to write the numbers.
        **numbers: What the benchmark measured, by name.
    """
    env['load_end'] = os.getloadavg()
    print(f'load average at the end: {env["load_end"][0]:.2f}')
    if json_file:
        with open(json_file, 'w') as file:
            json.dump(dict(environment=env, **numbers), file, indent=1)
        print(f'wrote {json_file}')


def int_at_least(low: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer of at least ``low``, an error naming
    the value otherwise.

    Args:
        low (int): The smallest value allowed.
    """

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(
                f'{text!r}: use an integer >= {low}.')
        return value

    return parse


def benchmark_parser(doc: str,
                     repeats: int,
                     warmup: Optional[int] = None) -> argparse.ArgumentParser:
    """The command line of a benchmark tool: ``doc`` (its docstring) as
    description and epilog, and the options every benchmark takes:
    ``--threads``, ``--repeats``, ``--warmup`` (where ``warmup`` is given)
    and ``--json``.

    Args:
        doc (str): The tool's docstring; its first line describes it.
        repeats (int): Timed rounds by default.
        warmup (int, optional): Untimed rounds first, by default.
    """
    parser = argparse.ArgumentParser(
        description=doc.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(doc.splitlines()[1:]))
    parser.add_argument(
        '--threads', type=int_at_least(1), default=available_cpus(),
        help='intra-op threads of every backend (default: the CPUs this '
        'process may use)')
    parser.add_argument('--repeats', type=int_at_least(1), default=repeats,
                        help=f'timed rounds (default: {repeats})')
    if warmup is not None:
        parser.add_argument(
            '--warmup', type=int_at_least(0), default=warmup,
            help=f'untimed rounds first (default: {warmup})')
    parser.add_argument('--json', help='also write all numbers to this file')
    return parser


def shape_type(pattern: str) -> Callable[[str], tuple]:
    """An argparse ``type`` for a shape written as ``pattern`` (``'HxW'``,
    ``'BxHxW'``): the positive integers as a tuple, an error naming the
    value and the pattern otherwise.

    Args:
        pattern (str): The names of the dimensions, joined by ``x``.
    """

    def parse(text: str) -> tuple:
        try:
            shape = tuple(int(v) for v in text.lower().split('x'))
        except ValueError:
            shape = ()
        if len(shape) != len(pattern.split('x')) or min(shape) < 1:
            raise argparse.ArgumentTypeError(
                f'{text!r}: use {pattern} (positive integers).')
        return shape

    return parse


def matmul_rates(size: int = 2048, repeats: int = 10) -> Dict[str, float]:
    """fp32 GFLOP/s (medians) of one ``size``-cubed matrix product through
    ``torch.mm`` (MKL or OpenBLAS) and through oneDNN (the same product as a
    1x1 convolution of a channels-last map, as the models' convolutions run),
    each timed alone: interleaved, the threads one library leaves spinning
    slow the other down. On some CPUs (MKL on AMD) the two differ by 2x; the
    faster one is the machine's rate."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    conv = torch.nn.Conv2d(size, size, 1, bias=False)
    image = torch.randn(1, size, size // 32, 32).contiguous(
        memory_format=torch.channels_last)
    products = {
        'torch.mm': lambda: torch.mm(a, b),
        'oneDNN': lambda: conv(image)
    }
    rates = {}
    with torch.no_grad():
        for name, product in products.items():  # one after the other
            times = interleaved({name: product}, 2, repeats)[name]
            rates[name] = 2 * size**3 / statistics.median(times) / 1e9
    return rates


def ort_timer(onnx_model: Union[bytes, str],
              inputs: Dict[str, Union[torch.Tensor, np.ndarray]],
              threads: int) -> Callable[[], list]:
    """A function without arguments that runs ``onnx_model`` on ``inputs``
    in onnxruntime, to be timed beside PyTorch: its session's idle threads
    do not spin (spinning threads would slow down the PyTorch variant timed
    right after it).

    Args:
        onnx_model (bytes | str): Serialized ONNX model or path.
        inputs (dict): Input name to tensor or array.
        threads (int): Intra-op threads.
    """
    from evit_mm.deploy import ort_session
    session = ort_session(onnx_model, threads, spinning=False)
    feed = {name: value.numpy() if isinstance(value, torch.Tensor) else value
            for name, value in inputs.items()}
    return lambda: session.run(None, feed)


def openvino_timer(model_file: str,
                   inputs: Dict[str, Union[torch.Tensor, np.ndarray]],
                   threads: int) -> Callable[[], list]:
    """A function without arguments that runs ``model_file`` (an OpenVINO
    IR ``.xml`` or an ONNX file) on ``inputs`` with OpenVINO on the CPU, in
    float32 on ``threads`` threads, to be timed beside PyTorch.

    Args:
        model_file (str): The model to compile.
        inputs (dict): Input name to tensor or array.
        threads (int): Inference threads.
    """
    import openvino
    compiled = openvino.Core().compile_model(
        model_file, 'CPU', {
            'INFERENCE_NUM_THREADS': threads,
            'INFERENCE_PRECISION_HINT': 'f32',
            'PERFORMANCE_HINT': 'LATENCY'
        })
    request = compiled.create_infer_request()
    feed = {name: value.numpy() if isinstance(value, torch.Tensor) else value
            for name, value in inputs.items()}
    return lambda: list(request.infer(feed).values())


def deployed_timer(backend: str, model_file: Union[bytes, str],
                   inputs: Dict[str, Union[torch.Tensor, np.ndarray]],
                   threads: int) -> Callable[[], list]:
    """:func:`ort_timer` (``backend='onnxruntime'``) or
    :func:`openvino_timer` (``'openvino'``; a file, not bytes).

    Raises:
        ValueError: for another backend.
    """
    timers = dict(onnxruntime=ort_timer, openvino=openvino_timer)
    if backend not in timers:
        raise ValueError(f'backend {backend!r}: allowed are '
                         f'{", ".join(map(repr, timers))}.')
    return timers[backend](model_file, inputs, threads)
