"""Bad, unusual and hostile images through every entry point: the checks of
``evit_mm.datasets.images`` on their own, the pipelines' decoder against
what a photo viewer shows, the three demos over one folder of all cases,
``tools/test.py`` and ``tools/train.py`` on datasets with broken files, and
a 12000x9000 image resized within bounded memory."""
import json
import os.path as osp
import random
import runpy
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import mmcv
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from PIL import Image

from evit_mm.datasets.checked import (CheckImageFiles, SkipRecord,
                                      check_dataset_images, find_unusable,
                                      report_skipped_images)
from evit_mm.datasets.images import (EXIT_SKIPPED, MAX_PIXELS_ENV, ImageError,
                                     check_image, max_image_pixels,
                                     scan_images)
from evit_mm.datasets.synthetic import generate
from evit_mm.engine.outputs import OutputPathError, ensure_writable_dir
from image_corpus import bomb_png, scene, write_corpus
from tool_helpers import (REPO_ROOT, load_tool, run_command, run_measured,
                          run_script)

QUICKSTART = osp.join(REPO_ROOT, 'configs', 'quickstart')
DET = osp.join(QUICKSTART, 'retinanet_efficientvit-m0_synthetic.py')
SEG = osp.join(QUICKSTART, 'fpn_efficientvit-m0_synthetic.py')
CLS = osp.join(QUICKSTART, 'efficientvit-m0_synthetic.py')
DEMOS = dict(det='demo/image_demo.py', seg='demo/image_seg_demo.py',
             cls='demo/image_classification_demo.py')
GIB = 1 << 30


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp('corpus') / 'my images'
    return folder, write_corpus(folder)


def random_checkpoint(config: str, path: Path) -> str:
    """The model of ``config`` with seeded random weights, saved as a
    checkpoint (state dict only) at ``path``."""
    cfg = Config.fromfile(config)
    init_default_scope(cfg.default_scope)
    if 'data_preprocessor' in cfg and 'data_preprocessor' not in cfg.model:
        cfg.model.data_preprocessor = cfg.data_preprocessor
    torch.manual_seed(0)
    torch.save(dict(state_dict=MODELS.build(cfg.model).state_dict()),
               str(path))
    return str(path)


def assert_skipped_each_once(output: str, folder: Path, cases: dict) -> None:
    """One warning line per unusable file, naming it and the reason, and
    none for the others."""
    lines = [line for line in output.splitlines() if 'Skipped ' in line]
    for name, case in cases.items():
        mine = [line for line in lines if f'Skipped {folder / name}:' in line]
        assert len(mine) == (1 if case.reason else 0), (name, lines)
        if case.reason:
            assert case.reason in mine[0], mine[0]


def good(cases: dict) -> dict:
    return {name: case for name, case in cases.items() if case.size}


def bad(cases: dict) -> dict:
    return {name: case for name, case in cases.items() if case.reason}


# The checks on their own (fast).


def test_check_image_tells_each_case(corpus):
    folder, cases = corpus
    for name, case in cases.items():
        path = str(folder / name)
        if case.reason:
            with pytest.raises(ImageError, match=case.reason) as error:
                check_image(path)
            assert error.value.path == path
        else:
            info = check_image(path)
            assert (info.width, info.height) == case.size, name


def test_scan_skips_bad_files_and_ignores_other_names(corpus):
    folder, cases = corpus
    messages = []
    scan = scan_images([str(folder)], log=messages.append)
    assert [osp.basename(i.path) for i in scan.images] == sorted(good(cases))
    assert sorted(osp.basename(p) for p, _ in scan.skipped) == sorted(
        bad(cases))
    assert scan.exit_code == EXIT_SKIPPED
    assert f'{len(good(cases))} image(s) used, {len(bad(cases))} skipped' \
        in scan.summary()
    assert any('notes.txt' in m and 'without an image extension' in m
               for m in messages), messages
    first_bad = min(bad(cases))
    with pytest.raises(ImageError, match=first_bad):
        scan_images([str(folder)], strict=True, log=messages.append)


def test_folder_without_images_is_an_error(tmp_path):
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'other').mkdir()
    (tmp_path / 'other' / 'readme.txt').write_text('hello')
    for folder in ('empty', 'other'):
        with pytest.raises(ImageError, match='no usable image'):
            scan_images([str(tmp_path / folder)], log=lambda message: None)


def test_pixel_limit_is_documented_and_adjustable(tmp_path, monkeypatch):
    path = tmp_path / 'photo.png'
    Image.fromarray(scene(64, 48)).save(path)
    monkeypatch.delenv(MAX_PIXELS_ENV, raising=False)
    assert max_image_pixels() == 200_000_000
    with pytest.raises(ImageError, match=f'over the limit of 3,000.*'
                       f'--max-pixels or {MAX_PIXELS_ENV}'):
        check_image(str(path), max_pixels=3000)
    monkeypatch.setenv(MAX_PIXELS_ENV, '3000')
    with pytest.raises(ImageError, match='64x48 = 3,072 pixels'):
        check_image(str(path))
    assert check_image(str(path), max_pixels=3072).width == 64
    monkeypatch.setenv(MAX_PIXELS_ENV, 'lots')
    with pytest.raises(ValueError, match=f"{MAX_PIXELS_ENV}='lots'"):
        check_image(str(path))


def test_bomb_is_refused_from_its_header(tmp_path):
    """A 400-byte PNG declaring 10^10 pixels; decoding it would need 10 GB.
    The refusal must come from the header (this test would be killed for
    memory otherwise)."""
    path = tmp_path / 'bomb.png'
    path.write_bytes(bomb_png(100000, 100000))
    assert path.stat().st_size < 1000
    with pytest.raises(ImageError, match='100000x100000 = 10,000,000,000'):
        check_image(str(path))


def test_unwritable_output_folder_is_refused(tmp_path):
    """Root may write anywhere permissions allow; a folder under a regular
    file cannot exist for anyone."""
    (tmp_path / 'a file').write_text('x')
    with pytest.raises(OutputPathError, match='--out-dir .* not a writable'):
        ensure_writable_dir(str(tmp_path / 'a file' / 'out'), '--out-dir')
    assert ensure_writable_dir(str(tmp_path / 'new' / 'out'), '--out-dir')


def test_pipeline_decoder_shows_what_a_viewer_shows(corpus):
    """What the pipelines' ``LoadImageFromFile`` decodes (mmcv.imread,
    OpenCV, BGR) against references built from the source pixels: grey
    expanded to three channels, alpha dropped, the palette expanded,
    16-bit scaled to 8 bits, CMYK back to RGB, EXIF orientation 6 turned
    90 degrees clockwise."""
    folder, _ = corpus

    def decoded(name):
        return mmcv.imread(str(folder / name))[..., ::-1].astype(np.int16)

    source = scene(40, 30).astype(np.int16)
    np.testing.assert_array_equal(decoded('gray.png'),
                                  np.repeat(source[..., :1], 3, axis=2))
    np.testing.assert_array_equal(decoded('rgba.png'), source)
    palette = np.asarray(
        Image.open(folder / 'palette.png').convert('RGB')).astype(np.int16)
    np.testing.assert_array_equal(decoded('palette.png'), palette)
    assert np.abs(decoded('deep16.png') - source).max() <= 1
    assert np.abs(decoded('cmyk.jpg') - source).mean() < 4
    # Pillow's decoding of the stored pixels, turned by numpy.
    stored = np.asarray(Image.open(folder / 'exif rotated.jpg'))
    assert stored.shape == (40, 60, 3)
    rotated = np.rot90(stored, k=-1).astype(np.int16)
    assert decoded('exif rotated.jpg').shape == rotated.shape
    assert np.abs(decoded('exif rotated.jpg') - rotated).mean() < 1


# The demos: a folder of every case, and the refusals before any model.


@pytest.mark.parametrize('demo', sorted(DEMOS))
def test_demo_refuses_before_building_a_model(demo, corpus, tmp_path):
    folder, cases = corpus
    main = runpy.run_path(osp.join(REPO_ROOT, DEMOS[demo]))['main']
    config = dict(det=DET, seg=SEG, cls=CLS)[demo]
    checkpoint = ['missing.pth'] if demo == 'cls' else []
    extra = checkpoint or ['--out-dir', str(tmp_path / 'out')]
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'a file').write_text('x')
    with pytest.raises(SystemExit, match=min(bad(cases))):
        main([str(folder), config, *extra, '--strict'])
    with pytest.raises(SystemExit, match='no usable image'):
        main([str(tmp_path / 'empty'), config, *extra])
    if demo != 'cls':
        with pytest.raises(SystemExit, match='--out-dir .* not a writable'):
            main([str(folder / 'photo.jpg'), config, '--out-dir',
                  str(tmp_path / 'a file' / 'out')])
    other = CLS if demo != 'cls' else DET
    with pytest.raises(SystemExit, match=r'Use demo/\S+ for it'):
        main([str(folder / 'photo.jpg'), other, *checkpoint])


def run_demo(demo: str, *args):
    code, output, peak = run_measured([sys.executable,
                                       osp.join(REPO_ROOT, DEMOS[demo]),
                                       *args])
    return code, output, peak


@pytest.mark.slow
def test_detection_demo_over_every_case(corpus, tmp_path):
    folder, cases = corpus
    out = tmp_path / 'out'
    code, output, peak = run_demo('det', folder, DET, '--out-dir', out,
                                  '--pred-score-thr', '0')
    print(f'detection demo over the corpus: peak RSS {peak / GIB:.2f} GiB')
    assert code == EXIT_SKIPPED, output[-3000:]
    assert_skipped_each_once(output, folder, cases)
    assert f'{len(good(cases))} image(s) used, {len(bad(cases))} skipped' \
        in output
    for name, case in good(cases).items():
        drawn = cv2.imread(str(out / 'vis' / name))
        assert drawn.shape[1::-1] == case.size, name
        with open(out / 'preds' / (osp.splitext(name)[0] + '.json')) as f:
            boxes = np.array(json.load(f)['bboxes']).reshape(-1, 4)
        assert len(boxes), name
        assert (boxes[:, 2] <= case.size[0] + 1e-3).all(), name
        assert (boxes[:, 3] <= case.size[1] + 1e-3).all(), name
    for name in bad(cases):
        assert not (out / 'vis' / name).exists()


@pytest.mark.slow
@pytest.mark.runs('demo/image_seg_demo.py', '--weights', '--out-dir')
def test_segmentation_demo_over_every_case(corpus, tmp_path):
    folder, cases = corpus
    out = tmp_path / 'out'
    checkpoint = random_checkpoint(SEG, tmp_path / 'seg.pth')
    code, output, _ = run_demo('seg', folder, SEG, '--weights', checkpoint,
                               '--out-dir', out)
    assert code == EXIT_SKIPPED, output[-3000:]
    assert_skipped_each_once(output, folder, cases)
    for name, case in good(cases).items():
        labels = cv2.imread(
            str(out / 'preds' / (osp.splitext(name)[0] + '.png')),
            cv2.IMREAD_UNCHANGED)
        assert labels.shape[::-1] == case.size, name
        assert labels.max() < 4, name
        assert cv2.imread(str(out / 'vis' / name)).shape[1::-1] == \
            case.size, name


@pytest.mark.slow
@pytest.mark.runs('demo/image_classification_demo.py', '--topk')
def test_classification_demo_over_every_case(corpus, tmp_path):
    folder, cases = corpus
    checkpoint = random_checkpoint(CLS, tmp_path / 'cls.pth')
    code, output, peak = run_demo('cls', folder, CLS, checkpoint, '--topk',
                                  '2')
    print(f'classification demo over the corpus: peak RSS '
          f'{peak / GIB:.2f} GiB')
    assert code == EXIT_SKIPPED, output[-3000:]
    assert_skipped_each_once(output, folder, cases)
    lines = output.splitlines()
    for name, case in good(cases).items():
        header = f'Top-2 classes of {folder / name} ' \
            f'({case.size[0]}x{case.size[1]}):'
        assert header in lines, name
        ranks = lines[lines.index(header) + 1:lines.index(header) + 3]
        assert [r.split('.')[0] for r in ranks] == ['1', '2'], ranks


@pytest.mark.slow
def test_very_large_image_is_resized_within_memory(tmp_path):
    """A 12000x9000 JPEG (108 megapixels, 324 MB decoded) through the
    classification demo, whose pipeline resizes it to 80x80; the demo's
    peak resident memory is printed beside that of the same demo on a
    64x48 image."""
    big = np.zeros((9000, 12000, 3), np.uint8)
    big[:, :, 1] = np.linspace(0, 255, 12000, dtype=np.uint8)
    cv2.circle(big, (4000, 3000), 2000, (40, 40, 250), -1)
    cv2.imwrite(str(tmp_path / 'big.jpg'), big)
    del big
    cv2.imwrite(str(tmp_path / 'small.jpg'), scene(64, 48))
    checkpoint = random_checkpoint(CLS, tmp_path / 'cls.pth')
    peaks = {}
    for name in ('small.jpg', 'big.jpg'):
        code, output, peaks[name] = run_demo('cls', tmp_path / name, CLS,
                                             checkpoint, '--topk', '1')
        assert code == 0, output[-3000:]
        assert f'({"12000x9000" if name == "big.jpg" else "64x48"}):' in \
            output
    print(f'peak RSS of the classification demo: 64x48 image '
          f'{peaks["small.jpg"] / GIB:.2f} GiB, 12000x9000 image '
          f'{peaks["big.jpg"] / GIB:.2f} GiB')
    # The decoded image (0.3 GiB) and a few copies, not a runaway.
    assert peaks['big.jpg'] - peaks['small.jpg'] < 1.5 * GIB


# tools/test.py and tools/train.py on datasets with broken files.


def small_config(path: Path, base: str, data_root: str,
                 dataloaders: list, extra: str) -> Path:
    """A config over ``base`` whose ``dataloaders`` read ``data_root`` two
    images at a time in the main process, plus the lines ``extra``."""
    loaders = ''.join(
        f"{name} = dict(batch_size=2, num_workers=0, persistent_workers=False,"
        f" dataset=dict(data_root=data_root))\n" for name in dataloaders)
    path.write_text(f"_base_ = {base!r}\ndata_root = {data_root!r}\n"
                    f"{loaders}{extra}")
    return path


def break_files(*paths: Path) -> None:
    """The first file truncated to half, the second emptied, the third
    made text, ..."""
    for path, how in zip(paths, ('truncate', 'empty', 'text')):
        data = path.read_bytes()
        path.write_bytes({'truncate': data[:len(data) // 2], 'empty': b'',
                          'text': b'not an image\n'}[how])


@pytest.mark.slow
def test_test_tool_skips_bad_images(tmp_path):
    generate(str(tmp_path / 'data'), formats=['coco'], num_train=1,
             num_val=4, img_size=(64, 64), seed=1)
    root = tmp_path / 'data' / 'coco'
    break_files(root / 'val' / '000001.jpg', root / 'val' / '000002.jpg')
    config = small_config(tmp_path / 'det.py', DET, f'{root}/',
                          ['test_dataloader'], """
test_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
""")
    checkpoint = random_checkpoint(str(config), tmp_path / 'det.pth')
    output = run_script('tools/test.py', config, checkpoint, '--work-dir',
                        tmp_path / 'work', returncode=EXIT_SKIPPED)
    assert f'Skipped {root}/val/000001.jpg: cannot be decoded' in output
    assert f'Skipped {root}/val/000002.jpg: empty file' in output
    assert 'Checked the images of 4 samples of CocoDataset: 2 skipped' in \
        output
    assert 'coco/bbox_mAP' in output
    assert '2 file(s) of the datasets were skipped' in output

    # The refusals, in-process: they come before any iteration.
    main = load_tool('test.py').main
    with pytest.raises(SystemExit, match=f'{root}/val/000001.jpg'):
        main([str(config), checkpoint, '--work-dir', str(tmp_path / 'work'),
              '--strict'])
    (tmp_path / 'a file').write_text('x')
    with pytest.raises(SystemExit, match='--work-dir .* not a writable'):
        main([str(config), checkpoint, '--work-dir',
              str(tmp_path / 'a file' / 'work')])
    with pytest.raises(SystemExit, match='--out .* not a writable'):
        main([str(config), checkpoint, '--work-dir', str(tmp_path / 'work'),
              '--out', str(tmp_path / 'a file' / 'preds.pkl')])


@pytest.mark.slow
def test_two_ranks_leave_out_the_same_bad_test_images(tmp_path):
    """tools/dist_test.sh with 2 CPU processes: the ranks share the check,
    leave the bad image out alike (one warning, one count), evaluate the
    rest and end with the summary; torchrun reports the status-3 worker
    as failed (reliability.md)."""
    generate(str(tmp_path / 'data'), formats=['coco'], num_train=1,
             num_val=5, img_size=(64, 64), seed=1)
    root = tmp_path / 'data' / 'coco'
    break_files(root / 'val' / '000002.jpg')
    config = small_config(tmp_path / 'det.py', DET, f'{root}/',
                          ['test_dataloader'], """
test_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
""")
    checkpoint = random_checkpoint(str(config), tmp_path / 'det.pth')
    output = run_command(
        ['bash', 'tools/dist_test.sh', str(config), checkpoint, '2',
         '--work-dir', str(tmp_path / 'work')], returncode=1,
        PORT=str(random.randint(20000, 40000)))
    assert output.count(f'Skipped {root}/val/000002.jpg') == 1
    assert 'Checked the images of 5 samples of CocoDataset: 1 skipped' in \
        output
    assert 'coco/bbox_mAP' in output
    assert '1 file(s) of the datasets were skipped' in output
    assert 'exitcode: 3' in output


@pytest.mark.slow
def test_train_tool_skips_bad_images_before_the_first_iteration(tmp_path):
    generate(str(tmp_path / 'data'), formats=['imagenet'], num_train=8,
             num_val=3, img_size=(48, 48), seed=2)
    root = tmp_path / 'data' / 'imagenet'
    train_files = sorted((root / 'train').rglob('*.jpg'))
    val_files = sorted((root / 'val').rglob('*.jpg'))
    break_files(train_files[0], val_files[0])
    config = small_config(tmp_path / 'cls.py', CLS, str(root),
                          ['train_dataloader', 'val_dataloader'], """
train_cfg = dict(max_epochs=1, val_interval=1)
default_hooks = dict(checkpoint=dict(interval=1))
""")
    work = tmp_path / 'work'
    with pytest.raises(SystemExit, match=str(train_files[0])):
        load_tool('train.py').main([str(config), '--work-dir', str(work),
                                    '--strict'])
    assert not list(work.glob('*.pth'))

    output = run_script('tools/train.py', config, '--work-dir', work,
                        returncode=EXIT_SKIPPED)
    # The training file when loaded, the validation file before validation.
    assert output.count(f'Skipped {train_files[0]}: cannot be decoded') == 1
    assert output.count(f'Skipped {val_files[0]}: empty file') == 1
    assert 'Checked the images of 3 samples of CustomDataset: 1 skipped' in \
        output
    assert output.index(f'Skipped {val_files[0]}') < \
        output.index('Epoch(val)')
    assert f'new since the last epoch: {train_files[0]}' in output
    assert (work / 'epoch_1.pth').exists()
    assert '2 file(s) of the datasets were skipped' in output


def test_check_images_tool(corpus, capsys):
    folder, cases = corpus
    tool = load_tool('analysis_tools', 'check_images.py')
    assert tool.main([str(folder)]) == EXIT_SKIPPED
    assert tool.main([str(folder / 'photo.jpg'), '--time-decode']) == 0
    output = capsys.readouterr().out
    assert f'check_image: {len(cases)} file(s)' in output
    assert 'mmcv.imread: 1 image(s)' in output


def test_dataset_configs_are_wrapped_once_through_wrappers():
    cfg = Config(dict(
        train_dataloader=dict(num_workers=2, dataset=dict(
            type='RepeatDataset', times=2, dataset=dict(type='CocoDataset'))),
        val_dataloader=None,
        test_dataloader=dict(dataset=dict(type='ConcatDataset', datasets=[
            dict(type='A'), dict(type='CheckedImageDataset',
                                 dataset=dict(type='B'))]))))
    check_dataset_images(cfg, ['train_dataloader', 'val_dataloader',
                               'test_dataloader'], 'record', strict=True)
    train = cfg.train_dataloader.dataset
    assert train.type == 'RepeatDataset'
    assert train.dataset.type == 'CheckedImageDataset'
    assert train.dataset.dataset.type == 'CocoDataset'
    assert (train.dataset.workers, train.dataset.strict) == (2, True)
    inner = cfg.test_dataloader.dataset.datasets
    assert [d.type for d in inner] == ['CheckedImageDataset'] * 2
    assert [d.dataset.type for d in inner] == ['A', 'B']
    assert {d.record_file for d in inner} == {'record'}
    assert cfg.val_dataloader is None


def test_sets_are_checked_when_loaded_or_before_their_loop():
    """Without ``strict``: the training set checked when loaded, the test
    set left as it is and named to the hook, which is added once."""
    cfg = Config(dict(
        train_dataloader=dict(dataset=dict(type='CocoDataset')),
        test_dataloader=dict(num_workers=3, dataset=dict(type='CocoDataset')),
        custom_hooks=[dict(type='ImageCheckHook', record_file='old')]))
    for _ in range(2):
        check_dataset_images(cfg, ['train_dataloader', 'test_dataloader'],
                             'record', max_pixels=10)
    assert cfg.train_dataloader.dataset.when == 'load'
    assert cfg.test_dataloader.dataset.type == 'CocoDataset'
    assert cfg.custom_hooks == [
        dict(type='ImageCheckHook', record_file='record',
             dataloaders=dict(test_dataloader=3), max_pixels=10)
    ]


def listed_names(folder: Path) -> set:
    """The file names an unchecked ``CustomDataset`` lists."""
    init_default_scope('mmpretrain')
    from mmengine.registry import DATASETS
    dataset = DATASETS.build(dict(
        type='CustomDataset', data_root=str(folder), with_label=False,
        extensions=('.jpg', '.png'), pipeline=[]))
    return {osp.basename(dataset.get_data_info(i)['img_path'])
            for i in range(len(dataset))}


def _corpus_dataset(folder: Path, when: str, record: SkipRecord):
    """An mmpretrain ``CustomDataset`` over the corpus folder, built as a
    ``CheckedImageDataset`` through the registry."""
    init_default_scope('mmpretrain')
    from mmengine.registry import DATASETS
    return DATASETS.build(dict(
        type='CheckedImageDataset', when=when, record_file=record.path,
        dataset=dict(type='CustomDataset', data_root=str(folder),
                     with_label=False, extensions=('.jpg', '.png'),
                     pipeline=[])))


def test_checked_dataset_leaves_out_bad_samples(corpus, tmp_path):
    """Checked when built: the bad files are left out and recorded, the
    good ones kept in order, the dataset keeps its type."""
    folder, cases = corpus
    record = SkipRecord(str(tmp_path / 'skipped.jsonl'))
    dataset = _corpus_dataset(folder, 'build', record)
    assert type(dataset).__name__ == 'CustomDataset'
    kept = sorted(osp.basename(dataset.get_data_info(i)['img_path'])
                  for i in range(len(dataset)))
    assert kept == sorted(good(cases))
    recorded = {osp.basename(p) for p in record.read()}
    assert recorded <= set(bad(cases))
    assert recorded | set(kept) == listed_names(folder)
    assert report_skipped_images(record) == EXIT_SKIPPED
    assert report_skipped_images(SkipRecord(str(tmp_path / 'none'))) == 0


def test_checked_training_set_replaces_bad_samples_when_loaded(
        corpus, tmp_path):
    """A training set checked when loaded: not checked when built, each
    sample checked when loaded, and mmengine's refetch gives another one
    for a bad file, which is recorded once however often it is drawn."""
    folder, cases = corpus
    record = SkipRecord(str(tmp_path / 'skipped.jsonl'))
    dataset = _corpus_dataset(folder, 'load', record)
    assert isinstance(dataset.pipeline.transforms[0], CheckImageFiles)
    listed = listed_names(folder)
    assert listed > set(good(cases)) and listed & set(bad(cases))
    loaded = [osp.basename(dataset[i]['img_path'])
              for i in range(len(dataset)) for _ in range(2)]
    assert set(loaded) == set(good(cases))
    lines = (tmp_path / 'skipped.jsonl').read_text().splitlines()
    assert sorted(osp.basename(json.loads(line)[0]) for line in lines) == \
        sorted(listed & set(bad(cases)))


def test_hook_checks_a_wrapped_test_set_before_its_loop(corpus, tmp_path):
    """A test set of dataset wrappers: before the loop, the hook leaves
    the bad samples out of the inner datasets, gives the loop a dataloader
    (and sampler) over the good ones only, records each bad file once, and
    does all this once."""
    from mmengine.runner import Runner
    from evit_mm.hooks import ImageCheckHook
    folder, cases = corpus
    init_default_scope('mmpretrain')
    images = dict(type='CustomDataset', data_root=str(folder),
                  with_label=False, extensions=('.jpg', '.png'), pipeline=[])
    cfg = Config(dict(test_dataloader=dict(
        batch_size=2, num_workers=0,
        sampler=dict(type='DefaultSampler', shuffle=False),
        dataset=dict(type='ConcatDataset', datasets=[
            images, dict(type='RepeatDataset', times=2, dataset=images)]))))
    loop = SimpleNamespace(dataloader=Runner.build_dataloader(
        cfg.test_dataloader))
    runner = SimpleNamespace(cfg=cfg, seed=0, test_loop=loop,
                             build_dataloader=Runner.build_dataloader)
    record = SkipRecord(str(tmp_path / 'skipped.jsonl'))
    hook = ImageCheckHook(record.path, dict(test_dataloader=2))
    hook.before_test(runner)
    checked = loop.dataloader
    paths = [checked.dataset[i]['img_path'] for i in checked.sampler]
    assert len(paths) == 3 * len(good(cases))
    assert {osp.basename(p) for p in paths} == set(good(cases))
    recorded = {osp.basename(p) for p in record.read()}
    assert recorded <= set(bad(cases))
    assert recorded | set(good(cases)) == listed_names(folder)
    hook.before_test(runner)
    assert loop.dataloader is checked


def test_ranks_share_the_check_of_a_test_set(corpus):
    """Each rank checks every world_size-th sample; together they check
    each file once, with check_image's verdict."""
    folder, cases = corpus
    samples = [[str(folder / name)] for name in sorted(cases)]
    parts = [find_unusable(samples, rank=rank, world_size=3)
             for rank in range(3)]
    assert sum(len(part) for part in parts) == len(samples)
    merged = {path: reason for part in parts
              for path, reason in part.items()}
    for name, case in cases.items():
        reason = merged[str(folder / name)]
        assert (reason is None) == (case.reason is None), name
        if case.reason:
            assert case.reason in reason, (name, reason)
