"""What ``import evit_mm`` changes in a process beyond registering its own
classes, against a fresh process that imported the same third-party
modules without evit_mm: only what docs/checkpoints.md lists ("What
importing evit_mm changes"), the loaders of the download prefixes and the
allow-list; mmengine's other checkpoint loaders, ``torch.load`` and its
defaults, ``os.environ`` and the warning filters stay as they were."""
import json
import os.path as osp
import re
import subprocess
import sys

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DOC = osp.join(REPO_ROOT, 'docs', 'checkpoints.md')
SECTION = '## What importing evit_mm changes'

# Prints what a process looks like after importing argv[1]: 'evit_mm', or
# a JSON list of modules.
SNAPSHOT = r'''
import importlib, inspect, json, os, sys, tempfile, warnings
before = set(sys.modules)
import torch
from mmengine.runner import CheckpointLoader
if sys.argv[1] == 'evit_mm':
    import evit_mm
else:
    for name in json.loads(sys.argv[1]):
        try:
            importlib.import_module(name)
        except ImportError:  # an extension registered under a short name
            pass


def name(entry):
    if isinstance(entry, tuple):
        return entry[1]
    return f'{entry.__module__}.{entry.__qualname__}'


class Probe:
    """Unpickled, it would call os.getcwd (harmless stand-in for code)."""

    def __reduce__(self):
        return os.getcwd, ()


with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, 'probe.pth')
    torch.save({'x': Probe()}, path)
    try:
        torch.load(path)
        default_refuses_code = False
    except Exception as err:
        default_refuses_code = 'Weights only load failed' in str(err)
print('SNAPSHOT ' + json.dumps(dict(
    # the code's file too: a wrapper (functools.wraps) keeps the name
    schemes={prefix: [name(loader), loader.__code__.co_filename]
             for prefix, loader in CheckpointLoader._schemes.items()},
    safe_globals=sorted(name(g)
                        for g in torch.serialization.get_safe_globals()),
    torch_load=[name(torch.load), str(inspect.signature(torch.load))],
    hub_load=[name(torch.hub.load_state_dict_from_url),
              str(inspect.signature(torch.hub.load_state_dict_from_url))],
    default_refuses_code=default_refuses_code,
    environ=dict(os.environ),
    warning_filters=[repr(f) for f in warnings.filters],
    imported=[m for m in sys.modules
              if m not in before and m.split('.')[0] != 'evit_mm'])))
'''


def snapshot(imports: str) -> dict:
    result = subprocess.run(
        [sys.executable, '-c', SNAPSHOT, imports], capture_output=True,
        text=True, timeout=300, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.split('SNAPSHOT ', 1)[1])


def documented_allow_list() -> set:
    """The names listed (``- `name`: ...``) in the doc's section."""
    text = open(DOC).read()
    section = text.split(SECTION, 1)[1].split('\n## ', 1)[0]
    return set(re.findall(r'^- `([\w.]+)`', section, flags=re.M))


def documented_download_prefixes() -> set:
    """The prefixes the doc's section names in its paragraph on
    ``CheckpointLoader``."""
    text = open(DOC).read()
    section = text.split(SECTION, 1)[1].split('\n## ', 1)[0]
    paragraph = section.split('\n\n')[2]
    assert 'CheckpointLoader' in paragraph, paragraph
    return set(re.findall(r'`(\w[\w-]*://)`', paragraph))


def test_import_changes_only_the_documented_list():
    with_evit = snapshot('evit_mm')
    without = snapshot(json.dumps(with_evit['imported']))
    for key in ('torch_load', 'hub_load', 'environ', 'warning_filters',
                'default_refuses_code'):
        assert with_evit[key] == without[key], key
    changed = {prefix for prefix, loader in with_evit['schemes'].items()
               if without['schemes'].get(prefix) != loader}
    assert changed == documented_download_prefixes()
    assert set(with_evit['schemes']) == set(without['schemes'])
    for prefix in changed:
        name, path = with_evit['schemes'][prefix]
        assert name.endswith('.load_from_download'), (prefix, name)
        assert osp.join('evit_mm', 'checkpoint') in path
    assert with_evit['default_refuses_code'] is True
    added = set(with_evit['safe_globals']) - set(without['safe_globals'])
    assert set(without['safe_globals']) <= set(with_evit['safe_globals'])
    # numpy < 2 names its private module numpy.core
    added = {name.replace('numpy.core.', 'numpy._core.') for name in added}
    assert added == documented_allow_list()
