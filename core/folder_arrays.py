"""Imported datasets as arrays: every photo prepared once by `imaging.photo_to_input`, kept as uint8 on disk.

The photos of a dataset are decoded at one input shape into `decoded/<H>x<W>x<C>-<method>-<order>.npy`
beside them, written in the order of the splits (train, then validation, then test), and opened as a
read-only memory map: each split is a slice of one file, so loading a dataset copies nothing, the
operating system keeps in memory only what training reads, and the next training at that size starts at
once. Rock-paper-scissors at 150x150 is 2,520 x 67,500 bytes = 170 MB as uint8, against 680 MB as float32.

An import decodes each photo once: while checking it, core.folders also prepares it at IMPORT_SIDES in colour
(`ImportArrays`), in stored order, so the first training at those sizes decodes nothing; another order is a copy
of those rows.
"""

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from core.catalogue import DECODED_FOLDER, folder_path
from core.errors import DatasetError, ImageError
from core.folders import FOLDER_IMAGE_FORMATS, image_entries
from core.imaging import PREPROCESSING, photo_to_input, prepare_image

DECODE_CHUNK = 64  # photos handed to the decoding threads at a time, so memory holds at most this many decoded
COPY_CHUNK = 256  # rows copied at a time from the stored-order file into another order
# Prepared while importing, in colour: the Your-own-images page's default size and the course's 150 px recipes.
IMPORT_SIDES = (64, 150)
IMPORT_CHANNELS = 3


def decoded_images(root, name, height, width, channels, order, on_progress=None) -> np.ndarray:
    """The photos of dataset `name` at indices `order`, each (height, width, channels) uint8: a read-only memory map.

    Decoded once per shape and order, then read from disk; `on_progress(done, total)` is called while decoding.
    """
    order = np.asarray(order, np.int64)
    folder = folder_path(root, name)
    path = _decoded_path(folder, height, width, channels, order)
    shape = (len(order), height, width, channels)
    images = _open_decoded(path, shape)
    if images is None:
        entries = image_entries(root, name)
        stored_order = np.arange(len(entries), dtype=np.int64)
        stored = _open_decoded(_decoded_path(folder, height, width, channels, stored_order), (len(entries), *shape[1:]))
        try:
            if stored is not None:  # prepared while importing: reorder the rows, decode nothing
                _write_file(path, shape, lambda images: _copy_rows(stored, order, images, on_progress))
            else:
                _write_file(path, shape, lambda images: _decode_into(images, [entries[index][0] for index in order],
                                                                     on_progress))
            images = _open_decoded(path, shape)
        except OSError:  # a read-only dataset folder, or a full disk: decode (or reorder) into memory instead
            images = stored[order] if stored is not None else _decode_into(
                np.empty(shape, np.uint8), [entries[index][0] for index in order], on_progress)
            images.flags.writeable = False
    return images


def _decoded_path(folder: Path, height, width, channels, order: np.ndarray) -> Path:
    """Where the photos at indices `order` (int64) are kept decoded at one shape."""
    tag = hashlib.sha256(order.tobytes()).hexdigest()[:12]
    return folder / DECODED_FOLDER / f"{height}x{width}x{channels}-{PREPROCESSING}-{tag}.npy"


def _open_decoded(path: Path, shape):
    """The decoded file as a read-only memory map, or None when it is missing or not what is expected."""
    try:
        images = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return None
    return images if images.shape == shape and images.dtype == np.uint8 else None


def _write_file(path: Path, shape, fill):
    """A new uint8 .npy of `shape` at `path`, filled by `fill(array)` beside it and moved into place when complete."""
    path.parent.mkdir(exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        images = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.uint8, shape=shape)
        fill(images)
        images.flush()
        del images
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _copy_rows(source: np.ndarray, order: np.ndarray, images: np.ndarray, on_progress):
    """Fill `images` with the rows `order` of `source`, a chunk at a time (bounded memory)."""
    for start in range(0, len(order), COPY_CHUNK):
        images[start:start + COPY_CHUNK] = source[order[start:start + COPY_CHUNK]]
    if on_progress:
        on_progress(len(order), len(order))


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


def import_inputs(image) -> list[np.ndarray]:
    """The model inputs of one checked, upright photo at each of IMPORT_SIDES, exactly as `photo_to_input` makes them."""
    return [prepare_image(image, (side, side, IMPORT_CHANNELS), invert=False, method=PREPROCESSING).array
            for side in IMPORT_SIDES]


class ImportArrays:
    """The decoded files an import writes into its dataset folder: one row per stored photo, at each of IMPORT_SIDES."""

    def __init__(self, folder: Path, capacity: int):
        self.folder, self.capacity, self.count = folder, capacity, 0
        (folder / DECODED_FOLDER).mkdir(exist_ok=True)
        self.arrays = [np.lib.format.open_memmap(self._row_file(side), mode="w+", dtype=np.uint8,
                                                 shape=(max(1, capacity), side, side, IMPORT_CHANNELS))
                       for side in IMPORT_SIDES]

    def _row_file(self, side) -> Path:
        return self.folder / DECODED_FOLDER / f".rows-{side}.npy"

    def add(self, inputs: list[np.ndarray]):
        """Keep the inputs (from `import_inputs`) of the next stored photo."""
        for array, prepared in zip(self.arrays, inputs):
            array[self.count] = prepared
        self.count += 1

    def finish(self):
        """Name the files by their shape and stored order, leaving out the rows of photos that were skipped."""
        order = np.arange(self.count, dtype=np.int64)
        for side, array in zip(IMPORT_SIDES, self.arrays):
            path = _decoded_path(self.folder, side, side, IMPORT_CHANNELS, order)
            if self.count == len(array):
                array.flush()
                os.replace(self._row_file(side), path)
            elif self.count:
                _write_file(path, (self.count, *array.shape[1:]),
                            lambda images, array=array: _copy_rows(array, order, images, None))
        self.arrays = []
        for side in IMPORT_SIDES:
            self._row_file(side).unlink(missing_ok=True)
