"""Imported datasets as arrays: every photo prepared once by `imaging.photo_to_input`, kept as uint8 on disk.

The photos of a dataset are decoded at one input shape into `decoded/<H>x<W>x<C>-<method>-<order>.npy`
beside them, written in the order of the splits (train, then validation, then test), and opened as a
read-only memory map: each split is a slice of one file, so loading a dataset copies nothing, the
operating system keeps in memory only what training reads, and the next training at that size starts at
once. Rock-paper-scissors at 150x150 is 2,520 x 67,500 bytes = 170 MB as uint8, against 680 MB as float32.
"""

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from core.catalogue import DECODED_FOLDER, folder_path
from core.errors import DatasetError, ImageError
from core.folders import FOLDER_IMAGE_FORMATS, image_entries
from core.imaging import PREPROCESSING, photo_to_input

DECODE_CHUNK = 64  # photos handed to the decoding threads at a time, so memory holds at most this many decoded


def decoded_images(root, name, height, width, channels, order, on_progress=None) -> np.ndarray:
    """The photos of dataset `name` at indices `order`, each (height, width, channels) uint8: a read-only memory map.

    Decoded once per shape and order, then read from disk; `on_progress(done, total)` is called while decoding.
    """
    order = np.asarray(order, np.int64)
    tag = hashlib.sha256(order.tobytes()).hexdigest()[:12]
    path = folder_path(root, name) / DECODED_FOLDER / f"{height}x{width}x{channels}-{PREPROCESSING}-{tag}.npy"
    shape = (len(order), height, width, channels)
    images = _open_decoded(path, shape)
    if images is None:
        entries = image_entries(root, name)
        try:
            _decode_to_file([entries[index][0] for index in order], path, shape, on_progress)
            images = _open_decoded(path, shape)
        except OSError:  # a read-only dataset folder, or a full disk: decode into memory instead
            images = _decode_into(np.empty(shape, np.uint8), [entries[index][0] for index in order], on_progress)
            images.flags.writeable = False
    return images


def _open_decoded(path: Path, shape):
    """The decoded file as a read-only memory map, or None when it is missing or not what is expected."""
    try:
        images = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return None
    return images if images.shape == shape and images.dtype == np.uint8 else None


def _decode_to_file(files, path: Path, shape, on_progress):
    """Decode `files` into a new .npy at `path`, written beside it and moved into place when complete."""
    path.parent.mkdir(exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        images = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.uint8, shape=shape)
        _decode_into(images, files, on_progress)
        images.flush()
        del images
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _decode_into(images: np.ndarray, files, on_progress):
    """Fill `images` with the model inputs of `files`, a chunk at a time on a few threads (Pillow decodes without the GIL)."""
    input_shape = images.shape[1:]

    def prepare(file: Path) -> np.ndarray:
        try:
            prepared, _ = photo_to_input(file.read_bytes(), file.name, input_shape, method=PREPROCESSING, invert=False,
                                         formats=FOLDER_IMAGE_FORMATS)
        except (OSError, ImageError) as error:
            raise DatasetError(f"The stored photo {file} cannot be read any more ({error}). Delete the folder "
                               f"{file.parent.parent.parent} and import the dataset again.") from error
        return prepared.array

    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        for start in range(0, len(files), DECODE_CHUNK):
            chunk = files[start:start + DECODE_CHUNK]
            for offset, array in enumerate(pool.map(prepare, chunk)):
                images[start + offset] = array
            if on_progress:
                on_progress(start + len(chunk), len(files))
    return images
