"""``.dev_scripts/benchmark_startup.py`` at a tiny size, in a fresh
process as the docs print it: the COCO-format dataset it makes, and both
timings with their ratio."""
import json
import re

import pytest

from tool_helpers import run_script


@pytest.mark.slow
@pytest.mark.runs('.dev_scripts/benchmark_startup.py', '--num-images',
                  '--repeat')
def test_tiny_startup_benchmark(tmp_path):
    data, result = tmp_path / 'data', tmp_path / 'result.json'
    output = run_script(
        '.dev_scripts/benchmark_startup.py', '--num-images', 40,
        '--scenes', 3, '--repeat', 1, '--data', data, '--work-dir',
        tmp_path / 'runs', '--json', result)
    for split, count in (('train', 40), ('val', 2)):
        with open(data / 'annotations' / f'instances_{split}.json') as f:
            coco = json.load(f)
        assert len({image['id'] for image in coco['images']}) == count
        assert sorted(p.name for p in (data / split).iterdir()) == sorted(
            image['file_name'] for image in coco['images'])
        assert {a['image_id'] for a in coco['annotations']} == {
            image['id'] for image in coco['images']}
    timings = json.loads(result.read_text())
    check, plain = (timings['medians'][name]
                    for name in ('image check', '--no-image-check'))
    assert check > 0 and plain > 0
    printed = re.search(r'ratio\s+([\d.]+)', output)
    assert float(printed.group(1)) == pytest.approx(check / plain, abs=1e-3)
