"""EfficientViTClsHead, DistillImageClassifier and AdaptiveGradClipHook,
checked against hand-computed references."""
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

pytest.importorskip('mmpretrain')

from mmengine.optim import OptimWrapper  # noqa: E402
from mmpretrain.registry import MODELS  # noqa: E402
from mmpretrain.structures import DataSample  # noqa: E402

from evit_mm.checkpoint import CheckpointError  # noqa: E402
from evit_mm.models.heads import EfficientViTClsHead  # noqa: E402
from evit_mm.hooks import (AdaptiveGradClipHook,  # noqa: E402
                           clip_grad_adaptively)

# Every test builds in mmpretrain's scope, whatever scope others left.
pytestmark = pytest.mark.usefixtures('mmpretrain_scope')

CHANNELS, CLASSES = 16, 5


def randomize_bn_linear(module: nn.Module, generator: torch.Generator):
    """Non-trivial BatchNorm1d statistics and affine parameters."""
    with torch.no_grad():
        module.bn.weight.copy_(torch.rand(CHANNELS, generator=generator) + .5)
        module.bn.bias.copy_(torch.randn(CHANNELS, generator=generator))
        module.bn.running_mean.copy_(
            torch.randn(CHANNELS, generator=generator))
        module.bn.running_var.copy_(
            torch.rand(CHANNELS, generator=generator) + .5)
        module.linear.bias.copy_(torch.randn(CLASSES, generator=generator))


def reference_logits(bn_linear: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """BatchNorm1d in eval mode written out, then the linear layer."""
    bn = bn_linear.bn
    normed = (x - bn.running_mean) / torch.sqrt(bn.running_var + 1e-5)
    return (normed * bn.weight + bn.bias) @ bn_linear.linear.weight.T + \
        bn_linear.linear.bias


def make_head(distillation: bool = True, **kwargs) -> EfficientViTClsHead:
    head = EfficientViTClsHead(
        num_classes=CLASSES,
        in_channels=CHANNELS,
        distillation=distillation,
        **kwargs)
    generator = torch.Generator().manual_seed(3)
    randomize_bn_linear(head.classifier, generator)
    if distillation:
        randomize_bn_linear(head.dist_classifier, generator)
    return head.eval()


def samples(labels):
    return [DataSample().set_gt_label(label) for label in labels]


def test_head_logits_match_bn_linear_reference():
    head = make_head(distillation=False)
    x = torch.randn(4, CHANNELS)
    expected = reference_logits(head.classifier, x)
    torch.testing.assert_close(head((x, )), expected)
    # Only the last of several features is classified.
    torch.testing.assert_close(head((torch.randn(4, CHANNELS), x)), expected)


def test_distilled_head_averages_both_classifiers_at_test_time():
    head = make_head()
    x = torch.randn(4, CHANNELS)
    cls_logits = reference_logits(head.classifier, x)
    dist_logits = reference_logits(head.dist_classifier, x)
    assert not torch.allclose(cls_logits, dist_logits)
    torch.testing.assert_close(head((x, )), (cls_logits + dist_logits) / 2)
    scores = torch.stack([s.pred_score for s in head.predict((x, ))])
    torch.testing.assert_close(scores,
                               ((cls_logits + dist_logits) / 2).softmax(1))


def test_distilled_head_losses():
    """``loss`` is the class classifier on the ground truth, ``loss_distill``
    the distillation classifier on the teacher's labels, each weighted 0.5
    (the official alpha), as in the distillation config."""
    head = make_head(loss=dict(type='CrossEntropyLoss', loss_weight=0.5))
    x = torch.randn(6, CHANNELS)
    gt = torch.tensor([0, 1, 2, 3, 4, 0])
    teacher = torch.tensor([4, 3, 2, 1, 0, 4])
    losses = head.loss((x, ), samples(gt.tolist()), teacher_labels=teacher)
    assert set(losses) == {'loss', 'loss_distill'}
    torch.testing.assert_close(
        losses['loss'],
        0.5 * F.cross_entropy(reference_logits(head.classifier, x), gt))
    torch.testing.assert_close(
        losses['loss_distill'],
        0.5 * F.cross_entropy(reference_logits(head.dist_classifier, x),
                              teacher))
    # Each classifier learns only from its own target.
    losses['loss_distill'].backward()
    assert head.classifier.linear.weight.grad is None
    assert head.dist_classifier.linear.weight.grad.abs().sum() > 0


def test_head_errors():
    head = make_head()
    with pytest.raises(ValueError, match='teacher_labels'):
        head.loss((torch.randn(2, CHANNELS), ), samples([0, 1]))
    with pytest.raises(ValueError, match=r'shape \(2,\)'):
        head.loss((torch.randn(2, CHANNELS), ),
                  samples([0, 1]),
                  teacher_labels=torch.zeros(3, dtype=torch.long))
    plain = make_head(distillation=False)
    with pytest.raises(ValueError, match='distillation=False'):
        plain.loss((torch.randn(2, CHANNELS), ),
                   samples([0, 1]),
                   teacher_labels=torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match='GlobalAveragePooling'):
        plain((torch.randn(2, CHANNELS, 3, 3), ))
    with pytest.raises(ValueError, match=r'\(N, 16\)'):
        plain((torch.randn(2, 8), ))
    with pytest.raises(ValueError, match='num_classes=0'):
        EfficientViTClsHead(num_classes=0, in_channels=8)


@pytest.mark.parametrize('distillation', [False, True])
def test_head_deploy_equals_normal(distillation):
    head = make_head(distillation)
    x = torch.randn(4, CHANNELS)
    expected = head((x, ))
    head.switch_to_deploy()
    assert head.deploy and head.classifier.bn is None
    torch.testing.assert_close(head((x, )), expected, rtol=1e-5, atol=1e-5)
    built = EfficientViTClsHead(
        num_classes=CLASSES,
        in_channels=CHANNELS,
        distillation=distillation,
        deploy=True)
    built.load_state_dict(head.state_dict())
    torch.testing.assert_close(built.eval()((x, )), expected, rtol=1e-5,
                               atol=1e-5)


class RecordingTeacher(nn.Module):
    """Returns fixed logits and records what it was called on."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))
        self.logits = logits
        self.inputs = []
        self.training_flags = []

    def forward(self, x):
        self.inputs.append(x.clone())
        self.training_flags.append(self.training)
        return self.logits * self.scale


def distill_classifier(teacher, **kwargs):
    return MODELS.build(
        dict(
            type='DistillImageClassifier',
            teacher=teacher,
            backbone=dict(
                type='EfficientViT', arch='m0', out_indices=(2, )),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(
                type='EfficientViTClsHead',
                num_classes=CLASSES,
                in_channels=192,
                distillation=True,
                loss=dict(type='CrossEntropyLoss', loss_weight=0.5)),
            **kwargs))


def test_distill_classifier_uses_teacher_top1_on_augmented_batch():
    teacher_logits = torch.tensor([[0., 5., 1., 0., 0.], [3., 0., 0., 0.,
                                                          4.]])
    teacher = RecordingTeacher(teacher_logits)
    model = distill_classifier(
        teacher,
        data_preprocessor=dict(num_classes=CLASSES),
        train_cfg=dict(augments=[dict(type='Mixup', alpha=1.)]))
    model.train()
    data = dict(
        inputs=[torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)
                for _ in range(2)],
        data_samples=samples([0, 2]))
    batch = model.data_preprocessor(data, training=True)
    losses = model(**batch, mode='loss')
    # The teacher saw exactly the (mixed) batch the student trained on,
    # in eval mode.
    assert len(teacher.inputs) == 1
    torch.testing.assert_close(teacher.inputs[0], batch['inputs'])
    assert teacher.training_flags == [False]
    feats = model.extract_feat(batch['inputs'])
    dist_logits = model.head.dist_classifier(feats[-1])
    torch.testing.assert_close(
        losses['loss_distill'],
        0.5 * F.cross_entropy(dist_logits, torch.tensor([1, 4])))
    assert not teacher.scale.requires_grad


def test_distill_classifier_checkpoints_hold_the_student_only(tmp_path):
    teacher = MODELS.build(
        dict(type='TimmClassifier', model_name='test_resnet',
             num_classes=CLASSES))
    teacher_file = str(tmp_path / 'teacher.pth')
    torch.save({'model': teacher.model.state_dict()}, teacher_file)
    model = distill_classifier(
        dict(type='TimmClassifier', model_name='test_resnet',
             num_classes=CLASSES),
        teacher_checkpoint=teacher_file)
    model.init_weights()
    for name, value in teacher.model.state_dict().items():
        torch.testing.assert_close(model.teacher.model.state_dict()[name],
                                   value)
    state = model.state_dict()
    assert state and not any(k.startswith('teacher.') for k in state)
    assert 'head.dist_classifier.linear.weight' in state
    # A student checkpoint loads strictly; the teacher is left as it is.
    student = distill_classifier(teacher)
    student.load_state_dict(state, strict=True)
    torch.testing.assert_close(student.head.dist_classifier.linear.weight,
                               state['head.dist_classifier.linear.weight'])
    # The teacher stays in eval mode and frozen while training.
    student.train()
    assert not student.teacher.training
    assert not any(p.requires_grad for p in student.teacher.parameters())


def test_distill_classifier_errors(tmp_path):
    with pytest.raises(ValueError, match='distillation=True'):
        MODELS.build(
            dict(
                type='DistillImageClassifier',
                teacher=RecordingTeacher(torch.zeros(1, CLASSES)),
                backbone=dict(type='EfficientViT', out_indices=(2, )),
                neck=dict(type='GlobalAveragePooling'),
                head=dict(
                    type='EfficientViTClsHead',
                    num_classes=CLASSES,
                    in_channels=192)))
    model = distill_classifier(RecordingTeacher(torch.zeros(2, CLASSES + 1)))
    with pytest.raises(ValueError, match=r'\(2, 5\)'):
        model.loss(torch.randn(2, 3, 64, 64), samples([0, 1]))
    wrong = str(tmp_path / 'wrong.pth')
    torch.save({'model': {'fc.weight': torch.zeros(2, 2)}}, wrong)
    model = distill_classifier(
        dict(type='TimmClassifier', model_name='test_resnet',
             num_classes=CLASSES),
        teacher_checkpoint=wrong)
    with pytest.raises(CheckpointError, match='wrong.pth'):
        model.init_weights()


def attach_agc(optim_wrapper, **kwargs) -> AdaptiveGradClipHook:
    hook = AdaptiveGradClipHook(**kwargs)
    hook.before_train(SimpleNamespace(optim_wrapper=optim_wrapper))
    return hook


def test_agc_clips_each_unit_to_its_weight_norm():
    # Rows of the weight are units: norms 5 and 0 (counted as eps=1e-3), so
    # the allowed gradient norms are 0.1 and 2e-5 with clip_factor 0.02.
    weight = nn.Parameter(torch.tensor([[3., 4.], [0., 0.], [0., 1.]]))
    bias = nn.Parameter(torch.zeros(2))  # one unit of norm 0 -> 2e-5
    weight.grad = torch.tensor([[0.6, 0.8], [3e-6, 4e-6], [0., 0.01]])
    bias.grad = torch.tensor([0.3, 0.4])
    clip_grad_adaptively(torch.optim.SGD([weight, bias], lr=1.), 0.02)
    torch.testing.assert_close(
        weight.grad, torch.tensor([[0.06, 0.08], [3e-6, 4e-6], [0., 0.01]]))
    torch.testing.assert_close(bias.grad, torch.tensor([1.2e-5, 1.6e-5]))


def test_agc_hook_clips_before_each_step_after_accumulation():
    weight = nn.Parameter(torch.tensor([[3., 4.]]))
    wrapper = OptimWrapper(
        torch.optim.SGD([weight], lr=1.), accumulative_counts=2)
    hook = attach_agc(wrapper, clip_factor=0.02)
    # Two micro-batches (losses halved) accumulate the gradient [0.3, 0.4],
    # norm 0.5, clipped once to 0.02 * 5 = 0.1: SGD with lr 1 moves by
    # [0.06, 0.08] (clipping each half would move by [0.12, 0.16]).
    for _ in range(2):
        wrapper.update_params((weight * torch.tensor([[.3, .4]])).sum())
    torch.testing.assert_close(weight.detach(), torch.tensor([[2.94, 3.92]]))
    # Detached from the same optimizer after training: the next step is
    # not clipped (gradient [0.3, 0.4], lr 1).
    hook.after_train(None)
    wrapper = OptimWrapper(wrapper.optimizer)
    wrapper.update_params((weight * torch.tensor([[.3, .4]])).sum())
    torch.testing.assert_close(weight.detach(), torch.tensor([[2.64, 3.52]]))


def test_agc_hook_errors():
    with pytest.raises(ValueError, match='clip_factor=0'):
        AdaptiveGradClipHook(clip_factor=0)
    with pytest.raises(ValueError, match='eps=-1'):
        AdaptiveGradClipHook(eps=-1)
