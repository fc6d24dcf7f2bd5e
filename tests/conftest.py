"""Shared pytest setup: tests import this checkout's evit_mm, use at most
two CPU threads (idle OpenMP threads sleep rather than spin, which matters
when a test runs tools in subprocesses beside the pytest process), and each
test starts from the same seed and default registry scope; a test marked
``runs`` really ran its script in a fresh process (:mod:`tool_helpers`)."""
import os
import sys

os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import pytest  # noqa: E402
import torch  # noqa: E402
from mmengine.registry import DefaultScope  # noqa: E402

import tool_helpers  # noqa: E402

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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keeps each phase's report on the test item (``item.report_call``)."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f'report_{report.when}', report)


@pytest.fixture(autouse=True)
def _marked_commands_ran(request):
    """A test marked ``@pytest.mark.runs(SCRIPT, *OPTIONS)`` that passed
    must have run SCRIPT with OPTIONS through :mod:`tool_helpers`."""
    tool_helpers.RUNS.clear()
    yield
    report = getattr(request.node, 'report_call', None)
    if report is None or not report.passed:
        return
    for marker in request.node.iter_markers('runs'):
        script, *options = marker.args
        assert tool_helpers.ran(script, options), (
            f'marked @pytest.mark.runs{marker.args} but ran only '
            f'{tool_helpers.RUNS}')


@pytest.fixture
def mmpretrain_scope():
    """mmpretrain as the default registry scope for one test (restored
    afterwards by ``_restore_default_scope``)."""
    from mmengine.registry import init_default_scope
    init_default_scope('mmpretrain')
