"""Dataset helpers; :mod:`evit_mm.datasets.synthetic` makes the synthetic
shapes dataset of the quickstart and the tests, :mod:`evit_mm.datasets.images`
checks image files, :mod:`evit_mm.datasets.checked` the images of a run's
datasets (with :class:`evit_mm.hooks.ImageCheckHook`),
:mod:`evit_mm.datasets.validate` a dataset's annotations (importing the
package registers ``CheckedImageDataset`` and ``CheckImageFiles``)."""
from . import checked  # noqa: F401
