"""The README and the pages under docs/: every relative link points at an
existing file and, with a ``#anchor``, at an existing heading of that file
(GitHub's anchor rule); the README stays short."""
import glob
import os.path as osp
import re
from typing import Dict, List, Set, Tuple
from urllib.parse import unquote

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
PAGES = ['README.md'] + sorted(
    osp.relpath(path, REPO) for path in glob.glob(osp.join(REPO, 'docs', '*.md')))
README_MAX_LINES = 150

FENCE = re.compile(r'^\s*(```|~~~)')
HEADING = re.compile(r'^(#{1,6})\s+(.*?)\s*#*\s*$')
INLINE_CODE = re.compile(r'(`+)(.+?)\1')
# [text](target) or ![alt](target), with an optional "title".
LINK = re.compile(r'\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)')
EXTERNAL = re.compile(r'^[a-z][a-z0-9+.-]*:', re.IGNORECASE)  # http:, mailto:


def prose_lines(text: str) -> List[str]:
    """The lines of a Markdown text outside fenced code blocks."""
    lines, in_fence = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence:
            lines.append(line)
    return lines


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: the rendered text (code marks,
    emphasis and link targets removed), lowercased, every character that is
    not a letter, digit, space, hyphen or underscore removed, spaces turned
    into hyphens.

    Args:
        heading: The heading's Markdown text, without the leading ``#``.
    """
    text = INLINE_CODE.sub(lambda match: match.group(2), heading)
    text = re.sub(r'!?\[([^\]]*)\]\([^)]*\)', r'\1', text)
    text = re.sub(r'\*+', '', text).lower()
    text = re.sub(r'[^\w\- ]', '', text)
    return text.replace(' ', '-')


def anchors(path: str) -> Set[str]:
    """Every heading anchor of a Markdown file, repeated headings numbered
    ``-1``, ``-2`` ... as GitHub does.

    Args:
        path: The Markdown file.
    """
    with open(path, encoding='utf-8') as f:
        text = f.read()
    seen: Dict[str, int] = {}
    found = set()
    for line in prose_lines(text):
        match = HEADING.match(line)
        if not match:
            continue
        anchor = github_anchor(match.group(2))
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        found.add(anchor if count == 0 else f'{anchor}-{count}')
    return found


def relative_links(path: str) -> List[str]:
    """The targets of the links of a Markdown file that are neither URLs nor
    inside code.

    Args:
        path: The Markdown file.
    """
    with open(path, encoding='utf-8') as f:
        text = f.read()
    targets = []
    for line in prose_lines(text):
        line = INLINE_CODE.sub('', line)
        targets += [
            target for target in LINK.findall(line)
            if not EXTERNAL.match(target)
        ]
    return targets


def broken_links(path: str) -> List[Tuple[str, str]]:
    """``(link, problem)`` for every relative link of a Markdown file that
    names a missing file or a heading its file does not have.

    Args:
        path: The Markdown file.
    """
    problems = []
    for link in relative_links(path):
        target, _, anchor = link.partition('#')
        target_path = (
            osp.normpath(osp.join(osp.dirname(path), unquote(target)))
            if target else path)
        if not osp.exists(target_path):
            problems.append((link, f'no file {target_path}'))
        elif anchor:
            if not target_path.endswith('.md'):
                problems.append((link, 'an anchor on a file that is not Markdown'))
            elif unquote(anchor) not in anchors(target_path):
                problems.append((link, f'no heading #{anchor} in {target_path}'))
    return problems


@pytest.mark.parametrize(
    'heading, anchor',
    [('Label maps and `reduce_zero_label`', 'label-maps-and-reduce_zero_label'),
     ('Feature levels: from strides 16/32/64 to 4/8/16/32',
      'feature-levels-from-strides-163264-to-481632'),
     ('Complexity (get_flops.py)', 'complexity-get_flopspy'),
     ('Use EfficientViT in your own config', 'use-efficientvit-in-your-own-config'),
     ('Results (CPU) — **2 cores**', 'results-cpu--2-cores')])
def test_github_anchor_rule(heading, anchor):
    assert github_anchor(heading) == anchor


def test_checker_finds_broken_links(tmp_path):
    (tmp_path / 'other.md').write_text('# A title\n\n## Twice\n\n## Twice\n')
    page = tmp_path / 'page.md'
    page.write_text(
        '# Page\n\n'
        '[ok](other.md) [ok](other.md#a-title) [ok](other.md#twice-1) [ok](#page)\n'
        '[missing file](nowhere.md) [missing heading](other.md#no-such)\n'
        '[third twice](other.md#twice-2) [url](https://example.com/x.md)\n'
        '`[in code](nowhere.md)`\n'
        '```\n# not a heading\n[in a block](nowhere.md)\n```\n'
        '[not a heading](#not-a-heading)\n')
    assert [link for link, _ in broken_links(str(page))] == [
        'nowhere.md', 'other.md#no-such', 'other.md#twice-2', '#not-a-heading'
    ]


@pytest.mark.parametrize('page', PAGES)
def test_links_resolve(page):
    problems = broken_links(osp.join(REPO, page))
    assert not problems, f'{page}: ' + '; '.join(
        f'({link}) {problem}' for link, problem in problems)


def test_readme_is_short():
    with open(osp.join(REPO, 'README.md'), encoding='utf-8') as f:
        lines = f.read().splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f'README.md has {len(lines)} lines; at most {README_MAX_LINES}')


# How the official release (microsoft/Cream, EfficientViT/README.md and
# classification/model/build.py) spells the repository of its weights.
OFFICIAL_ZOO = 'xinyuliu-jeffrey/EfficientViT_Model_Zoo'
SOURCES = ('README.md', 'docs', 'configs', 'evit_mm', 'tools', 'demo', 'tests',
           '.dev_scripts', 'model-index.yml')


def repository_texts() -> Dict[str, str]:
    """Path -> text of the project's sources, configs and pages."""
    texts = {}
    for source in SOURCES:
        path = osp.join(REPO, source)
        files = [path] if osp.isfile(path) else glob.glob(
            osp.join(path, '**', '*.*'), recursive=True)
        for name in files:
            if name.endswith(('.py', '.md', '.yml', '.sh')):
                with open(name, encoding='utf-8') as f:
                    texts[osp.relpath(name, REPO)] = f.read()
    return texts


def test_tests_do_not_speak_of_the_project_process():
    """The tests' names and docstrings explain behaviour to whoever reads
    them: no process words there either (test_docs.py, which holds the
    pattern's own examples, aside)."""
    found = [
        f'{path}: {match.group(0)!r}'
        for path, text in repository_texts().items()
        if path.startswith('tests')
        and path != osp.join('tests', 'test_docs.py')
        for match in PROCESS_TEXT.finditer(text)
    ]
    assert not found, found


def test_weights_repository_spelled_as_the_official_release():
    zoo = re.compile(r'xinyuliu-jeffrey/\w+_Model_Zoo', re.IGNORECASE)
    found = {(path, match) for path, text in repository_texts().items()
             for match in zoo.findall(text) if match != OFFICIAL_ZOO}
    assert not found, f'spelled otherwise than {OFFICIAL_ZOO}: {sorted(found)}'


def test_quickstart_checkpoint_paths_are_where_the_quickstart_writes():
    """Commands that use the quickstart detector's checkpoint name the work
    dir tools/quickstart.sh trains into."""
    with open(osp.join(REPO, 'tools', 'quickstart.sh')) as f:
        work_dir = re.search(r'WORK_DIR=\$\{WORK_DIR:-([^}]+)\}',
                             f.read()).group(1)
    config = 'configs/quickstart/retinanet_efficientvit-m0_synthetic.py'
    wrong = []
    for path, text in repository_texts().items():
        lines = text.splitlines()
        for number, line in enumerate(lines):
            if config not in line or '--work-dir' in line:
                continue
            command = ' '.join(lines[number:number + 3])
            for used in re.findall(r'(work_dirs/[\w.-]+)/epoch_\d+\.pth',
                                   command):
                if used != work_dir:
                    wrong.append(f'{path}:{number + 1}: {used}')
    assert not wrong, f'not {work_dir}: {wrong}'


# How the project's own process shows up in text (issue numbers, which
# machine a task was lent): nothing a user of the docs or the tools needs.
PROCESS_TEXT = re.compile(
    r'\bissue ?#?\d+|\blent an? (GPU|machine)|\bthis (session|task)\b',
    re.IGNORECASE)


def test_docs_tools_and_tests_do_not_speak_of_the_project_process():
    found = [
        f'{path}: {match.group(0)!r}'
        for path, text in repository_texts().items()
        for match in PROCESS_TEXT.finditer(text)
    ]
    assert not found, found
