"""core.archives: the one zip-safety check behind dataset zips (core.folders.import_zip) and .keras imports."""

import io
import zipfile

import pytest

from core.archives import check_zip_entries
from core.errors import DatasetError, ModelFileError
from core.folders import import_zip
from core.registry import Registry

ZEROS = bytes(5 * 2**20)  # 5 MiB of zeros deflate about 1000x: far past the 100x limit, and over its 1 MiB floor
OUTSIDE = ["../evil.png", "bag/../../evil.png", "/tmp/evil.png", "bag/..\\..\\evil.png", "C:/evil.png"]


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """A private registry for the imports."""
    monkeypatch.setenv("CNNCLASSROOM_REGISTRY", str(tmp_path / "registry"))


def make_zip(entries):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)  # a str name keeps '../' and '/' as written
    return buffer.getvalue()


def test_a_zip_bomb_is_refused_as_a_dataset_zip_and_as_a_keras_file(tmp_path):
    with pytest.raises(DatasetError, match=r"'bag/zeros.png' in the zip expands \d+x .*like a zip bomb"):
        import_zip(make_zip({"bag/zeros.png": ZEROS, "shoes/a.png": b"x"}), tmp_path / "registry")
    assert not (tmp_path / "registry" / "datasets").exists()

    bomb = tmp_path / "bomb.keras"
    bomb.write_bytes(make_zip({"config.json": ZEROS, "metadata.json": b"{}"}))
    registry = Registry(tmp_path / "registry")
    with pytest.raises(ModelFileError, match=r"'config.json' in bomb.keras expands \d+x .*like a zip bomb"):
        registry.import_model(bomb)
    assert registry.list_entries() == [] and not any(registry.models_dir.iterdir())


@pytest.mark.parametrize("name", OUTSIDE)
def test_an_entry_outside_the_archive_is_refused(name, tmp_path):
    archive = make_zip({"bag/a.png": b"x", name: b"x"})
    with pytest.raises(DatasetError, match=r"points outside the archive"):
        import_zip(archive, tmp_path / "registry")
    # The same check raises the model files' error class. Registry.import_model leaves it off: Keras reads a
    # .keras file by entry name and never writes such an entry out (tests/robustness/test_model_files.py).
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        entries = opened.infolist()
    with pytest.raises(ModelFileError, match="in model.keras points outside the archive"):
        check_zip_entries(entries, ModelFileError, archive_name="model.keras", contents="model weights",
                          max_expanded_bytes=2**20, max_compression_ratio=100, ratio_check_min_bytes=2**20,
                          refuse_unsafe_entries=True)


def test_the_limits_are_the_callers():
    entries = []
    for index in range(3):
        entry = zipfile.ZipInfo(f"bag/{index}.png")
        entry.file_size, entry.compress_size = 2**19, 2**10  # 512x, but small entries are not ratio-checked
        entries.append(entry)
    limits = {"archive_name": "the zip", "contents": "images", "max_compression_ratio": 100, "ratio_check_min_bytes": 2**20}
    check_zip_entries(entries, DatasetError, max_entries=3, max_expanded_bytes=2**21, **limits)
    with pytest.raises(DatasetError, match="the zip has 3 entries; the limit is 2"):
        check_zip_entries(entries, DatasetError, max_entries=2, max_expanded_bytes=2**21, **limits)
    with pytest.raises(DatasetError, match=r"the zip expands to 1.5 MiB; the limit is 1.0 MiB"):
        check_zip_entries(entries, DatasetError, max_expanded_bytes=2**20, **limits)
