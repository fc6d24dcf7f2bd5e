"""The files of a deployment in its work dir, and the error for input
that cannot be deployed."""
import os.path as osp
from dataclasses import dataclass
from typing import List

ONNX_FILE = 'end2end.onnx'
OPENVINO_FILE = 'end2end.xml'
DEPLOY_CFG_FILE = 'deploy_cfg.py'
MODEL_CFG_FILE = 'model_cfg.py'


class DeployError(ValueError):
    """Input that cannot be deployed (backend, opset, files, config,
    checkpoint); raised before any export work."""


@dataclass
class Deployment:
    """What :func:`~evit_mm.deploy.mmdeploy_export.deploy_model` wrote into
    its work dir.

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
