"""Backend sessions for models exported by mmdeploy: ONNX Runtime through
mmdeploy's own wrapper, OpenVINO 2026 through its ``openvino.Core`` API.

mmdeploy 1.3.1's OpenVINO wrapper imports ``openvino.inference_engine``,
which OpenVINO removed in 2024; :class:`OpenVINOCoreWrapper` runs the same
IR with ``openvino.Core`` behind mmdeploy's wrapper interface, so that
mmdeploy's task processors build their end-to-end models (NMS outputs to
boxes, mask paste, label maps) on top of it unchanged.
"""
import contextlib
import copy
import os.path as osp
from typing import Dict, Iterator, Optional, Sequence
from unittest import mock

import torch

from mmdeploy.backend.base import BaseWrapper
from mmdeploy.backend.openvino.backend_manager import OpenVINOManager

from .constants import RESIZE_LOGITS


def onnx_to_openvino(onnx_file: str, xml_file: str) -> None:
    """Convert an ONNX graph to an OpenVINO IR (``.xml`` + ``.bin``) with
    OpenVINO's own converter, in float32, keeping dynamic dimensions.

    Args:
        onnx_file (str): The ONNX graph (as exported by mmdeploy).
        xml_file (str): The IR to write; the weights go beside it.
    """
    import openvino
    model = openvino.convert_model(onnx_file)
    openvino.save_model(model, xml_file, compress_to_fp16=False)


class OpenVINOCoreWrapper(BaseWrapper):
    """Run an OpenVINO IR on the CPU with ``openvino.Core``, with the
    interface of mmdeploy's backend wrappers: ``forward`` maps input names
    to tensors and returns output names to tensors.

    Args:
        ir_model_file (str): The ``.xml`` file (its ``.bin`` beside it).
        output_names (Sequence[str], optional): Output names, in order.
            Defaults to the model's.
    """

    def __init__(self,
                 ir_model_file: str,
                 output_names: Optional[Sequence[str]] = None) -> None:
        import openvino
        if not osp.isfile(ir_model_file):
            raise FileNotFoundError(f'no OpenVINO IR at {ir_model_file}')
        core = openvino.Core()
        self.compiled = core.compile_model(
            core.read_model(ir_model_file), 'CPU',
            {'INFERENCE_PRECISION_HINT': 'f32'})
        if output_names is None:
            output_names = [out.get_any_name()
                            for out in self.compiled.outputs]
        super().__init__(output_names)

    def forward(self,
                inputs: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Run the IR on ``inputs`` (name to tensor); return name to
        tensor for every output."""
        request = self.compiled.create_infer_request()
        results = request.infer(
            {name: x.detach().cpu().contiguous().numpy()
             for name, x in inputs.items()})
        by_name = {out.get_any_name(): value for out, value in results.items()}
        return {name: torch.from_numpy(by_name[name].copy())
                for name in self.output_names}


@contextlib.contextmanager
def openvino_core_backend() -> Iterator[None]:
    """Within the context, mmdeploy builds :class:`OpenVINOCoreWrapper`
    for the ``openvino`` backend instead of its IECore wrapper."""

    def build_wrapper(cls, backend_files: Sequence[str], device: str = 'cpu',
                      input_names=None, output_names=None, deploy_cfg=None,
                      **kwargs) -> OpenVINOCoreWrapper:
        return OpenVINOCoreWrapper(backend_files[0], output_names)

    with mock.patch.object(OpenVINOManager, 'build_wrapper',
                           classmethod(build_wrapper)):
        yield


def segmentation_logits_at_head_size(deploy_cfg) -> bool:
    """Whether a deploy config makes a segmentor's graph output its logits
    at the head's resolution (:data:`~.constants.RESIZE_LOGITS` False)."""
    codebase = deploy_cfg.codebase_config
    return codebase.get('type') == 'mmseg' and \
        codebase.get(RESIZE_LOGITS, True) is False


def decode_head_align_corners(model_cfg) -> bool:
    """The ``align_corners`` of a segmentor config's (last) decode head,
    mmseg's default (False) where unset."""
    head = model_cfg.model.decode_head
    if isinstance(head, (list, tuple)):
        head = head[-1]
    return bool(head.get('align_corners', False))


class DeployedModel:
    """A deployed model, run like mmdeploy's own: the task processor's
    pre-processing, the backend session, then the task's post-processing
    (boxes and pasted masks, label maps, class scores) as data samples.
    A segmentor whose graph outputs its head's logits gets its label maps
    from :class:`~evit_mm.deploy.label_map.LabelMapTail`.

    Args:
        deployment (Deployment | str): What
            :func:`~evit_mm.deploy.mmdeploy_export.deploy_model` returned,
            or its work dir.
    """

    def __init__(self, deployment) -> None:
        from mmdeploy.apis import build_task_processor
        from mmengine.config import Config

        from .work_dir import Deployment
        if isinstance(deployment, str):
            deployment = Deployment.from_work_dir(deployment)
        self.deployment = deployment
        self.deploy_cfg = Config.fromfile(deployment.deploy_cfg)
        self.model_cfg = Config.fromfile(deployment.model_cfg)
        self.task_processor = build_task_processor(self.model_cfg,
                                                   self.deploy_cfg, 'cpu')
        with openvino_core_backend():
            self.model = self.task_processor.build_backend_model(
                deployment.backend_files,
                self.task_processor.update_data_preprocessor)
        if segmentation_logits_at_head_size(self.deploy_cfg):
            from .label_map import LabelMapTail
            self.label_map = LabelMapTail(
                deployment.backend, decode_head_align_corners(self.model_cfg))
            self.model.forward = self._segment
            # mmdeploy's pack_result argmaxes the outputs of a graph without
            # argmax; _segment gives it label maps.
            self.model.deploy_cfg = copy.deepcopy(self.model.deploy_cfg)
            self.model.deploy_cfg.codebase_config.with_argmax = True

    def _segment(self, inputs: torch.Tensor, data_samples: list,
                 mode: str = 'predict') -> list:
        """mmdeploy's segmentation forward for a graph that outputs the
        head's logits: the label maps at the input size drawn from them,
        then mmdeploy's packing (resized to each image's ``ori_shape``)."""
        model = self.model
        logits = model.wrapper({model.input_name: inputs.to(model.device)
                                })[model.output_names[0]]
        labels = torch.from_numpy(
            self.label_map(logits.numpy(), inputs.shape[2:])) \
            if logits.is_floating_point() else logits
        return model.pack_result(labels, data_samples)

    def predict(self, imgs: Sequence) -> list:
        """Predictions for ``imgs`` (paths or arrays): mmdet/mmseg/
        mmpretrain data samples, as the PyTorch model's ``test_step``
        returns them."""
        data, _ = self.task_processor.create_input(list(imgs))
        with torch.no_grad():
            return self.model.test_step(data)
