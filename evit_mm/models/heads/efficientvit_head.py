"""EfficientViT classification head for mmpretrain."""
from typing import List, Optional, Tuple

import torch
from mmpretrain.models.heads import ClsHead
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ..layers import BNLinear, class_logits


@MODELS.register_module()
class EfficientViTClsHead(ClsHead):
    """BatchNorm1d + Linear classifier on globally pooled features, with an
    optional distillation classifier (DeiT-style hard distillation).

    With ``distillation=True`` a second BN-Linear, ``dist_classifier``, is
    trained against a teacher's hard labels; at test time the logits of the
    two classifiers are averaged, as in the official EfficientViT model.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Channels of the pooled feature.
        distillation (bool): Add the distillation classifier. Defaults to
            False.
        distill_loss (dict): Loss of the distillation classifier against the
            teacher's labels (class indices). Defaults to cross entropy with
            weight 0.5, the official ``alpha``.
        deploy (bool): Build the fused form (each BN folded into its linear
            layer). Defaults to False.
        **kwargs: ``loss``, ``topk``, ``cal_acc``, ``init_cfg`` of
            :class:`mmpretrain.models.heads.ClsHead`.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 distillation: bool = False,
                 distill_loss: dict = dict(
                     type='CrossEntropyLoss', loss_weight=0.5),
                 deploy: bool = False,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        for name, value in (('num_classes', num_classes),
                            ('in_channels', in_channels)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(
                    f'{name}={value!r} must be a positive integer.')
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.distillation = distillation
        self.deploy = deploy
        self.classifier = BNLinear(in_channels, num_classes, deploy)
        if distillation:
            self.dist_classifier = BNLinear(in_channels, num_classes, deploy)
            self.distill_loss_module = MODELS.build(distill_loss)

    def pre_logits(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        """The pooled feature of the last stage, checked to be
        ``(N, in_channels)``."""
        feat = feats[-1]
        if feat.dim() != 2 or feat.shape[1] != self.in_channels:
            raise ValueError(
                f'EfficientViTClsHead expects pooled features of shape (N, '
                f'{self.in_channels}), got {tuple(feat.shape)}; use the neck '
                "dict(type='GlobalAveragePooling') and set in_channels to the "
                "backbone's last width.")
        return feat

    def forward(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        """Class logits: the class classifier's, or with distillation the
        mean of both classifiers'."""
        return class_logits(self.pre_logits(feats), self.classifier,
                            getattr(self, 'dist_classifier', None))

    def loss(self,
             feats: Tuple[torch.Tensor],
             data_samples: List[DataSample],
             teacher_labels: Optional[torch.Tensor] = None) -> dict:
        """The class loss (``loss``) on the ground truth and, with
        distillation, the distillation loss (``loss_distill``) of
        ``dist_classifier`` on the teacher's labels.

        Args:
            feats (tuple[Tensor]): Pooled features; the last one is used.
            data_samples (list[DataSample]): Ground truth (labels, or scores
                after Mixup/CutMix).
            teacher_labels (Tensor, optional): ``(N,)`` class indices
                predicted by the teacher; required with distillation.
        """
        feat = self.pre_logits(feats)
        losses = self._get_loss(self.classifier(feat), data_samples)
        if not self.distillation:
            if teacher_labels is not None:
                raise ValueError(
                    'teacher_labels were given to a head built with '
                    'distillation=False; set distillation=True to train a '
                    'distillation classifier.')
            return losses
        if teacher_labels is None or teacher_labels.shape != (
                feat.shape[0], ):
            shape = None if teacher_labels is None else tuple(
                teacher_labels.shape)
            raise ValueError(
                'A head with distillation=True needs teacher_labels of shape '
                f'({feat.shape[0]},) (one class index per image), got '
                f'{shape}; train it inside DistillImageClassifier.')
        losses['loss_distill'] = self.distill_loss_module(
            self.dist_classifier(feat),
            teacher_labels,
            avg_factor=feat.shape[0])
        return losses

    def switch_to_deploy(self) -> None:
        """Fold each BN into its linear layer in place (inference only)."""
        self.classifier.switch_to_deploy()
        if self.distillation:
            self.dist_classifier.switch_to_deploy()
        self.deploy = True
