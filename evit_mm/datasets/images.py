"""Checking image files before a model sees them.

Every entry point (the demos, ``tools/train.py``, ``tools/test.py``, and
any other front such as a deployment tool, through :func:`scan_images`)
reads images of unknown origin. :func:`check_image` tells
a usable file from one that would stop the run, from the file's header and
one decode, without the toolboxes' decoder: the header gives the format and
the declared size, so a decompression bomb (a small file declaring billions
of pixels) is refused before any pixel memory is allocated, and the decode
finds a truncated or corrupt file that OpenCV would decode silently with
grey rows or fail on with an assertion deep in the pipeline.

Files that pass are read by the pipeline's own decoder (OpenCV through
``mmcv.imfrombytes``), which handles the unusual but valid ones: grey, RGBA
and palette PNGs, 16-bit PNGs (scaled to 8 bits), CMYK JPEGs and EXIF
orientation (turned the way a photo viewer shows it).

The pixel limit is :data:`DEFAULT_MAX_PIXELS` (200 megapixels, 600 MB as an
8-bit BGR array); the environment variable ``EVIT_MM_MAX_IMAGE_PIXELS`` or a
tool's ``--max-pixels`` raises or lowers it.
"""
import contextlib
import logging
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

from mmengine.logging import print_log
from PIL import Image, ImageFile, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 200_000_000
MAX_PIXELS_ENV = 'EVIT_MM_MAX_IMAGE_PIXELS'
# Formats Pillow identifies that OpenCV (the pipelines' decoder) also reads.
SUPPORTED_FORMATS = ('JPEG', 'MPO', 'PNG', 'BMP', 'TIFF', 'WEBP', 'GIF', 'PPM',
                     'JPEG2000')
# The extensions picked from a folder, as mmdet's inferencer picks them.
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif',
                    '.tiff', '.webp')
EXIF_ORIENTATION = 0x0112
_TRANSPOSED = (5, 6, 7, 8)  # orientations a viewer shows rotated by 90
# Exit status of a run that finished but skipped images (2 is argparse's).
EXIT_SKIPPED = 3


class ImageError(ValueError):
    """An image file that cannot be used.

    Args:
        path (str): The file.
        reason (str): Why, in words. Empty when ``path`` is the whole
            message (mmengine's registry re-raises errors with one
            argument).
    """

    def __init__(self, path: str, reason: str = '') -> None:
        super().__init__(f'{path}: {reason}' if reason else path)
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class ImageInfo:
    """A usable image: its file, format and the size it is shown at (EXIF
    orientation applied)."""
    path: str
    format: str
    width: int
    height: int


def max_image_pixels(value: Optional[int] = None) -> int:
    """The pixel limit: ``value`` if given, else ``EVIT_MM_MAX_IMAGE_PIXELS``
    if set, else :data:`DEFAULT_MAX_PIXELS`.

    Raises:
        ValueError: if the limit is not a positive integer.
    """
    source = 'max_pixels'
    if value is None and os.environ.get(MAX_PIXELS_ENV):
        value, source = os.environ[MAX_PIXELS_ENV], MAX_PIXELS_ENV
    if value is None:
        return DEFAULT_MAX_PIXELS
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if limit <= 0:
        raise ValueError(f'{source}={value!r} is not a positive number of '
                         'pixels.')
    return limit


@contextlib.contextmanager
def _strict_pillow() -> Iterator[None]:
    """Pillow without its own bomb check (the limit here replaces it) and
    refusing truncated files, whatever another library set."""
    saved = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
    Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = None, False
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = saved


def _check_file(path: str) -> None:
    if osp.islink(path) and not osp.exists(path):
        raise ImageError(path, 'no such file (a symbolic link to '
                         f'{os.readlink(path)!r}, which does not exist)')
    if not osp.exists(path):
        raise ImageError(path, 'no such file')
    if osp.isdir(path):
        raise ImageError(path, 'is a folder, not an image file')
    if osp.getsize(path) == 0:
        raise ImageError(path, 'empty file (0 bytes)')


def check_image(path: str, max_pixels: Optional[int] = None) -> ImageInfo:
    """Check that ``path`` is an image the pipelines can decode.

    Args:
        path (str): The image file.
        max_pixels (int, optional): Refuse images declaring more pixels
            than this; see :func:`max_image_pixels`.

    Returns:
        ImageInfo: Its format and displayed size.

    Raises:
        ImageError: naming the file and the reason (missing, empty, not an
            image, an unsupported format, over the pixel limit, truncated
            or corrupt).
    """
    limit = max_image_pixels(max_pixels)
    _check_file(path)
    with _strict_pillow():
        try:
            image = Image.open(path)
        except UnidentifiedImageError:
            with open(path, 'rb') as f:
                head = f.read(16)
            raise ImageError(path, 'not an image in a known format (it '
                             f'starts with {head!r})') from None
        except OSError as err:
            raise ImageError(path, f'cannot be read: {err}') from None
        with image:
            width, height = image.size
            if image.format not in SUPPORTED_FORMATS:
                raise ImageError(
                    path, f'{image.format} images are not supported; '
                    f'allowed: {", ".join(SUPPORTED_FORMATS)}')
            if width * height > limit:
                raise ImageError(
                    path, f'declares {width}x{height} = {width * height:,} '
                    f'pixels, over the limit of {limit:,} (a decompression '
                    f'bomb?); to allow it, raise the limit with '
                    f'--max-pixels or {MAX_PIXELS_ENV}')
            orientation = image.getexif().get(EXIF_ORIENTATION, 1)
            if image.format in ('JPEG', 'MPO'):
                # Decoding at 1/8 scale reads the whole stream all the same.
                image.draft(image.mode, (width // 8, height // 8))
            try:
                image.load()
            except (OSError, SyntaxError, ValueError, EOFError) as err:
                raise ImageError(path, f'cannot be decoded: {err}') from None
    if orientation in _TRANSPOSED:
        width, height = height, width
    return ImageInfo(path, image.format, width, height)


def warn(message: str) -> None:
    """One warning line, through mmengine's current logger (the console
    and, in a run, its log file)."""
    print_log(message, logger='current', level=logging.WARNING)


@dataclass
class ImageScan:
    """The outcome of :func:`scan_images`: the usable images, in order, and
    the skipped files with their reasons."""
    images: List[ImageInfo] = field(default_factory=list)
    skipped: List[Tuple[str, str]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0, or :data:`EXIT_SKIPPED` when a file was skipped."""
        return EXIT_SKIPPED if self.skipped else 0

    def summary(self) -> str:
        """One line: how many images were used and skipped."""
        text = f'{len(self.images)} image(s) used, {len(self.skipped)} ' \
            'skipped'
        if self.skipped:
            text += ' (see the warnings above): ' + ', '.join(
                path for path, _ in self.skipped)
        return text


def skip_or_raise(scan: ImageScan, error: ImageError, strict: bool,
                  log: Callable[[str], None] = warn) -> None:
    """Record ``error`` in ``scan`` with one warning line, or raise it when
    ``strict``."""
    if strict:
        raise error
    log(f'Skipped {error.path}: {error.reason}')
    scan.skipped.append((error.path, error.reason))


def _folder_images(folder: str) -> Tuple[List[str], List[str]]:
    """The image files of ``folder`` by extension, in name order, and the
    other (non-hidden) files."""
    images, others = [], []
    for name in sorted(os.listdir(folder)):
        path = osp.join(folder, name)
        if name.startswith('.') or osp.isdir(path):
            continue
        (images if name.lower().endswith(IMAGE_EXTENSIONS) else
         others).append(path)
    return images, others


def scan_images(inputs: Sequence[str],
                max_pixels: Optional[int] = None,
                strict: bool = False,
                log: Callable[[str], None] = warn) -> ImageScan:
    """Check the images named by ``inputs``: files as given, the image
    files of folders (by extension, in name order; symbolic links
    followed). Each unusable file or folder without images is skipped with
    one warning line naming it and the reason.

    Args:
        inputs (Sequence[str]): Image files and folders.
        max_pixels (int, optional): The pixel limit of :func:`check_image`.
        strict (bool): Raise at the first unusable input instead.
        log (Callable): Where the warning lines go; :func:`warn` by default.

    Returns:
        ImageScan: The usable images and the skipped files.

    Raises:
        ImageError: with ``strict``, for the first unusable input; and
            when nothing usable is left.
    """
    scan = ImageScan()
    for entry in inputs:
        if not osp.isdir(entry):
            paths = [entry]
        else:
            paths, others = _folder_images(entry)
            if others:
                log(f'Ignored {len(others)} file(s) of {entry} without an '
                    f'image extension ({", ".join(IMAGE_EXTENSIONS)}): '
                    f'{", ".join(osp.basename(p) for p in others)}')
            if not paths:
                skip_or_raise(scan, ImageError(
                    entry, 'folder without image files (looked for '
                    f'{", ".join(IMAGE_EXTENSIONS)})'), strict, log)
        for path in paths:
            try:
                scan.images.append(check_image(path, max_pixels))
            except ImageError as err:
                skip_or_raise(scan, err, strict, log)
    if not scan.images:
        raise ImageError(', '.join(inputs),
                         f'no usable image ({len(scan.skipped)} skipped)')
    return scan
