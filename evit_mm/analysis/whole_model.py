"""Whole detectors and segmentors as benchmarks time them: built from a
config without fetching weights, fed one pre-processed image of a given
size, and run whole (post-processing included: NMS and box rescaling, or
the resized label map) or backbone alone, in PyTorch and in ONNX Runtime
(the whole model exported by mmdeploy, the backbone by ``torch.onnx``).
"""
import logging
import os
import os.path as osp
import tempfile
from typing import Callable, Dict, List, Sequence, Tuple

import torch
import torch.nn as nn

TASKS = {'mmdet': 'detection', 'mmseg': 'segmentation'}


def resolve_config(config: str) -> str:
    """The file of ``config``: a path, or ``package::relative/path.py`` for
    a config shipped with an OpenMMLab package (e.g.
    ``mmdet::retinanet/retinanet_r18_fpn_1x_coco.py``).

    Raises:
        FileNotFoundError: when the file does not exist.
    """
    path = config
    if '::' in config:
        from mmengine.config.utils import (_get_external_cfg_base_path,
                                           _get_package_and_cfg_path)
        from mmengine.utils import get_installed_path
        package, relative = _get_package_and_cfg_path(config)
        path = _get_external_cfg_base_path(get_installed_path(package),
                                           relative)
    if not osp.isfile(path):
        raise FileNotFoundError(f'config {config} does not exist.')
    return path


def build_untrained(config: str):
    """The model of a detection or segmentation config in eval mode,
    randomly initialized by its own ``init_weights`` (e.g. RetinaNet's
    low-prior classifier bias) with every pretrained checkpoint of the
    config dropped, so that nothing is downloaded.

    Args:
        config (str): A path or ``package::path`` (:func:`resolve_config`).

    Returns:
        tuple: the model and its (changed) ``mmengine.Config``.

    Raises:
        ValueError: for a config of another toolbox than mmdet or mmseg.
    """
    from mmengine.config import Config
    from mmengine.logging import MMLogger
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.utils import import_modules_from_strings

    cfg = Config.fromfile(resolve_config(config))
    scope = cfg.get('default_scope')
    if scope not in TASKS:
        raise ValueError(f'{config}: default_scope={scope!r}; allowed are '
                         f'{", ".join(map(repr, TASKS))}.')
    cfg.model.backbone.init_cfg = None
    if 'pretrained' in cfg.model:
        cfg.model.pretrained = None
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(scope)
    model = MODELS.build(cfg.model)
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)  # init_weights logs every parameter
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)
    return model.eval(), cfg


def example_batch(model: nn.Module, height: int, width: int,
                  seed: int = 0) -> Tuple[torch.Tensor, List]:
    """One random image of ``height`` x ``width`` through the model's data
    pre-processor (normalized; padded where the detector pads, e.g. to a
    multiple of 32), and its data sample.

    Returns:
        tuple: the input batch ``(1, 3, H', W')`` and the data samples.
    """
    if min(height, width) < 1:
        raise ValueError(f'image size {height}x{width} must be positive.')
    generator = torch.Generator().manual_seed(seed)
    image = torch.randint(0, 256, (3, height, width), dtype=torch.uint8,
                          generator=generator)
    meta = dict(img_shape=(height, width), ori_shape=(height, width),
                scale_factor=(1., 1.))
    if type(model).__module__.startswith('mmseg'):
        from mmseg.structures import SegDataSample
        sample = SegDataSample(metainfo=meta)
    else:
        from mmdet.structures import DetDataSample
        sample = DetDataSample(metainfo=meta)
    data = model.data_preprocessor(
        dict(inputs=[image], data_samples=[sample]), False)
    return data['inputs'], data['data_samples']


def eager_fns(model: nn.Module, inputs: torch.Tensor,
              samples: List) -> Dict[str, Callable[[], object]]:
    """``whole`` (``model.predict``: forward and post-processing) and
    ``backbone`` (the backbone alone) on the same input, in PyTorch; call
    them under ``torch.inference_mode()``."""
    return dict(
        whole=lambda: model.predict(inputs, samples),
        backbone=lambda: model.backbone(inputs))


def backbone_onnx(model: nn.Module, inputs: torch.Tensor) -> bytes:
    """The backbone alone as a static ONNX graph for ``inputs``."""
    from ..deploy import export_onnx
    with torch.no_grad():
        outputs = model.backbone(inputs)
    return export_onnx(model.backbone, inputs,
                       [f'out{i}' for i in range(len(outputs))],
                       dynamic=False)


def whole_onnx(model: nn.Module, cfg, height: int, width: int,
               work_dir: str) -> str:
    """The whole model exported by mmdeploy for ONNX Runtime (dynamic
    height and width; NMS or argmax in the graph), with the model's current
    weights.

    Args:
        model (nn.Module): The model built from ``cfg``.
        cfg (mmengine.Config): Its config (as :func:`build_untrained`
            returns it).
        height, width (int): Size of the image traced.
        work_dir (str): Where the config, weights and deployment go.

    Returns:
        str: the ONNX file; its input is named ``input``.
    """
    from ..deploy.mmdeploy_export import deploy_model
    config = osp.join(work_dir, 'model_config.py')
    checkpoint = osp.join(work_dir, 'weights.pth')
    cfg.dump(config)
    torch.save(dict(state_dict=model.state_dict()), checkpoint)
    return deploy_model(config, checkpoint, 'onnxruntime',
                        osp.join(work_dir, 'onnxruntime'),
                        shape=(height, width)).onnx_file


def complexity(model: nn.Module, inputs: torch.Tensor) -> Dict[str, int]:
    """``params`` of the whole model, and ``flops`` (multiply-accumulates,
    BatchNorm folded; the network without post-processing) of the whole
    model and of its backbone alone (``backbone_flops``) on ``inputs``."""
    from ..deploy import TensorMode

    from .complexity import count_complexity
    whole = count_complexity(TensorMode(model), (inputs, ))
    backbone = count_complexity(model.backbone, (inputs, ))
    return dict(params=whole['params'], flops=whole['flops'],
                backbone_flops=backbone['flops'])


def benchmark(configs: Dict[str, str],
              sizes: Sequence[Tuple[int, int]],
              threads: int,
              warmup: int = 1,
              repeats: int = 5,
              onnxruntime: bool = True) -> List[dict]:
    """Time whole models and their backbones at batch 1, in one interleaved
    run per image size: every model whole and backbone alone, in PyTorch
    and (with ``onnxruntime``) in ONNX Runtime (mmdeploy's export of the
    whole model, each exported once: its graph has dynamic height and
    width).

    Args:
        configs (dict): Name to config (:func:`resolve_config`); all of one
            task (detection or segmentation).
        sizes (Sequence[tuple]): Image sizes (H, W), before the model's own
            padding.
        threads (int): Intra-op threads of the ONNX Runtime sessions (set
            PyTorch's with :func:`evit_mm.analysis.timing.use_threads`).
        warmup (int): Untimed rounds. Defaults to 1.
        repeats (int): Timed rounds. Defaults to 5.
        onnxruntime (bool): Also time ONNX Runtime. Defaults to True.

    Returns:
        list[dict]: per model, size and backend: ``model``, ``config``,
        ``task``, ``size``, ``input`` (the padded input shape),
        ``backend``, the whole model's ``median_ms``, ``p10_ms``,
        ``p90_ms``, ``runs``, the backbone's ``backbone_ms``, and
        ``params``, ``flops``, ``backbone_flops``, ``efficientvit``.
    """
    from .timing import interleaved, ort_timer, summary
    built = {name: build_untrained(config) for name, config in configs.items()}
    tasks = {TASKS[cfg.default_scope] for _, cfg in built.values()}
    if len(tasks) > 1:
        raise ValueError(f'configs of one task at a time, got {tasks}.')
    backends = ['pytorch'] + (['onnxruntime'] if onnxruntime else [])
    rows, onnx_files = [], {}
    with tempfile.TemporaryDirectory(prefix='evit-bench-') as work_dir:
        for height, width in sizes:
            fns, facts = {}, {}
            for name, (model, cfg) in built.items():
                inputs, samples = example_batch(model, height, width)
                for part, fn in eager_fns(model, inputs, samples).items():
                    fns[name, 'pytorch', part] = fn
                if onnxruntime:
                    if name not in onnx_files:
                        folder = osp.join(work_dir, name)
                        os.makedirs(folder)
                        onnx_files[name] = whole_onnx(model, cfg, height,
                                                      width, folder)
                    feed = {'input': inputs}
                    fns[name, 'onnxruntime', 'whole'] = ort_timer(
                        onnx_files[name], feed, threads)
                    fns[name, 'onnxruntime', 'backbone'] = ort_timer(
                        backbone_onnx(model, inputs), feed, threads)
                facts[name] = dict(
                    model=name, config=configs[name],
                    task=TASKS[cfg.default_scope], size=[height, width],
                    input=list(inputs.shape),
                    efficientvit=cfg.model.backbone.type == 'EfficientViT',
                    **complexity(model, inputs))
            with torch.inference_mode():
                times = interleaved(fns, warmup, repeats)
            for name in built:
                for backend in backends:
                    rows.append(dict(
                        facts[name], backend=backend,
                        **summary(times[name, backend, 'whole']),
                        backbone_ms=summary(
                            times[name, backend, 'backbone'])['median_ms']))
    return rows
