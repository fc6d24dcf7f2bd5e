"""Reliability of runs: safe checkpoint reading at every entry point,
checks that a checkpoint fits the model, atomic checkpoint writes that
survive a kill, and deterministic training."""
import json
import os
import os.path as osp
import pickle
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint

from evit_mm.checkpoint import CheckpointError, read_checkpoint
from evit_mm.hooks import check_checkpoint_fits
from evit_mm.models.backbones.efficientvit import EfficientViT
from test_runtime import ToyDataset, ToyModel

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TINY_CONFIG = osp.join(REPO_ROOT, 'tests', 'data', 'tiny_classifier.py')
TINY_ARCH = dict(embed_dims=[16, 16, 16], depths=[1, 1, 1],
                 num_heads=[1, 1, 1], kernels=[3])


class Payload:
    """Unpickling it would create ``marker`` (a stand-in for any code)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


def write_malicious(tmp_path, name='evil.pth'):
    """A checkpoint whose unpickling runs code; returns it and the file that
    code would create."""
    marker = str(tmp_path / f'{name}.ran')
    path = str(tmp_path / name)
    torch.save({'state_dict': {}, 'meta': Payload(marker)}, path)
    return path, marker


def toy_runner(work_dir, max_epochs, load_from=None, resume=False,
               name='toy'):
    return Runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        train_dataloader=dict(dataset=ToyDataset(),
                              sampler=dict(type='DefaultSampler',
                                           shuffle=False),
                              batch_size=2,
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        default_hooks=dict(checkpoint=dict(
            type='AtomicCheckpointHook', interval=1, max_keep_ckpts=1)),
        custom_hooks=[dict(type='CheckpointFitHook')],
        load_from=load_from,
        resume=resume,
        cfg=dict(load_from=load_from, resume=resume),
        default_scope='mmengine',
        experiment_name=f'{name}_{time.time_ns()}')


# ---------------------------------------------------------------- safe reads


def test_mmengine_local_reads_refuse_code(tmp_path):
    """mmengine's own local loader (inferencers, ``load_from``) reads
    with torch's default, ``weights_only=True``, beside evit_mm's
    allow-list."""
    path, marker = write_malicious(tmp_path)
    with pytest.raises(pickle.UnpicklingError, match='posix.system'):
        _load_checkpoint(path)
    assert not osp.exists(marker)
    with pytest.raises(FileNotFoundError, match='nowhere.pth'):
        _load_checkpoint(str(tmp_path / 'nowhere.pth'))


@pytest.mark.parametrize('entry', ['load_from', 'resume', 'auto_resume'])
def test_runner_entry_points_refuse_code(tmp_path, entry):
    path, marker = write_malicious(tmp_path)
    if entry == 'auto_resume':
        (tmp_path / 'last_checkpoint').write_text(path)
    runner = toy_runner(tmp_path, 1,
                        load_from=None if entry == 'auto_resume' else path,
                        resume=entry != 'load_from')
    with pytest.raises(CheckpointError, match=f'Refused to load {path}'):
        runner.train()
    assert not osp.exists(marker)


def test_converter_refuses_code(tmp_path):
    path, marker = write_malicious(tmp_path)
    result = run_tool(osp.join('model_converters', 'efficientvit_to_mm.py'),
                      path, str(tmp_path / 'out.pth'))
    assert result.returncode != 0
    assert f'CheckpointError: Refused to load {path}' in result.stderr
    assert not osp.exists(marker)
    assert not (tmp_path / 'out.pth').exists()


# -------------------------------------------------------------- fit checks


class Detectorish(nn.Module):

    def __init__(self, arch):
        super().__init__()
        self.backbone = EfficientViT(arch=arch)
        self.head = nn.Linear(16, 3)


def test_fit_check_names_the_file_and_the_problem(tmp_path):
    model = Detectorish(TINY_ARCH)
    good = {'state_dict': model.state_dict()}
    check_checkpoint_fits(model, good, 'good.pth', strict=True)

    other = {'state_dict': nn.Conv2d(3, 8, 3).state_dict()}
    with pytest.raises(CheckpointError,
                       match=r'other.pth holds weights of another model'):
        check_checkpoint_fits(model, other, 'other.pth', strict=False)

    m1 = Detectorish('m1')
    with pytest.raises(CheckpointError,
                       match=r"m1.pth does not fit the EfficientViT backbone "
                       r"\(arch 'custom'\): it looks like arch 'm1'"):
        check_checkpoint_fits(model, {'state_dict': m1.state_dict()},
                              'm1.pth', strict=False)
    m0 = Detectorish('m0')
    m0.head = nn.Linear(16, 3)
    with pytest.raises(CheckpointError, match=r"looks like arch 'm0'"):
        check_checkpoint_fits(Detectorish('m1'),
                              {'state_dict': m0.state_dict()}, 'm0.pth',
                              strict=False)

    # another head only: fine for load_from (fine-tuning), not for resume
    other_head = dict(good['state_dict'])
    other_head['head.weight'] = torch.zeros(5, 16)
    other_head['head.bias'] = torch.zeros(5)
    check_checkpoint_fits(model, other_head, 'ft.pth', strict=False)
    with pytest.raises(CheckpointError,
                       match=r"ft.pth does not fit this Detectorish: shape "
                       r"mismatch \(2\): \['head.weight: file \(5, 16\), "
                       r"model \(3, 16\)', 'head.bias: file \(5,\), "):
        check_checkpoint_fits(model, other_head, 'ft.pth', strict=True)
    partial = {k: v for k, v in good['state_dict'].items()
               if not k.startswith('head.')}
    with pytest.raises(CheckpointError, match=r'missing \(2\)'):
        check_checkpoint_fits(model, partial, 'p.pth', strict=True)


def test_fit_hook_unwraps_test_time_augmentation(tmp_path):
    from types import SimpleNamespace

    from mmengine.config import Config
    from mmengine.model import BaseTTAModel

    from evit_mm.hooks import CheckpointFitHook

    class TTA(BaseTTAModel):

        def merge_preds(self, data_samples_list):
            return data_samples_list

    model = Detectorish(TINY_ARCH)
    model.test_step = lambda data: data  # what BaseTTAModel asks for
    runner = SimpleNamespace(model=TTA(module=model),
                             cfg=Config(dict(load_from='a.pth')),
                             work_dir=str(tmp_path))
    hook = CheckpointFitHook(strict=True)
    hook.after_load_checkpoint(runner, {'state_dict': model.state_dict()})
    with pytest.raises(CheckpointError, match="a.pth.*looks like arch 'm1'"):
        hook.after_load_checkpoint(
            runner, {'state_dict': Detectorish('m1').state_dict()})


def test_resume_of_another_model_is_refused(tmp_path):
    path = str(tmp_path / 'conv.pth')
    torch.save({'state_dict': nn.Conv2d(3, 8, 3).state_dict(),
                'meta': dict(epoch=1, iter=2)}, path)
    runner = toy_runner(tmp_path, 1, load_from=path, resume=True)
    with pytest.raises(CheckpointError,
                       match=f'{path} holds weights of another model'):
        runner.train()


# ------------------------------------------------------------ atomic writes


@pytest.mark.parametrize('change', ['removed', 'other arguments',
                                    'not called'])
def test_atomic_hook_refuses_an_mmengine_without_its_save_step(
        monkeypatch, change):
    """AtomicCheckpointHook replaces mmengine's private
    CheckpointHook._save_checkpoint_with_step(self, runner, step, meta):
    where mmengine changed it, constructing the hook fails, naming the
    mmengine version, instead of saving without the guarantees."""
    import mmengine
    from mmengine.hooks import CheckpointHook

    from evit_mm.hooks import AtomicCheckpointHook
    AtomicCheckpointHook(interval=1)  # the installed mmengine fits
    if change == 'removed':
        monkeypatch.delattr(CheckpointHook, '_save_checkpoint_with_step')
        found = 'found no such method'
    elif change == 'other arguments':
        monkeypatch.setattr(CheckpointHook, '_save_checkpoint_with_step',
                            lambda self, runner, step, meta, extra: None)
        found = r'found _save_checkpoint_with_step\(self, runner, step, ' \
            r'meta, extra\)'
    else:
        monkeypatch.setattr(CheckpointHook, '_save_checkpoint',
                            lambda self, runner: runner.save_checkpoint())
        found = 'found a _save_checkpoint that does not call'
    with pytest.raises(RuntimeError) as err:
        AtomicCheckpointHook(interval=1)
    assert re.search(
        rf'does not support mmengine {re.escape(mmengine.__version__)}: it '
        r'replaces CheckpointHook._save_checkpoint_with_step\(self, runner, '
        rf'step, meta\), called by CheckpointHook._save_checkpoint; {found}',
        str(err.value)), str(err.value)


def _fail_second_commit(monkeypatch):
    """Make the rename of the second checkpoint fail, as a kill between
    writing and renaming would leave it."""
    calls = []
    real_replace = os.replace

    def replace(src, dst):
        calls.append(dst)
        if len(calls) == 3:  # epoch 1: checkpoint, pointer; epoch 2: ckpt
            raise KeyboardInterrupt('killed')
        real_replace(src, dst)

    monkeypatch.setattr('evit_mm.hooks.atomic_checkpoint.os.replace', replace)


def test_atomic_hook_keeps_the_last_checkpoint_when_killed(
        tmp_path, monkeypatch):
    _fail_second_commit(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        toy_runner(tmp_path, 2).train()
    pointer = (tmp_path / 'last_checkpoint').read_text()
    assert pointer == str(tmp_path / 'epoch_1.pth')
    assert read_checkpoint(pointer)['meta']['epoch'] == 1
    assert not (tmp_path / 'epoch_2.pth').exists()
    # and resuming goes on from epoch 1 to the end
    monkeypatch.undo()
    runner = toy_runner(tmp_path, 2, resume=True)
    runner.train()
    assert runner.iter == 8  # 2 epochs of 4 iterations
    assert sorted(p.name for p in tmp_path.glob('*.pth')) == ['epoch_2.pth']
    assert not list(tmp_path.glob('.*tmp*'))


# ------------------------------------------------------- the real tools


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    from evit_mm.datasets.synthetic import generate
    root = tmp_path_factory.mktemp('data')
    return generate(str(root), formats=['imagenet'], num_train=12, num_val=6,
                    img_size=(64, 64))['imagenet']


def data_options(root, *more):
    return ['--cfg-options', f'train_dataloader.dataset.data_root={root}',
            f'test_dataloader.dataset.data_root={root}', *more]


def run_tool(script, *args, timeout=600, **kwargs):
    return subprocess.run(
        [sys.executable, osp.join(REPO_ROOT, 'tools', script), *args],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout,
        **kwargs)


@pytest.mark.slow
@pytest.mark.parametrize('entry', [
    'train load_from', 'train --resume PATH', 'train --resume (pointer)',
    'test CHECKPOINT'
])
def test_tools_refuse_code_at_every_entry_point(tmp_path, tiny_data, entry):
    path, marker = write_malicious(tmp_path)
    work = str(tmp_path / 'work')
    options = data_options(tiny_data)
    if entry == 'train load_from':
        args = ['train.py', TINY_CONFIG, '--work-dir', work] + options + [
            f'load_from={path}']
    elif entry == 'train --resume PATH':
        args = ['train.py', TINY_CONFIG, '--work-dir', work, '--resume', path
                ] + options
    elif entry == 'train --resume (pointer)':
        os.makedirs(work)
        with open(osp.join(work, 'last_checkpoint'), 'w') as f:
            f.write(path)
        args = ['train.py', TINY_CONFIG, '--work-dir', work, '--resume'
                ] + options
    else:
        args = ['test.py', TINY_CONFIG, path, '--work-dir', work] + options
    result = run_tool(*args)
    assert result.returncode != 0
    assert f'CheckpointError: Refused to load {path}' in result.stderr
    assert not osp.exists(marker)


@pytest.mark.slow
@pytest.mark.parametrize('demo,config', [
    ('image_classification_demo.py', TINY_CONFIG),
    ('image_demo.py', osp.join(REPO_ROOT, 'configs', 'quickstart',
                               'retinanet_efficientvit-m0_synthetic.py')),
])
def test_demos_refuse_code(tmp_path, tiny_data, demo, config):
    path, marker = write_malicious(tmp_path)
    image = osp.join(tiny_data, 'val', 'circle', '000000.jpg')
    args = [image, config, path] if demo.startswith('image_class') else [
        image, config, '--weights', path, '--out-dir', str(tmp_path)]
    result = subprocess.run(
        [sys.executable, osp.join(REPO_ROOT, 'demo', demo), *args],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode != 0
    assert f'CheckpointError: Refused to load {path}' in result.stderr, \
        result.stderr[-2000:]
    assert not osp.exists(marker)


def _tiny_checkpoint(path, arch=TINY_ARCH):
    """A checkpoint of the tiny classifier (or of it with another arch)."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    import evit_mm  # noqa: F401
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(TINY_CONFIG)
    cfg.model.backbone.arch = arch
    if arch != TINY_ARCH:
        cfg.model.head.in_channels = EfficientViT.arch_zoo[arch][
            'embed_dims'][-1]
    torch.save({'state_dict': MODELS.build(cfg.model).state_dict(),
                'meta': {}}, path)


@pytest.mark.slow
def test_test_tool_names_bad_checkpoints(tmp_path, tiny_data):
    good = str(tmp_path / 'good.pth')
    _tiny_checkpoint(good)
    cases = {}
    cases['truncated.pth'] = 'truncated or not a PyTorch checkpoint'
    with open(good, 'rb') as f:
        data = f.read()
    (tmp_path / 'truncated.pth').write_bytes(data[:len(data) // 2])
    cases['m2.pth'] = "does not fit the EfficientViT backbone \\(arch " \
        "'custom'\\): it looks like arch 'm2'"
    _tiny_checkpoint(str(tmp_path / 'm2.pth'), 'm2')
    cases['conv.pth'] = 'holds weights of another model'
    torch.save({'state_dict': nn.Conv2d(3, 8, 3).state_dict()},
               str(tmp_path / 'conv.pth'))
    for name, message in cases.items():
        path = str(tmp_path / name)
        result = run_tool('test.py', TINY_CONFIG, path, '--work-dir',
                          str(tmp_path / 'work'), *data_options(tiny_data))
        assert result.returncode != 0, name
        assert re.search(f'CheckpointError: {re.escape(path)}.*{message}|'
                         f'CheckpointError: Cannot read checkpoint '
                         f'{re.escape(path)} \\({message}',
                         result.stderr), result.stderr[-2000:]
    result = run_tool('test.py', TINY_CONFIG, good, '--work-dir',
                      str(tmp_path / 'work'), *data_options(tiny_data))
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'accuracy/top1' in result.stdout + result.stderr


def _pointer_state(work):
    """The iteration of the checkpoint ``last_checkpoint`` names; the
    pointer and that checkpoint must both be readable."""
    pointer = osp.join(work, 'last_checkpoint')
    if not osp.exists(pointer):
        return 0
    with open(pointer) as f:
        target = f.read()
    assert target.endswith('.pth'), f'pointer unreadable: {target!r}'
    return read_checkpoint(target)['meta']['iter']


@pytest.mark.slow
def test_killed_training_always_resumes_from_the_last_checkpoint(
        tmp_path, tiny_data):
    """Kill tools/train.py with SIGKILL at random moments (seeded) while it
    saves a checkpoint every iteration; after each kill the pointer and the
    checkpoint it names are readable, and the next run resumes exactly
    there."""
    rng = np.random.default_rng(7)
    work = str(tmp_path / 'work')
    trials, resumed_at = 3, []
    for trial in range(trials + 1):
        last = _pointer_state(work)
        final = trial == trials
        options = data_options(
            tiny_data, f'train_cfg.max_iters={last + 2 if final else 500}')
        args = [sys.executable, osp.join(REPO_ROOT, 'tools', 'train.py'),
                TINY_CONFIG, '--work-dir', work] + options
        if trial:
            args.append('--resume')
        log = open(tmp_path / f'run{trial}.log', 'w+')
        proc = subprocess.Popen(args, cwd=REPO_ROOT, stdout=log,
                                stderr=subprocess.STDOUT)
        if final:
            assert proc.wait(timeout=600) == 0
        else:
            # wait until this run has saved a checkpoint, then kill it a
            # random moment later
            deadline = time.time() + 300
            while _pointer_state(work) <= last and proc.poll() is None:
                assert time.time() < deadline
                time.sleep(0.05)
            time.sleep(rng.uniform(0, 1.5))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        log.seek(0)
        text = log.read()
        if trial:
            match = re.search(r'resumed epoch: \d+, iter: (\d+)', text)
            assert match, text[-2000:]
            resumed_at.append(int(match.group(1)))
            assert resumed_at[-1] == last
    assert _pointer_state(work) == resumed_at[-1] + 2
    assert len(resumed_at) == trials


def _losses(work):
    [scalars] = [osp.join(root, 'vis_data', 'scalars.json')
                 for root, dirs, _ in os.walk(work) if 'vis_data' in dirs]
    with open(scalars) as f:
        rows = [json.loads(line) for line in f]
    return [(row['iter'], row['loss']) for row in rows if 'loss' in row]


@pytest.mark.slow
def test_same_seed_gives_the_same_losses(tmp_path, tiny_data):
    runs = []
    for name in ('a', 'b'):
        work = str(tmp_path / name)
        result = run_tool('train.py', TINY_CONFIG, '--work-dir', work,
                          *data_options(tiny_data, 'randomness.seed=3',
                                        'randomness.deterministic=True',
                                        'train_cfg.max_iters=20',
                                        'default_hooks.checkpoint.interval='
                                        '20'))
        assert result.returncode == 0, result.stderr[-2000:]
        runs.append(_losses(work))
    assert [i for i, _ in runs[0]] == list(range(1, 21))
    assert runs[0] == runs[1]
    # the losses do change from iteration to iteration (a real run)
    assert len({loss for _, loss in runs[0]}) > 10


# ------------------------------------------------------ backbone extremes


@pytest.mark.parametrize('size,expected', [
    ((1, 1), [(1, 1)] * 3),
    ((2, 3), [(1, 1)] * 3),
])
def test_smallest_inputs(size, expected):
    model = EfficientViT('m0').eval()
    with torch.no_grad():
        outputs = model(torch.randn(2, 3, *size))
    assert [tuple(o.shape[2:]) for o in outputs] == expected
    assert all(torch.isfinite(o).all() for o in outputs)


@pytest.mark.slow
def test_very_large_input_in_eval():
    """2048 x 2048: maps of 128, 64 and 32 (each stride-2 conv rounds up),
    finite, and a window far from the border sees only its neighbourhood:
    changing the bottom-right corner leaves the top-left outputs alone."""
    model = EfficientViT('m0').eval()
    x = torch.randn(1, 3, 2048, 2048)
    with torch.no_grad():
        outputs = model(x)
        x[..., 1024:, 1024:] = 0
        changed = model(x)
    assert [tuple(o.shape[2:]) for o in outputs] == [(128, 128), (64, 64),
                                                      (32, 32)]
    assert all(torch.isfinite(o).all() for o in outputs)
    torch.testing.assert_close(changed[0][..., :14, :14],
                               outputs[0][..., :14, :14])
    assert not torch.equal(changed[0], outputs[0])
