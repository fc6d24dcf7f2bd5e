"""Checkpoints from every location mmengine reaches, read safely: http(s)
from a loopback server (downloaded once by a 2-process run),
``open-mmlab://`` through mmengine's name mapping, a storage prefix
registered with ``mmengine.fileio``, ``map_location``; and by the
toolboxes' own inference APIs, which load evit_mm checkpoints as the
toolboxes write them (meta with numpy values, the message hub's
``HistoryBuffer`` logs, ``dataset_meta``). A file that carries code is
refused on each path and its code never runs."""
import functools
import http.server
import json
import os
import os.path as osp
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.fileio import LocalBackend, register_backend
from mmengine.logging import MessageHub
from mmengine.registry import MODELS, DefaultScope
from mmengine.runner import CheckpointLoader
from mmengine.runner.checkpoint import (_load_checkpoint, get_state_dict,
                                        save_checkpoint)
from safetensors.torch import save_file

from evit_mm.checkpoint import CheckpointError, read_checkpoint
from evit_mm.models import EfficientViT
from test_reliability import TINY_ARCH, toy_runner, write_malicious

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PREFIX = 'evit-test'


class CountingHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder and counts the GET requests of each path."""

    hits: dict = {}

    def do_GET(self):
        self.hits[self.path] = self.hits.get(self.path, 0) + 1
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture(scope='module')
def served(tmp_path_factory):
    """A tiny backbone checkpoint (``tiny.pth``, ``tiny.safetensors``) and a
    code-carrying one (``evil.pth``), served on the loopback only; yields
    the folder, the base URL, the weights and the GET counts."""
    root = tmp_path_factory.mktemp('served')
    torch.manual_seed(1)
    weights = EfficientViT(TINY_ARCH).state_dict()
    torch.save({'state_dict': {f'backbone.{k}': v
                               for k, v in weights.items()}},
               root / 'tiny.pth')
    save_file(dict(weights), str(root / 'tiny.safetensors'))
    write_malicious(root)
    handler = type('Handler', (CountingHandler, ), {'hits': {}})
    server = http.server.ThreadingHTTPServer(
        ('127.0.0.1', 0), functools.partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f'http://127.0.0.1:{server.server_port}', weights, \
        handler.hits
    server.shutdown()
    thread.join()


@pytest.fixture
def caches(tmp_path, monkeypatch):
    """torch's hub cache and mmengine's home inside ``tmp_path``."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    monkeypatch.setenv('MMENGINE_HOME', str(tmp_path / 'mmengine'))
    os.makedirs(tmp_path / 'mmengine')
    return tmp_path


def pretrained(checkpoint: str, **kwargs) -> EfficientViT:
    model = EfficientViT(TINY_ARCH, init_cfg=dict(
        type='Pretrained', checkpoint=checkpoint, **kwargs))
    model.init_weights()
    return model


def assert_loaded(model, weights):
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, weights[key], rtol=0, atol=0)


def test_http_is_cached_and_refuses_code(served, caches):
    root, url, weights, hits = served
    for _ in range(2):
        assert_loaded(pretrained(f'{url}/tiny.pth'), weights)
        assert_loaded(pretrained(f'{url}/tiny.safetensors'), weights)
    assert hits['/tiny.pth'] == 1 and hits['/tiny.safetensors'] == 1
    assert osp.isfile(caches / 'torch' / 'hub' / 'checkpoints' / 'tiny.pth')
    # mmengine's own URL loader (the inference APIs) reads the copy
    # read_checkpoint checked, without downloading it again
    checkpoint = _load_checkpoint(f'{url}/tiny.pth')
    assert set(checkpoint['state_dict']) == {f'backbone.{k}' for k in weights}
    assert hits['/tiny.pth'] == 1

    with pytest.raises(CheckpointError, match='Refused to load'):
        pretrained(f'{url}/evil.pth')
    # mmengine's loader, as the inference APIs and load_from call it
    with pytest.raises(CheckpointError, match='Refused to load'):
        _load_checkpoint(f'{url}/evil.pth')
    assert not osp.exists(f'{root}/evil.pth.ran')
    # not left in the cache where another reader could unpickle it
    assert not osp.exists(caches / 'torch' / 'hub' / 'checkpoints' /
                          'evil.pth')


def test_runner_checks_a_url_before_mmengine_reads_it(served, caches):
    """``load_from`` a URL: CheckpointFitHook reads it safely before
    mmengine's URL loader (``weights_only=False``) would."""
    root, url, _, _ = served
    runner = toy_runner(caches / 'work', 1, load_from=f'{url}/evil.pth')
    with pytest.raises(CheckpointError, match='Refused to load'):
        runner.train()
    assert not osp.exists(f'{root}/evil.pth.ran')


def test_open_mmlab_names_through_mmengine_mapping(served, caches):
    root, url, weights, _ = served
    home = caches / 'mmengine'
    (home / 'local.pth').write_bytes((root / 'tiny.pth').read_bytes())
    (home / 'evil.pth').write_bytes((root / 'evil.pth').read_bytes())
    (home / 'open_mmlab.json').write_text(json.dumps({
        'evit_local': 'local.pth', 'evit_url': f'{url}/tiny.pth',
        'evit_evil': 'evil.pth'}))
    assert_loaded(pretrained('open-mmlab://evit_local'), weights)
    assert_loaded(pretrained('openmmlab://evit_url'), weights)
    with pytest.raises(CheckpointError, match='Refused to load'):
        pretrained('open-mmlab://evit_evil')
    with pytest.raises(CheckpointError, match='Refused to load'):
        _load_checkpoint('open-mmlab://evit_evil')
    assert not osp.exists(f'{root}/evil.pth.ran')


class PrefixedLocal(LocalBackend):
    """mmengine's LocalBackend behind ``evit-test://`` (a stand-in for a
    remote storage registered with ``mmengine.fileio``)."""

    def get(self, filepath):
        return super().get(str(filepath)[len(f'{PREFIX}://'):])


def test_storage_prefix_registered_with_mmengine(served):
    root, _, weights, _ = served
    register_backend(PREFIX, PrefixedLocal, force=True, prefixes=PREFIX)
    assert_loaded(pretrained(f'{PREFIX}://{root}/tiny.pth'), weights)
    assert_loaded(pretrained(f'{PREFIX}://{root}/tiny.safetensors'),
                  weights)
    # mmengine's own reads (load_from, resume, inferencers) once its
    # loader is registered for the prefix, as docs/checkpoints.md shows
    CheckpointLoader.register_scheme(f'{PREFIX}://', read_checkpoint,
                                     force=True)
    checkpoint = _load_checkpoint(f'{PREFIX}://{root}/tiny.pth')
    assert set(checkpoint['state_dict']) == {f'backbone.{k}' for k in weights}
    with pytest.raises(CheckpointError, match='Refused to load'):
        _load_checkpoint(f'{PREFIX}://{root}/evil.pth')
    with pytest.raises(CheckpointError, match='Refused to load'):
        pretrained(f'{PREFIX}://{root}/evil.pth')
    assert not osp.exists(f'{root}/evil.pth.ran')
    with pytest.raises(CheckpointError,
                       match="prefix 'nowhere'.*register_backend"):
        pretrained('nowhere://x/tiny.pth')


def test_map_location_is_passed_on(served):
    root, _, weights, _ = served
    for name in ('tiny.pth', 'tiny.safetensors'):
        checkpoint = read_checkpoint(str(root / name), map_location='meta')
        tensors = list(checkpoint.get('state_dict', checkpoint).values())
        assert tensors and all(t.is_meta for t in tensors)
    devices = []

    def record(storage, location):
        devices.append(location)
        return storage

    assert_loaded(pretrained(str(root / 'tiny.pth'), map_location=record),
                  weights)
    assert devices and set(devices) == {'cpu'}


DDP_SCRIPT = """
import sys
import torch
import torch.distributed as dist
dist.init_process_group('gloo')
from evit_mm.models import EfficientViT
model = EfficientViT({arch!r}, init_cfg=dict(type='Pretrained',
                                               checkpoint=sys.argv[1]))
model.init_weights()
total = sum(float(v.double().sum()) for v in model.state_dict().values())
print(f'rank {{dist.get_rank()}} sum {{total:.6f}}')
dist.barrier()
dist.destroy_process_group()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_processes_download_a_url_once(served, caches):
    root, url, weights, hits = served
    script = caches / 'ddp_load.py'
    script.write_text(DDP_SCRIPT.format(arch=TINY_ARCH))
    before = hits.get('/tiny.pth', 0)
    result = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
         '--master_addr=127.0.0.1', f'--master_port={free_port()}',
         str(script), f'{url}/tiny.pth'],
        capture_output=True, text=True, timeout=300, cwd=REPO_ROOT,
        env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert result.returncode == 0, result.stderr[-3000:]
    expected = sum(float(v.double().sum()) for v in weights.values())
    lines = sorted(line for line in result.stdout.splitlines()
                   if line.startswith('rank'))
    assert lines == [f'rank {r} sum {expected:.6f}' for r in (0, 1)]
    assert hits['/tiny.pth'] - before == 1


CONFIGS = {
    'mmdet': 'configs/quickstart/retinanet_efficientvit-m0_synthetic.py',
    'mmseg': 'configs/quickstart/fpn_efficientvit-m0_synthetic.py',
    'mmpretrain': 'configs/quickstart/efficientvit-m0_synthetic.py',
}


def checksum(state_dict) -> float:
    return round(sum(float(v.double().sum()) for v in state_dict.values()
                     if v.is_floating_point()), 4)


def save_like_a_runner(scope: str, path: str) -> float:
    """A checkpoint of the config's model with what mmengine's Runner
    stores beside the weights; the checksum of its weights."""
    cfg = Config.fromfile(osp.join(REPO_ROOT, CONFIGS[scope]))
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(cfg.model)
    hub = MessageHub.get_instance(f'inferencer-test-{scope}')
    for step in range(3):
        hub.update_scalar('train/loss', 1.0 / (step + 1))
    hub.update_info('best_score', np.float64(0.25))
    metainfo = cfg.train_dataloader.dataset.get('metainfo', {})
    state_dict = get_state_dict(model)
    save_checkpoint(dict(
        meta=dict(epoch=12, iter=1200, seed=np.int64(0),
                  cfg=cfg.pretty_text, time=time.strftime('%Y%m%d'),
                  mmengine_version='0.10.7', experiment_name='quickstart',
                  dataset_meta=dict(metainfo)),
        state_dict=state_dict,
        message_hub=hub.state_dict()), path)
    return checksum(state_dict)


SCRIPT = """
import json, sys, time
import numpy as np
import torch
job = json.loads(sys.argv[1])
assert 'evit_mm' not in sys.modules
from mmdet.apis import DetInferencer, init_detector
from mmseg.apis import MMSegInferencer, init_model
from mmpretrain.apis import ImageClassificationInferencer

def checksum(model):
    return round(sum(float(v.double().sum())
                     for v in model.state_dict().values()
                     if v.is_floating_point()), 4)

image = np.random.default_rng(0).integers(0, 255, (96, 96, 3), np.uint8)
apis = {
    'DetInferencer': lambda c, w: DetInferencer(
        model=c, weights=w, device='cpu', show_progress=False),
    'init_detector': lambda c, w: init_detector(c, w, device='cpu'),
    'MMSegInferencer': lambda c, w: MMSegInferencer(
        model=c, weights=w, device='cpu'),
    'init_model': lambda c, w: init_model(c, w, device='cpu'),
    'ImageClassificationInferencer': lambda c, w:
        ImageClassificationInferencer(model=c, pretrained=w, device='cpu'),
}
report = {}
for name, (config, weights, evil) in job.items():
    start = time.time()
    built = apis[name](config, weights)
    model = getattr(built, 'model', built)
    inferencer = hasattr(built, 'model')
    outputs = built(image) if inferencer else {}
    if isinstance(outputs, dict) and 'predictions' in outputs:
        outputs = outputs['predictions']
    if isinstance(outputs, list):
        outputs = outputs[0]
    refusals = []
    for path in evil:
        try:
            apis[name](config, path)
            refusals.append('loaded')
        except Exception as err:
            refusals.append(f'{type(err).__name__}: {err}')
    report[name] = dict(checksum=checksum(model),
                        output=sorted(outputs) if isinstance(outputs, dict)
                        else list(np.shape(outputs)),
                        seconds=round(time.time() - start, 1),
                        refusals=refusals)
print('REPORT ' + json.dumps(report))
"""


# what each inferencer returns for one 96x96 image (the init_* functions
# only build the model)
OUTPUTS = {
    'ImageClassificationInferencer':
    ['pred_class', 'pred_label', 'pred_score', 'pred_scores'],
    'DetInferencer': ['bboxes', 'labels', 'scores'],
    'MMSegInferencer': [96, 96],
}


@pytest.mark.slow
def test_toolbox_inference_apis(served, tmp_path):
    root = served[0]
    sums = {scope: save_like_a_runner(scope, str(tmp_path / f'{scope}.pth'))
            for scope in CONFIGS}
    evil, marker = write_malicious(tmp_path)
    local = [evil]
    # mmpretrain's inferencer builds its pipeline in the current default
    # scope, which the mmdet and mmseg APIs set: it goes first
    job = {
        'ImageClassificationInferencer': ('mmpretrain', local),
        'DetInferencer': ('mmdet', local),
        'init_detector': ('mmdet', local),
        'MMSegInferencer': ('mmseg', local),
        'init_model': ('mmseg', local),
    }
    job = {name: (osp.join(REPO_ROOT, CONFIGS[scope]),
                  str(tmp_path / f'{scope}.pth'), paths)
           for name, (scope, paths) in job.items()}
    result = subprocess.run(
        [sys.executable, '-c', SCRIPT, json.dumps(job)],
        capture_output=True, text=True, timeout=600, cwd=str(tmp_path),
        env=dict(os.environ, TORCH_HOME=str(tmp_path / 'torch')))
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.split('REPORT ', 1)[1])
    for name, (config, _, paths) in job.items():
        scope = next(s for s, c in CONFIGS.items() if config.endswith(c))
        assert report[name]['checksum'] == sums[scope], name
        assert report[name]['output'] == OUTPUTS.get(name, []), name
        assert len(report[name]['refusals']) == len(paths)
        # refused by torch's weights_only default, which mmengine's local
        # loader uses; evit_mm's allow-list does not let the payload in
        for refusal in report[name]['refusals']:
            assert refusal.startswith('UnpicklingError: Weights only load '
                                      'failed') and 'posix.system' in refusal, \
                (name, refusal)
    assert not osp.exists(marker)
    assert not osp.exists(f'{root}/evil.pth.ran')
