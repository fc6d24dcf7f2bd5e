"""Deploy a whole model (detector, instance segmentor, semantic segmentor,
classifier) of any evit_mm config with mmdeploy 1.3.1: ``torch2onnx`` with
post-processing in the graph (NMS, RoI masks, argmax), then the backend
model (ONNX Runtime: the ONNX file; OpenVINO: an IR converted from it).

Fixes for this stack, each scoped to the calls made here:

* torch >= 2.9 exports with the dynamo exporter unless ``dynamo=False``;
  mmdeploy calls ``torch.onnx.export`` without the argument, and its
  rewriters only work with the TorchScript exporter; its RoIAlign symbolic
  imports a helper torch removed (:mod:`evit_mm.deploy.exporter`, a
  rewriter that mmdeploy's own tools get too).
* mmdeploy's rewriter context counts the functions ``torch.fx.wrap``
  registered on entry and pops the surplus by position on exit; torch
  2.14 keeps them in a dict, so a module with ``torch.fx.wrap`` imported
  inside the context (mmseg's timm backbone, on a first export in a fresh
  interpreter) made the exit fail with ``KeyError: -1``
  (:func:`private_fx_wrap_bookkeeping`).
* mmdeploy's own adaptive pooling is right at the traced size only:
  :mod:`evit_mm.deploy.rewriters` makes it follow the input size.
* mmdeploy's ``onnx2openvino`` drives the Model Optimizer (``mo``), which
  OpenVINO 2026 no longer has: the ONNX graph is converted with
  ``openvino.convert_model``
  (:func:`evit_mm.deploy.backends.onnx_to_openvino`).
"""
import contextlib
import copy
import os
import os.path as osp
import shutil
import tempfile
from typing import Iterator, Optional, Sequence, Tuple, Union
from unittest import mock

import numpy as np

from ..datasets.images import ImageError, check_image
from .constants import BACKENDS, GRAPH_PADDING, RESIZE_LOGITS
from .work_dir import (DEPLOY_CFG_FILE, MODEL_CFG_FILE, ONNX_FILE,
                       OPENVINO_FILE, Deployment, DeployError)

# mmdeploy's rewriters are written for opset 11; torch's TorchScript
# exporter goes up to 20.
MIN_OPSET = 11


def deploy_configs_dir() -> str:
    """``configs/deploy`` of the checkout, or of the installed package."""
    package = osp.dirname(osp.dirname(osp.abspath(__file__)))
    for root in (osp.dirname(package), osp.join(package, '.mim')):
        folder = osp.join(root, 'configs', 'deploy')
        if osp.isdir(folder):
            return folder
    raise DeployError(f'no configs/deploy beside {package}')


# Dense heads that predict masks with dynamic convolutions on one map.
DENSE_MASK_HEADS = ('RTMDetInsHead', 'RTMDetInsSepBNHead')


def deploy_task(model_cfg) -> str:
    """The deploy task of a model config: ``'detection'``,
    ``'instance-seg'`` (RoI masks), ``'instance-seg-rtmdet'`` (RTMDet-Ins:
    image-size masks), ``'segmentation'`` or ``'classification'``.

    Args:
        model_cfg (mmengine.Config): The model config.
    """
    scope = model_cfg.get('default_scope')
    if scope == 'mmdet':
        roi_head = model_cfg.model.get('roi_head') or {}
        bbox_head = model_cfg.model.get('bbox_head') or {}
        if bbox_head.get('type') in DENSE_MASK_HEADS:
            return 'instance-seg-rtmdet'
        return 'instance-seg' if roi_head.get('mask_head') else 'detection'
    tasks = dict(mmseg='segmentation', mmpretrain='classification')
    if scope not in tasks:
        raise DeployError(
            f'cannot deploy a model of default_scope={scope!r}: allowed are '
            "'mmdet', 'mmseg' and 'mmpretrain' configs.")
    return tasks[scope]


def deploy_config(model_cfg, backend: str, opset: Optional[int] = None):
    """The deploy config of ``configs/deploy`` for this model and backend,
    with dynamic batch, height and width.

    Args:
        model_cfg (mmengine.Config): The model config.
        backend (str): One of :data:`BACKENDS`.
        opset (int, optional): ONNX opset. Defaults to the config's (11).

    Returns:
        mmengine.Config: The deploy config.
    """
    from mmengine.config import Config
    name = f'{deploy_task(model_cfg)}_{backend}_dynamic.py'
    cfg = Config.fromfile(osp.join(deploy_configs_dir(), name))
    if opset is not None:
        cfg.onnx_config.opset_version = opset
    return cfg


def move_padding_into_graph(model_cfg, deploy_cfg) -> None:
    """A detector's batches are padded by its graph, not by its data
    preprocessor, in place: the graph's input is then the image itself,
    whose size mmdeploy gives the heads as the image's (mmdet clips boxes
    to the image, before padding). Other tasks keep their padding.

    Args:
        model_cfg (mmengine.Config): The model config: its data
            preprocessor's ``pad_size_divisor`` becomes 1.
        deploy_cfg (mmengine.Config): The deploy config: its
            ``codebase_config`` gets :data:`GRAPH_PADDING`: the divisor
            and the preprocessor's ``pad_value``
            (:func:`evit_mm.deploy.rewriters.detector__extract_feat_padded`).
    """
    if model_cfg.get('default_scope') != 'mmdet':
        return
    preprocessor = model_cfg.model.get('data_preprocessor') or {}
    divisor = preprocessor.get('pad_size_divisor', 1)
    if divisor > 1:
        deploy_cfg.codebase_config[GRAPH_PADDING] = dict(
            size_divisor=divisor, value=preprocessor.get('pad_value', 0))
        preprocessor['pad_size_divisor'] = 1


def place_label_map(model_cfg, deploy_cfg, in_graph: bool) -> None:
    """Record in a segmentor's ``deploy_cfg`` where its label map is
    drawn: in the graph (mmdeploy's resize + argmax, ``in_graph``) or after
    it by :class:`~evit_mm.deploy.label_map.LabelMapTail`, from a graph that
    ends at the head's logits.

    Raises:
        DeployError: ``in_graph`` for a model that is not a segmentor.
    """
    task = deploy_task(model_cfg)
    if task != 'segmentation':
        if in_graph:
            raise DeployError(
                'label_map_in_graph is for segmentors (mmseg configs), not '
                f'a {task} config.')
        return
    deploy_cfg.codebase_config.update(
        {RESIZE_LOGITS: in_graph, 'with_argmax': in_graph})


@contextlib.contextmanager
def private_fx_wrap_bookkeeping() -> Iterator[None]:
    """Within the context, mmdeploy's function rewriter keeps its record of
    ``torch.fx.wrap``-ed functions in a list of its own instead of torch's
    registry.

    mmdeploy 1.3.1 reads torch's registry as a list: it counts the entries
    when entering a rewriter context and pops as many from the end when
    leaving. Torch 2.14's registry is a dict keyed by (globals id, name):
    ``pop(-1)`` raises ``KeyError`` as soon as an import inside the context
    registered a function, and mmdeploy's search for wrapped functions to
    re-wrap (it unpacks list items of (globals, name)) never matches. With
    a list of its own, mmdeploy finds nothing to re-wrap, as before, and
    removes nothing on exit, so the functions an import registered stay
    registered. Only ``torch.fx.symbolic_trace`` reads the registry; the
    ONNX export does not.
    """
    from mmdeploy.core.rewriters import function_rewriter
    with mock.patch.object(function_rewriter, '_wrapped_fns_to_patch', []):
        yield


def check_backend(backend: str, opset: int) -> None:
    """Refuse a backend that is not installed, or an opset that the
    exporter or the backend lacks (tried on a one-node graph).

    Args:
        backend (str): One of :data:`BACKENDS`.
        opset (int): The ONNX opset of the export.

    Raises:
        DeployError: naming the backend or opset and what is allowed.
    """
    import onnx
    from torch.onnx._constants import ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET
    top = min(ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET,
              onnx.defs.onnx_opset_version())
    if not MIN_OPSET <= opset <= top:
        raise DeployError(
            f'opset {opset} is not supported: mmdeploy needs >= {MIN_OPSET} '
            f'and torch exports <= {top}.')
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node('Identity', ['x'], ['y'])], 'probe',
        [onnx.helper.make_tensor_value_info('x', onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info('y', onnx.TensorProto.FLOAT, [1])])
    probe = onnx.helper.make_model(
        graph, opset_imports=[onnx.helper.make_opsetid('', opset)])
    probe.ir_version = 8
    try:
        if backend == 'onnxruntime':
            import onnxruntime
            onnxruntime.InferenceSession(probe.SerializeToString(),
                                         providers=['CPUExecutionProvider'])
        else:
            import openvino
            openvino.Core().read_model(probe.SerializeToString())
    except ImportError as err:
        raise DeployError(f'backend {backend!r} is not installed ({err}); '
                          'pip install -r requirements/deploy.txt') from err
    except Exception as err:
        raise DeployError(
            f'backend {backend!r} cannot run ONNX opset {opset}: {err}'
        ) from err


def _example_image(img: Optional[Union[str, np.ndarray]],
                   shape: Optional[Sequence[int]]) -> Union[str, np.ndarray]:
    """The image traced: ``img``, or random pixels of ``shape`` (H, W)."""
    if img is not None:
        if isinstance(img, str):
            try:
                check_image(img)
            except ImageError as err:
                raise DeployError(f'image {err}') from None
        return img
    height, width = shape or (320, 320)
    if min(height, width) < 1:
        raise DeployError(f'shape {height}x{width} must be positive.')
    return np.random.default_rng(0).integers(
        0, 256, (height, width, 3), dtype=np.uint8)


def deploy_model(config: str,
                 checkpoint: str,
                 backend: str,
                 work_dir: str,
                 img: Optional[Union[str, np.ndarray]] = None,
                 shape: Optional[Tuple[int, int]] = None,
                 opset: Optional[int] = None,
                 label_map_in_graph: bool = False) -> Deployment:
    """Export the whole model of ``config`` with ``checkpoint`` through
    mmdeploy's ``torch2onnx`` and build the backend model in ``work_dir``.

    Everything is checked first (backend, opset, files, that the checkpoint
    fits the config); the files are written into a temporary folder inside
    ``work_dir`` and moved into place only when all of them are done.

    Args:
        config (str): An mmdet, mmseg or mmpretrain config of evit_mm.
        checkpoint (str): Its weights (an mmengine checkpoint).
        backend (str): ``'onnxruntime'`` or ``'openvino'``.
        work_dir (str): Where ``end2end.onnx`` (and for OpenVINO
            ``end2end.xml``/``.bin``), ``deploy_cfg.py`` and
            ``model_cfg.py`` go.
        img (str | ndarray, optional): The image traced. Defaults to random
            pixels of ``shape``.
        shape (tuple[int, int], optional): (H, W) of the random image.
            Defaults to 320x320. The graph is dynamic in H and W either way.
        opset (int, optional): ONNX opset. Defaults to the deploy config's.
        label_map_in_graph (bool): A segmentor's graph outputs the label
            map ``(N, 1, H, W)`` (mmdeploy's resize + argmax in the graph)
            instead of its head's logits ``(N, C, h, w)``, whose label map
            :class:`~evit_mm.deploy.label_map.LabelMapTail` draws several
            times faster. Defaults to False.

    Returns:
        Deployment: the files written.

    Raises:
        DeployError: bad backend, opset, image or config.
        FileNotFoundError: a missing config or checkpoint.
        CheckpointError: a checkpoint that does not fit the config.
    """
    from mmengine.config import Config
    from mmdeploy.apis import torch2onnx

    from ..checkpoint import read_checkpoint
    from ..hooks.checkpoint_fit import check_checkpoint_fits
    from .builder import build_from_config
    from ..engine.outputs import OutputPathError, ensure_writable_dir
    from .backends import onnx_to_openvino
    from .mmdeploy_plugin import register_rewriters

    register_rewriters()
    if backend not in BACKENDS:
        raise DeployError(f'unsupported backend {backend!r}: allowed are '
                          f'{", ".join(BACKENDS)}.')
    for what, path in (('config', config), ('checkpoint', checkpoint)):
        if not osp.isfile(path):
            raise FileNotFoundError(f'{what} {path} does not exist.')
    model_cfg = Config.fromfile(config)
    deploy_cfg = deploy_config(model_cfg, backend, opset)
    place_label_map(model_cfg, deploy_cfg, label_map_in_graph)
    move_padding_into_graph(model_cfg, deploy_cfg)
    check_backend(backend, deploy_cfg.onnx_config.opset_version)
    example = _example_image(img, shape)
    check_checkpoint_fits(build_from_config(config),
                          read_checkpoint(checkpoint), checkpoint, strict=True)

    created = not osp.isdir(work_dir)
    try:
        ensure_writable_dir(work_dir, 'work_dir')
    except OutputPathError as err:
        raise DeployError(str(err)) from None
    staging = tempfile.mkdtemp(prefix='.deploy-', dir=work_dir)
    try:
        # Saved first: mmdeploy edits the test pipeline of the config it
        # traces with (an array loader for an array image).
        deploy_cfg.dump(osp.join(staging, DEPLOY_CFG_FILE))
        model_cfg.dump(osp.join(staging, MODEL_CFG_FILE))
        with private_fx_wrap_bookkeeping():
            torch2onnx(example, staging, ONNX_FILE, deploy_cfg,
                       copy.deepcopy(model_cfg), checkpoint, device='cpu')
        if backend == 'openvino':
            onnx_to_openvino(
                osp.join(staging, ONNX_FILE), osp.join(staging, OPENVINO_FILE))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created:
            os.rmdir(work_dir)
        raise
    for name in os.listdir(staging):
        os.replace(osp.join(staging, name), osp.join(work_dir, name))
    os.rmdir(staging)
    return Deployment.from_work_dir(work_dir)
