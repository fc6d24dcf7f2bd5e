"""evit_mm: EfficientViT (MSRA, CVPR 2023) for mmdet, mmseg and mmpretrain."""
import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_requirements(name: str) -> list:
    """Requirement lines of ``requirements/<name>.txt``."""
    with open(osp.join(HERE, 'requirements', f'{name}.txt')) as f:
        return [
            line.strip() for line in f
            if line.strip() and not line.startswith('#')
        ]


def read_version() -> str:
    scope: dict = {}
    with open(osp.join(HERE, 'evit_mm', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


# What OpenMMLab's `mim` looks for in evit_mm/.mim (e.g. `mim search evit_mm`
# reads model-index.yml there).
MIM_FILES = ('configs', 'demo', 'tools', 'model-index.yml')


def add_mim_extension() -> None:
    """Expose :data:`MIM_FILES` under ``evit_mm/.mim``: copies when building
    a wheel or sdist, links to the checkout otherwise (editable installs)."""
    copy = any(cmd in sys.argv for cmd in ('bdist_wheel', 'sdist'))
    mim_dir = osp.join(HERE, 'evit_mm', '.mim')
    os.makedirs(mim_dir, exist_ok=True)
    for name in MIM_FILES:
        src, dst = osp.join(HERE, name), osp.join(mim_dir, name)
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if not osp.exists(src):
            continue
        if copy and osp.isdir(src):
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns(
                '__pycache__', '*.pyc'))
        elif copy:
            shutil.copyfile(src, dst)
        else:
            os.symlink(osp.relpath(src, mim_dir), dst)


add_mim_extension()

EXTRAS = {name: read_requirements(name) for name in ('det', 'seg', 'cls')}
EXTRAS['all'] = sorted({req for reqs in EXTRAS.values() for req in reqs})
EXTRAS['tests'] = read_requirements('tests')
# mmdeploy==1.3.1 itself goes in with --no-deps (tools/install.sh).
EXTRAS['deploy'] = read_requirements('deploy')

setup(
    name='evit_mm',
    version=read_version(),
    description='EfficientViT (MSRA) backbones, necks and heads for '
    'OpenMMLab 2.0: mmdet, mmseg and mmpretrain',
    long_description=open(osp.join(HERE, 'README.md')).read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['evit_mm', 'evit_mm.*']),
    package_data={'evit_mm': ['.mim/**/*', '.mim/*']},
    python_requires='>=3.10',
    install_requires=read_requirements('runtime'),
    extras_require=EXTRAS,
    license='Apache-2.0',
    zip_safe=False,
)
