"""The label map drawn from a segmentor's low-resolution logits
(:mod:`evit_mm.deploy.label_map`) is mmseg's: its ``resize`` (bilinear, the
head's ``align_corners``) to the input size, then the argmax over the
classes, at every pixel but those where the two best classes tie within
float rounding; on random logits, on logits like a trained segmentor's, on
the logits of briefly trained quickstart segmentors (compared with mmseg's
own ``predict``), at sizes that do not divide, and through the backends'
dense fallback."""
import numpy as np
import pytest
import torch

from evit_mm.analysis import label_map_tail
from evit_mm.analysis.label_map_tail import random_logits
from evit_mm.deploy.label_map import CellSplit, LabelMapTail, label_maps

# Two classes closer than this (relative) at a pixel tie within rounding.
TIE = 1e-5
# (H, W) from (h, w): a multiple, sizes that do not divide (517x333 from
# SegFormer-M0's 65x42 stride-8 logits), a small odd one, a downscale.
SIZES = [((64, 64), (512, 512)), ((65, 42), (517, 333)),
         ((9, 13), (40, 33)), ((8, 8), (3, 4))]


def realistic_logits(seed: int, classes: int, logit_size: int,
                     size: int) -> np.ndarray:
    """:func:`label_map_tail.realistic_logits` over the label map of a
    ``size`` x ``size`` synthetic ADE20K-layout scene."""
    from evit_mm.datasets.synthetic import make_scene, scene_label_map
    scene = scene_label_map(
        make_scene(np.random.default_rng(seed), size, size))
    return label_map_tail.realistic_logits(scene, seed, classes, logit_size)


def mmseg_labels(logits: np.ndarray, size, align_corners: bool):
    """mmseg's label map of ``(N, C, h, w)`` logits at ``size``, and the gap
    between the two best resized logits at each pixel."""
    from mmseg.models.utils import resize
    resized = resize(torch.from_numpy(logits), size=tuple(size),
                     mode='bilinear', align_corners=align_corners,
                     warning=False)
    top2 = resized.topk(2, dim=1).values
    return (resized.argmax(1, keepdim=True).numpy(),
            (top2[:, :1] - top2[:, 1:]).numpy(), top2[:, :1].abs().numpy())


def assert_mmseg_labels(labels: np.ndarray, logits: np.ndarray, size,
                        align_corners: bool) -> None:
    """``labels`` equal mmseg's label map of ``logits`` except at ties."""
    expected, gap, top = mmseg_labels(logits, size, align_corners)
    assert labels.shape == expected.shape and labels.dtype == np.int64
    differ = labels != expected
    ties = gap <= TIE * np.maximum(top, 1)
    assert not (differ & ~ties).any(), (
        f'{int((differ & ~ties).sum())} of {differ.size} pixels differ '
        f'from mmseg, largest gap {gap[differ].max()}')
    assert len(np.unique(expected)) > 1, 'one label only: vacuous'


def test_a_wrong_tail_is_caught():
    """The check fails on a tail with ``align_corners`` flipped, and on
    nearest upsampling of the low-resolution argmax."""
    logits = realistic_logits(0, 150, 64, 512)
    with pytest.raises(AssertionError, match='differ from mmseg'):
        assert_mmseg_labels(label_maps(logits, (512, 512), True), logits,
                            (512, 512), False)
    nearest = torch.nn.functional.interpolate(
        torch.from_numpy(logits.argmax(1)[:, None]).float(), (512, 512),
        mode='nearest').long().numpy()
    with pytest.raises(AssertionError, match='differ from mmseg'):
        assert_mmseg_labels(nearest, logits, (512, 512), False)


@pytest.mark.parametrize('align_corners', [False, True])
@pytest.mark.parametrize('logit_size,size', SIZES)
def test_random_logits(logit_size, size, align_corners):
    """Independent logits: a class boundary in nearly every cell."""
    logits = np.random.default_rng(1).standard_normal(
        (2, 20, *logit_size), dtype=np.float32)
    assert_mmseg_labels(label_maps(logits, size, align_corners), logits,
                        size, align_corners)


@pytest.mark.parametrize('align_corners', [False, True])
def test_logits_like_a_trained_segmentors(align_corners):
    """150 classes, a region's class ahead by a margin, boundaries of a
    synthetic ADE20K-layout scene: few boundary cells, and in them, the
    classes other than their corners' own pruned but for a few."""
    logits = realistic_logits(0, 150, 64, 512)
    split = CellSplit(logits[0], (512, 512), align_corners)
    split.blend_own_classes()
    assert 0 < split.boundary_fraction < 0.2
    assert split.open_work() < 0.01 * 512 * 512 * 150
    assert_mmseg_labels(label_maps(logits, (512, 512), align_corners),
                        logits, (512, 512), align_corners)


@pytest.mark.parametrize('backend', ['onnxruntime', 'openvino'])
def test_backend_tail_and_its_fallback(backend):
    """:class:`LabelMapTail`: pruned on realistic logits, the backend's
    resize + argmax graph on noise, mmseg's labels either way, at a size
    that does not divide."""
    pytest.importorskip(backend)
    for align_corners in (False, True):
        tail = LabelMapTail(backend, align_corners, threads=1)
        for logits in (realistic_logits(0, 150, 65, 520)[..., :42],
                       random_logits(0, 150, 65)[..., :42]):
            assert_mmseg_labels(tail(logits, (517, 333)), logits,
                                (517, 333), align_corners)
            assert_mmseg_labels(tail.dense(logits, (517, 333)), logits,
                                (517, 333), align_corners)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r'C >= 2 classes, got shape '
                       r'\(1, 1, 4, 4\)'):
        label_maps(np.zeros((1, 1, 4, 4), np.float32), (8, 8), False)
    with pytest.raises(ValueError, match=r'\(H, W\) >= 1, got \(0, 8\)'):
        label_maps(np.zeros((1, 3, 4, 4), np.float32), (0, 8), False)
    with pytest.raises(ValueError, match="backend 'tensorrt'"):
        LabelMapTail('tensorrt', False)


def briefly_trained(config: str, tmp_path, iters: int = 30,
                    lr: float = 1e-2):
    """The quickstart segmentor of ``config`` after ``iters`` steps of its
    config's optimizer at learning rate ``lr`` on 8 synthetic 128x128
    ADE20K-layout images, in eval mode."""
    import cv2
    from mmengine.optim import build_optim_wrapper
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    from evit_mm.datasets.synthetic import generate
    from seg_helpers import build_segmentor, load_config
    root = generate(str(tmp_path / 'data'), formats=('ade', ), num_train=8,
                    num_val=1, img_size=(128, 128))['ade']
    torch.manual_seed(0)
    model = build_segmentor(config)
    cfg = load_config(config).optim_wrapper
    cfg.optimizer.lr = lr
    optim = build_optim_wrapper(model, cfg)
    images, samples = [], []
    for index in range(8):
        name = f'{index:06d}'
        image = cv2.imread(f'{root}/images/training/{name}.jpg')
        label = cv2.imread(f'{root}/annotations/training/{name}.png',
                           cv2.IMREAD_UNCHANGED)
        images.append(torch.from_numpy(image).permute(2, 0, 1))
        sample = SegDataSample(metainfo=dict(img_shape=(128, 128),
                                             ori_shape=(128, 128)))
        sample.gt_sem_seg = PixelData(
            data=torch.from_numpy(label)[None].long())
        samples.append(sample)
    model.train()
    for _ in range(iters):
        model.train_step(dict(inputs=images, data_samples=samples), optim)
    return model.eval()


@pytest.mark.slow
@pytest.mark.parametrize('config,iters,lr',
                         [('SEGFORMER_QUICKSTART', 30, 1e-2),
                          ('QUICKSTART', 60, 2e-3)])
def test_trained_quickstart_logits(config, iters, lr, tmp_path):
    """SegFormer-M0 and Semantic FPN quickstart segmentors, briefly
    trained, on a 125x99 crop of a training image (logits of 16x13 and
    32x28, which do not divide it): the label map drawn from their head's
    logits is mmseg's ``predict``'s."""
    import cv2
    import seg_helpers
    from mmseg.structures import SegDataSample
    model = briefly_trained(getattr(seg_helpers, config), tmp_path, iters,
                            lr)
    image = cv2.imread(str(tmp_path / 'data' / 'ade' / 'images' /
                           'training' / '000000.jpg'))[:125, :99]
    data = model.data_preprocessor(dict(
        inputs=[torch.from_numpy(image.copy()).permute(2, 0, 1)],
        data_samples=[SegDataSample(metainfo=dict(
            img_shape=(125, 99), ori_shape=(125, 99)))]), False)
    with torch.no_grad():
        logits = model.decode_head(model.extract_feat(data['inputs']))
        predicted = model.predict(data['inputs'], data['data_samples'])
    logits = logits.numpy()
    align_corners = model.decode_head.align_corners
    labels = label_maps(logits, (125, 99), align_corners)
    assert_mmseg_labels(labels, logits, (125, 99), align_corners)
    expected = predicted[0].pred_sem_seg.data[None].numpy()
    assert (labels != expected).mean() <= 1e-3
    split = CellSplit(logits[0], (125, 99), align_corners)
    print(f'{config} {tuple(logits.shape[2:])}: boundary cells '
          f'{split.boundary_fraction:.1%}')


def test_benchmark_tail_draws_from_a_scene_when_asked():
    """``benchmark.py --scene-logits``: the graph still runs, and the tail
    draws mmseg's label map of logits shaped like the graph's output that
    follow a synthetic scene's regions (few boundary cells), not of the
    graph's noise."""
    from mmengine.config import Config

    from evit_mm.analysis.whole_model import (logits_of_a_scene,
                                              with_label_map)
    noise = random_logits(0, 150, 16)[:, :, :, :12]
    calls = []

    def graph():
        calls.append(1)
        return [noise]

    from evit_mm.datasets.synthetic import make_scene, scene_label_map

    def scene_of(size):
        return scene_label_map(
            make_scene(np.random.default_rng(0), size[1], size[0]))

    cfg = Config(dict(model=dict(decode_head=dict(align_corners=False))))
    size = (128, 96)
    plain = with_label_map(graph, 'onnxruntime', cfg, 1, size)
    assert_mmseg_labels(plain(), noise, size, False)
    scene = with_label_map(graph, 'onnxruntime', cfg, 1, size, scene_of)
    calls.clear()
    labels = scene()
    assert calls == [1]
    assert_mmseg_labels(labels, logits_of_a_scene(noise, scene_of(size)),
                        size, False)
    assert not np.array_equal(labels, plain())
    # the scene's labels are few and large regions: a handful of classes
    assert 1 < len(np.unique(labels)) <= 8
