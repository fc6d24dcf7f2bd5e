"""Inference helpers: a stand-alone EfficientViT classifier, building any
OpenMMLab config's model, ONNX export and onnxruntime sessions.

Nothing here is imported by ``import evit_mm``; onnx and onnxruntime are
imported only by the functions that need them.
"""
import contextlib
import io
import os
import warnings
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn

from .checkpoint import (CheckpointError, convert_to_evit, extract_state_dict,
                         read_checkpoint)
from .models.backbones.efficientvit import EfficientViT
from .models.layers import BNLinear, fixed_size_tracing, fuse_conv_bn

CLASSIFIER_WINDOWS = (7, 7, 4)


class EfficientViTClassifier(nn.Module):
    """The official ImageNet model: backbone, global average pool and a
    BN-Linear classifier (plus, optionally, the distillation classifier whose
    logits are averaged with the first).

    Its weight names are those of an mmpretrain ``ImageClassifier`` with
    ``EfficientViTClsHead`` (``backbone.*``, ``head.classifier.*``,
    ``head.dist_classifier.*``); official and timm state dicts load directly.
    It needs no mmpretrain, for benchmarks and export.

    Args:
        arch (str | dict): Backbone arch (see :class:`EfficientViT`).
        num_classes (int): Classes. Defaults to 1000.
        distillation (bool): Add the distillation classifier. Defaults to
            False.
        window_size (int | Sequence[int]): Backbone windows; the ImageNet
            model at 224x224 uses ``(7, 7, 4)`` (the default).
        deploy (bool): Build the fused form. Defaults to False.
    """

    def __init__(self,
                 arch: Union[str, dict] = 'm0',
                 num_classes: int = 1000,
                 distillation: bool = False,
                 window_size: Union[int, Sequence[int]] = CLASSIFIER_WINDOWS,
                 deploy: bool = False) -> None:
        super().__init__()
        self.backbone = EfficientViT(
            arch, window_size=window_size, out_indices=(2, ), deploy=deploy)
        width = self.backbone.embed_dims[-1]
        self.head = nn.ModuleDict(
            dict(classifier=BNLinear(width, num_classes, deploy)))
        if distillation:
            self.head['dist_classifier'] = BNLinear(width, num_classes,
                                                    deploy)
        # As in mmpretrain's ImageClassifier: official and timm weights load
        # directly (renamed, bias tables resized to the windows).
        self._register_load_state_dict_pre_hook(
            self.backbone._checkpoint_filter)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits of images ``x`` of shape ``(N, 3, H, W)``."""
        feat = self.backbone(x)[-1].mean((2, 3))
        logits = self.head['classifier'](feat)
        if 'dist_classifier' in self.head:
            logits = (logits + self.head['dist_classifier'](feat)) / 2
        return logits

    def switch_to_deploy(self) -> None:
        """Fuse every Conv-BN and BN-Linear in place."""
        self.backbone.switch_to_deploy()
        fuse_conv_bn(self.head)

    @classmethod
    def from_checkpoint(cls,
                        filename: str,
                        arch: str,
                        deploy: bool = False) -> 'EfficientViTClassifier':
        """Build a classifier for an official/timm/evit_mm checkpoint, with
        its number of classes and, if the file has one, its distillation
        classifier; ``deploy`` fuses it after loading."""
        state_dict, _ = convert_to_evit(
            extract_state_dict(read_checkpoint(filename)))
        head = state_dict.get('head.classifier.linear.weight')
        if head is None:
            raise CheckpointError(
                f'{filename} has no classifier weights (head.classifier.* '
                'after conversion); it is a backbone-only checkpoint.')
        model = cls(
            arch,
            num_classes=head.shape[0],
            distillation=any(
                k.startswith('head.dist_classifier.') for k in state_dict))
        model.load_state_dict(state_dict)
        if deploy:
            model.eval().switch_to_deploy()
        return model


class TensorMode(nn.Module):
    """Wrap an mmengine ``BaseModel`` so that ``forward(x)`` returns its
    ``mode='tensor'`` output (e.g. an mmpretrain classifier's logits)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor):
        return self.model(x, mode='tensor')


def build_from_config(config: str,
                      checkpoint: Optional[str] = None,
                      cfg_options: Optional[dict] = None) -> nn.Module:
    """Build the ``model`` of an mmdet, mmseg or mmpretrain config (its
    ``custom_imports`` imported, its ``default_scope`` registry used) and
    optionally load a checkpoint into it (read safely, as the tools do), in
    eval mode.

    Raises:
        ValueError: when the config has no ``model``.
    """
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.runner import load_checkpoint
    from mmengine.utils import import_modules_from_strings

    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if 'model' not in cfg:
        raise ValueError(f'{config} defines no `model`.')
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    model = MODELS.build(cfg.model)
    if checkpoint is not None:
        from .engine import use_safe_checkpoint_loading
        use_safe_checkpoint_loading()
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    return model.eval()


def export_onnx(model: nn.Module,
                example: torch.Tensor,
                output_names: Sequence[str],
                filename: Optional[str] = None,
                dynamic: bool = True,
                opset: int = 17) -> bytes:
    """Trace ``model`` on ``example`` into an ONNX graph.

    EfficientViT takes its size-independent path while traced (every window
    step is computed from the input shape), so a dynamic graph is correct at
    any batch, height and width; a static graph skips the window steps where
    a map is exactly one window.

    Args:
        model (nn.Module): Model in eval mode (fuse it first for deploy).
        example (Tensor): Example input ``(N, 3, H, W)``.
        output_names (Sequence[str]): One name per output tensor.
        filename (str, optional): Also write the graph here.
        dynamic (bool): Make batch, height and width dynamic. Defaults to
            True.
        opset (int): ONNX opset. Defaults to 17.

    Returns:
        bytes: the serialized ONNX model.
    """
    with torch.no_grad():
        outputs = model(example)
    outputs = outputs if isinstance(outputs, (tuple, list)) else [outputs]
    if len(outputs) != len(output_names):
        raise ValueError(
            f'output_names={list(output_names)!r} names {len(output_names)} '
            f'outputs; the model returns {len(outputs)}.')
    dynamic_axes = None
    if dynamic:
        dynamic_axes = {'input': {0: 'batch', 2: 'height', 3: 'width'}}
        for name, out in zip(output_names, outputs):
            axes = {0: 'batch'}
            if out.dim() == 4:
                axes.update({2: f'{name}_height', 3: f'{name}_width'})
            dynamic_axes[name] = axes
    buffer = io.BytesIO()
    size_context = contextlib.nullcontext() if dynamic else \
        fixed_size_tracing()
    with torch.no_grad(), warnings.catch_warnings(), size_context:
        # Shape checks and shortcuts in Python are what tracing warns about;
        # the traced graph takes the general path and is shape-independent.
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        warnings.simplefilter('ignore', DeprecationWarning)
        torch.onnx.export(
            model, (example, ),
            buffer,
            dynamo=False,
            opset_version=opset,
            input_names=['input'],
            output_names=list(output_names),
            dynamic_axes=dynamic_axes)
    data = buffer.getvalue()
    if filename is not None:
        os.makedirs(os.path.dirname(os.path.abspath(filename)), exist_ok=True)
        with open(filename, 'wb') as file:
            file.write(data)
    return data


def ort_session(onnx_model: Union[bytes, str], threads: int = 0,
                spinning: bool = True):
    """An onnxruntime CPU session with all graph optimizations.

    Args:
        onnx_model (bytes | str): Serialized model or path.
        threads (int): Intra-op threads; 0 lets onnxruntime choose.
        spinning (bool): Whether idle intra-op threads spin waiting for
            work (onnxruntime's default: lowest latency for back-to-back
            runs, but the spinning threads slow down other work, such as
            PyTorch, in the same process for a while after each run).
    """
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    if not spinning:
        options.add_session_config_entry('session.intra_op.allow_spinning',
                                         '0')
    options.inter_op_num_threads = 1
    options.graph_optimization_level = \
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(
        onnx_model, options, providers=['CPUExecutionProvider'])


def run_session(session, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
    """Run an onnxruntime session on a tensor; outputs as tensors."""
    name = session.get_inputs()[0].name
    outputs = session.run(None, {name: x.detach().cpu().numpy()})
    return tuple(torch.from_numpy(out) for out in outputs)
