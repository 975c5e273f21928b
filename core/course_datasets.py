"""The course's photo datasets (horses or humans, rock paper scissors, cats vs dogs): download once, then import.

`get_course_dataset(name, root)` fetches the published zips with `keras.utils.get_file` into the Keras cache
(~/.keras/datasets/), checking each against its published SHA-256, and imports them with core.folders as
one folder dataset whose validation split is the course's validation zip. A zip already in the cache (from
an earlier download, or copied there by hand) is used without the network. Offline, the error names the
URLs and the import command that does the same from files downloaded elsewhere.
"""

import difflib
from pathlib import Path

from core.catalogue import COURSE_DATASETS, KERAS_DATASETS_FOLDER, CourseFile, how_to_get_course
from core.errors import DatasetError, DatasetUnavailableError
from core.folders import FolderImportReport, import_zip, sha256_of
from core.network import check_reachable, socket_timeout
from core.paths import keras_home

CONNECT_TIMEOUT_SECONDS = 5
DOWNLOAD_TIMEOUT_SECONDS = 60


def get_course_dataset(name, root, on_progress=None) -> FolderImportReport:
    """Download (once) and import the course dataset `name` into the registry at `root`."""
    if name not in COURSE_DATASETS:
        close = difflib.get_close_matches(str(name).lower().replace("-", "_"), COURSE_DATASETS, n=1)
        raise DatasetError(f"Unknown course dataset.{f' Did you mean {close[0]!r}?' if close else ''} Expected one of "
                           f"{list(COURSE_DATASETS)}. Received: name={name!r}")
    course = COURSE_DATASETS[name]
    train = fetch(name, course.train)
    validation = fetch(name, course.validation) if course.validation else None
    return import_zip(train, root, title=course.title, validation=validation, on_progress=on_progress, course=name)


def fetch(name, file: CourseFile) -> Path:
    """The path of one published zip in the Keras cache, downloaded and checked first if it is not there yet."""
    cache = keras_home() / KERAS_DATASETS_FOLDER
    cached = cache / file.file_name
    if cached.is_file():
        if file.sha256 is None or sha256_of(cached) == file.sha256:
            return cached
        if not file.size or cached.stat().st_size >= file.size:  # smaller: a download cut short, fetched again below
            raise DatasetError(f"{cached} is there, but it is not the published {file.file_name} (its SHA-256 differs: "
                               f"another file of that name, or a damaged copy). Delete it, or copy the published file "
                               f"there, then run this again; it is not downloaded over. Received: name={name!r}")
    try:
        check_reachable(file.url, CONNECT_TIMEOUT_SECONDS)
    except OSError as error:
        raise DatasetUnavailableError(_unavailable(name, file, str(error))) from None
    from core.backend import keras  # here, not at the top: listing and importing need no TensorFlow

    cache.mkdir(parents=True, exist_ok=True)
    try:
        with socket_timeout(DOWNLOAD_TIMEOUT_SECONDS):
            path = keras.utils.get_file(file.file_name, file.url, file_hash=file.sha256, hash_algorithm="sha256",
                                        cache_subdir=KERAS_DATASETS_FOLDER, cache_dir=str(keras_home()))
    except Exception as error:  # get_file raises a bare Exception for network failures, ValueError for a bad hash
        cached.unlink(missing_ok=True)  # a download whose checksum does not match is never imported
        raise DatasetUnavailableError(_unavailable(name, file, f"the download failed: {error}")) from error
    return Path(path)


def _unavailable(name, file: CourseFile, reason) -> str:
    return (f"{COURSE_DATASETS[name].title} cannot be downloaded now: {file.url} ({reason}). "
            f"{how_to_get_course(name)} A zip copied into {keras_home() / KERAS_DATASETS_FOLDER}/ is used "
            + ("once it is checked to be the published file (by its SHA-256). " if file.sha256 else
               "as it is (this file has no published checksum to check it by). ")
            + f"Received: name={name!r}")
