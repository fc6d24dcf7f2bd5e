"""evit_mm: EfficientViT (MSRA, CVPR 2023) for mmdet, mmseg and mmpretrain."""
import os.path as osp

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


EXTRAS = {name: read_requirements(name) for name in ('det', 'seg', 'cls')}
EXTRAS['all'] = sorted({req for reqs in EXTRAS.values() for req in reqs})
EXTRAS['tests'] = read_requirements('tests')

setup(
    name='evit_mm',
    version=read_version(),
    description='EfficientViT (MSRA) backbones, necks and heads for '
    'OpenMMLab 2.0: mmdet, mmseg and mmpretrain',
    long_description=open(osp.join(HERE, 'README.md')).read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['evit_mm', 'evit_mm.*']),
    python_requires='>=3.10',
    install_requires=read_requirements('runtime'),
    extras_require=EXTRAS,
    license='Apache-2.0',
    zip_safe=False,
)
