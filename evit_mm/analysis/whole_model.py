"""Whole detectors and segmentors as benchmarks time them: built from a
config without fetching weights, fed one pre-processed image of a given
size, and run whole (post-processing included: NMS and box rescaling, or
the resized label map) or backbone alone, in PyTorch and deployed to ONNX
Runtime and OpenVINO (the whole model exported by mmdeploy, the backbone by
``torch.onnx``).
"""
import logging
import os
import os.path as osp
import tempfile
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from ..deploy.builder import build_model
from ..deploy.constants import BACKENDS

TASKS = {'mmdet': 'detection', 'mmseg': 'segmentation'}
# The ONNX opset of every whole model timed: the lowest that exports
# mmseg's MiT (SegFormer's backbone), whose attention torch writes with
# ``unflatten`` (opset 13); the deploy configs' default, 11, would not.
DEPLOY_OPSET = 13


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

    cfg = Config.fromfile(resolve_config(config))
    scope = cfg.get('default_scope')
    if scope not in TASKS:
        raise ValueError(f'{config}: default_scope={scope!r}; allowed are '
                         f'{", ".join(map(repr, TASKS))}.')
    cfg.model.backbone.init_cfg = None
    if 'pretrained' in cfg.model:
        cfg.model.pretrained = None
    model = build_model(cfg)
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


def deploy_whole(model: nn.Module, cfg, backend: str, height: int,
                 width: int, work_dir: str,
                 label_map_in_graph: bool = False) -> str:
    """The whole model exported by mmdeploy for ``backend`` as
    ``tools/deployment/deploy.py --opset 13`` exports it (dynamic height
    and width; NMS or argmax in the graph; :data:`DEPLOY_OPSET`), with the
    model's current weights.

    Args:
        model (nn.Module): The model built from ``cfg``.
        cfg (mmengine.Config): Its config (as :func:`build_untrained`
            returns it).
        backend (str): ``'onnxruntime'`` or ``'openvino'``.
        height, width (int): Size of the image traced.
        work_dir (str): Where the config, weights and deployment go.
        label_map_in_graph (bool): A segmentor's graph draws the label map
            (``deploy.py --label-map-in-graph``) instead of ending at the
            head's logits.

    Returns:
        str: the file the backend loads (ONNX or OpenVINO IR); its input is
        named ``input``.
    """
    from ..deploy.mmdeploy_export import deploy_model
    config = osp.join(work_dir, 'model_config.py')
    checkpoint = osp.join(work_dir, 'weights.pth')
    if not osp.isfile(checkpoint):
        os.makedirs(work_dir, exist_ok=True)
        cfg.dump(config)
        torch.save(dict(state_dict=model.state_dict()), checkpoint)
    deployment = deploy_model(config, checkpoint, backend,
                              osp.join(work_dir, backend),
                              shape=(height, width), opset=DEPLOY_OPSET,
                              label_map_in_graph=label_map_in_graph)
    return deployment.backend_files[0]


def logits_of_a_scene(like: np.ndarray, label_map: np.ndarray) -> np.ndarray:
    """Logits of ``like``'s shape ``(1, C, h, w)`` like a trained
    segmentor's on the regions of ``label_map``
    (:func:`~evit_mm.analysis.label_map_tail.realistic_logits`)."""
    from .label_map_tail import realistic_logits
    if like.ndim != 4 or 0 in like.shape:
        raise ValueError(f'the graph output logits of shape {like.shape}, '
                         'not (1, C, h, w) with pixels.')
    return realistic_logits(label_map, 0, like.shape[1], like.shape[2:])


def with_label_map(run: Callable[[], list], backend: str, cfg,
                   threads: int, size: Sequence[int],
                   scene: Optional[Callable[[Sequence[int]], np.ndarray]]
                   = None) -> Callable[[], object]:
    """A deployed segmentor's graph (ending at its head's logits) followed
    by the label map drawn from them at ``size``, as
    :class:`~evit_mm.deploy.backends.DeployedModel` draws it. With
    ``scene`` (a label map of ``size`` for a size), the graph runs and the
    tail draws from logits of the same shape like a trained segmentor's on
    that label map (:func:`logits_of_a_scene`) instead of the graph's own,
    which random weights make noise."""
    from ..deploy.backends import decode_head_align_corners
    from ..deploy.label_map import LabelMapTail
    tail = LabelMapTail(backend, decode_head_align_corners(cfg), threads)
    if scene is None:
        return lambda: tail(run()[0], size)
    logits = []  # made at the first call, from the graph's output shape

    def graph_then_tail():
        output = run()[0]
        if not logits:
            logits.append(logits_of_a_scene(output, scene(size)))
        return tail(logits[0], size)

    return graph_then_tail


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
              backends: Sequence[str] = BACKENDS,
              graph_tail: bool = False,
              scene: Optional[Callable[[Sequence[int]], np.ndarray]] = None
              ) -> List[dict]:
    """Time whole models and their backbones at batch 1, in one interleaved
    run per image size: every model whole and backbone alone, in PyTorch
    and in each deployed backend (mmdeploy's export of the whole model,
    each exported once per backend: its graph has dynamic height and width;
    the backbone as a static ONNX graph).

    Args:
        configs (dict): Name to config (:func:`resolve_config`); all of one
            task (detection or segmentation).
        sizes (Sequence[tuple]): Image sizes (H, W), before the model's own
            padding.
        threads (int): Intra-op threads of the deployed sessions (set
            PyTorch's with :func:`evit_mm.analysis.timing.use_threads`).
        warmup (int): Untimed rounds. Defaults to 1.
        repeats (int): Timed rounds. Defaults to 5.
        backends (Sequence[str]): Deployed backends timed beside PyTorch,
            of :data:`BACKENDS`. Defaults to both.
        graph_tail (bool): Segmentors: also time, as backend
            ``'<backend>+graph-tail'``, the graph that draws the label map
            itself (mmdeploy's resize + argmax), beside the default graph
            that ends at the head's logits followed by
            :class:`~evit_mm.deploy.label_map.LabelMapTail`.
        scene (callable, optional): Segmentors: a label map of a given
            (H, W); the tail after a graph ending at the head's logits then
            draws from logits like a trained segmentor's on it
            (:func:`with_label_map`), not from the noise of the random
            weights.

    Returns:
        list[dict]: per model, size and backend (``'pytorch'`` first):
        ``model``, ``config``, ``task``, ``size``, ``input`` (the padded
        input shape), ``backend``, the whole model's ``median_ms``,
        ``p10_ms``, ``p90_ms``, ``runs``, the backbone's ``backbone_ms``,
        and ``params``, ``flops``, ``backbone_flops``, ``efficientvit``; a
        deployed graph that fails to run at a size (one whose shapes the
        tracer fixed) gets ``error`` (:func:`graph_failure`) in place of
        the timings.

    Raises:
        ValueError: for configs of two tasks or an unknown backend.
    """
    from .timing import deployed_timer, interleaved, summary
    unknown = set(backends) - set(BACKENDS)
    if unknown:
        raise ValueError(f'backends {sorted(unknown)}: allowed are '
                         f'{", ".join(BACKENDS)}.')
    built = {name: build_untrained(config) for name, config in configs.items()}
    tasks = {TASKS[cfg.default_scope] for _, cfg in built.values()}
    if len(tasks) > 1:
        raise ValueError(f'configs of one task at a time, got {tasks}.')
    rows, deployed, failed = [], {}, {}
    # (row label, backend, label map in the graph)
    variants = [(backend, backend, False) for backend in backends]
    if graph_tail and tasks == {'segmentation'}:
        variants += [(f'{backend}+graph-tail', backend, True)
                     for backend in backends]
    with tempfile.TemporaryDirectory(prefix='evit-bench-') as work_dir:
        for height, width in sizes:
            fns, facts = {}, {}
            for name, (model, cfg) in built.items():
                folder = osp.join(work_dir, name)
                os.makedirs(folder, exist_ok=True)
                inputs, samples = example_batch(model, height, width)
                for part, fn in eager_fns(model, inputs, samples).items():
                    fns[name, 'pytorch', part] = fn
                if backends:
                    backbone_file = osp.join(folder,
                                             f'backbone_{height}x{width}.onnx')
                    with open(backbone_file, 'wb') as file:
                        file.write(backbone_onnx(model, inputs))
                feed = {'input': inputs}
                for label, backend, in_graph in variants:
                    if (name, label) not in deployed:
                        deployed[name, label] = deploy_whole(
                            model, cfg, backend, height, width,
                            osp.join(folder, label), in_graph)
                    whole = deployed_timer(backend, deployed[name, label],
                                           feed, threads)
                    if cfg.default_scope == 'mmseg' and not in_graph:
                        whole = with_label_map(
                            whole, backend, cfg, threads, inputs.shape[2:],
                            scene)
                    try:
                        whole()
                    except Exception as err:  # each backend raises its own types
                        failed[name, label] = graph_failure(err)
                        continue
                    fns[name, label, 'whole'] = whole
                    fns[name, label, 'backbone'] = deployed_timer(
                        backend, backbone_file, feed, threads)
                facts[name] = dict(
                    model=name, config=configs[name],
                    task=TASKS[cfg.default_scope], size=[height, width],
                    input=list(inputs.shape),
                    efficientvit=cfg.model.backbone.type == 'EfficientViT',
                    **complexity(model, inputs))
            with torch.inference_mode():
                times = interleaved(fns, warmup, repeats)
            for name in built:
                for backend in ['pytorch', *(v[0] for v in variants)]:
                    if (name, backend) in failed:
                        rows.append(dict(facts[name], backend=backend,
                                         error=failed.pop((name, backend))))
                        continue
                    rows.append(dict(
                        facts[name], backend=backend,
                        **summary(times[name, backend, 'whole']),
                        backbone_ms=summary(
                            times[name, backend, 'backbone'])['median_ms']))
    return rows


def graph_failure(err: Exception) -> str:
    """Why a deployed graph could not run at a size: the backend's error,
    its last line shortened. Graphs whose shapes the tracer fixed (e.g.
    mmseg's MiT attention, traced at the test pipeline's 512x512) run only
    at the traced size."""
    message = str(err).strip().splitlines()[-1] if str(err).strip() else ''
    return f'{type(err).__name__}: {message[-200:]}'

