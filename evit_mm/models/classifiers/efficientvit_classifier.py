"""The official ImageNet classifier as a plain ``nn.Module``, without
mmpretrain: for benchmarks, export and the converters."""
from typing import Sequence, Union

import torch
import torch.nn as nn

from ..backbones.efficientvit import EfficientViT
from ..layers import BNLinear, class_logits, fuse_conv_bn

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
        return class_logits(feat, self.head['classifier'],
                            getattr(self.head, 'dist_classifier', None))

    def switch_to_deploy(self) -> None:
        """Fuse every Conv-BN and BN-Linear in place."""
        self.backbone.switch_to_deploy()
        fuse_conv_bn(self.head)
