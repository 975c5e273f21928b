"""An imported dataset's manifest.json, read through `core.manifest.Manifest`: what an import writes reads back the
same, a first-version manifest (no splits) still loads, and a damaged one is refused in one place with one message
while the other datasets stay listed. Every photo is generated (tests/photos.py)."""

import json

import pytest
from photos import photo_files, zip_bytes

from core.catalogue import dataset_info, folder_path, list_datasets, read_manifest
from core.datasets import load_dataset, split_table
from core.errors import DatasetError
from core.folders import import_report, import_zip
from core.manifest import MANIFEST_FILE, Manifest


@pytest.fixture
def imported(tmp_path):
    """(registry root, dataset name) of a zip with train/ and validation/ folders: 10 + 3 photos per class."""
    root = tmp_path / "registry"
    files = photo_files({"train": 10, "validation": 3}, prefix="photos/", size=(80, 60), image_format="JPEG")
    report = import_zip(zip_bytes(files), root, title="Round or angular")
    return root, report.name


def manifest_file(root, name):
    return folder_path(root, name) / MANIFEST_FILE


def test_what_an_import_writes_reads_back_the_same(imported):
    root, name = imported
    stored = json.loads(manifest_file(root, name).read_text())
    manifest = read_manifest(root, name)
    assert manifest.to_json() == stored
    assert manifest.title == "Round or angular" and manifest.class_names == ("angular", "round")
    assert manifest.splits.count("train") == 20 and manifest.splits.count("validation") == 6
    assert manifest.labels.count(0) == manifest.labels.count(1) == 13
    assert manifest.is_binary and manifest.image_shape == (60, 80, 3)


def test_a_first_version_manifest_without_splits_still_loads(imported):
    """Version 1 stored images as [file, class] and had no split counts or sources: every photo is a training photo,
    and the test and validation photos are carved from them."""
    root, name = imported
    stored = json.loads(manifest_file(root, name).read_text())
    first_version = {key: value for key, value in stored.items()
                     if key not in ("split_counts", "split_sources", "course", "format_version")}
    first_version["images"] = [[file, class_name] for file, class_name, _ in stored["images"]]
    manifest_file(root, name).write_text(json.dumps(first_version))

    manifest = read_manifest(root, name)
    assert manifest.format_version == 1 and set(manifest.splits) == {"train"}
    training_images = dataset_info(name, root).training_images
    assert training_images == 26 - round(0.2 * 26)
    report = import_report(root, name)
    assert report.split_counts == {"train": {"angular": 13, "round": 13}} and "carved" in report.split_sources["test"]
    table = split_table(root, name)
    assert sum(table["test"].values()) == 26 - training_images and sum(sum(table[split].values()) for split in table) == 26
    dataset = load_dataset(name, root=root, image_size=32)
    assert len(dataset.x_test) == 26 - training_images and dataset.x_train.shape[1:] == (32, 32, 3)


@pytest.mark.parametrize("damage, named", [
    (lambda data: data.pop("class_names"), "'class_names' is missing"),
    (lambda data: data.update(title=["a", "list"]), "'title' is list"),
    (lambda data: data["images"].append([3, "round", "train"]), "'images' holds"),
    (lambda data: data["images"].append(["images/x.png", "oval", "train"]), "classes not in class_names: ['oval']"),
    (lambda data: data.update(image_shape=[60, 80]), "'image_shape' holds"),
    (lambda data: data["counts"].update(round="13"), "'counts' holds"),
    (lambda data: data.update(split_counts=[1, 2]), "'split_counts' is list"),
    (lambda data: data.update(image_sizes={}), "'image_sizes' holds [], not min, max and median"),
    (lambda data: data.update(images=[]), "2 classes and 0 images"),
    (lambda data: data.update(image_shape=[60, 80, 4]), "1 or 3 channels"),
])
def test_a_damaged_manifest_is_refused_with_one_message_and_the_others_stay_listed(imported, tmp_path, damage,
                                                                                  named):
    root, name = imported
    other = import_zip(zip_bytes(photo_files({"train": 8}, kinds=("round", "ring"), seed=1, size=(40, 40))), root,
                       title="Another").name
    stored = json.loads(manifest_file(root, name).read_text())
    damage(stored)
    manifest_file(root, name).write_text(json.dumps(stored))
    with pytest.raises(DatasetError, match="The manifest of this dataset is damaged") as raised:
        dataset_info(name, root)
    assert named in str(raised.value)
    assert [info.name for info in list_datasets(root, ask_network=False) if info.name.startswith("folder:")] == [other]


def test_a_manifest_that_is_not_an_object_is_refused():
    with pytest.raises(ValueError, match="not a JSON object"):
        Manifest.from_json([1, 2])
