"""The original files of the catalogue datasets: gzipped IDX, mnist.npz and CIFAR-10 pickles, else a keras download.

core.catalogue finds the files without reading them; this module reads them into uint8 NHWC images and
int64 labels, or downloads them with keras.datasets when this machine has no copy.
"""

import gzip
import pickle
import zipfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from core.catalogue import CATALOGUE, FASHION_FILES, can_download, download_host, how_to_get, keras_datasets_dir, locate
from core.errors import DatasetUnavailableError


def catalogue_arrays(name):
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
        reason = str(error).split(". ")[0]  # numpy's advice to unpickle an untrusted file is no advice to give
        raise DatasetUnavailableError(f"The {CATALOGUE[name][0]} files in {path} are damaged ({reason}). Delete them and "
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
    from core.backend import keras

    try:
        (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, name).load_data()
    except Exception as error:  # whatever went wrong, the dataset is not available
        raise DatasetUnavailableError(how_to_get(name, f"the download failed: {error}")) from error
    return _standardize(x_train, y_train, x_test, y_test)
