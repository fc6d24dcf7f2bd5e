"""Visualizers; they register (in mmengine's root ``VISUALIZERS``) only
where their toolbox is installed."""
import importlib.util
import warnings

if importlib.util.find_spec('mmdet') is not None:
    try:
        from .det_visualizer import ReadableDetVisualizer  # noqa: F401
    except ImportError as err:
        warnings.warn(f'mmdet is installed but cannot be imported ({err}); '
                      'ReadableDetVisualizer is not registered.')
