"""Tests of core/datasets.py on real data: the Debian Fashion-MNIST files, generated shapes and zips
of real Fashion-MNIST images built in tmp_path (hostile ones too)."""

import gzip
import io
import os
import pickle
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core import catalogue, dataset_files, datasets, folders, imaging, network, shapes_dataset
from core.catalogue import dataset_info, dataset_titles, list_datasets
from core.datasets import class_counts, load_dataset
from core.errors import DatasetError, DatasetUnavailableError
from core.folders import import_folder, import_zip
from core.paths import PROJECT_ROOT

CLOTHES = {"tshirt": 0, "trouser": 1, "bag": 8}  # class folder -> Fashion-MNIST label


ROOT = None  # the test's registry folder, set by `isolated`


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """A private registry (passed as `root`, never read from the environment), an empty home (no Keras cache) and no
    $CNNCLASSROOM_DATA_DIR."""
    global ROOT
    ROOT = tmp_path / "registry"
    monkeypatch.setenv("CNNCLASSROOM_REGISTRY", str(tmp_path / "elsewhere"))  # to show that nothing reads it
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home" / ".keras"))
    monkeypatch.delenv("CNNCLASSROOM_DATA_DIR", raising=False)


@pytest.fixture(scope="module")
def fashion():
    return load_dataset("fashion_mnist", validation_fraction=0)


def clothes_files(fashion, per_class=20, image_format="PNG", prefix="", classes=CLOTHES):
    """{path inside the zip: encoded image} of real Fashion-MNIST test images, one folder per class."""
    files = {}
    for folder, label in classes.items():
        for index, image in enumerate(fashion.x_test[fashion.y_test == label][:per_class]):
            buffer = io.BytesIO()
            Image.fromarray(image[..., 0]).save(buffer, image_format)
            files[f"{prefix}{folder}/{index:03d}.{image_format.lower()}"] = buffer.getvalue()
    return files


def make_zip(files, compression=zipfile.ZIP_DEFLATED):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in files.items():
            archive.writestr(name, data)  # a str name keeps '../' and '/' as written
    return buffer.getvalue()


def files_outside_datasets(tmp_path):
    datasets_dir = tmp_path / "registry" / "datasets"
    return {path for path in tmp_path.rglob("*") if path.is_file() and datasets_dir not in path.parents}


def datasets_folder_entries(tmp_path):
    folder = tmp_path / "registry" / "datasets"
    return sorted(folder.iterdir()) if folder.exists() else []


# ---------------------------------------------------------------------------------------------
# Listing and names


def test_list_datasets_imports_neither_tensorflow_nor_numpy(tmp_path):
    """The home page lists the datasets on a server's first page run: no heavy import on the way."""
    code = (f"import sys, core.catalogue as c; c.list_datasets({str(tmp_path)!r}); c.course_datasets({str(tmp_path)!r}); "
            "assert not {'tensorflow', 'numpy', 'PIL'} & set(sys.modules), sorted(sys.modules)")
    environment = {**os.environ, "HOME": str(tmp_path), "KERAS_HOME": str(tmp_path / "keras")}
    subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=environment, check=True, timeout=60)


def test_list_datasets_says_what_is_available_and_how_to_get_the_rest():
    infos = {info.name: info for info in list_datasets(ROOT)}
    assert list(infos) == ["fashion_mnist", "mnist", "cifar10", "shapes"]  # no imported dataset in ROOT yet
    fashion = infos["fashion_mnist"]
    assert fashion.available and "dataset-fashion-mnist" in fashion.source and fashion.message is None
    assert fashion.class_names[0] == "T-shirt/top" and fashion.image_shape == (28, 28, 1)
    assert infos["shapes"].available and infos["shapes"].image_shape == (64, 64, 3)
    for name, file in (("mnist", "mnist.npz"), ("cifar10", "cifar-10-batches-py")):
        assert not infos[name].available and infos[name].source is None
        assert file in infos[name].message and "CNNCLASSROOM_DATA_DIR" in infos[name].message
        assert f"keras.datasets.{name}.load_data()" in infos[name].message
    assert infos["cifar10"].image_shape == (32, 32, 3) and len(infos["cifar10"].class_names) == 10


def test_a_dataset_that_would_be_downloaded_is_available_but_not_on_this_machine(download_hosts):
    """Online, MNIST and CIFAR-10 can be loaded (Keras downloads them first), yet they are not on this machine; the
    home page asks no download host at all (ask_network=False), which behind a firewall that drops the connection
    would wait REACHABILITY_TIMEOUT per host."""
    asked = {info.name: info for info in list_datasets(ROOT)}
    connections = download_hosts()
    assert connections >= 1
    for name in ("mnist", "cifar10"):
        assert asked[name].available and not asked[name].on_this_machine and "downloads it" in asked[name].source
    assert all(asked[name].available and asked[name].on_this_machine for name in ("fashion_mnist", "shapes"))
    not_asked = {info.name: info for info in list_datasets(ROOT, ask_network=False)}
    assert download_hosts() == connections  # no host was asked
    assert [name for name, info in not_asked.items() if info.available] == ["fashion_mnist", "shapes"]
    assert not_asked["mnist"].message.startswith("MNIST is not on this machine. To use it, connect to the internet")
    assert not not_asked["cifar10"].on_this_machine and not_asked["shapes"].on_this_machine
    assert list(dataset_titles(list(asked.values())).values()) == [  # the pickers' labels
        "Fashion-MNIST", "MNIST (downloads first)", "CIFAR-10 (downloads first)", "Shapes"]
    assert dataset_titles(list(not_asked.values()))["mnist"] == "MNIST (not on this machine)"


def test_the_preloading_asks_the_hosts_so_that_the_pages_find_the_answers_kept(download_hosts):
    catalogue.ask_download_hosts()  # MNIST and CIFAR-10 are not here: their host is asked
    asked = download_hosts()
    assert asked >= 1
    infos = {info.name: info for info in list_datasets(ROOT)}
    assert download_hosts() == asked and infos["mnist"].available  # the answer kept, not asked again


def test_behind_a_firewall_the_download_hosts_are_asked_at_once(monkeypatch, no_proxy, dropping_hosts):
    """The Datasets page's first run behind a firewall that drops connections waits one REACHABILITY_TIMEOUT, not one
    per host (MNIST's and CIFAR-10's are two); the answers are kept."""
    monkeypatch.setattr(network, "_ANSWERS", {})
    monkeypatch.setattr(catalogue, "REACHABILITY_TIMEOUT", 1.0)
    monkeypatch.setattr(catalogue, "DOWNLOAD_URLS", {
        name: f"http://127.0.0.1:{dropping_hosts()[1]}/{name}" for name in catalogue.DOWNLOAD_URLS})
    started = time.monotonic()
    infos = {info.name: info for info in list_datasets(ROOT)}
    assert time.monotonic() - started < 1.9  # one host after the other: 2 s
    assert [name for name, info in infos.items() if info.available] == ["fashion_mnist", "shapes"]
    assert "cannot be reached" in infos["mnist"].message and "cannot be reached" in infos["cifar10"].message
    started = time.monotonic()
    list_datasets(ROOT)
    assert time.monotonic() - started < 0.5  # the answers kept


@pytest.mark.parametrize("name", ["folder:../x", "../fashion_mnist", "folder:abc", "folder:0123456789ab/..",
                                  "Fashion_MNIST", "", None, 3, "folder:0123456789AB",
                                  "fashion_mnist\n", "folder:0123456789ab\n"])
def test_bad_dataset_names_are_refused_before_any_path_is_built(name):
    with pytest.raises(DatasetError, match="Received: name="):
        dataset_info(name)
    with pytest.raises(DatasetError, match="Received: name="):
        load_dataset(name)


def test_input_shape_for_follows_the_load_options():
    assert catalogue.input_shape_for("fashion_mnist") == (28, 28, 1)
    assert catalogue.input_shape_for(dataset_info("shapes"), 32, "grayscale") == (32, 32, 1)
    assert catalogue.input_shape_for("fashion_mnist", None, "rgb") == (28, 28, 3)


def test_unknown_names_are_errors():
    with pytest.raises(DatasetError, match="Unknown dataset"):
        dataset_info("imagenet")
    with pytest.raises(DatasetError, match="No imported dataset"):
        load_dataset("folder:0123456789ab", root=ROOT)
    with pytest.raises(DatasetError, match="no registry folder was given"):  # the root is passed, never guessed
        load_dataset("folder:0123456789ab")


@pytest.mark.parametrize("options, message", [
    ({"image_size": 4}, "image_size"), ({"image_size": 32.0}, "image_size"), ({"color_mode": "cmyk"}, "color_mode"),
    ({"validation_fraction": 0.9}, "validation_fraction"), ({"train_subset": 0}, "train_subset"),
])
def test_bad_load_options_are_errors(options, message):
    with pytest.raises(DatasetError, match=f"Received: {message}="):
        load_dataset("shapes", **options)


# ---------------------------------------------------------------------------------------------
# Fashion-MNIST from the Debian package


def test_fashion_mnist_loads_all_70k_fast_with_the_original_test_set():
    dataset_files._read_files.cache_clear()
    start = time.process_time()  # CPU time: other processes on the machine do not count
    data = load_dataset("fashion_mnist")
    first = time.process_time() - start
    start = time.process_time()
    again = load_dataset("fashion_mnist")
    second = time.process_time() - start
    assert first < 1.5 and second < 0.5, (first, second)
    assert data.x_train.shape == (54000, 28, 28, 1) and data.x_val.shape == (6000, 28, 28, 1)
    assert data.x_test.shape == (10000, 28, 28, 1) and data.x_train.dtype == np.uint8 and data.y_train.dtype == np.int64
    assert (data.input_shape, data.num_classes, data.is_binary) == ((28, 28, 1), 10, False)
    assert "dataset-fashion-mnist" in data.source
    with gzip.open(catalogue.DEBIAN_FASHION_DIR / "t10k-labels-idx1-ubyte.gz") as file:
        original_test_labels = np.frombuffer(file.read(), np.uint8, offset=8)
    np.testing.assert_array_equal(data.y_test, original_test_labels)  # the original 10k, in order
    assert class_counts(data.y_val, 10).tolist() == [600] * 10  # stratified
    assert again.fingerprint == data.fingerprint and len(data.fingerprint) == 16
    data.x_test[:] = 0  # the caller's copy, not the cache
    assert load_dataset("fashion_mnist").fingerprint == data.fingerprint


def test_fashion_subset_resize_and_colour_keep_the_test_split(fashion):
    small = load_dataset("fashion_mnist", train_subset=1000, image_size=32, color_mode="rgb")
    assert small.x_train.shape == (1000, 32, 32, 3) and small.x_test.shape == (10000, 32, 32, 3)
    assert class_counts(small.y_train, 10).tolist() == [100] * 10
    np.testing.assert_array_equal(small.y_test, fashion.y_test)
    assert np.array_equal(small.x_test[..., 0], small.x_test[..., 2])  # gray repeated into RGB
    other = load_dataset("fashion_mnist", validation_fraction=0.2)
    np.testing.assert_array_equal(other.x_test, fashion.x_test)
    assert len(other.y_val) == 12000 and small.fingerprint != other.fingerprint != fashion.fingerprint


def test_sample_by_class_gives_a_grid_row_per_class(fashion):
    samples = datasets.sample_by_class(fashion, 3, split="test")
    assert list(samples) == list(fashion.class_names)
    assert all(images.shape == (3, 28, 28, 1) for images in samples.values())
    np.testing.assert_array_equal(samples["Ankle boot"][0], fashion.x_test[0])  # test image 0 is an ankle boot
    with pytest.raises(DatasetError, match="split"):
        datasets.sample_by_class(fashion, 3, split="holdout")


def test_class_counts():
    assert class_counts(np.array([0, 2, 2, 2]), 4).tolist() == [1, 0, 3, 0]


# ---------------------------------------------------------------------------------------------
# $CNNCLASSROOM_DATA_DIR, the Keras cache and the offline paths


def write_idx(path, array):
    header = (0x800 + (3 if array.ndim == 3 else 1)).to_bytes(4, "big")
    header += b"".join(size.to_bytes(4, "big") for size in array.shape)
    with gzip.open(path, "wb") as file:
        file.write(header + array.astype(np.uint8).tobytes())


def test_data_dir_comes_before_the_debian_package(tmp_path, monkeypatch, fashion):
    folder = tmp_path / "data" / "fashion-mnist"
    folder.mkdir(parents=True)
    x, y = fashion.x_test[..., 0], fashion.y_test
    for stem, array in (("train-images-idx3", x[:600]), ("train-labels-idx1", y[:600]),
                        ("t10k-images-idx3", x[600:700]), ("t10k-labels-idx1", y[600:700])):
        write_idx(folder / f"{stem}-ubyte.gz", array)
    monkeypatch.setenv("CNNCLASSROOM_DATA_DIR", str(tmp_path / "data"))
    data = load_dataset("fashion_mnist", validation_fraction=0)
    assert "CNNCLASSROOM_DATA_DIR" in data.source and str(folder) in data.source
    np.testing.assert_array_equal(data.x_test, fashion.x_test[600:700])
    assert data.x_train.shape == (600, 28, 28, 1)


def test_mnist_from_data_dir_then_from_keras_cache(tmp_path, monkeypatch, fashion):
    arrays = {"x_train": fashion.x_test[:300, ..., 0], "y_train": fashion.y_test[:300].astype(np.uint8),
              "x_test": fashion.x_test[300:400, ..., 0], "y_test": fashion.y_test[300:400].astype(np.uint8)}
    keras_cache = tmp_path / "home" / ".keras" / "datasets"
    keras_cache.mkdir(parents=True)
    np.savez(keras_cache / "mnist.npz", **arrays)
    assert dataset_info("mnist").available and "Keras cache" in dataset_info("mnist").source
    assert "Keras cache" in load_dataset("mnist").source

    (tmp_path / "data").mkdir()
    np.savez(tmp_path / "data" / "mnist.npz", **arrays)
    monkeypatch.setenv("CNNCLASSROOM_DATA_DIR", str(tmp_path / "data"))
    data = load_dataset("mnist", image_size=14)
    assert "CNNCLASSROOM_DATA_DIR" in data.source and data.x_test.shape == (100, 14, 14, 1)
    assert data.class_names == list("0123456789")


def test_a_damaged_local_file_says_so(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mnist.npz").write_bytes(b"PK\x03\x04 cut short")
    monkeypatch.setenv("CNNCLASSROOM_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(DatasetUnavailableError, match="MNIST files in .*mnist.npz are damaged"):
        load_dataset("mnist")


def write_cifar_batch(path, images_hwc, labels):
    batch = {b"data": images_hwc.transpose(0, 3, 1, 2).reshape(len(images_hwc), -1), b"labels": [int(v) for v in labels]}
    path.write_bytes(pickle.dumps(batch, protocol=3))  # bytes opcodes, like the py2 originals


def test_cifar10_batches_from_data_dir(tmp_path, monkeypatch):
    shapes = load_dataset("shapes", image_size=32, validation_fraction=0)
    folder = tmp_path / "data" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for index in range(1, 6):
        write_cifar_batch(folder / f"data_batch_{index}", shapes.x_train[index * 40 : index * 40 + 40],
                          shapes.y_train[index * 40 : index * 40 + 40])
    write_cifar_batch(folder / "test_batch", shapes.x_test[:50], shapes.y_test[:50])
    monkeypatch.setenv("CNNCLASSROOM_DATA_DIR", str(tmp_path / "data"))
    data = load_dataset("cifar10", validation_fraction=0)
    assert data.x_train.shape == (200, 32, 32, 3) and data.class_names[0] == "airplane"
    np.testing.assert_array_equal(data.x_test, shapes.x_test[:50])  # channels come back in HWC order


def test_a_cifar_pickle_that_runs_code_is_refused(tmp_path, monkeypatch):
    class Exploit:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    folder = tmp_path / "data" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"):
        (folder / name).write_bytes(pickle.dumps({b"data": Exploit(), b"labels": [0]}))
    monkeypatch.setenv("CNNCLASSROOM_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(DatasetUnavailableError, match="damaged.*refusing to load posix.system"):
        load_dataset("cifar10")
    assert not (tmp_path / "pwned").exists()


def test_offline_mnist_fails_fast_with_the_steps_to_get_it():
    start = time.perf_counter()
    with pytest.raises(DatasetUnavailableError, match=r"mnist\.npz.*CNNCLASSROOM_DATA_DIR.*Received: name='mnist'"):
        load_dataset("mnist")
    assert time.perf_counter() - start < 10


def test_without_the_debian_package_fashion_mnist_says_apt_get(tmp_path, monkeypatch):
    monkeypatch.setattr(catalogue, "DEBIAN_FASHION_DIR", tmp_path / "not-installed")
    info = dataset_info("fashion_mnist")
    assert not info.available and "apt-get install dataset-fashion-mnist" in info.message
    with pytest.raises(DatasetUnavailableError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion_mnist")


def test_the_keras_download_path_in_a_fresh_process(tmp_path, fashion):
    """The real keras.datasets loaders run (the host check is skipped): Fashion-MNIST from a primed
    Keras cache succeeds, MNIST fails offline and becomes DatasetUnavailableError."""
    primed = tmp_path / "keras" / "datasets" / "fashion-mnist"
    primed.mkdir(parents=True)
    x, y = fashion.x_test[..., 0], fashion.y_test
    for stem, array in (("train-images-idx3", x[:300]), ("train-labels-idx1", y[:300]),
                        ("t10k-images-idx3", x[300:400]), ("t10k-labels-idx1", y[300:400])):
        write_idx(primed / f"{stem}-ubyte.gz", array)
    code = (
        "import core.datasets as d, core.dataset_files as f\n"
        "f.can_download = lambda name: True\n"
        "x_train, y_train, x_test, y_test = f._download('fashion_mnist')\n"
        "print('FASHION', x_train.shape, x_test.shape, y_test.dtype, int(y_test[0]))\n"
        "try:\n    d.load_dataset('mnist')\n"
        "except f.DatasetUnavailableError as error:\n    print('UNAVAILABLE', error)\n"
    )
    environment = {**os.environ, "HOME": str(tmp_path), "KERAS_HOME": str(tmp_path / "keras"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    environment.pop("CNNCLASSROOM_DATA_DIR", None)
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=environment, capture_output=True,
                            text=True, timeout=120)
    output = result.stdout + result.stderr
    assert f"FASHION (300, 28, 28, 1) (100, 28, 28, 1) int64 {fashion.y_test[300]}" in result.stdout, output
    assert "UNAVAILABLE MNIST is not on this machine" in result.stdout and "the download failed" in result.stdout, output
    assert not list(tmp_path.rglob("mnist.npz"))  # no half-downloaded file left behind
    assert time.perf_counter() - start < 60


# ---------------------------------------------------------------------------------------------
# Shapes


def test_shapes_are_generated_the_same_every_time():
    data = load_dataset("shapes")
    assert data.class_names == ["circle", "square", "triangle", "star", "cross"]
    assert data.x_test.shape == (1200, 64, 64, 3) and len(data.y_train) + len(data.y_val) == 4800
    assert class_counts(data.y_test, 5).tolist() == [240] * 5
    assert data.x_train.std() > 30  # varied colours, not blank images
    small = load_dataset("shapes", image_size=32, color_mode="grayscale", train_subset=500)
    assert small.x_train.shape == (500, 32, 32, 1) and small.x_test.shape == (1200, 32, 32, 1)
    empty_validation = load_dataset("shapes", validation_fraction=0, color_mode="grayscale")
    assert empty_validation.x_val.shape == (0, 64, 64, 1) and len(empty_validation.y_train) == 4800
    shapes_dataset.generate_shapes.cache_clear()
    assert load_dataset("shapes").fingerprint == data.fingerprint


# ---------------------------------------------------------------------------------------------
# Zip and folder imports


def test_import_zip_then_load_it_at_any_size(tmp_path, fashion):
    archive = make_zip(clothes_files(fashion))
    before = files_outside_datasets(tmp_path)
    report = import_zip(archive, ROOT)
    assert report.name.startswith("folder:") and len(report.name) == len("folder:") + 12
    assert report.class_names == ["bag", "trouser", "tshirt"] and report.counts == {"bag": 20, "trouser": 20, "tshirt": 20}
    assert not report.is_binary and "categorical" in report.notes[0] and report.skipped == []
    assert report.image_sizes == {"min": (28, 28), "max": (28, 28), "median": (28, 28)}
    assert files_outside_datasets(tmp_path) == before
    assert report.name in [info.name for info in list_datasets(ROOT)]
    assert dataset_info(report.name, ROOT).image_shape == (28, 28, 1)

    rgb = load_dataset(report.name, image_size=32, color_mode="rgb", root=ROOT)
    assert rgb.x_train.shape[1:] == (32, 32, 3) and rgb.class_names == report.class_names
    assert (len(rgb.y_train), len(rgb.y_val), len(rgb.y_test)) == (43, 5, 12)
    assert class_counts(rgb.y_test, 3).tolist() == [4, 4, 4] and sorted(class_counts(rgb.y_val, 3)) == [1, 2, 2]
    gray = load_dataset(report.name, image_size=32, color_mode="grayscale", root=ROOT)
    assert gray.x_test.shape == (12, 32, 32, 1)
    np.testing.assert_array_equal(gray.y_test, rgb.y_test)
    native = load_dataset(report.name, root=ROOT)
    bags = native.x_test[native.y_test == 0]
    assert any(np.array_equal(bags[0], image) for image in fashion.x_test[fashion.y_test == 8][:20])  # pixels intact

    folder = tmp_path / "registry" / "datasets" / report.name.split(":")[1]
    assert (folder / "manifest.json").is_file() and len(list((folder / "decoded").glob("32x32x3-pad-*.npy"))) == 1
    again = load_dataset(report.name, image_size=32, color_mode="rgb", root=ROOT)  # read back from the decoded file
    assert again.fingerprint == rgb.fingerprint and isinstance(again.x_train, np.memmap)


def test_the_same_zip_twice_is_one_dataset(tmp_path, fashion):
    path = tmp_path / "clothes.zip"
    path.write_bytes(make_zip(clothes_files(fashion)))
    first = import_zip(path, ROOT)
    import_zip(io.BytesIO(make_zip(clothes_files(fashion, per_class=10))), ROOT, title="Another title")  # other photos
    again = {**clothes_files(fashion), "notes.txt": b"where the photos came from"}  # and a file to skip
    second = import_zip(io.BytesIO(make_zip(again)), ROOT, title="Another title")  # the title as given, in its note
    assert first.title == "clothes" and second.name == first.name and second.title == "clothes"
    assert first.skipped == [] and [file for file, _ in second.skipped] == ["notes.txt"]  # this import's own
    assert "already imported" in second.notes[-2] and second.already_imported and not first.already_imported
    assert second.notes[-1] == "It keeps the title it was imported with, “clothes”; “Another title” was not applied."
    assert len(datasets_folder_entries(tmp_path)) == 2  # the clothes once, and the other photos


def test_wrapping_folder_macos_junk_text_files_and_broken_images(fashion):
    files = clothes_files(fashion, per_class=12, image_format="JPEG", prefix="clothes/")
    files |= {"clothes/readme.txt": b"three classes", "clothes/bag/notes.md": b"x", "__MACOSX/clothes/bag/._000.jpeg": b"x",
              "clothes/.DS_Store": b"x", "clothes/bag/.hidden.jpeg": b"x", "clothes/bag/broken.jpeg": b"not an image",
              "clothes/bag/truncated.jpeg": files["clothes/bag/000.jpeg"][:200], "clothes/empty/": b""}
    report = import_zip(make_zip(files), ROOT)
    assert report.title == "clothes" and report.counts == {"bag": 12, "trouser": 12, "tshirt": 12}
    assert any("unwrapped" in note for note in report.notes)
    assert any("'empty' has no readable images" in note for note in report.notes)
    skipped = dict(report.skipped)
    assert set(skipped) == {"clothes/readme.txt", "clothes/bag/notes.md", "clothes/bag/broken.jpeg", "clothes/bag/truncated.jpeg"}
    assert "not an image file" in skipped["clothes/bag/notes.md"] and "unreadable image" in skipped["clothes/bag/broken.jpeg"]
    assert load_dataset(report.name, image_size=16, root=ROOT).x_train.shape[1:] == (16, 16, 1)


def test_two_classes_make_a_binary_dataset(fashion):
    report = import_zip(make_zip(clothes_files(fashion, classes={"shoes": 9, "shirts": 6})), ROOT)
    assert report.is_binary and "binary" in report.notes[0] and "sigmoid" in report.notes[0] and "'shoes'" in report.notes[0]
    assert load_dataset(report.name, root=ROOT).is_binary


def test_import_folder_gives_the_same_dataset_as_the_zip(tmp_path, fashion):
    files = clothes_files(fashion, per_class=8)
    for name, data in files.items():
        (tmp_path / "photos" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "photos" / name).write_bytes(data)
    (tmp_path / "photos" / "bag" / "link.png").symlink_to(tmp_path / "photos" / "bag" / "000.png")
    report = import_folder(tmp_path / "photos", ROOT)
    assert report.title == "photos" and report.counts == {"bag": 8, "trouser": 8, "tshirt": 8}
    assert report.skipped == [("bag/link.png", "symbolic link, not followed")]
    assert import_zip(make_zip(files), ROOT).name == report.name
    with pytest.raises(DatasetError, match="No such file or folder"):
        import_folder(tmp_path / "missing", ROOT)


def symlink_entry():
    info = zipfile.ZipInfo("bag/passwd.png")
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize("hostile, message", [
    ({"../evil.png": b"x"}, "points outside the archive"),
    ({"/tmp/evil.png": b"x"}, "points outside the archive"),
    ({"bag/..\\..\\evil.png": b"x"}, "points outside the archive"),
    ({"C:/evil.png": b"x"}, "points outside the archive"),
    ({symlink_entry(): b"/etc/passwd"}, "symbolic link"),
    ({"bag/zeros.png": bytes(5 * 2**20)}, "expands .*x .*zip bomb"),
])
def test_hostile_zips_are_refused_and_leave_nothing_behind(tmp_path, fashion, hostile, message):
    archive = make_zip(clothes_files(fashion, per_class=3) | hostile)
    before = files_outside_datasets(tmp_path)
    with pytest.raises(DatasetError, match=message):
        import_zip(archive, ROOT)
    assert files_outside_datasets(tmp_path) == before and datasets_folder_entries(tmp_path) == []
    assert not list(tmp_path.parent.glob("evil.png")) and not Path("/tmp/evil.png").exists()


def test_zip_bomb_over_the_total_limit(tmp_path, fashion, monkeypatch):
    monkeypatch.setattr(folders, "MAX_UNCOMPRESSED_BYTES", 2**20)
    zeros = {f"bag/zeros{index}.png": bytes(2**19) for index in range(3)}  # 1.5 MiB, each under the ratio check
    with pytest.raises(DatasetError, match="expands to 1.5 MiB; the limit is 1.0 MiB"):
        import_zip(make_zip(clothes_files(fashion, per_class=3) | zeros), ROOT)
    assert datasets_folder_entries(tmp_path) == []


def test_too_many_files(tmp_path, fashion, monkeypatch):
    monkeypatch.setattr(folders, "MAX_FILES", 10)
    with pytest.raises(DatasetError, match="12 entries; the limit is 10"):
        import_zip(make_zip(clothes_files(fashion, per_class=4)), ROOT)
    assert datasets_folder_entries(tmp_path) == []


@pytest.mark.parametrize("classes, message", [
    ({"bag": 8}, r"at least 2 class folders with readable images; found 1 \(bag: 3\)"),
    ({}, "found 0 \\(none\\)"),
])
def test_fewer_than_two_classes(tmp_path, fashion, classes, message):
    files = clothes_files(fashion, per_class=3, classes=classes) | {"shoes/": b"", "shirts/": b"", "shirts/a.txt": b"x"}
    with pytest.raises(DatasetError, match=message):
        import_zip(make_zip(files), ROOT)
    assert datasets_folder_entries(tmp_path) == []  # the staging folder is gone too


def test_zip_too_large_and_images_with_too_many_pixels(tmp_path, fashion, monkeypatch):
    archive = make_zip(clothes_files(fashion, per_class=3))
    monkeypatch.setattr(folders, "MAX_ZIP_BYTES", 1000)
    with pytest.raises(DatasetError, match="the limit is 0.0 MiB"):
        import_zip(archive, ROOT)
    monkeypatch.setattr(folders, "MAX_ZIP_BYTES", 2**20)
    monkeypatch.setattr(imaging, "MAX_PIXELS", 700)  # 28x28 = 784 pixels: every image is a "bomb"
    with pytest.raises(DatasetError, match="found 0") as error:
        import_zip(archive, ROOT)
    # why, with files named: an import that found nothing said only "Skipped 9 files"
    assert "Skipped 9 files — unreadable image: 9 (" in str(error.value) and ", …)." in str(error.value)
    assert datasets_folder_entries(tmp_path) == []


def test_transparent_and_palette_images_load_on_white(fashion):
    transparent = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    transparent.paste((200, 0, 0, 255), (5, 5, 15, 15))
    palette = Image.new("P", (20, 20), 0)
    palette.putpalette([0, 0, 0, 0, 0, 255])
    palette.paste(1, (5, 5, 15, 15))
    palette.info["transparency"] = 0
    files = {}
    for name, image in (("red", transparent), ("blue", palette)):
        for index in range(3):
            buffer = io.BytesIO()
            image.save(buffer, "PNG", **({"transparency": 0} if image.mode == "P" else {}))
            files[f"{name}/{index}.png"] = buffer.getvalue()
    report = import_zip(make_zip(files), ROOT)
    assert dataset_info(report.name, ROOT).image_shape == (20, 20, 3)
    data = load_dataset(report.name, validation_fraction=0, root=ROOT)
    images = np.concatenate([data.x_train, data.x_test])
    assert (images[:, 0, 0] == 255).all()  # the transparent corner is white
    assert {tuple(pixel) for pixel in images[:, 10, 10]} == {(200, 0, 0), (0, 0, 255)}


def test_not_a_zip_and_a_corrupt_zip(tmp_path, fashion):
    with pytest.raises(DatasetError, match="not a readable .zip"):
        import_zip(b"PK\x03\x04 this is not really a zip", ROOT)
    archive = bytearray(make_zip(clothes_files(fashion, per_class=3), compression=zipfile.ZIP_STORED))
    archive[200:260] = bytes(60)  # damage the first image's bytes: its CRC no longer matches
    with pytest.raises(DatasetError, match="corrupt"):
        import_zip(bytes(archive), ROOT)
    with pytest.raises(DatasetError, match="No such file"):
        import_zip(tmp_path / "missing.zip", ROOT)
    assert datasets_folder_entries(tmp_path) == []


def test_dataset_info_knows_how_many_training_images_without_loading():
    for name in ("fashion_mnist", "shapes"):
        dataset = load_dataset(name)
        assert dataset_info(name).training_images == len(dataset.y_train) + len(dataset.y_val)


def test_photos_zipped_without_class_folders_are_told_to_go_into_them(tmp_path, fashion):
    flat = {path.replace("/", "-"): data for path, data in clothes_files(fashion, per_class=5).items()}  # no folders
    with pytest.raises(DatasetError, match=f"Its {len(flat)} photos are not in class folders: put each class's photos "
                                           "in a folder named after the class"):
        import_zip(make_zip(flat), ROOT)


def test_a_subset_as_large_as_the_data_is_all_of_it():
    """Compare's 5,000 Shapes images were all 4,320 of them, under another key and a title naming 5,000."""
    from core.config import TrainConfig
    from core.course import training_images, within_the_data

    available = training_images("shapes")
    assert len(load_dataset("shapes").y_train) == available
    for subset in (available, available + 1, 5000):
        assert within_the_data(TrainConfig(dataset="shapes", train_subset=subset)).train_subset is None
    smaller = TrainConfig(dataset="shapes", train_subset=available - 1)
    assert within_the_data(smaller) == smaller
    assert len(load_dataset("shapes", train_subset=available - 1).y_train) == available - 1
    with pytest.raises(DatasetError, match="Unknown dataset"):  # the command line refuses before TensorFlow starts
        within_the_data(TrainConfig(dataset="nope", train_subset=10))
