"""Runtime fixes and tool options: safe loading of mmengine checkpoints,
resuming a run, CPU distributed setup, and the options of the tools."""
import os
import shutil
import subprocess
import sys

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.hooks import Hook
from mmengine.registry import DATASETS, HOOKS, MODELS
from mmengine.runner import Runner
from torch.utils.data import Dataset

from evit_mm.checkpoint import (CheckpointError, read_checkpoint,
                                register_safe_globals)
from evit_mm.engine import (apply_test_options, apply_train_options,
                            build_runner, setup_distributed)


@MODELS.register_module(name='RuntimeToyModel', force=True)
class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)
        with torch.no_grad():  # the same start in every run
            self.linear.weight.copy_(torch.tensor([[0.5, -0.5]]))
            self.linear.bias.zero_()

    def forward(self, inputs, targets=None, mode='tensor'):
        outputs = self.linear(inputs)
        if mode == 'loss':
            return dict(loss=((outputs - targets)**2).mean())
        return outputs


@DATASETS.register_module(name='RuntimeToyDataset', force=True)
class ToyDataset(Dataset):

    def __init__(self):
        generator = torch.Generator().manual_seed(0)
        self.inputs = torch.randn(8, 2, generator=generator)
        self.targets = self.inputs.sum(1, keepdim=True)

    def __len__(self):
        return len(self.inputs)

    def __getitem__(self, index):
        return dict(inputs=self.inputs[index], targets=self.targets[index])


@HOOKS.register_module(name='RuntimeStartRecorder', force=True)
class StartRecorder(Hook):
    """Records where each run's training loop starts (after mmengine has
    loaded or resumed a checkpoint)."""
    starts = {}

    def before_train(self, runner):
        self.starts[runner.work_dir] = (runner.epoch, runner.iter)


def _toy_config(max_epochs):
    return Config(
        dict(
            model=dict(type='RuntimeToyModel'),
            train_dataloader=dict(
                dataset=dict(type='RuntimeToyDataset'),
                sampler=dict(type='DefaultSampler', shuffle=True, seed=0),
                batch_size=2,
                collate_fn=dict(type='default_collate')),
            optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.01)),
            param_scheduler=dict(type='MultiStepLR', milestones=[1, 2],
                                 gamma=0.5),
            train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
            auto_scale_lr=dict(enable=False, base_batch_size=16),
            default_hooks=dict(
                checkpoint=dict(type='CheckpointHook', interval=1),
                logger=dict(type='LoggerHook', interval=1)),
            custom_hooks=[dict(type='RuntimeStartRecorder')],
            randomness=dict(seed=0),
            default_scope='mmengine'))


_runs = 0


def _runner(work_dir, max_epochs, config_path='toy.py', **options):
    """A Runner built the way ``tools/train.py`` builds one: the toy config
    with the train options applied."""
    global _runs
    _runs += 1
    cfg = apply_train_options(_toy_config(max_epochs), config_path,
                              work_dir=None if work_dir is None else
                              str(work_dir), **options)
    cfg.experiment_name = f'toy_{_runs}'  # one message hub per runner
    return Runner.from_cfg(cfg)


def _first_lr(runner):
    return runner.message_hub.get_scalar('train/lr').data[0][0]


@pytest.fixture
def clean_allow_list():
    """Run with torch's process-wide allow-list emptied, restore it after."""
    saved = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()
    yield
    torch.serialization.clear_safe_globals()
    torch.serialization.add_safe_globals(saved)


@pytest.fixture(scope='module')
def toy_runs(tmp_path_factory):
    """A 3-epoch run, and the same run resumed from its epoch-1 checkpoint
    in another folder (as if it had stopped there)."""
    full = tmp_path_factory.mktemp('full')
    _runner(full, 3).train()
    resumed = tmp_path_factory.mktemp('resumed')
    shutil.copy(full / 'epoch_1.pth', resumed / 'epoch_1.pth')
    runner = _runner(resumed, 3, resume=str(resumed / 'epoch_1.pth'))
    runner.train()
    return full, resumed, runner


def test_mmengine_checkpoint_needs_and_gets_the_allow_list(
        toy_runs, clean_allow_list):
    path = str(toy_runs[0] / 'epoch_1.pth')
    with pytest.raises(Exception, match='Weights only load failed'):
        torch.load(path, weights_only=True)
    register_safe_globals()
    checkpoint = torch.load(path, weights_only=True)
    buffer = checkpoint['message_hub']['log_scalars']['train/loss']
    assert buffer.mean() > 0
    assert checkpoint['meta']['epoch'] == 1


def test_other_getattr_uses_are_refused(tmp_path, clean_allow_list):

    class Payload:

        def __reduce__(self):
            return getattr, ('text', 'upper')

    path = str(tmp_path / 'evil.pth')
    torch.save({'x': Payload()}, path)
    register_safe_globals()
    with pytest.raises(Exception, match="Refused getattr\\(str, 'upper'\\)"):
        torch.load(path, weights_only=True)
    with pytest.raises(CheckpointError, match='Refused'):
        read_checkpoint(path)


def test_resume_continues_iterations_optimizer_and_schedule(toy_runs):
    full, resumed, runner = toy_runs
    assert runner.epoch == 3 and runner.iter == 12  # 4 iterations an epoch
    a = read_checkpoint(str(full / 'epoch_3.pth'))
    b = read_checkpoint(str(resumed / 'epoch_3.pth'))
    assert (a['meta']['iter'], b['meta']['iter']) == (12, 12)
    for key, value in a['state_dict'].items():
        torch.testing.assert_close(b['state_dict'][key], value)
    for key in ('exp_avg', 'exp_avg_sq', 'step'):
        for index, state in a['optimizer']['state'].items():
            torch.testing.assert_close(b['optimizer']['state'][index][key],
                                       state[key])
    # the LR halved after epochs 1 and 2 in both runs
    assert a['optimizer']['param_groups'][0]['lr'] == pytest.approx(0.0025)
    assert b['optimizer']['param_groups'][0]['lr'] == pytest.approx(0.0025)
    assert a['param_schedulers'] == b['param_schedulers']


def test_resume_starts_from_the_checkpoint(toy_runs):
    _, resumed, runner = toy_runs
    start = read_checkpoint(str(resumed / 'epoch_1.pth'))
    assert start['meta']['iter'] == 4
    assert start['optimizer']['param_groups'][0]['lr'] == pytest.approx(0.005)
    # the restored log history goes on with epochs 2 and 3
    logs = runner.message_hub.get_scalar('train/lr').data[0]
    assert list(logs) == [0.01] * 4 + [0.005] * 4 + [0.0025] * 4


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU-only behaviour')
def test_setup_distributed_on_cpu(monkeypatch):
    cfg = Config(dict(launcher='none'))
    setup_distributed(cfg)
    assert 'model_wrapper_cfg' not in cfg

    import torch.distributed as dist
    for name, value in dict(RANK='0', LOCAL_RANK='0', WORLD_SIZE='1',
                            MASTER_ADDR='127.0.0.1',
                            MASTER_PORT=str(29400 + os.getpid() % 500)
                            ).items():
        monkeypatch.setenv(name, value)
    cfg = Config(dict(launcher='pytorch',
                      env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    set_device = torch.cuda.set_device
    try:
        setup_distributed(cfg)
        assert dist.is_initialized() and dist.get_backend() == 'gloo'
        assert torch.cuda.set_device is set_device  # restored
        assert cfg.model_wrapper_cfg == dict(
            type='MMDistributedDataParallel', broadcast_buffers=False,
            find_unused_parameters=False, device_ids=None)
        model = torch.nn.parallel.DistributedDataParallel(
            nn.Linear(2, 1), device_ids=cfg.model_wrapper_cfg.device_ids)
        assert model(torch.ones(1, 2)).shape == (1, 1)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _cfg(scope):
    hooks = dict(
        mmdet=dict(type='DetVisualizationHook'),
        mmseg=dict(type='SegVisualizationHook'),
        mmpretrain=dict(type='VisualizationHook', enable=False))
    return Config(
        dict(default_scope=scope,
             default_hooks=dict(visualization=hooks[scope]),
             visualizer=dict(type='Visualizer'),
             optim_wrapper=dict(type='OptimWrapper'),
             auto_scale_lr=dict(enable=False, base_batch_size=16),
             test_evaluator=dict(type='Metric')))


def test_train_option_auto_scale_lr(tmp_path):
    """mmengine scales the LR by (batch per process x processes) / base:
    2 x 1 / 16 here; the LR given through cfg_options is the one scaled."""
    runner = _runner(tmp_path / 'scaled', 1, auto_scale_lr=True,
                     cfg_options={'optim_wrapper.optimizer.lr': 0.08})
    runner.train()
    assert _first_lr(runner) == pytest.approx(0.08 * 2 / 16)
    runner = _runner(tmp_path / 'plain', 1)
    runner.train()
    assert _first_lr(runner) == pytest.approx(0.01)
    assert StartRecorder.starts[str(tmp_path / 'plain')] == (0, 0)
    bare = _toy_config(1)
    bare.pop('auto_scale_lr')
    with pytest.raises(RuntimeError, match='auto_scale_lr'):
        apply_train_options(bare, 'x.py', auto_scale_lr=True)


def test_train_option_resume_auto(toy_runs, tmp_path):
    """--resume auto continues from the work dir's latest checkpoint and
    ends where the uninterrupted run ended."""
    full = toy_runs[0]
    register_safe_globals()  # as importing evit_mm does
    shutil.copy(full / 'epoch_1.pth', tmp_path / 'epoch_1.pth')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_1.pth'))
    runner = _runner(tmp_path, 2, resume='auto')
    runner.train()
    assert StartRecorder.starts[str(tmp_path)] == (1, 4)
    assert runner.iter == 8
    assert list(runner.message_hub.get_scalar('train/lr').data[0]) == \
        [0.01] * 4 + [0.005] * 4
    a = read_checkpoint(str(full / 'epoch_2.pth'))['state_dict']
    b = read_checkpoint(str(tmp_path / 'epoch_2.pth'))['state_dict']
    for key, value in a.items():
        torch.testing.assert_close(b[key], value)


def test_train_option_default_work_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = _runner(None, 1, config_path='configs/a/b_c.py')
    assert runner.work_dir == str(tmp_path / 'work_dirs' / 'b_c')
    assert (tmp_path / 'work_dirs' / 'b_c').is_dir()


def test_run_log_keeps_long_reports_off_the_screen(tmp_path, capsys):
    """The tools' runner: a short header on the screen (device and
    processes, not mmengine's "GPU number"), the config, hook order and
    parameter-wise settings in the log file only, and no note about the
    FileClient mmengine builds without being asked to."""
    cfg = apply_train_options(_toy_config(1), 'configs/toy/toy_run.py',
                              work_dir=str(tmp_path))
    cfg.optim_wrapper.paramwise_cfg = dict(
        custom_keys={'bias': dict(lr_mult=0.5)})
    runner = build_runner(cfg, strict_load=False)
    runner.train()
    screen = capsys.readouterr().out
    with open(runner.logger.log_file) as f:
        log = f.read()
    for text in ('Config:', 'Hooks will be executed', 'paramwise_options',
                 'GPU number', 'dist_cfg'):
        assert text not in screen, text
    device = 'CUDA GPU(s)' if torch.cuda.is_available() else 'CPU'
    assert f'device: {device}' in screen and 'processes: 1' in screen
    config = tmp_path / f'{runner.timestamp}.py'  # a config of no file
    assert f'config: {config}' in screen and config.is_file()
    for text in ('Config:\n', "type='RuntimeToyModel'",
                 'Hooks will be executed', 'paramwise_options -- linear.bias',
                 'Epoch(train) [1][4/4]'):
        assert text in log, text
    assert 'FileClient' not in screen + log


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU-only behaviour')
def test_amp_without_gpu_is_refused():
    with pytest.raises(RuntimeError, match='--amp needs a CUDA GPU'):
        apply_train_options(_cfg('mmdet'), 'x.py', amp=True)


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg', 'mmpretrain'])
def test_test_options_per_toolbox(scope):
    out = 'preds' if scope == 'mmseg' else 'preds.pkl'
    cfg = apply_test_options(_cfg(scope), 'x.py', 'ckpt.pth', out=out,
                             show_dir='vis')
    hook = cfg.default_hooks.visualization
    assert cfg.load_from == 'ckpt.pth'
    if scope == 'mmdet':
        assert hook.draw and hook.test_out_dir == 'vis'
        assert cfg.test_evaluator[-1] == dict(type='DumpDetResults',
                                              out_file_path='preds.pkl')
    elif scope == 'mmseg':
        assert hook.draw and cfg.visualizer.save_dir == 'vis'
        assert cfg.test_evaluator.output_dir == 'preds'
        assert cfg.test_evaluator.keep_results
    else:
        assert hook.enable and hook.out_dir == 'vis'
        assert cfg.test_evaluator[-1] == dict(type='DumpResults',
                                              out_file_path='preds.pkl')
    if scope != 'mmseg':
        assert cfg.test_evaluator[0] == dict(type='Metric')


def test_test_option_errors_name_the_value():
    with pytest.raises(ValueError, match="'preds.json'"):
        apply_test_options(_cfg('mmdet'), 'x.py', 'c.pth', out='preds.json')
    cfg = _cfg('mmdet')
    cfg.default_scope = 'mmocr'
    with pytest.raises(ValueError, match="default_scope='mmocr'"):
        apply_test_options(cfg, 'x.py', 'c.pth')
    cfg = _cfg('mmdet')
    cfg.default_hooks.pop('visualization')
    with pytest.raises(RuntimeError, match='visualization hook'):
        apply_test_options(cfg, 'x.py', 'c.pth', show_dir='vis')
    with pytest.raises(RuntimeError, match='tta_model'):
        apply_test_options(_cfg('mmdet'), 'x.py', 'c.pth', tta=True)


def test_import_needs_no_toolbox():
    """With mmdet, mmseg and mmpretrain absent, ``import evit_mm`` (and its
    engine and dataset generator) still works and builds the backbone and
    neck from mmengine's registry."""
    code = """
import sys
for name in ('mmdet', 'mmseg', 'mmpretrain'):
    sys.modules[name] = None  # import fails, find_spec says absent
import torch
import evit_mm, evit_mm.engine, evit_mm.datasets.synthetic
from mmengine.registry import MODELS
backbone = MODELS.build(dict(type='EfficientViT', arch='m0')).eval()
neck = MODELS.build(dict(type='EfficientViTFPN', in_channels=[64, 128, 192],
                         out_channels=8, num_outs=4))
print(len(neck(backbone(torch.zeros(1, 3, 64, 64)))))
"""
    result = subprocess.run([sys.executable, '-c', code], text=True,
                            capture_output=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == '4'
