"""Shared pytest setup: tests import this checkout's evit_mm, use at most
two CPU threads (idle OpenMP threads sleep rather than spin, which matters
when a test runs tools in subprocesses beside the pytest process), and each
test starts from the same seed and default registry scope."""
import os
import sys

os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import pytest  # noqa: E402
import torch  # noqa: E402
from mmengine.registry import DefaultScope  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
os.environ['PYTHONPATH'] = os.pathsep.join(
    [REPO_ROOT] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p])
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _restore_default_scope():
    """Runners and tools a test builds set mmengine's process-wide default
    scope; later tests must not inherit it."""
    saved = DefaultScope._instance_dict.copy()
    yield
    DefaultScope._instance_dict = saved


@pytest.fixture
def mmpretrain_scope():
    """mmpretrain as the default registry scope for one test (restored
    afterwards by ``_restore_default_scope``)."""
    from mmengine.registry import init_default_scope
    init_default_scope('mmpretrain')
