"""Dataset helpers; :mod:`evit_mm.datasets.synthetic` makes the synthetic
shapes dataset of the quickstart and the tests, :mod:`evit_mm.datasets.images`
checks image files, :mod:`evit_mm.datasets.checked` and
:mod:`evit_mm.datasets.image_check_hook` the images of a run's datasets,
:mod:`evit_mm.datasets.validate` a dataset's annotations (importing the
package registers ``CheckedImageDataset``, ``CheckImageFiles`` and
``ImageCheckHook``)."""
from . import checked, image_check_hook  # noqa: F401
