"""A folder of bad, unusual and hostile image files, written by the tests
(PIL, OpenCV, numpy; no binary blobs in the repository).

:func:`write_corpus` returns what each file is expected to give: the size a
photo viewer shows for the files that must be predicted, the reason for the
files that must be skipped.
"""
import io
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

import cv2
import numpy as np
from PIL import Image

EXIF_ORIENTATION = 0x0112


@dataclass
class Case:
    """One file of the corpus: ``size`` ``(width, height)`` as displayed for
    a file that must be predicted, ``reason`` (a fragment of the skip
    message) for one that must be skipped."""
    size: Optional[Tuple[int, int]] = None
    reason: Optional[str] = None


def scene(width: int, height: int, seed: int = 0) -> np.ndarray:
    """An RGB ``uint8`` image with structure (gradient, noise, a disc), so
    orientation and colour mistakes change it."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    image = np.stack([x * 255 // max(width - 1, 1),
                      y * 255 // max(height - 1, 1),
                      np.full_like(x, 90)], axis=-1).astype(np.float64)
    image += rng.normal(0, 10, image.shape)
    image[(x - width / 3) ** 2 + (y - height / 3) ** 2 <
          (min(width, height) / 5) ** 2] = (250, 30, 30)
    return np.clip(image, 0, 255).astype(np.uint8)


def jpeg_bytes(rgb: np.ndarray, **save_args) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, 'JPEG', quality=95, **save_args)
    return buffer.getvalue()


def bomb_png(width: int, height: int) -> bytes:
    """A valid PNG header declaring ``width`` x ``height`` 8-bit grey
    pixels, with a few hundred bytes of compressed data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack('>I', len(data)) + body + struct.pack(
            '>I', zlib.crc32(body) & 0xffffffff)

    header = struct.pack('>IIBBBBB', width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b'\x00' * (width + 1) * 4, 9)
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header) +
            chunk(b'IDAT', rows) + chunk(b'IEND', b''))


def exif_rotated_jpeg(rgb: np.ndarray, orientation: int = 6) -> bytes:
    """``rgb`` stored as is, tagged to be shown rotated (6: 90 degrees
    clockwise, so the viewer shows it ``height`` wide)."""
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    return jpeg_bytes(rgb, exif=exif.tobytes())


def write_corpus(folder: Path) -> Dict[str, Case]:
    """Write the corpus into ``folder`` (created); returns each file's name
    and its :class:`Case`. Files without an image extension (``notes.txt``)
    are not listed: the demos ignore them by name."""
    folder.mkdir(parents=True, exist_ok=True)
    cases: Dict[str, Case] = {}

    def put(name: str, data: bytes, case: Case) -> None:
        (folder / name).write_bytes(data)
        cases[name] = case

    photo = scene(64, 48)
    put('photo.jpg', jpeg_bytes(photo), Case(size=(64, 48)))
    put('naïve café photo.jpg', jpeg_bytes(scene(50, 40, 1)),
        Case(size=(50, 40)))
    os.symlink('photo.jpg', folder / 'link to photo.jpg')
    cases['link to photo.jpg'] = Case(size=(64, 48))
    for name, image in [
            ('gray.png', Image.fromarray(scene(40, 30)[..., 0])),
            ('rgba.png', Image.fromarray(np.dstack(
                [scene(40, 30), np.full((30, 40), 255, np.uint8)]))),
            ('palette.png', Image.fromarray(scene(40, 30)).quantize(16)),
            ('tiny 1x1.png', Image.fromarray(scene(1, 1))),
            ('three by two.png', Image.fromarray(scene(3, 2))),
    ]:
        buffer = io.BytesIO()
        image.save(buffer, 'PNG')
        put(name, buffer.getvalue(), Case(size=image.size))
    deep = scene(40, 30)[..., ::-1].astype(np.uint16) * 257
    put('deep16.png', cv2.imencode('.png', deep)[1].tobytes(),
        Case(size=(40, 30)))
    buffer = io.BytesIO()
    Image.fromarray(scene(40, 30)).convert('CMYK').save(buffer, 'JPEG',
                                                        quality=95)
    put('cmyk.jpg', buffer.getvalue(), Case(size=(40, 30)))
    put('exif rotated.jpg', exif_rotated_jpeg(scene(60, 40)),
        Case(size=(40, 60)))
    put('wide.jpg', jpeg_bytes(scene(4000, 32)), Case(size=(4000, 32)))

    whole = jpeg_bytes(photo)
    put('truncated.jpg', whole[:len(whole) // 2], Case(reason='truncated'))
    put('empty.jpg', b'', Case(reason='empty file'))
    put('text.jpg', b'this is a text file, not a picture\n',
        Case(reason='not an image'))
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, 'ICO')
    put('icon.png', buffer.getvalue(), Case(reason='ICO'))
    put('bomb.png', bomb_png(100000, 100000),
        Case(reason='over the limit'))
    os.symlink('missing.jpg', folder / 'dangling link.jpg')
    cases['dangling link.jpg'] = Case(reason='no such file')
    (folder / 'notes.txt').write_text('not an image, ignored by name\n')
    return cases
