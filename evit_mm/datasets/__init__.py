"""Dataset helpers; :mod:`evit_mm.datasets.synthetic` makes the synthetic
shapes dataset of the quickstart and the tests."""
