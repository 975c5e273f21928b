"""Imported datasets: a zip or a folder of class sub-folders, checked, stored in registry/datasets/<id>/ and decoded.

core.catalogue lists imported datasets and reads their manifest without opening an image; this module
writes them (the dataset folder appears atomically, and the same images twice are one dataset) and
decodes their images into arrays, cached in memory and as .npz files beside them.
"""

import hashlib
import io
import json
import os
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
from core.catalogue import FOLDER_PREFIX, MANIFEST_FILE, datasets_dir, folder_path, read_manifest
from core.errors import DatasetError, ImageError
from core.imaging import DISPLAY_SIDE, SUPPORTED_FORMATS, read_image, resize_images

# Limits for imported zips and folders.
MAX_ZIP_BYTES = 500 * 2**20
MAX_UNCOMPRESSED_BYTES = 2**30
MAX_COMPRESSION_RATIO = 100
RATIO_CHECK_MIN_BYTES = 2**20  # smaller entries cannot be harmful bombs (and tiny files compress well)
MAX_FILES = 20_000
MAX_NATIVE_SIDE = 256  # larger or mixed-size images load at DEFAULT_FOLDER_IMAGE_SIZE unless asked otherwise
DEFAULT_FOLDER_IMAGE_SIZE = 128
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
FOLDER_IMAGE_FORMATS = (*SUPPORTED_FORMATS, "TIFF")  # a user's own files: TIFF too, unlike uploads


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
# Importing


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


# ---------------------------------------------------------------------------------------------
# Decoding


def folder_images(name, height, width, channels):
    """(images, labels) of an imported dataset, every image at height x width x channels; read-only, cached."""
    return _decode_folder(str(folder_path(name)), height, width, channels)


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
    return array if array.shape[:2] == (height, width) else resize_images(array[None], height, width)[0]
