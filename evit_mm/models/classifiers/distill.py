"""Image classifier trained with hard knowledge distillation (DeiT)."""
from typing import List, Optional, Union

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmpretrain.models import ImageClassifier
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ...checkpoint import check_fit, extract_state_dict, read_checkpoint


@MODELS.register_module()
class DistillImageClassifier(ImageClassifier):
    """An :class:`ImageClassifier` trained with hard distillation from a
    frozen teacher, as DeiT and the official EfficientViT recipe do.

    In every training step the teacher classifies the batch the student sees
    (after Mixup/CutMix), and the head's distillation classifier learns the
    teacher's top-1 classes while its class classifier learns the ground
    truth. Inference runs the student alone.

    The teacher never enters this model's checkpoints (they hold the student
    only, so they load into a plain :class:`ImageClassifier` with the same
    head); its weights come from ``teacher_checkpoint`` when the model is
    initialised, that is, when training starts.

    Args:
        teacher (dict | nn.Module): The teacher, e.g.
            ``dict(type='TimmClassifier', model_name='regnety_160')``. Called
            on the normalised batch it must return ``(N, num_classes)``
            logits; it sees the student's normalisation.
        teacher_checkpoint (str, optional): Path or URL of the teacher's
            weights (``state_dict`` / ``model`` dicts are unpacked), loaded
            strictly. None keeps the teacher as built. Defaults to None.
        **kwargs: Arguments of :class:`ImageClassifier`; the head must be
            built with ``distillation=True`` (e.g.
            :class:`EfficientViTClsHead`).
    """

    def __init__(self,
                 teacher: Union[dict, nn.Module],
                 teacher_checkpoint: Optional[str] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if not getattr(self.head, 'distillation', False):
            raise ValueError(
                'DistillImageClassifier needs a head built with '
                f'distillation=True, got {type(self.head).__name__} without '
                'it; e.g. head=dict(type="EfficientViTClsHead", '
                'distillation=True, ...).')
        self.teacher = teacher if isinstance(
            teacher, nn.Module) else MODELS.build(teacher)
        self.teacher.requires_grad_(False)
        self.teacher.eval()
        self.teacher_checkpoint = teacher_checkpoint
        self.register_state_dict_post_hook(self._drop_teacher_state)
        self.register_load_state_dict_pre_hook(self._keep_teacher_state)

    @staticmethod
    def _drop_teacher_state(module: 'DistillImageClassifier',
                            state_dict: dict, prefix: str,
                            local_metadata: dict) -> None:
        for key in [k for k in state_dict
                    if k.startswith(prefix + 'teacher.')]:
            del state_dict[key]

    @staticmethod
    def _keep_teacher_state(module: 'DistillImageClassifier',
                            state_dict: dict, prefix: str, *args) -> None:
        """Student checkpoints lack the teacher: keep its current tensors."""
        for key, value in module.teacher.state_dict().items():
            state_dict.setdefault(f'{prefix}teacher.{key}', value)

    def init_weights(self) -> None:
        super().init_weights()
        if self.teacher_checkpoint is None:
            return
        state_dict = extract_state_dict(
            read_checkpoint(self.teacher_checkpoint))
        check_fit(state_dict, self.teacher.state_dict(),
                  self.teacher_checkpoint,
                  f'the teacher {type(self.teacher).__name__}')
        self.teacher.load_state_dict(state_dict)
        print_log(
            f'Loaded the teacher from {self.teacher_checkpoint}.',
            logger='current')

    def train(self, mode: bool = True) -> 'DistillImageClassifier':
        super().train(mode)
        self.teacher.eval()
        return self

    def loss(self, inputs: torch.Tensor,
             data_samples: List[DataSample]) -> dict:
        """Class and distillation losses of a (batch-augmented) batch."""
        with torch.no_grad():
            teacher_logits = self.teacher(inputs)
        expected = (inputs.shape[0], self.head.num_classes)
        if not isinstance(teacher_logits, torch.Tensor) or \
                teacher_logits.shape != expected:
            got = tuple(teacher_logits.shape) if isinstance(
                teacher_logits, torch.Tensor) else type(teacher_logits)
            raise ValueError(
                f'The teacher must return logits of shape {expected} '
                f'(batch, head.num_classes), got {got}.')
        feats = self.extract_feat(inputs)
        return self.head.loss(
            feats, data_samples, teacher_labels=teacher_logits.argmax(dim=1))
