"""Datasets: loading the catalogue's datasets (Fashion-MNIST, MNIST, CIFAR-10, shapes), and importing folder/zip ones.

Images are uint8 NHWC arrays with a channel axis; labels are int64 class indices. Splits use a
constant seed, so the test split of a dataset is the same for every training configuration.
"""

import gzip
import hashlib
import io
import json
import os
import pickle
import shutil
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path, PurePosixPath

import numpy as np

from core.archives import check_zip_entries
from core.catalogue import (CATALOGUE, CLASS_NAMES, DATA_SEED, FASHION_FILES, FOLDER_PREFIX, MANIFEST_FILE,
                            TEST_FRACTION, can_download, catalogue_source, check_name, datasets_dir, download_host,
                            folder_path, folder_source, how_to_get, keras_datasets_dir, locate, read_manifest)
from core.config import CHANNELS_BY_COLOR_MODE
from core.errors import DatasetError, DatasetUnavailableError, ImageError
from core.imaging import DISPLAY_SIDE, SUPPORTED_FORMATS, read_image

SHAPES_PER_CLASS = 1200

# Limits for imported zips and folders, and for decoded arrays.
MAX_ZIP_BYTES = 500 * 2**20
MAX_UNCOMPRESSED_BYTES = 2**30
MAX_COMPRESSION_RATIO = 100
RATIO_CHECK_MIN_BYTES = 2**20  # smaller entries cannot be harmful bombs (and tiny files compress well)
MAX_FILES = 20_000
MAX_ARRAY_BYTES = 4 * 2**30
MAX_NATIVE_SIDE = 256  # larger or mixed-size images load at DEFAULT_FOLDER_IMAGE_SIZE unless asked otherwise
DEFAULT_FOLDER_IMAGE_SIZE = 128
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
FOLDER_IMAGE_FORMATS = (*SUPPORTED_FORMATS, "TIFF")  # a user's own files: TIFF too, unlike uploads


@dataclass
class Dataset:
    """Train, validation and test arrays of one dataset, ready for `model.fit`."""

    name: str
    class_names: list[str]
    source: str
    fingerprint: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def is_binary(self) -> bool:
        return self.num_classes == 2


@dataclass
class FolderImportReport:
    """What an import found: classes, counts, skipped files and plain-language notes."""

    name: str
    title: str
    class_names: list[str]
    counts: dict[str, int]
    skipped: list[tuple[str, str]]  # (file, reason)
    image_sizes: dict[str, tuple[int, int]]  # "min", "max", "median" -> (width, height)
    is_binary: bool
    notes: list[str]


# ---------------------------------------------------------------------------------------------
# Loading


def load_dataset(name, *, train_subset=None, image_size=None, color_mode=None, validation_fraction=0.1) -> Dataset:
    """Load a dataset with fixed, stratified splits, resized and converted as asked."""
    check_name(name)
    _check_options(train_subset, image_size, color_mode, validation_fraction)
    if name.startswith(FOLDER_PREFIX):
        x_rest, y_rest, x_test, y_test, class_names, source = _folder_arrays(name, image_size, color_mode)
    elif name == "shapes":
        x_rest, y_rest, x_test, y_test = _split_off_test(*_generate_shapes())
        class_names, source = CLASS_NAMES[name], catalogue_source(name)[0]
    else:
        (x_rest, y_rest, x_test, y_test), source = _catalogue_arrays(name)
        class_names = CLASS_NAMES[name]

    # Validation comes out of the training part; the subset is drawn from what is left.
    val, train = _stratified_split(y_rest, round(validation_fraction * len(y_rest)), DATA_SEED)
    if train_subset is not None and train_subset < len(train):
        train = train[_stratified_split(y_rest[train], train_subset, DATA_SEED)[0]]
    height, width = (image_size, image_size) if image_size else x_rest.shape[1:3]
    channels = CHANNELS_BY_COLOR_MODE.get(color_mode, x_rest.shape[-1])
    _check_array_bytes(name, len(train) + len(val) + len(y_test), height, width, channels)

    x_train, x_val, x_test = (_prepare(x, image_size, color_mode) for x in (x_rest[train], x_rest[val], x_test))
    arrays = [x_train, y_rest[train], x_val, y_rest[val], x_test, np.array(y_test)]
    return Dataset(name, list(class_names), source, _fingerprint(arrays), *arrays)


def sample_by_class(dataset: Dataset, per_class: int, split: str = "train") -> dict[str, np.ndarray]:
    """The first `per_class` images of each class in one split, for a lesson's image grid."""
    if split not in ("train", "val", "test"):
        raise DatasetError(f"split must be 'train', 'val' or 'test'. Received: split={split!r}")
    images, labels = getattr(dataset, f"x_{split}"), getattr(dataset, f"y_{split}")
    return {name: images[np.flatnonzero(labels == index)[:per_class]] for index, name in enumerate(dataset.class_names)}


def class_counts(labels, num_classes) -> np.ndarray:
    """How many labels fall in each class 0..num_classes-1."""
    return np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)


def _check_options(train_subset, image_size, color_mode, validation_fraction):
    def whole(value):
        return isinstance(value, int) and not isinstance(value, bool)

    if train_subset is not None and not (whole(train_subset) and train_subset >= 1):
        raise DatasetError(f"train_subset must be a positive whole number or None. Received: train_subset={train_subset!r}")
    if image_size is not None and not (whole(image_size) and 8 <= image_size <= 512):
        raise DatasetError("image_size must be a whole number from 8 to 512, or None for the native size. "
                           f"Received: image_size={image_size!r}")
    if color_mode not in (None, "grayscale", "rgb"):
        raise DatasetError(f"color_mode must be 'grayscale', 'rgb' or None. Received: color_mode={color_mode!r}")
    number = isinstance(validation_fraction, (int, float)) and not isinstance(validation_fraction, bool)
    if not (number and 0 <= validation_fraction <= 0.5):
        raise DatasetError(f"validation_fraction must be from 0 to 0.5. Received: validation_fraction={validation_fraction!r}")


def _check_array_bytes(name, count, height, width, channels):
    if count * height * width * channels > MAX_ARRAY_BYTES:
        raise DatasetError(f"{count:,} images of {height}x{width}x{channels} need more than {MAX_ARRAY_BYTES / 2**30:.0f} "
                           f"GiB of memory. Choose a smaller image_size or a train_subset. Received: name={name!r}, "
                           f"image_size={height}")


def _split_off_test(images, labels):
    """(x_rest, y_rest, x_test, y_test) with a stratified TEST_FRACTION test split."""
    test, rest = _stratified_split(labels, round(TEST_FRACTION * len(labels)), DATA_SEED)
    return images[rest], labels[rest], images[test], labels[test]


def _stratified_split(labels, count, seed):
    """Pick `count` indices with every class in proportion; returns (picked, rest), each shuffled."""
    rng = np.random.default_rng(seed)
    classes, sizes = np.unique(labels, return_counts=True)
    exact = sizes * count / max(len(labels), 1)
    quotas = np.floor(exact).astype(int)
    quotas[np.argsort(quotas - exact, kind="stable")[: count - quotas.sum()]] += 1  # largest remainders
    picked, rest = [np.empty(0, np.int64)], [np.empty(0, np.int64)]
    for label, quota in zip(classes, quotas):
        members = rng.permutation(np.flatnonzero(labels == label))
        picked.append(members[:quota])
        rest.append(members[quota:])
    return rng.permutation(np.concatenate(picked)), rng.permutation(np.concatenate(rest))


def _prepare(images, image_size, color_mode):
    """Convert to the colour mode and resize to image_size x image_size (a fresh, writable array)."""
    import cv2  # here, not at the top: the home page lists datasets and must not wait for OpenCV

    count, height, width, channels = images.shape
    if color_mode == "grayscale" and channels == 3:
        rows = np.ascontiguousarray(images).reshape(count * height, width, 3)
        images = cv2.cvtColor(rows, cv2.COLOR_RGB2GRAY).reshape(count, height, width, 1) if count else images[..., :1]
    if image_size and (height, width) != (image_size, image_size):
        images = _resize(images, image_size, image_size)
    if color_mode == "rgb" and channels == 1:
        images = np.repeat(images, 3, axis=-1)
    images = np.ascontiguousarray(images)
    return images if images.flags.writeable else images.copy()  # never hand out a cached array


def _resize(images, height, width):
    """Resize (N, H, W, C) images with cv2: INTER_AREA to shrink, INTER_LINEAR to enlarge."""
    import cv2

    count, old_height, old_width, channels = images.shape
    interpolation = cv2.INTER_AREA if height * width < old_height * old_width else cv2.INTER_LINEAR
    resized = np.empty((count, height, width, channels), np.uint8)
    for index, image in enumerate(images):  # cv2.resize takes at most 4 channels, so one image per call
        resized[index] = cv2.resize(image, (width, height), interpolation=interpolation).reshape(height, width, channels)
    return resized


def _fingerprint(arrays):
    """The first 16 hex digits of the SHA-256 of the arrays, their shapes and dtypes."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# Catalogue files, from the first place core.catalogue finds them, else a download


def _catalogue_arrays(name):
    """((x_train, y_train, x_test, y_test), source) from the first place that has the files."""
    found = locate(name)
    if found:
        return _read_files(name, str(found[1])), found[0]
    return _download(name), f"downloaded by keras.datasets.{name}.load_data() into {keras_datasets_dir()}"


@lru_cache(maxsize=8)
def _read_files(name, path):
    """Decode the raw arrays of a local copy; cached, so the next load is instant."""
    try:
        if name == "fashion_mnist":
            return _standardize(*[_read_idx(Path(path) / file) for file in FASHION_FILES])
        if name == "mnist":
            with np.load(path, allow_pickle=False) as arrays:
                return _standardize(*[arrays[key] for key in ("x_train", "y_train", "x_test", "y_test")])
        batches = [_read_cifar_batch(Path(path) / f"data_batch_{index}") for index in range(1, 6)]
        x_train, y_train = (np.concatenate(parts) for parts in zip(*batches))
        return _standardize(x_train, y_train, *_read_cifar_batch(Path(path) / "test_batch"))
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError) as error:
        raise DatasetUnavailableError(f"The {CATALOGUE[name][0]} files in {path} are damaged ({error}). Delete them and "
                                      f"copy them again, or let keras download a fresh copy. Received: name={name!r}") from error


def _read_idx(path):
    """Parse a gzipped IDX file, the format of the original MNIST and Fashion-MNIST files."""
    with gzip.open(path, "rb") as file:
        data = file.read()
    if data[:3] != b"\0\0\x08":
        raise ValueError(f"{path.name} is not an IDX file of uint8 values")
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * axis : 8 + 4 * axis], "big") for axis in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Reads the CIFAR-10 pickles but refuses anything other than numpy arrays (no code runs)."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy._core.multiarray", "_reconstruct")}

    def find_class(self, module, name):
        module = module.replace("numpy.core", "numpy._core")
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a dataset file")
        return super().find_class(module, name)


def _read_cifar_batch(path):
    with open(path, "rb") as file:
        batch = _ArraysOnlyUnpickler(file, encoding="bytes").load()
    images = np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, np.asarray(batch[b"labels"])


def _standardize(x_train, y_train, x_test, y_test):
    """uint8 NHWC images and int64 labels, read-only so that the cached copy cannot change."""
    arrays = [np.asarray(x_train, np.uint8), np.asarray(y_train, np.int64).ravel(),
              np.asarray(x_test, np.uint8), np.asarray(y_test, np.int64).ravel()]
    arrays = [array[..., None] if array.ndim == 3 else array for array in arrays]
    for array in arrays:
        array.flags.writeable = False
    return tuple(arrays)


@lru_cache(maxsize=None)
def _download(name):
    """Download with keras.datasets, which keeps a copy in ~/.keras/datasets for next time."""
    if not can_download(name):
        raise DatasetUnavailableError(how_to_get(name, f"{download_host(name)} cannot be reached"))
    from tensorflow import keras

    try:
        (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, name).load_data()
    except Exception as error:  # whatever went wrong, the dataset is not available
        raise DatasetUnavailableError(how_to_get(name, f"the download failed: {error}")) from error
    return _standardize(x_train, y_train, x_test, y_test)


# ---------------------------------------------------------------------------------------------
# Shapes: a generated dataset that needs no files


SHAPE_OUTLINES = {  # unit polygons; each image scales, rotates and moves one
    "square": np.array([(1, 1), (1, -1), (-1, -1), (-1, 1)]) / np.sqrt(2),
    "triangle": np.array([(np.cos(a), np.sin(a)) for a in np.radians([90, 210, 330])]),
    "star": np.array([(r * np.cos(a), r * np.sin(a)) for r, a in zip([1, 0.45] * 5, np.radians(np.arange(90, 450, 36)))]),
    "cross": np.array([(0.3, 1), (0.3, 0.3), (1, 0.3), (1, -0.3), (0.3, -0.3), (0.3, -1),
                       (-0.3, -1), (-0.3, -0.3), (-1, -0.3), (-1, 0.3), (-0.3, 0.3), (-0.3, 1)]),
}


@lru_cache(maxsize=1)
def _generate_shapes():
    """SHAPES_PER_CLASS images of each shape, always the same ones (a constant seed)."""
    rng = np.random.default_rng(DATA_SEED)
    kinds = CLASS_NAMES["shapes"]
    labels = np.arange(SHAPES_PER_CLASS * len(kinds)) % len(kinds)
    images = np.stack([_draw_shape(kinds[label], rng) for label in labels])
    images.flags.writeable = False
    return images, labels.astype(np.int64)


def _draw_shape(kind, rng, size=64):
    """One shape, filled or outlined, at a random place, size, angle and colour, on a noisy background."""
    import cv2

    background = rng.integers(0, 256, 3)
    colour = tuple(int(c) for c in (background + rng.integers(80, 176, 3)) % 256)  # far from the background
    canvas = np.empty((size, size, 3), np.uint8)
    canvas[:] = background
    radius = rng.uniform(0.15, 0.4) * size
    centre = rng.uniform(radius + 2, size - radius - 2, 2)
    thickness = -1 if rng.random() < 0.5 else int(rng.integers(2, 4))  # -1 fills the shape
    if kind == "circle":
        cv2.circle(canvas, tuple(int(v) for v in centre), int(radius), colour, thickness, cv2.LINE_AA)
    else:
        angle = rng.uniform(0, 2 * np.pi)
        rotation = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
        points = np.rint(SHAPE_OUTLINES[kind] @ rotation * radius + centre).astype(np.int32)
        if thickness < 0:
            cv2.fillPoly(canvas, [points], colour, cv2.LINE_AA)
        else:
            cv2.polylines(canvas, [points], True, colour, thickness, cv2.LINE_AA)
    noise = rng.integers(-20, 21, canvas.shape, dtype=np.int16)
    return np.clip(canvas + noise, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Folder and zip datasets


def import_zip(path_or_bytes, title=None) -> FolderImportReport:
    """Import a .zip of class sub-folders, checked for safety first; the same zip twice is one dataset."""
    source, size, default_title = _zip_source(path_or_bytes)
    if size > MAX_ZIP_BYTES:
        raise DatasetError(f"The zip is {size / 2**20:.1f} MiB; the limit is {MAX_ZIP_BYTES / 2**20:.1f} MiB. "
                           f"Use fewer or smaller images. Received: size={size}")
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise DatasetError(f"This is not a readable .zip file ({error}). Expected a .zip of class sub-folders, "
                           "e.g. made with `zip -r dataset.zip cats dogs`.") from error
    with archive:
        infos = archive.infolist()
        check_zip_entries(
            infos, DatasetError, archive_name="the zip", contents="images", max_entries=MAX_FILES,
            max_expanded_bytes=MAX_UNCOMPRESSED_BYTES, max_compression_ratio=MAX_COMPRESSION_RATIO,
            ratio_check_min_bytes=RATIO_CHECK_MIN_BYTES, refuse_unsafe_entries=True,
        )
        files = [(info.filename.replace("\\", "/"), partial(_read_zip_entry, archive, info))
                 for info in infos if not info.is_dir()]
        folders = [info.filename.replace("\\", "/") for info in infos if info.is_dir()]
        return _import_files(files, folders, [], title or default_title)


def import_folder(path, title=None) -> FolderImportReport:
    """Import a folder of class sub-folders; symbolic links are skipped, not followed."""
    root = Path(path)
    if not root.is_dir():
        raise DatasetError(f"No such folder. Expected a folder with one sub-folder per class. Received: path={str(path)!r}")
    files, folders, skipped, total = [], [], [], 0
    for directory, subfolders, filenames in os.walk(root):
        subfolders[:] = [name for name in subfolders if not _is_ignored(name)]
        for name in subfolders + [name for name in filenames if not _is_ignored(name)]:
            full = Path(directory) / name
            relative = full.relative_to(root).as_posix()
            if full.is_symlink():
                skipped.append((relative, "symbolic link, not followed"))
            elif full.is_dir():
                folders.append(relative)
            else:
                files.append((relative, full.read_bytes))
                total += full.stat().st_size
    if len(files) > MAX_FILES or total > MAX_UNCOMPRESSED_BYTES:
        raise DatasetError(f"The folder holds {len(files):,} files, {total / 2**20:.1f} MiB; the limits are "
                           f"{MAX_FILES:,} files and {MAX_UNCOMPRESSED_BYTES / 2**20:.1f} MiB. Received: path={str(path)!r}")
    return _import_files(files, folders, skipped, title or root.name)


def _zip_source(path_or_bytes):
    """(what zipfile opens, its size in bytes, a default title) for bytes, a path or an uploaded file."""
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        return io.BytesIO(path_or_bytes), len(path_or_bytes), None
    if isinstance(path_or_bytes, (str, os.PathLike)):
        if not Path(path_or_bytes).is_file():
            raise DatasetError(f"No such file. Expected the path of a .zip file. Received: path={str(path_or_bytes)!r}")
        return str(path_or_bytes), os.path.getsize(path_or_bytes), Path(path_or_bytes).stem
    size = path_or_bytes.seek(0, io.SEEK_END)  # a file object, such as Streamlit's UploadedFile
    path_or_bytes.seek(0)
    return path_or_bytes, size, Path(getattr(path_or_bytes, "name", "") or "").stem or None


def _read_zip_entry(archive, info):
    """The bytes of one entry, never more than its declared size: a zip that lies about sizes cannot fill memory."""
    try:
        with archive.open(info) as entry:
            return entry.read(info.file_size)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as error:
        raise DatasetError(f"The zip is corrupt: {info.filename!r} cannot be read ({error}). Make the zip again.") from error


def _is_ignored(path):
    """macOS metadata and hidden files or folders are not part of a dataset."""
    return any(part == "__MACOSX" or part.startswith(".") for part in PurePosixPath(path).parts)


def _import_files(files, folders, skipped, title):
    """Check and store the images among (path, read) pairs; the dataset folder appears atomically."""
    files = [(PurePosixPath(path).parts, read) for path, read in files if not _is_ignored(path)]
    folders = [PurePosixPath(path).parts for path in folders if not _is_ignored(path)]
    images_at = [parts for parts, _ in files if PurePosixPath(*parts).suffix.lower() in IMAGE_EXTENSIONS]
    depth = 0  # how many single top-level folders wrap the class folders
    while images_at and all(len(parts) > depth + 2 for parts in images_at) and len({p[depth] for p, _ in files}) == 1:
        depth += 1
    candidates = []  # (class, path below the wrapper, path in the archive, read)
    for parts, read in files:
        path, relative = "/".join(parts), parts[depth:]
        if len(relative) < 2:
            skipped.append((path, "not inside a class folder"))
        elif PurePosixPath(path).suffix.lower() not in IMAGE_EXTENSIONS:
            skipped.append((path, f"not an image file; expected one of {', '.join(IMAGE_EXTENSIONS)}"))
        else:
            candidates.append((relative[0], "/".join(relative), path, read))
    candidates.sort(key=lambda candidate: candidate[:3])
    all_classes = sorted({candidate[0] for candidate in candidates} | {p[depth] for p in folders if len(p) > depth})
    title = title or (files[0][0][depth - 1] if depth else None)  # a wrapping folder names the dataset

    datasets_dir().mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".import-", dir=datasets_dir()))  # same filesystem: atomic os.replace
    try:
        digest, images, sizes, gray = hashlib.sha256(), [], [], True
        for class_name, relative, path, read in candidates:
            data = read()
            try:
                image = _read_folder_image(data, path)
            except ImageError as error:
                skipped.append((path, f"unreadable image: {error}"))
                continue
            stored = f"images/{all_classes.index(class_name):03d}/{len(images):05d}{PurePosixPath(path).suffix.lower()}"
            (staging / stored).parent.mkdir(parents=True, exist_ok=True)
            (staging / stored).write_bytes(data)
            digest.update(f"{class_name}\0{relative}\0{hashlib.sha256(data).hexdigest()}\0".encode())
            images.append((stored, class_name))
            sizes.append(image.size)
            gray = gray and image.mode == "L"
        counts = {name: count for name in all_classes if (count := sum(c == name for _, c in images))}
        if len(counts) < 2:
            found = ", ".join(f"{name}: {count}" for name, count in counts.items()) or "none"
            raise DatasetError(f"A dataset needs at least 2 class folders with readable images; found {len(counts)} "
                               f"({found}). Expected one sub-folder per class, e.g. horses/*.jpg and humans/*.jpg. "
                               f"Skipped {len(skipped)} files. Received: folders={all_classes}")
        manifest = _manifest(digest.hexdigest()[:12], title, counts, images, sizes, gray, skipped, all_classes, depth)
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1))
        return _publish(staging, manifest["id"])
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _manifest(dataset_id, title, counts, images, sizes, gray, skipped, all_classes, depth):
    """manifest.json: classes, counts, stored images, the native shape and the report's notes."""
    class_names = list(counts)
    widths, heights = np.array(sizes).T
    same_size = len(set(sizes)) == 1 and max(sizes[0]) <= MAX_NATIVE_SIDE
    width, height = sizes[0] if same_size else (DEFAULT_FOLDER_IMAGE_SIZE, DEFAULT_FOLDER_IMAGE_SIZE)
    if len(class_names) == 2:
        notes = [f"2 classes, so this is a binary task: the model ends in Dense(1, sigmoid) with binary "
                 f"cross-entropy and outputs the probability of '{class_names[1]}'."]
    else:
        notes = [f"{len(class_names)} classes, so this is a categorical task: the model ends in "
                 f"Dense({len(class_names)}, softmax) with sparse categorical cross-entropy."]
    if depth:
        notes.append("The class folders were inside a single top-level folder, which was unwrapped.")
    notes += [f"Class folder '{name}' has no readable images and was left out." for name in all_classes if name not in counts]
    notes += [f"Class '{name}' has only {count} images; a model needs dozens per class to learn."
              for name, count in counts.items() if count < 10]
    if not same_size:
        notes.append(f"The images differ in size or are large; they load at {width}x{height} unless you pick a size.")
    return {
        "format_version": 1, "id": dataset_id, "title": (title or _default_title(class_names))[:80],
        "class_names": class_names, "counts": counts, "images": images, "skipped": skipped, "notes": notes,
        "image_sizes": {"min": (int(widths.min()), int(heights.min())), "max": (int(widths.max()), int(heights.max())),
                        "median": (int(np.median(widths)), int(np.median(heights)))},
        "image_shape": [int(height), int(width), 1 if gray else 3],
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def _default_title(class_names):
    more = ", ..." if len(class_names) > 4 else ""
    return " vs ".join(class_names) if len(class_names) == 2 else ", ".join(class_names[:4]) + more


def _publish(staging, dataset_id):
    """Move the staging folder into place, unless the same content is there already."""
    try:
        os.replace(staging, datasets_dir() / dataset_id)
        already_imported = False
    except OSError:  # the target exists and is not empty: the same content was imported before
        if not (datasets_dir() / dataset_id / MANIFEST_FILE).is_file():
            raise
        already_imported = True
    manifest = read_manifest(FOLDER_PREFIX + dataset_id)
    report = FolderImportReport(
        name=FOLDER_PREFIX + dataset_id, title=manifest["title"], class_names=manifest["class_names"],
        counts=manifest["counts"], skipped=[tuple(item) for item in manifest["skipped"]],
        image_sizes={key: tuple(value) for key, value in manifest["image_sizes"].items()},
        is_binary=len(manifest["class_names"]) == 2, notes=manifest["notes"],
    )
    if already_imported:
        report.notes.append("This dataset was already imported; the existing copy is used.")
    return report


def _folder_arrays(name, image_size, color_mode):
    """(x_rest, y_rest, x_test, y_test, class_names, source) of an imported dataset."""
    manifest = read_manifest(name)
    channels = CHANNELS_BY_COLOR_MODE.get(color_mode, manifest["image_shape"][2])
    height, width = (image_size, image_size) if image_size else manifest["image_shape"][:2]
    _check_array_bytes(name, sum(manifest["counts"].values()), height, width, channels)
    images, labels = _decode_folder(str(folder_path(name)), height, width, channels)
    return (*_split_off_test(images, labels), manifest["class_names"], folder_source(name))


@lru_cache(maxsize=4)
def _decode_folder(folder, height, width, channels):
    """Every image of a folder dataset at one size; cached in memory and as .npz in its folder."""
    cache = Path(folder) / f"cache_{height}x{width}x{channels}.npz"
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as arrays:
            images, labels = arrays["images"], arrays["labels"]
    else:
        manifest = json.loads((Path(folder) / MANIFEST_FILE).read_text())
        images = np.stack([_decode_image((Path(folder) / stored).read_bytes(), stored, height, width, channels)
                           for stored, _ in manifest["images"]])
        labels = np.array([manifest["class_names"].index(name) for _, name in manifest["images"]], np.int64)
        _save_npz(cache, images=images, labels=labels)
    images.flags.writeable = labels.flags.writeable = False
    return images, labels


def _save_npz(path, **arrays):
    """Write an .npz atomically; a read-only folder only means no cache."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as file:
            np.savez(file, **arrays)
        os.replace(temporary, path)
    except OSError:
        temporary.unlink(missing_ok=True)


def _read_folder_image(data, name, draft_side=DISPLAY_SIDE):
    """One image file as an upright L or RGB PIL image, or ImageError.

    Decoding is imaging.read_image's: header checks before any pixel is decoded, 16-bit scaled,
    transparent parts filled with white; TIFF is accepted too.
    """
    return read_image(data, name, formats=FOLDER_IMAGE_FORMATS, draft_side=draft_side)


def _decode_image(data, name, height, width, channels):
    """One stored image as a (height, width, channels) uint8 array."""
    image = _read_folder_image(data, name, draft_side=max(height, width))
    array = np.asarray(image.convert("L" if channels == 1 else "RGB")).reshape(image.height, image.width, channels)
    return array if array.shape[:2] == (height, width) else _resize(array[None], height, width)[0]
