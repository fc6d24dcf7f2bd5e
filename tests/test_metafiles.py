"""The model index that OpenMMLab's mim reads (``mim search evit_mm``):
every model config is listed once, with the files and weights it names,
read by the loader mim itself uses (``modelindex``)."""
import glob
import os.path as osp
import re

import pytest
import yaml
from modelindex.load_model_index import load

from reference import OFFICIAL_DETECTORS, OFFICIAL_WEIGHTS, PAPER_TOP1

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
# Config folders that hold no model of the zoo: bases, deployment settings,
# the synthetic-data quickstarts and the other backbones of the comparison.
NOT_IN_ZOO = ('_base_', 'deploy', 'quickstart', 'baselines')


@pytest.fixture(scope='module')
def index():
    return load(osp.join(REPO, 'model-index.yml'))


def _model_configs():
    configs = glob.glob(osp.join(REPO, 'configs', '**', '*.py'),
                        recursive=True)
    return sorted(
        osp.relpath(path, REPO) for path in configs
        if osp.relpath(path, osp.join(REPO, 'configs')).split(osp.sep)[0]
        not in NOT_IN_ZOO)


def test_every_metafile_is_imported():
    with open(osp.join(REPO, 'model-index.yml')) as f:
        imported = yaml.safe_load(f)['Import']
    metafiles = sorted(
        osp.relpath(path, REPO)
        for path in glob.glob(osp.join(REPO, 'configs', '*', 'metafile.yml')))
    assert sorted(imported) == metafiles


def test_every_model_config_is_listed_once(index):
    listed = [model.config for model in index.models]
    assert len(listed) == len(set(listed)), 'a config is listed twice'
    missing = sorted(set(_model_configs()) - set(listed))
    assert not missing, (
        f'{missing} are in no metafile: list each in the metafile.yml of its '
        'folder (and that metafile in model-index.yml), with Weights: null '
        'when no weights are released.')
    assert sorted(listed) == _model_configs()


def test_names_and_collections(index):
    names = [model.name for model in index.models]
    assert len(names) == len(set(names))
    collections = {c.name for c in index.collections}
    for model in index.models:
        assert model.in_collection in collections, model.name
        # mim's config id: the config's name, except for the converted
        # ImageNet weights (OpenMMLab's "3rdparty" naming)
        if model.weights is None:
            assert model.name == osp.splitext(osp.basename(model.config))[0]


def test_weights(index):
    """The six classifiers name the official weights with the paper's
    top-1, the M4 RetinaNet and Mask R-CNN the official COCO detectors with
    the paper's AP; no other config has released weights yet (the configs'
    own tests check that each builds the arch of its name)."""
    released = []
    for model in index.models:
        arch = re.search(r'efficientvit-(m\d)', model.config).group(1)
        if model.weights is None:
            assert len(model.results) == 0, model.name
            continue
        folder = model.config.split('/')[1]
        released.append((folder, arch))
        if folder == 'efficientvit':
            assert model.weights == OFFICIAL_WEIGHTS[arch]
            assert model.results[0].metrics['Top 1 Accuracy'] == \
                PAPER_TOP1[arch]
            continue
        weights, ap = OFFICIAL_DETECTORS[folder]
        assert model.weights == weights
        assert {k: v for r in model.results
                for k, v in r.metrics.items()} == ap
    assert sorted(released) == sorted(
        [('efficientvit', arch) for arch in OFFICIAL_WEIGHTS] +
        [(folder, 'm4') for folder in OFFICIAL_DETECTORS])
