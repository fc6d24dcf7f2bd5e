"""Every command the README and docs/ print is run by a test as a user runs
it: a script of ``tools/``, ``demo/`` or ``.dev_scripts/`` in a fresh
interpreter (or bash), with the options the docs give. Such a test is marked
``@pytest.mark.runs(SCRIPT, *OPTIONS)`` and runs the script through
``tool_helpers`` (``tests/conftest.py`` checks that it did). The scripts
find this checkout's evit_mm without an install; and the commands no other
test runs are run here."""
import ast
import glob
import os.path as osp
import re
from typing import Dict, List, NamedTuple, Set

import pytest
import torch

from reference import (PAPER_FLOPS_PARAMS, official_state_dict,
                       relative_error, timm_features, timm_model)
from tool_helpers import REPO_ROOT, run_command, run_script

PAGES = ['README.md'] + sorted(
    osp.relpath(path, REPO_ROOT)
    for path in glob.glob(osp.join(REPO_ROOT, 'docs', '*.md')))
FENCE = re.compile(r'^\s*(```|~~~)')
INLINE_CODE = re.compile(r'(`+)(.+?)\1')
# `python[3] tools/...py ARGS` or `bash demo/...sh ARGS` (or .dev_scripts/);
# ARGS end at a comment, a pipe, `;`, `&` or the end of an inline code span.
COMMAND = re.compile(
    r'\b(?:python3?|bash)\s+((?:tools|demo|\.dev_scripts)/[\w/.-]+'
    r'\.(?:py|sh))'
    r'([^#;&|`]*)')
# An option the command gives: `--name`, not an optional `[--name]`.
OPTION = re.compile(r'(?<!\S)--[\w-]+')
# Scripts that import evit_mm but must not put their checkout first: the
# measuring child of compare_revisions.py imports the evit_mm of the
# revision it measures, which PYTHONPATH names.
NO_BOOTSTRAP = {'.dev_scripts/compare_revisions.py'}


class Command(NamedTuple):
    page: str
    script: str
    options: List[str]


def commands_of(page: str, text: str) -> List[Command]:
    """The commands of the Markdown ``text`` of ``page``: in code blocks
    (lines continued with ``\\`` joined, comments left out) and in inline
    code elsewhere."""
    commands, in_fence = [], False
    for line in text.replace('\\\n', ' ').splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        spans = [line.split('#')[0]] if in_fence else [
            match.group(2) for match in INLINE_CODE.finditer(line)]
        for span in spans:
            commands += [
                Command(page, match.group(1), OPTION.findall(match.group(2)))
                for match in COMMAND.finditer(span)]
    return commands


def printed_commands() -> List[Command]:
    """The commands of the README and docs/*.md."""
    commands = []
    for page in PAGES:
        with open(osp.join(REPO_ROOT, page), encoding='utf-8') as f:
            commands += commands_of(page, f.read())
    return commands


def marked_runs() -> Dict[str, Set[str]]:
    """``{script: options}`` over every ``pytest.mark.runs(...)`` of the
    test files (the arguments are string literals, or names of module-level
    string constants)."""
    runs: Dict[str, Set[str]] = {}
    for path in glob.glob(osp.join(REPO_ROOT, 'tests', 'test_*.py')):
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read(), path)
        constants = {
            target.id: node.value.value for node in tree.body
            if isinstance(node, ast.Assign) and
            isinstance(node.value, ast.Constant) and
            isinstance(node.value.value, str)
            for target in node.targets if isinstance(target, ast.Name)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and \
                    isinstance(node.func, ast.Attribute) and \
                    node.func.attr == 'runs' and \
                    ast.unparse(node.func.value) == 'pytest.mark':
                script, *options = [
                    constants[arg.id] if isinstance(arg, ast.Name) else
                    ast.literal_eval(arg) for arg in node.args]
                runs.setdefault(script, set()).update(options)
    return runs


def test_the_docs_commands_are_found():
    """The extraction sees commands in code blocks (continued lines
    joined) and in inline code, with their options (a broken pattern would
    make the coverage check below vacuous)."""
    inline = Command('x.md', 'tools/train.py', ['--work-dir'])
    block = Command('x.md', 'tools/deployment/deploy.py',
                    ['--backend', '--img'])
    assert commands_of('x.md', """\
| `python tools/train.py CONFIG --work-dir D [--amp]` | train |
```bash
# python tools/not_this.py
python tools/deployment/deploy.py CONFIG CKPT \\
    --backend onnxruntime --img a.jpg  # --not-this
```
""") == [inline, block]
    commands = printed_commands()
    assert ('README.md', 'tools/quickstart.sh') in {
        (c.page, c.script) for c in commands}
    assert len({c.script for c in commands}) >= 15


def test_every_printed_command_has_a_fresh_process_test():
    """Each script the docs print is run by a test marked ``runs``, and
    every option the docs give it is passed by one of those tests."""
    runs = marked_runs()
    missing = sorted({(c.script, c.page) for c in printed_commands()
                      if c.script not in runs})
    assert not missing, f'printed, but no test runs them: {missing}'
    untested = sorted({
        (c.script, option, c.page) for c in printed_commands()
        for option in c.options if option not in runs[c.script]})
    assert not untested, f'options printed but never run: {untested}'


def test_marked_scripts_exist():
    for script in marked_runs():
        assert osp.isfile(osp.join(REPO_ROOT, script)), script


def _imports_evit_mm(tree: ast.Module) -> List[ast.stmt]:
    return [node for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and
            (node.module or '').split('.')[0] == 'evit_mm' or
            isinstance(node, ast.Import) and
            any(a.name.split('.')[0] == 'evit_mm' for a in node.names)]


def test_scripts_put_this_checkout_first():
    """Every script of tools/, demo/ and .dev_scripts/ that imports evit_mm
    first puts the checkout it lies in at the front of ``sys.path``, in one
    form:
    ``sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)),
    '..'[, '..']))`` before its first top-level evit_mm import, so that a
    clone runs without ``pip install -e .`` and a checkout's tools use
    that checkout's evit_mm (:data:`NO_BOOTSTRAP` excepted)."""
    scripts = glob.glob(osp.join(REPO_ROOT, 'tools', '**', '*.py'),
                        recursive=True) + glob.glob(
                            osp.join(REPO_ROOT, 'demo', '*.py')) + glob.glob(
                                osp.join(REPO_ROOT, '.dev_scripts', '*.py'))
    checked = []
    for script in scripts:
        with open(script, encoding='utf-8') as f:
            tree = ast.parse(f.read(), script)
        imports = _imports_evit_mm(tree)
        name = osp.relpath(script, REPO_ROOT)
        if not imports or name in NO_BOOTSTRAP:
            continue
        inserts = [
            node for node in tree.body if isinstance(node, ast.Expr) and
            ast.unparse(node.value).startswith('sys.path.insert(0, osp.join'
                                               '(osp.dirname(osp.abspath('
                                               '__file__))')]
        assert len(inserts) == 1, f'{name}: no checkout bootstrap'
        root = eval(ast.unparse(inserts[0].value.args[1]),  # noqa: S307
                    dict(osp=osp, __file__=script))
        assert osp.normpath(root) == REPO_ROOT, name
        assert inserts[0].lineno < min(node.lineno for node in imports), name
        checked.append(name)
    assert len(checked) >= 14, checked


def decoy_evit_mm(folder) -> str:
    """A folder holding an ``evit_mm`` that fails on import: as the first
    entry of PYTHONPATH it stands for an installed evit_mm that is not
    this checkout's, or for none at all."""
    package = folder / 'decoy' / 'evit_mm'
    package.mkdir(parents=True)
    (package / '__init__.py').write_text(
        "raise ImportError('imported an evit_mm outside the checkout')\n")
    return str(package.parent)


@pytest.mark.runs('tools/model_converters/efficientvit_to_mm.py')
def test_converter_runs_from_a_clone_without_install(tmp_path):
    """The converter as checkpoints.md prints it, with another evit_mm
    first on PYTHONPATH: it converts an official checkpoint with this
    checkout's evit_mm, and the result loads into the backbone and gives
    timm's features."""
    from evit_mm.models import EfficientViT
    reference = timm_model('m0', 448)
    source, converted = tmp_path / 'official.pth', tmp_path / 'mm.pth'
    torch.save({'model': official_state_dict(reference)}, source)
    run_script('tools/model_converters/efficientvit_to_mm.py', source,
               converted, PYTHONPATH=decoy_evit_mm(tmp_path))
    model = EfficientViT('m0', init_cfg=dict(
        type='Pretrained', checkpoint=str(converted), prefix='backbone.'))
    model.init_weights()
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        features = model.eval()(x)
    for ours, theirs in zip(features, timm_features(reference, x)):
        assert relative_error(ours, theirs) < 1e-5


@pytest.mark.slow
@pytest.mark.runs('tools/run_tests.sh')
@pytest.mark.runs('tools/install.sh')
@pytest.mark.runs('tools/install.sh', '--check')
def test_install_check_and_run_tests():
    """``bash tools/install.sh`` finds the environment complete (pip may
    not reach an index: a gap fails the test instead of installing);
    ``bash tools/run_tests.sh TESTS`` checks the same, then runs the tests
    named with pytest."""
    output = run_command(['bash', 'tools/install.sh', '--check'])
    assert '[install] environment complete' in output
    output = run_command(['bash', 'tools/install.sh'], PIP_NO_INDEX='1')
    assert '[install] environment complete' in output
    output = run_command(
        ['bash', 'tools/run_tests.sh', 'tests/test_commands.py', '-k',
         'test_marked_scripts_exist'], TEST_WORKERS='0', PIP_NO_INDEX='1')
    assert '[install] environment complete' in output
    assert re.search(r'\b1 passed\b', output), output[-2000:]


@pytest.mark.slow
@pytest.mark.runs('tools/dataset_converters/make_synthetic_data.py',
                  '--formats', '--num-train', '--num-val', '--img-size',
                  '--seed')
@pytest.mark.runs('tools/analysis_tools/check_images.py', '--time-decode')
def test_data_commands(tmp_path):
    """The image-check measurement's commands (development.md): synthetic
    folders and the image check (check_dataset.py:
    tests/test_dataset_checks.py)."""
    data = tmp_path / 'synthetic'
    run_script('tools/dataset_converters/make_synthetic_data.py', data,
               '--formats', 'coco', 'imagenet', '--num-train', '3',
               '--num-val', '2', '--img-size', '64', '--seed', '3')
    images = sorted(glob.glob(str(data / 'imagenet' / 'train' / '*')))
    output = run_script('tools/analysis_tools/check_images.py', *images,
                        '--time-decode')
    # --num-train 3: three images in all, over the class folders
    assert 'check_image: 3 file(s)' in output, output[-2000:]
    assert 'mmcv.imread: 3 image(s)' in output


@pytest.mark.slow
@pytest.mark.runs('tools/analysis_tools/get_flops.py', '--arch', '--depth')
@pytest.mark.runs('tools/analysis_tools/get_flops.py', '--task', '--shape')
@pytest.mark.runs('tools/analysis_tools/backbone_summary.py', '--shape',
                  '--arch')
def test_complexity_commands():
    """performance.md's get_flops.py forms (a preset against the paper, a
    config's model, a config's backbone) and backbone.md's summary."""
    def numbers(output: str) -> tuple:
        return tuple(float(re.search(rf'{name}: ([\d.]+) M', output).group(1))
                     for name in ('FLOPs', 'Params'))

    flops, params = numbers(run_script('tools/analysis_tools/get_flops.py',
                                       '--arch', 'm0', '--depth', '0'))
    assert flops == pytest.approx(PAPER_FLOPS_PARAMS['m0'][0], rel=.03)
    assert params == pytest.approx(PAPER_FLOPS_PARAMS['m0'][1], rel=.03)
    retinanet = 'configs/quickstart/retinanet_efficientvit-m0_synthetic.py'
    whole = numbers(run_script('tools/analysis_tools/get_flops.py', retinanet,
                               '--shape', '64', '96'))
    backbone = numbers(run_script('tools/analysis_tools/get_flops.py',
                                  retinanet, '--task', 'backbone', '--shape',
                                  '64', '96'))
    assert 0 < backbone[0] < whole[0] and 0 < backbone[1] < whole[1]
    output = run_script('tools/analysis_tools/backbone_summary.py', '--shape',
                        '64', '96', '--arch', 'm0', 'm1')
    # strides 16, 32, 64 of a 64x96 input; widths of m0 and m1
    assert re.search(r'^m0 .* 64x4x6 / 128x2x3 / 192x1x2$', output, re.M)
    assert re.search(r'^m1 .* 128x4x6 / 144x2x3 / 192x1x2$', output, re.M)
    assert not re.search(r'^m2 ', output, re.M)


@pytest.mark.slow
@pytest.mark.runs('.dev_scripts/compare_revisions.py', '--archs',
                  '--batch-sizes', '--rounds', '--threads', '--clock')
def test_compare_revisions_runs_a_folder(tmp_path):
    """performance.md's revision comparison, at a tiny budget, of this
    checkout as a folder: timm and evit_mm agree, both variants timed."""
    import json
    output = tmp_path / 'compare.json'
    run_script('.dev_scripts/compare_revisions.py', REPO_ROOT,
               '--archs', 'm0', '--batch-sizes', '1', '--rounds', '1',
               '--warmup', '0', '--repeats', '1', '--threads', '1', '--clock',
               'cpu', '--json', output)
    result = json.loads(output.read_text())
    assert result['rel_err_vs_timm'][REPO_ROOT] < 1e-5
    assert set(result['ratios'][REPO_ROOT]['m0 1']) == {'evit_mm',
                                                        'evit_mm deploy'}


@pytest.mark.slow
@pytest.mark.runs('.dev_scripts/compare_deployments.py', '--models',
                  '--repeats', '--threads')
def test_compare_deployments_runs_a_folder():
    """development.md's deployment comparison, at a tiny budget, of this
    checkout as a folder and as its last commit: both deploy.py runs give
    graphs that compute the same."""
    output = run_script('.dev_scripts/compare_deployments.py', REPO_ROOT,
                        'HEAD', '--models', 'classifier-m0', '--repeats',
                        '1', '--warmup', '0', '--threads', '1')
    rows = [line.split() for line in output.splitlines()
            if line.startswith('classifier-m0')]
    assert len(rows) == 2
    assert [(row[-2], float(row[-1])) for row in rows] == [('yes', 0.)] * 2
