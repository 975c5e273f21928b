"""Imported datasets: a zip or a folder of class sub-folders (or of train/validation/test folders), checked and stored.

The images are stored as they came, in registry/datasets/<id>/images/, beside a manifest.json that names
each one's class and split; the dataset folder appears atomically, and the same images twice are one
dataset. core.catalogue lists and describes imported datasets; core.folder_arrays decodes them. Every
size is checked before anything is read: the zip's own directory (core.archives), then each entry's or
file's declared size against MAX_IMAGE_BYTES, so an import holds at most CHECK_CHUNK_BYTES of image files and
CHECK_THREADS decoded images at a time. (Under 625 lines: both sources, the split layout, the checks of every
entry and of the photos shared between splits, and the search for the same photos imported another way belong
together.)
"""

import collections
import contextlib
import fcntl
import hashlib
import io
import json
import os
import shutil
import stat
import tempfile
import time
import unicodedata
import zipfile
import zlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from core.archives import check_zip_entries
from core.catalogue import COURSE_DATASETS, FOLDER_PREFIX, datasets_dir, folder_path, imported_manifests, read_manifest
from core.errors import DatasetError, ImageError
from core.guide import skipped_summary
from core.imaging import FILE_SIZE_KEY, MAX_UPLOAD_BYTES, SUPPORTED_FORMATS, read_image
from core.manifest import MANIFEST_FILE, Manifest, StoredImage
from core.splits import (SPLITS, TEST, TRAIN, VALIDATION, Layout, check_same_classes, describe_splits, folder_gaps,
                         images_needed, read_layout)

# Limits for imported zips and folders.
MAX_ZIP_BYTES = 500 * 2**20
MAX_UNCOMPRESSED_BYTES = 2**30
MAX_COMPRESSION_RATIO = 100
RATIO_CHECK_MIN_BYTES = 2**20  # smaller entries cannot be harmful bombs (and tiny files compress well)
MAX_FILES = 20_000
MAX_IMAGE_BYTES = MAX_UPLOAD_BYTES  # one photo in a dataset, as on Predict
MAX_NATIVE_SIDE = 256  # larger or mixed-size images load at DEFAULT_FOLDER_IMAGE_SIZE unless asked otherwise
# 64: one of the sizes the import prepares (core.folder_arrays.IMPORT_SIDES), Your own images' default, and small
# enough that the Train page's default CNN stays a classroom-sized network (at 128 px it had 7.4 million weights)
DEFAULT_FOLDER_IMAGE_SIZE = 64
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
FOLDER_IMAGE_FORMATS = (*SUPPORTED_FORMATS, "TIFF")  # a user's own files: TIFF too, unlike uploads
MIN_WEBCAM_CLASSES, MAX_WEBCAM_CLASSES = 2, 5
STAGING_PREFIX, STAGING_LOCK = ".import-", ".import.lock"  # a folder an import is being stored in, and its lock
CHECK_THREADS = min(4, os.cpu_count() or 1)  # images decoded at once while importing
CHECK_CHUNK_BYTES = 16 * 2**20  # image bytes read ahead for them
CHECK_AHEAD = 64  # and at most this many photos (each checked one holds its prepared inputs, 80 KB, until stored)

Progress = Callable[[int, int], None]  # (images checked, images in all)


@dataclass
class FolderImportReport:
    """What an import found: classes, counts per split, skipped files and plain-language notes."""

    name: str
    title: str
    class_names: list[str]
    counts: dict[str, int]
    skipped: list[tuple[str, str]]  # (file, reason)
    image_sizes: dict[str, tuple[int, int]]  # "min", "max", "median" -> (width, height)
    is_binary: bool
    notes: list[str]
    split_counts: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> class -> images given for it
    split_sources: dict[str, str] = field(default_factory=dict)  # split -> where it comes from, in words
    already_imported: bool = False  # the same photos were imported before: that copy is the dataset


@dataclass(frozen=True)
class _Member:
    """One file of a zip or folder: its path inside, its declared size, and how to read it."""

    path: str
    size: int
    read: Callable[[], bytes]


@dataclass
class _Source:
    """The files and folders of one zip or folder, and what was skipped while listing them."""

    members: list[_Member]
    folders: list[str]
    skipped: list[tuple[str, str]]
    title: str | None


# ---------------------------------------------------------------------------------------------
# Importing


def import_zip(source, root, title=None, validation=None, on_progress: Progress | None = None,
               course: str | None = None, validation_title: str | None = None) -> FolderImportReport:
    """Import a .zip (a path, bytes or a file object) of class folders or of train/validation/test folders.

    `validation` (a zip or folder of the same class folders) becomes the validation split, for courses that
    ship their validation photos apart; `validation_title` names it in the report (default: its file name).
    `on_progress(done, total)` is called as the images are checked.
    """
    recognised = course or course_of(source)
    with _open(source) as main, _open(validation) as extra:
        if extra is not None and validation_title:
            extra.title = validation_title
        if recognised and not course and title in (None, main.title):  # the course's zip, imported by hand
            title = COURSE_DATASETS[recognised].title
        return _import(root, main, extra, title, on_progress, recognised)


def delete_dataset(root, name):
    """Move imported dataset `name` into the registry's trash, restorable for a week (core.trash); models trained on
    it stay, and show its photos again once it is restored."""
    from core import trash

    try:
        title = read_manifest(root, name).title
    except DatasetError:
        if not (folder_path(root, name) / MANIFEST_FILE).is_file():
            raise  # imported nowhere
        title = name.removeprefix(FOLDER_PREFIX)  # a damaged manifest: deleting it is the way out
    return trash.move_dataset_to_trash(root, folder_path(root, name), name.removeprefix(FOLDER_PREFIX), title)


def restore_dataset(root, name):
    """Bring deleted dataset `name` (folder:<id>, or the id alone) back from the trash."""
    from core import trash

    dataset_id = name.removeprefix(FOLDER_PREFIX)
    return trash.restore_dataset_from_trash(root, dataset_id, folder_path(root, FOLDER_PREFIX + dataset_id))


def course_of(source) -> str | None:
    """The course dataset whose published training zip `source` (a path) is: the same size, then the same SHA-256
    (cats vs dogs publishes none: its exact size), so a zip downloaded elsewhere and imported by hand counts too."""
    if not isinstance(source, (str, os.PathLike)) or not Path(source).is_file():
        return None
    size = os.path.getsize(source)
    for name, course in COURSE_DATASETS.items():
        if size == course.train.size and (course.train.sha256 is None or sha256_of(source) == course.train.sha256):
            return name
    return None


def sha256_of(path) -> str:
    """The SHA-256 of a file, read a megabyte at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def import_folder(path, root, title=None, validation=None, on_progress: Progress | None = None) -> FolderImportReport:
    """Import a folder laid out like a dataset zip; symbolic links and special files are skipped, not followed."""
    return import_zip(Path(path), root, title=title, validation=validation, on_progress=on_progress)


def add_validation(root, name, validation, on_progress: Progress | None = None,
                   validation_title: str | None = None) -> FolderImportReport:
    """A new dataset: the training photos of imported dataset `name` with `validation` (a zip or folder) as its validation split."""
    manifest = read_manifest(root, name)
    if any(split != TRAIN for split in manifest.splits):
        raise DatasetError(f"{manifest.title!r} has its own validation or test photos already. Import the training "
                           f"photos again together with the new validation zip instead. Received: name={name!r}")
    folder = folder_path(root, name)
    members = [_Member(f"{image.class_name}/{PurePosixPath(image.file).name}", (folder / image.file).stat().st_size,
                       (folder / image.file).read_bytes) for image in manifest.images]
    with _open(validation) as extra:
        extra.title = validation_title or extra.title
        title = f"{manifest.title} + {extra.title or 'validation photos'}"  # the first stays: two names, not one
        return _import(root, _Source(members, [], [], manifest.title), extra, title, on_progress, manifest.course)


def import_images(root, shots: dict[str, list[bytes]], title=None, on_progress: Progress | None = None) -> FolderImportReport:
    """A dataset from photos in memory, {class name: [encoded photo, ...]}, such as webcam shots."""
    names = [unicodedata.normalize("NFC", name.strip()) for name in shots]
    if not MIN_WEBCAM_CLASSES <= len(set(names)) == len(names) <= MAX_WEBCAM_CLASSES or not all(names):
        raise DatasetError(f"Name {MIN_WEBCAM_CLASSES} to {MAX_WEBCAM_CLASSES} classes, each with a different, "
                           f"non-empty name. Received: classes={list(shots)}")
    if any("/" in name or "\\" in name or name.startswith(".") or len(name) > 40 for name in names):
        raise DatasetError("A class name has at most 40 characters, no '/' or '\\', and does not start with '.'. "
                           f"Received: classes={names}")
    members = [_Member(f"{name}/shot-{index:03d}.jpg", len(data), lambda data=data: data)
               for name, photos in zip(names, shots.values()) for index, data in enumerate(photos)]
    return _import(root, _Source(members, names, [], title), None, title, on_progress, None)


@contextlib.contextmanager
def _open(source):
    """The members of a zip (path, bytes or file object) or of a folder, listed with their declared sizes."""
    if source is None:
        yield None
    elif isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
        yield _folder_source(Path(source))
    else:
        with _zip_source(source) as opened:
            yield opened


@contextlib.contextmanager
def _zip_source(source):
    """A zip's entries, its directory checked for bombs, floods and escapes before any entry is read."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        opened, size, title = io.BytesIO(source), len(source), None
    elif isinstance(source, (str, os.PathLike)):
        if not Path(source).is_file():
            raise DatasetError(f"No such file or folder. Expected a .zip file or a folder of class folders. "
                               f"Received: path={str(source)!r}")
        opened, size, title = str(source), os.path.getsize(source), Path(source).stem
    else:  # a file object, such as Streamlit's UploadedFile
        size = source.seek(0, io.SEEK_END)
        source.seek(0)
        opened, title = source, Path(getattr(source, "name", "") or "").stem or None
    if size > MAX_ZIP_BYTES:
        raise DatasetError(f"The zip is {size / 2**20:.1f} MiB; the limit is {MAX_ZIP_BYTES / 2**20:.1f} MiB. "
                           f"Use fewer or smaller images. Received: size={size}")
    named = Path(str(getattr(source, "name", source))).name if title else None  # which of two zips, by name
    try:
        archive = zipfile.ZipFile(opened)
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise DatasetError(f"{named or 'This'} is not a readable .zip file ({error}). Expected a .zip of class "
                           "sub-folders, e.g. made with `zip -r dataset.zip cats dogs`.") from error
    with archive:
        infos = archive.infolist()
        check_zip_entries(
            infos, DatasetError, archive_name="the zip", contents="images", max_entries=MAX_FILES,
            max_expanded_bytes=MAX_UNCOMPRESSED_BYTES, max_compression_ratio=MAX_COMPRESSION_RATIO,
            ratio_check_min_bytes=RATIO_CHECK_MIN_BYTES, refuse_unsafe_entries=True,
        )
        members = [_Member(info.filename.replace("\\", "/"), info.file_size, lambda info=info: _read_entry(archive, info))
                   for info in infos if not info.is_dir()]
        folders = [info.filename.replace("\\", "/").rstrip("/") for info in infos if info.is_dir()]
        if not members:  # "found 0 class folders (none) … Skipped 0 files" said it less plainly
            held = "only empty folders" if folders else "no files"
            raise DatasetError(f"{named or 'This zip'} is empty: it holds {held}. Expected a .zip of class sub-folders of photos, "
                               "e.g. made with `zip -r dataset.zip cats dogs`.")
        yield _Source(members, folders, [], title)


def _read_entry(archive, info):
    """The bytes of one entry, never more than its declared size: a zip that lies about sizes cannot fill memory."""
    try:
        with archive.open(info) as entry:
            return entry.read(info.file_size)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as error:
        raise DatasetError(f"The zip is corrupt: {info.filename!r} cannot be read ({error}). Make the zip again.") from error


def _folder_source(root: Path) -> _Source:
    """A folder's regular files and sub-folders; links, pipes and devices are skipped and listed, never opened."""
    members, folders, skipped, total = [], [], [], 0
    for directory, subfolders, filenames in os.walk(root):
        subfolders[:] = [name for name in subfolders if not _is_ignored(name)]
        for name in subfolders + [name for name in filenames if not _is_ignored(name)]:
            full = Path(directory) / name
            relative = full.relative_to(root).as_posix()
            mode = full.lstat().st_mode
            if stat.S_ISLNK(mode):
                skipped.append((relative, "symbolic link, not followed"))
            elif stat.S_ISDIR(mode):
                folders.append(relative)
            elif not stat.S_ISREG(mode):
                skipped.append((relative, "not a regular file (a pipe, socket or device), not opened"))
            else:
                members.append(_Member(relative, full.stat().st_size, lambda full=full: _read_at_most(full, MAX_IMAGE_BYTES)))
                total += members[-1].size
    if len(members) > MAX_FILES or total > MAX_UNCOMPRESSED_BYTES:
        raise DatasetError(f"The folder holds {len(members):,} files, {total / 2**20:.1f} MiB; the limits are "
                           f"{MAX_FILES:,} files and {MAX_UNCOMPRESSED_BYTES / 2**20:.1f} MiB. Received: path={str(root)!r}")
    return _Source(members, folders, skipped, root.name)


def _read_at_most(path: Path, limit: int) -> bytes:
    """A file's bytes, never more than `limit` + 1 of them (a file that grew since it was listed is cut, then refused)."""
    with open(path, "rb") as file:
        return file.read(limit + 1)


def _is_ignored(path):
    """macOS metadata and hidden files or folders are not part of a dataset."""
    return any(part == "__MACOSX" or part.startswith(".") for part in PurePosixPath(path).parts)


def _is_image(path):
    return PurePosixPath(path).suffix.lower() in IMAGE_EXTENSIONS


def _layout(source: _Source, split=TRAIN) -> tuple[Layout, dict[str, _Member], list[tuple[str, str]]]:
    """The layout of a source, its image members by path, and its files skipped for their name or size."""
    members = [member for member in source.members if not _is_ignored(member.path)]
    skipped = list(source.skipped)
    images = {}
    for member in members:
        if not _is_image(member.path):
            skipped.append((member.path, f"not an image file; expected one of {', '.join(IMAGE_EXTENSIONS)}"))
        elif member.size > MAX_IMAGE_BYTES:  # the declared size, checked before a byte is read
            skipped.append((member.path, f"{member.size / 2**20:.1f} MB; a photo may be at most "
                                         f"{MAX_IMAGE_BYTES / 2**20:.0f} MB"))
        else:
            images[member.path] = member
    layout = read_layout(list(images), [folder for folder in source.folders if not _is_ignored(folder)], split)
    skipped += [(path, "not inside a class folder" if not layout.split_folders else "outside the train/validation/test "
                 "folders") for path in layout.outside]
    return layout, images, skipped


def _import(root, main: _Source, extra: _Source | None, title, on_progress, course) -> FolderImportReport:
    """Check and store the images of a source (and of a validation source); the dataset folder appears atomically."""
    layout, images, skipped = _layout(main)
    placements = [(placement, images[path]) for path, placement in layout.placements.items()]
    class_names, validation_source = layout.class_names, None
    if extra is not None:
        extra_layout, extra_images, extra_skipped = _layout(extra, split=VALIDATION)
        if extra_layout.split_folders or VALIDATION in layout.split_folders:
            raise DatasetError("Give the validation photos once: either as a validation folder inside the zip, or as a "
                               "second zip of class folders (without train/validation folders of its own).")
        check_same_classes({"the training photos": set(class_names), "the validation photos": set(extra_layout.class_names)})
        placements += [(placement, extra_images[path]) for path, placement in extra_layout.placements.items()]
        skipped += [(f"validation: {path}", reason) for path, reason in extra_skipped]
        validation_source = extra.title or "validation photos"
    placements.sort(key=lambda item: (SPLITS.index(item[0].split), item[0].class_name, item[0].relative))
    with_splits = bool(layout.split_folders) or extra is not None

    try:
        datasets_dir(root).mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=datasets_dir(root)))  # same filesystem: atomic
        alive = open(staging / STAGING_LOCK, "w")  # held while this import runs: `doctor` leaves the folder alone
        fcntl.flock(alive, fcntl.LOCK_EX)
    except OSError as error:
        raise _cannot_store(root, error) from error
    try:
        from core.folder_arrays import ImportArrays  # here: core.folder_arrays imports this module

        digest, stored_images, sizes, gray, photos_by_split, photos = hashlib.sha256(), [], [], True, {}, []
        arrays = ImportArrays(staging, len(placements))
        for done, (placement, member), data, checked in _checked(placements):
            if on_progress:
                on_progress(done, len(placements))
            if isinstance(checked, ImageError):
                skipped.append((member.path, f"unreadable image: {checked}"))
                continue
            size, mode, inputs = checked
            arrays.add(inputs)
            suffix = PurePosixPath(member.path).suffix.lower()
            stored = f"images/{class_names.index(placement.class_name):03d}/{len(stored_images):05d}{suffix}"
            (staging / stored).parent.mkdir(parents=True, exist_ok=True)
            (staging / stored).write_bytes(data)
            split_part = f"{placement.split}\0" if with_splits else ""
            photo_digest = hashlib.sha256(data).hexdigest()
            photos_by_split.setdefault(placement.split, []).append(photo_digest)
            photos.append(_photo_line(placement.class_name, placement.split, photo_digest))
            digest.update(f"{placement.class_name}\0{split_part}{placement.relative}\0{photo_digest}\0".encode())
            stored_images.append((stored, placement.class_name, placement.split))
            sizes.append(size)
            gray = gray and mode == "L"
        arrays.finish()
        dataset_id = digest.hexdigest()[:12]
        manifest = _manifest(dataset_id, title or _deleted_title(root, dataset_id) or main.title or layout.wrapper,
                             class_names, stored_images, sizes, gray, skipped, layout, validation_source, course)
        manifest = replace(manifest, notes=manifest.notes + _training_photos_elsewhere(photos_by_split))
        if not (datasets_dir(root) / manifest.id).exists() and (same := _same_photos(root, photos, manifest)):
            return _imported_before(root, same, manifest, "another way")
        stored = replace(manifest, title=_unique_title(root, manifest.title, manifest.id))
        (staging / MANIFEST_FILE).write_text(json.dumps(stored.to_json(), indent=1))
        (staging / STAGING_LOCK).unlink()  # not part of the dataset; still held until this import ends
        return _publish(root, staging, manifest)
    except OSError as error:  # a full disk or a read-only folder while storing: the staging folder goes
        raise _cannot_store(root, error) from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        alive.close()


def _deleted_title(root, dataset_id: str) -> str | None:
    """The title these photos had when they were deleted (they wait in the trash), so that importing them again
    brings back the name their models were trained under; None when no deleted copy waits."""
    from core.trash import list_dataset_trash

    return next((item.title for item in list_dataset_trash(root) if item.key == dataset_id), None)


def _training_photos_elsewhere(photos_by_split: dict[str, list[str]]) -> tuple[str, ...]:
    """A note when validation or test photos are also training photos (the same bytes); refused when all of them are
    (the training zip given again as its validation zip): a test figure on photos the model learned means nothing."""
    training = set(photos_by_split.get(TRAIN, ()))
    notes = []
    for split in (VALIDATION, TEST):
        photos = photos_by_split.get(split, [])
        shared = sum(photo in training for photo in photos)
        if photos and shared == len(photos):
            raise DatasetError(f"Every {split} photo is also a training photo: the same photos were given twice (the "
                               f"training zip as its {split} zip?). A model tested on photos it learned from scores "
                               f"far higher than it is. Give the {split} photos that come apart, such as the course's "
                               "validation-horse-or-human.zip.")
        if shared:
            notes.append(f"{shared} of the {len(photos)} {split} photos are also training photos (the same files): the "
                         "model is tested on some photos it learned from, so its figure is a little optimistic.")
    return tuple(notes)


def _cannot_store(root, error: OSError) -> DatasetError:
    return DatasetError(f"Could not store the photos in {datasets_dir(root)} ({error.strerror or error}): check that the "
                        "folder is writable and the disk has room. Nothing was imported.", student="The photos could "
                        "not be stored on the server (its disk may be full). Nothing was imported: tell the teacher.")


def _checked(placements):
    """(number done, placement, bytes, the image's (size, mode, model inputs) or its ImageError) for each image, in
    order: the bytes read by one thread (a zip allows no more) at most CHECK_CHUNK_BYTES or CHECK_AHEAD photos ahead
    of the checks, each decoded once on CHECK_THREADS threads (Pillow decodes without the GIL) and prepared as
    training reads it (core.folder_arrays), each decoded image dropped once checked. Reading overlaps decoding: the
    threads never wait for a chunk to be read."""
    from core.folder_arrays import import_inputs  # here: core.folder_arrays imports this module

    def check(item, data):
        try:
            image = read_image(data, item[1].path, formats=FOLDER_IMAGE_FORMATS)
            return image.info[FILE_SIZE_KEY], image.mode, import_inputs(image)  # 4000×3000 read "2000×1500"
        except ImageError as error:
            return error

    done, waiting, waiting_bytes = 0, collections.deque(), 0
    with ThreadPoolExecutor(max_workers=CHECK_THREADS) as pool:
        for index, item in enumerate(placements):
            try:
                data = item[1].read()
                checking = pool.submit(check, item, data)
            except OSError as error:  # a file its owner may not read: skipped and listed, like a damaged photo
                data, checking = b"", Future()
                checking.set_result(ImageError(f"the file could not be read ({error.strerror or error})"))
            waiting.append((item, data, checking))
            waiting_bytes += len(data)
            last = index == len(placements) - 1
            while waiting and (waiting_bytes >= CHECK_CHUNK_BYTES or len(waiting) >= CHECK_AHEAD or last):
                checked_item, checked_data, checked = waiting.popleft()
                waiting_bytes -= len(checked_data)
                done += 1
                yield done, checked_item, checked_data, checked.result()


def _manifest(dataset_id, title, all_classes, images, sizes, gray, skipped, layout, validation_source, course):
    """The manifest: classes, counts per split, stored images, the native shape and the report's notes."""
    split_counts = {split: {name: count for name in all_classes
                            if (count := sum(1 for _, c, s in images if c == name and s == split))}
                    for split in SPLITS}
    counts = {name: count for name in all_classes if (count := sum(c == name for _, c, _ in images))}
    if len(counts) < 2 or not split_counts[TRAIN]:
        found = ", ".join(f"{name}: {count}" for name, count in counts.items()) or "none"
        loose = sum(reason == "not inside a class folder" for _, reason in skipped)
        hint = (f"Its {loose} photo{'s are' if loose != 1 else ' is'} not in class folders: put each class's photos in a "
                "folder named after the class, then zip those folders. " if loose and not counts else "")
        raise DatasetError(f"A dataset needs at least 2 class folders with readable images; found {len(counts)} "
                           f"({found}). {hint}Expected one folder per class, such as a horses folder and a humans "
                           f"folder of photos, or train and validation folders that each hold them. "
                           f"{skipped_summary(skipped)} Received: folders={all_classes}")
    check_same_classes({split: set(names) for split, names in split_counts.items() if names} | {TRAIN: set(counts)})
    class_names = list(counts)
    # the smallest, middle and largest photos by pixels: sizes that exist (each side's own median made ones that do not)
    by_area = sorted(((int(width), int(height)) for width, height in sizes), key=lambda size: (size[0] * size[1], size))
    same_size = len(set(sizes)) == 1 and max(sizes[0]) <= MAX_NATIVE_SIDE
    width, height = sizes[0] if same_size else (DEFAULT_FOLDER_IMAGE_SIZE, DEFAULT_FOLDER_IMAGE_SIZE)
    if len(class_names) == 2:
        notes = [f"2 classes, so this is a binary task: the model ends in Dense(1, sigmoid) with binary "
                 f"cross-entropy and outputs the probability of '{class_names[1]}'."]
    else:
        notes = [f"{len(class_names)} classes, so this is a categorical task: the model ends in "
                 f"Dense({len(class_names)}, softmax) with sparse categorical cross-entropy."]
    if layout.wrapper:
        notes.append(f"The {'split' if layout.split_folders else 'class'} folders were inside a single top-level folder, "
                     f"which was unwrapped ({layout.wrapper}/).")
    if layout.split_folders:
        notes.append("Split folders recognised: " + ", ".join(f"{folder}/ → {split}" for split, folder in
                                                              layout.split_folders.items()) + ".")
    notes += [f"Class folder '{name}' has no readable images and was left out." for name in all_classes if name not in counts]
    notes += [f"The class folder name '{name}' was written in two Unicode forms (an accent as one character, and as a "
              "letter plus an accent); they look the same, so they are one class." for name in layout.merged]
    notes += [f"Class '{name}' has only {count} image{'' if count == 1 else 's'}; a model needs dozens per class to "
              "learn." for name, count in counts.items() if count < 10]
    splits, labels = [split for _, _, split in images], [class_names.index(name) for _, name, _ in images]
    gaps = folder_gaps(splits, labels, class_names)
    needed = None if gaps else images_needed(splits, labels, len(class_names))
    if gaps:
        notes.append(f"Not every class can be tested: {'; '.join(gaps)} (training this dataset is refused until each "
                     "folder holds photos of every class).")
    if needed is not None:
        notes.append(f"Too few photos to train and test a model: add at least {needed} images per class and import "
                     "the photos again (training this dataset is refused until then).")
    if not same_size:  # all 320×240 were said to "differ in size or be large": say which
        why = "differ in size" if len(set(sizes)) > 1 else f"are more than {MAX_NATIVE_SIDE} pixels on a side"
        notes.append(f"The images {why}; each model fits them into the input size it is trained at (chosen on Your "
                     "own images or Train), keeping their shape: the rest is padded, as on Predict.")
    return Manifest(
        id=dataset_id, title=(title or _default_title(class_names))[:80], class_names=tuple(class_names),
        counts=counts, images=tuple(StoredImage(*image) for image in images),
        image_shape=(int(height), int(width), 1 if gray else 3),
        image_sizes={"min": by_area[0], "max": by_area[-1], "median": by_area[(len(by_area) - 1) // 2]},
        skipped=tuple(skipped), notes=tuple(notes), split_counts=split_counts,
        split_sources=describe_splits(split_counts, layout.split_folders, validation_source), course=course,
        created=time.strftime("%Y-%m-%d %H:%M:%S"))


def _default_title(class_names):
    more = ", ..." if len(class_names) > 4 else ""
    return " vs ".join(class_names) if len(class_names) == 2 else ", ".join(class_names[:4]) + more


def _unique_title(root, title: str, dataset_id: str) -> str:
    """`title`, or "title (2)", "(3)"… when another imported dataset, or a catalogue one ("Shapes"), has it already:
    its models are titled after it, and two models of one title on two datasets could not be told apart (nor ranked
    apart on the home page), and `--dataset Shapes` would name either."""
    from core.card import numbered_title
    from core.catalogue import CATALOGUE

    taken = {manifest.title for name, manifest in imported_manifests(root).items()
             if isinstance(manifest, Manifest) and name != FOLDER_PREFIX + dataset_id}  # a damaged one takes no title
    return numbered_title(title, taken | set(CATALOGUE) | {info[0] for info in CATALOGUE.values()})


def _publish(root, staging, manifest):
    """Move the staging folder into place, unless the same content is there already (`manifest`: this import's, with
    the title as given; the one stored may have a number added to it)."""
    from core import trash

    target = datasets_dir(root) / manifest.id
    try:
        os.replace(staging, target)
    except OSError:  # the target exists and is not empty: the same content was imported before
        if not (target / MANIFEST_FILE).is_file():
            raise
        return _imported_before(root, FOLDER_PREFIX + manifest.id, manifest)
    report = import_report(root, FOLDER_PREFIX + manifest.id)
    if trash.forget_deleted_dataset(root, manifest.id):  # the same photos: a deleted copy would only be refused
        report.notes.append("A deleted copy of these photos waited in the trash; it is no longer needed and was removed.")
    return report


def _imported_before(root, name, manifest, how: str | None = None) -> FolderImportReport:
    """The report of this import (`manifest`: what it read, skipped and found, and where its splits came from) of the
    photos that dataset `name` holds already (imported before, `how` if another way): that dataset, with its title, is
    used."""
    report = _report(name, replace(manifest, title=read_manifest(root, name).title))
    report.already_imported = True
    report.notes.append("This dataset was already imported" + (f" ({how}: the same photos, classes and splits)"
                                                               if how else "") + "; the existing copy is used.")
    if report.title != manifest.title:  # imported before, under another title: that one stays
        report.notes.append(f"It keeps the title it was imported with, “{report.title}”; “{manifest.title}” was not "
                            "applied.")
    return report


def _photo_line(class_name: str, split: str, photo_digest: str) -> str:
    return f"{class_name}\0{split}\0{photo_digest}"


def _same_photos(root, photos: list[str], manifest) -> str | None:
    """The imported dataset holding exactly these photos (`_photo_line`s: each one's class, split and bytes), however
    they came: a zip and then a second zip on the page, or both at once with the command line's `--validation`, give
    the same photos under other file names (which a dataset's id counts). None when there is none. Only a dataset
    with the same counts per class and split has its photos read."""
    wanted = sorted(photos)
    for name, other in imported_manifests(root).items():
        if not isinstance(other, Manifest) or other.split_counts != manifest.split_counts:  # damaged, or other photos
            continue
        try:
            held = sorted(_photo_line(image.class_name, image.split, sha256_of(folder_path(root, name) / image.file))
                          for image in other.images)
        except OSError:  # deleted meanwhile
            continue
        if held == wanted:
            return name
    return None


def sizes_text(image_sizes: dict) -> str:
    """Photo sizes in words (width × height), ranked by pixels, each one a photo that exists: 'all 300×300', or 'from
    256×200 to 640×640, the middle one 400×300 (…)' (a wide middle photo can be wider than the largest)."""
    (low_width, low_height), (high_width, high_height) = image_sizes["min"], image_sizes["max"]
    if (low_width, low_height) == (high_width, high_height):
        return f"all {low_width}×{low_height} (width × height)"
    return (f"from {low_width}×{low_height} to {high_width}×{high_height}, the middle one "
            "{}×{} (width × height, ranked by their number of pixels)".format(*image_sizes["median"]))


def import_report(root, name) -> FolderImportReport:
    """The report of an imported dataset, read back from its manifest."""
    return _report(name, read_manifest(root, name))


def _report(name, manifest) -> FolderImportReport:
    split_counts = {split: dict(counts) for split, counts in (manifest.split_counts or {TRAIN: manifest.counts}).items()}
    return FolderImportReport(
        name=name, title=manifest.title, class_names=list(manifest.class_names), counts=dict(manifest.counts),
        skipped=list(manifest.skipped), image_sizes=manifest.image_sizes, is_binary=manifest.is_binary,
        notes=list(manifest.notes), split_counts=split_counts,
        split_sources=dict(manifest.split_sources or describe_splits(split_counts, {})),
    )


def image_entries(root, name) -> list[tuple[Path, str, str]]:
    """(stored file path, class, split) of every image of an imported dataset, in stored order."""
    folder = folder_path(root, name)
    return [(folder / image.file, image.class_name, image.split) for image in read_manifest(root, name).images]
