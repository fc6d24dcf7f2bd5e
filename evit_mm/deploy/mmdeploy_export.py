"""Deploy a whole model (detector, instance segmentor, semantic segmentor,
classifier) of any evit_mm config with mmdeploy 1.3.1: ``torch2onnx`` with
post-processing in the graph (NMS, RoI masks, argmax), then the backend
model (ONNX Runtime: the ONNX file; OpenVINO: an IR converted from it).

Two fixes for this stack, both scoped to the calls made here:

* torch >= 2.9 exports with the dynamo exporter unless ``dynamo=False``;
  mmdeploy calls ``torch.onnx.export`` without the argument, and its
  rewriters only work with the TorchScript exporter
  (:func:`torchscript_onnx_export`).
* mmdeploy's ``onnx2openvino`` drives the Model Optimizer (``mo``), which
  OpenVINO 2026 no longer has: the ONNX graph is converted with
  ``openvino.convert_model`` (:func:`evit_mm.deploy.backends.onnx_to_openvino`).
"""
import contextlib
import os
import os.path as osp
import shutil
import tempfile
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence, Tuple, Union
from unittest import mock

import numpy as np
import torch

BACKENDS = ('onnxruntime', 'openvino')
# mmdeploy's rewriters are written for opset 11; torch's TorchScript
# exporter goes up to 20.
MIN_OPSET = 11
ONNX_FILE = 'end2end.onnx'
OPENVINO_FILE = 'end2end.xml'
DEPLOY_CFG_FILE = 'deploy_cfg.py'
MODEL_CFG_FILE = 'model_cfg.py'


class DeployError(ValueError):
    """Input that cannot be deployed (backend, opset, files, config,
    checkpoint); raised before any export work."""


@dataclass
class Deployment:
    """What :func:`deploy_model` wrote into its work dir.

    Args:
        backend (str): ``'onnxruntime'`` or ``'openvino'``.
        work_dir (str): The folder holding the files below.
        model_cfg (str): The model config, as used.
        deploy_cfg (str): The mmdeploy deploy config, as used.
        onnx_file (str): The ONNX graph exported by mmdeploy.
        backend_files (list[str]): The files the backend loads.
    """
    backend: str
    work_dir: str
    model_cfg: str
    deploy_cfg: str
    onnx_file: str
    backend_files: List[str]

    @classmethod
    def from_work_dir(cls, work_dir: str) -> 'Deployment':
        """The deployment that :func:`deploy_model` wrote into
        ``work_dir``."""
        from mmengine.config import Config
        deploy_cfg = osp.join(work_dir, DEPLOY_CFG_FILE)
        if not osp.isfile(deploy_cfg):
            raise DeployError(f'{work_dir} holds no deployment (no '
                              f'{DEPLOY_CFG_FILE}); run deploy.py first.')
        backend = Config.fromfile(deploy_cfg).backend_config.type
        return cls(backend, work_dir, osp.join(work_dir, MODEL_CFG_FILE),
                   deploy_cfg, osp.join(work_dir, ONNX_FILE),
                   [osp.join(work_dir, name) for name in _files(backend)])


def _files(backend: str) -> List[str]:
    """The files the backend loads, relative to the work dir."""
    return [ONNX_FILE] if backend == 'onnxruntime' else [OPENVINO_FILE]


def deploy_configs_dir() -> str:
    """``configs/deploy`` of the checkout, or of the installed package."""
    package = osp.dirname(osp.dirname(osp.abspath(__file__)))
    for root in (osp.dirname(package), osp.join(package, '.mim')):
        folder = osp.join(root, 'configs', 'deploy')
        if osp.isdir(folder):
            return folder
    raise DeployError(f'no configs/deploy beside {package}')


def deploy_task(model_cfg) -> str:
    """The deploy task of a model config: ``'detection'``,
    ``'instance-seg'``, ``'segmentation'`` or ``'classification'``.

    Args:
        model_cfg (mmengine.Config): The model config.
    """
    scope = model_cfg.get('default_scope')
    if scope == 'mmdet':
        roi_head = model_cfg.model.get('roi_head') or {}
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


@contextlib.contextmanager
def torchscript_onnx_export() -> Iterator[None]:
    """Within the context, ``torch.onnx.export`` uses the TorchScript
    exporter (``dynamo=False``) unless the caller chooses otherwise: the
    exporter mmdeploy's symbolic rewriters are written for."""
    export = torch.onnx.export

    def torchscript_export(*args, **kwargs):
        kwargs.setdefault('dynamo', False)
        return export(*args, **kwargs)

    with mock.patch.object(torch.onnx, 'export', torchscript_export):
        yield


def check_backend(backend: str, opset: int) -> None:
    """Refuse a backend that is not supported or not installed, or an opset
    that the exporter or the backend lacks (tried on a one-node graph).

    Raises:
        DeployError: naming the backend or opset and what is allowed.
    """
    if backend not in BACKENDS:
        raise DeployError(f'unsupported backend {backend!r}: allowed are '
                          f'{", ".join(BACKENDS)}.')
    import onnx
    from torch.onnx._constants import ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET
    top = min(ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET, onnx.defs.onnx_opset_version())
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
        if isinstance(img, str) and not osp.isfile(img):
            raise DeployError(f'image {img} does not exist.')
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
                 opset: Optional[int] = None) -> Deployment:
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

    Returns:
        Deployment: the files written.

    Raises:
        DeployError: bad backend, opset, image or config.
        FileNotFoundError: a missing config or checkpoint.
        CheckpointError: a checkpoint that does not fit the config.
    """
    from mmengine.config import Config
    from mmdeploy.apis import torch2onnx

    from ..deployment import build_from_config
    from ..engine import use_safe_checkpoint_loading
    from .backends import onnx_to_openvino

    for what, path in (('config', config), ('checkpoint', checkpoint)):
        if not osp.isfile(path):
            raise FileNotFoundError(f'{what} {path} does not exist.')
    if backend not in BACKENDS:
        check_backend(backend, MIN_OPSET)
    model_cfg = Config.fromfile(config)
    deploy_cfg = deploy_config(model_cfg, backend, opset)
    check_backend(backend, deploy_cfg.onnx_config.opset_version)
    example = _example_image(img, shape)
    build_from_config(config, checkpoint)  # strict: the checkpoint fits
    use_safe_checkpoint_loading()

    os.makedirs(work_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix='.deploy-', dir=work_dir)
    try:
        with torchscript_onnx_export():
            torch2onnx(example, staging, ONNX_FILE, deploy_cfg, model_cfg,
                       checkpoint, device='cpu')
        if backend == 'openvino':
            onnx_to_openvino(
                osp.join(staging, ONNX_FILE), osp.join(staging, OPENVINO_FILE))
        deploy_cfg.dump(osp.join(staging, DEPLOY_CFG_FILE))
        model_cfg.dump(osp.join(staging, MODEL_CFG_FILE))
        for name in os.listdir(staging):
            os.replace(osp.join(staging, name), osp.join(work_dir, name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Deployment.from_work_dir(work_dir)
