"""Command-line options of ``tools/train.py`` and ``tools/test.py`` applied
to a config, the same way for mmdet, mmseg and mmpretrain configs (the
toolbox is the config's ``default_scope``)."""
import os.path as osp
from typing import Optional

import torch
from mmengine.config import Config, ConfigDict

SCOPES = ('mmdet', 'mmseg', 'mmpretrain')


def config_scope(cfg: Config) -> str:
    """The toolbox of a config, from its ``default_scope``."""
    scope = cfg.get('default_scope')
    if scope not in SCOPES:
        raise ValueError(f'default_scope={scope!r} in the config is not '
                         f'supported; allowed: {list(SCOPES)}.')
    return scope


def _apply_common(cfg: Config, config_path: str, work_dir: Optional[str],
                  launcher: str, cfg_options: Optional[dict]) -> None:
    cfg.launcher = launcher
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config_path))[0])


def apply_train_options(cfg: Config,
                        config_path: str,
                        work_dir: Optional[str] = None,
                        amp: bool = False,
                        auto_scale_lr: bool = False,
                        resume: Optional[str] = None,
                        launcher: str = 'none',
                        cfg_options: Optional[dict] = None) -> Config:
    """Apply ``tools/train.py``'s options to ``cfg`` in place.

    Args:
        cfg (Config): The loaded config.
        config_path (str): Its file; names the default work dir
            ``./work_dirs/<config name>``.
        work_dir (str, optional): Where logs and checkpoints go.
        amp (bool): Mixed precision through ``AmpOptimWrapper`` (needs a
            GPU).
        auto_scale_lr (bool): Scale the LR by the actual total batch size
            over ``auto_scale_lr.base_batch_size``.
        resume (str, optional): ``'auto'`` resumes from the latest
            checkpoint of the work dir, a path from that checkpoint.
        launcher (str): ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.
        cfg_options (dict, optional): ``key=value`` overrides, merged first.

    Returns:
        Config: ``cfg``.
    """
    _apply_common(cfg, config_path, work_dir, launcher, cfg_options)
    if amp:
        if not torch.cuda.is_available():
            raise RuntimeError('--amp needs a CUDA GPU (mmengine\'s '
                               'AmpOptimWrapper); none is available here.')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            raise RuntimeError(
                '--auto-scale-lr needs auto_scale_lr = dict(enable=False, '
                'base_batch_size=N) in the config; it has none.')
        cfg.auto_scale_lr.enable = True
    if resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif resume is not None:
        cfg.resume = True
        cfg.load_from = resume
    return cfg


def _enable_visualization(cfg: Config, scope: str, show: bool,
                          show_dir: Optional[str], wait_time: float) -> None:
    hook = cfg.get('default_hooks', {}).get('visualization')
    if hook is None:
        raise RuntimeError(
            '--show/--show-dir need a visualization hook: add '
            'default_hooks=dict(visualization=dict(type=...)) to the '
            'config.')
    hook.show = show
    hook.wait_time = wait_time
    if scope == 'mmpretrain':
        hook.enable = True
        hook.out_dir = show_dir
        return
    hook.draw = True
    if show_dir is None:
        return
    if scope == 'mmdet':
        hook.test_out_dir = show_dir
    else:
        cfg.visualizer.save_dir = show_dir


def _dump_predictions(cfg: Config, scope: str, out: str) -> None:
    if scope == 'mmseg':
        cfg.test_evaluator.output_dir = out
        cfg.test_evaluator.keep_results = True
        return
    if not out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out {out!r} must name a .pkl or .pickle file.')
    metric = dict(
        type='DumpDetResults' if scope == 'mmdet' else 'DumpResults',
        out_file_path=out)
    evaluators = cfg.test_evaluator
    if isinstance(evaluators, (dict, ConfigDict)):
        evaluators = [evaluators]
    cfg.test_evaluator = list(evaluators) + [metric]


def apply_test_options(cfg: Config,
                       config_path: str,
                       checkpoint: str,
                       work_dir: Optional[str] = None,
                       out: Optional[str] = None,
                       show: bool = False,
                       show_dir: Optional[str] = None,
                       wait_time: float = 2.,
                       tta: bool = False,
                       amp: bool = False,
                       launcher: str = 'none',
                       cfg_options: Optional[dict] = None) -> Config:
    """Apply ``tools/test.py``'s options to ``cfg`` in place.

    Args:
        cfg (Config): The loaded config.
        config_path (str): Its file (names the default work dir).
        checkpoint (str): Weights to test.
        work_dir (str, optional): Where the metrics and logs go.
        out (str, optional): Dump the predictions: a ``.pkl`` file for
            mmdet (``DumpDetResults``) and mmpretrain (``DumpResults``), a
            folder of predicted label maps for mmseg, as their own tools do.
        show (bool): Show each prediction in a window.
        show_dir (str, optional): Save images with the predictions drawn
            (mmdet: under ``work_dir/<timestamp>/``, as mmdet's tool does).
        wait_time (float): Seconds each shown image stays up.
        tta (bool): Test-time augmentation with the config's ``tta_model``
            and ``tta_pipeline``.
        amp (bool): Test in fp16 autocast.
        launcher (str): ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.
        cfg_options (dict, optional): ``key=value`` overrides, merged first.

    Returns:
        Config: ``cfg``.
    """
    scope = config_scope(cfg)
    _apply_common(cfg, config_path, work_dir, launcher, cfg_options)
    cfg.load_from = checkpoint
    if show or show_dir:
        _enable_visualization(cfg, scope, show, show_dir, wait_time)
    if tta:
        missing = [k for k in ('tta_model', 'tta_pipeline') if k not in cfg]
        if missing:
            raise RuntimeError(f'--tta needs {missing} in the config.')
        cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    if amp:
        cfg.test_cfg = dict(cfg.get('test_cfg') or {}, fp16=True)
    if out is not None:
        _dump_predictions(cfg, scope, out)
    return cfg
