"""Photo datasets as the course ships them: split folders at any depth, a separate validation zip, webcam shots,
and reads bounded by declared sizes. Every photo is generated here (tests/photos.py); nothing is stubbed."""

import dataclasses
import os

import numpy as np
import pytest
from photos import photo_files, zip_bytes

from core.catalogue import (DECODED_FOLDER, dataset_info, dataset_titles, folder_path, imported_manifests, list_datasets,
                            read_manifest)
from core.datasets import check_trainable, load_dataset, split_table
from core.errors import DatasetError, ImageError
from core.folders import add_validation, import_folder, import_images, import_report, import_zip, sizes_text
from core.splits import read_layout, split_indices
from core.webcam import WebcamClasses, min_shots_per_class, shot_id


@pytest.fixture
def root(tmp_path):
    return tmp_path / "registry"


@pytest.fixture(scope="module")
def course_files():
    """A small course-like zip's files: wrapper/train/{round,angular} (12 each) and wrapper/validation (4 each)."""
    return photo_files({"train": 12, "validation": 4}, prefix="horse-or-human/", size=(120, 90), image_format="JPEG")


# ---------------------------------------------------------------------------------------------
# Layouts: which folders are splits, which are classes


@pytest.mark.parametrize("prefix, train, validation, test", [
    ("", "train", "validation", None),
    ("rps/", "training", "valid", "testing"),
    ("Downloads/data/set/", "TRAIN", "val", "test"),
])
def test_split_folders_are_recognised_at_any_depth_in_every_spelling(prefix, train, validation, test):
    paths = [f"{prefix}{train}/{name}/{index}.png" for name in ("cats", "dogs") for index in range(3)]
    paths += [f"{prefix}{validation}/{name}/v{index}.png" for name in ("cats", "dogs") for index in range(2)]
    paths += [f"{prefix}{test}/{name}/t.png" for name in ("cats", "dogs")] if test else []
    layout = read_layout(paths + [f"{prefix}README.png"], [])
    assert layout.class_names == ["cats", "dogs"]
    assert layout.split_folders["train"] == f"{prefix}{train}" and layout.split_folders["validation"] == f"{prefix}{validation}"
    assert ("test" in layout.split_folders) == bool(test)
    assert {placement.split for placement in layout.placements.values()} == {"train", "validation"} | ({"test"} if test else set())
    assert layout.outside == [f"{prefix}README.png"]


def test_class_folders_named_like_splits_stay_classes():
    """A class folder that holds its photos directly is a class, even if it is called 'test'."""
    layout = read_layout(["test/a.png", "test/b.png", "other/c.png"], [])
    assert layout.split_folders == {} and layout.class_names == ["other", "test"]


def test_class_folders_that_differ_between_splits_are_an_error_naming_them():
    paths = ["train/cats/1.png", "train/dogs/1.png", "validation/cats/1.png", "validation/dgos/1.png"]
    with pytest.raises(DatasetError, match=r"train/ has no 'dgos'; validation/ has no 'dogs'"):
        read_layout(paths, [])
    with pytest.raises(DatasetError, match="no training folder"):
        read_layout(["validation/cats/1.png", "test/cats/2.png", "validation/dogs/1.png", "test/dogs/2.png"], [])


def test_split_rules_validation_folder_is_also_the_test_set_and_a_missing_validation_is_carved():
    labels = np.array([0, 1] * 20)
    train, validation, test = split_indices(["train"] * 30 + ["validation"] * 10, labels, 0.1)
    assert test is validation and set(validation) == set(range(30, 40)) and set(train) == set(range(30))
    train, validation, test = split_indices(["train"] * 30 + ["test"] * 10, labels, 0.2)
    assert set(test) == set(range(30, 40)) and len(validation) == 6 and not set(validation) & set(train)
    assert set(validation) | set(train) == set(range(30))
    train, validation, test = split_indices(["train"] * 40, labels, 0.1)  # no folders: 20% test, then 10% validation
    assert (len(train), len(validation), len(test)) == (29, 3, 8)


# ---------------------------------------------------------------------------------------------
# Importing the course's layouts


def test_a_zip_with_train_and_validation_folders_imports_with_its_splits(root, course_files):
    progress = []
    report = import_zip(zip_bytes(course_files | {"horse-or-human/notes.txt": b"x"}), root,
                        on_progress=lambda done, total: progress.append((done, total)))
    assert report.class_names == ["angular", "round"] and report.title == "horse-or-human"
    assert report.split_counts == {"train": {"angular": 12, "round": 12}, "validation": {"angular": 4, "round": 4}, "test": {}}
    assert report.split_sources["validation"] == "the folder horse-or-human/validation/"
    assert "validation photos" in report.split_sources["test"]
    assert any("Split folders recognised" in note for note in report.notes)
    assert progress[-1] == (32, 32) and [done for done, _ in progress] == list(range(1, 33))
    assert split_table(root, report.name) == {"train": {"angular": 12, "round": 12}, "validation": {"angular": 4, "round": 4},
                                               "test": {"angular": 4, "round": 4}}
    data = load_dataset(report.name, image_size=32, root=root)
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (24, 8, 8)
    np.testing.assert_array_equal(data.x_test, data.x_val)  # the validation photos are the test photos
    assert data.split_sources == report.split_sources
    assert dataset_info(report.name, root).training_images == 32


def test_two_different_imports_with_one_title_are_told_apart_and_so_are_their_models(root, course_files):
    """A teacher imports horse-or-human with its validation zip; a student uploads horse-or-human alone. Two datasets,
    one name: the second is titled "… (2)", so the models trained on each have titles of their own. The same photos
    imported again keep their dataset and its title."""
    from core.config import TrainConfig
    from core.guide import title_for
    from core.registry import Registry

    train_only = {name.replace("train/", ""): data for name, data in course_files.items() if "/train/" in name}
    first = import_zip(zip_bytes(course_files), root)
    second = import_zip(zip_bytes(train_only), root)
    assert first.title == "horse-or-human" and second.title == "horse-or-human (2)"
    assert import_zip(zip_bytes(train_only), root).title == second.title  # the same photos: the same dataset
    registry = Registry(root)
    titles = {title_for(TrainConfig(family="cnn", dataset=report.name), registry) for report in (first, second)}
    assert len(titles) == 2
    # a built-in dataset's title or name (a teacher's walk: models on two "Shapes", `--dataset Shapes` ambiguous)
    third = import_zip(zip_bytes(course_files), root / "other", title="shapes")
    assert third.title == "shapes (2)"
    assert import_zip(zip_bytes(train_only), root / "other", title="Fashion-MNIST").title == "Fashion-MNIST (2)"


def test_a_second_zip_becomes_the_validation_split_of_an_existing_dataset(root, course_files):
    train_only = {name.replace("train/", ""): data for name, data in course_files.items() if "/train/" in name}
    validation = {name.replace("horse-or-human/validation/", "val-set/"): data
                  for name, data in course_files.items() if "/validation/" in name}
    first = import_zip(zip_bytes(train_only), root)
    assert split_table(root, first.name)["test"] == {"angular": 3, "round": 2}  # carved: 20% of 24, stratified
    added = add_validation(root, first.name, zip_bytes(validation))
    assert added.name != first.name and added.split_counts["validation"] == {"angular": 4, "round": 4}
    assert "second zip" in added.split_sources["validation"] and added.title == f"{first.title} + validation photos"
    assert {info.name for info in list_datasets(root)} >= {first.name, added.name}  # the original stays for its models
    labels = dataset_titles(list_datasets(root))  # two titles: the new one names its validation photos
    assert (labels[first.name], labels[added.name]) == (first.title, added.title)
    named = add_validation(root, first.name, zip_bytes(validation), validation_title="val-set")
    assert named.name == added.name and named.title == added.title  # the same photos: the same dataset
    same_title = dataclasses.replace(dataset_info(added.name, root), name="folder:000000000000", title=first.title)
    labels = dataset_titles([dataset_info(first.name, root), same_title])  # same title: told apart by what they hold
    assert labels[first.name] == f"{first.title} (17 training, 2 validation images)"  # 19 less the 2 carved (10%)
    assert labels[same_title.name] == f"{first.title} (24 training, 8 validation images)"  # all 24 train: its own validation
    twin = dataclasses.replace(dataset_info(first.name, root), name="folder:000000000000")  # same title and size
    assert dataset_titles([dataset_info(first.name, root), twin])[twin.name].endswith(" images), copy 2")
    imported = set(imported_manifests(root))
    with_a_note = {**train_only, "horse-or-human/README.txt": b"photos drawn for the tests"}
    together = import_zip(zip_bytes(with_a_note), root, validation=zip_bytes(validation))  # CLI: --validation
    assert together.name == added.name and together.already_imported  # the same photos, another way: one dataset
    assert [file for file, _ in together.skipped] == ["horse-or-human/README.txt"] and not added.skipped  # its own
    assert "another way" in together.notes[-2]
    assert together.notes[-1] == f"It keeps the title it was imported with, “{added.title}”; “{first.title}” was not applied."
    assert set(imported_manifests(root)) == imported
    elsewhere = root.parent / "command line first"  # the other order: the command line, then the page's second zip
    together = import_zip(zip_bytes(train_only), elsewhere, validation=zip_bytes(validation))
    page = add_validation(elsewhere, import_zip(zip_bytes(train_only), elsewhere).name, zip_bytes(validation))
    assert page.name == together.name and page.already_imported and len(imported_manifests(elsewhere)) == 2
    with pytest.raises(DatasetError, match="own validation or test photos already"):
        add_validation(root, added.name, zip_bytes(validation))
    wrong = {name.replace("/round/", "/circle/"): data for name, data in validation.items()}
    with pytest.raises(DatasetError, match="the validation photos have no 'round'"):
        add_validation(root, first.name, zip_bytes(wrong))


def test_a_folder_with_split_folders_and_a_validation_folder_import_like_zips(tmp_path, root, course_files):
    for name, data in course_files.items():
        (tmp_path / "photos" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "photos" / name).write_bytes(data)
    os.mkfifo(tmp_path / "photos" / "horse-or-human" / "train" / "round" / "pipe.png")  # never opened: it would hang
    report = import_folder(tmp_path / "photos", root)
    assert report.split_counts["validation"] == {"angular": 4, "round": 4}
    assert ("horse-or-human/train/round/pipe.png", "not a regular file (a pipe, socket or device), not opened") in report.skipped
    assert import_report(root, report.name).split_sources == report.split_sources


def test_declared_sizes_are_checked_before_anything_is_read(root, course_files, monkeypatch):
    from core import folders

    limit = int(np.median([len(data) for data in course_files.values()]))
    monkeypatch.setattr(folders, "MAX_IMAGE_BYTES", limit)
    big = {name: data for name, data in course_files.items() if len(data) > limit}
    assert 0 < len(big) < len(course_files)
    read = []
    original = folders._read_entry
    monkeypatch.setattr(folders, "_read_entry", lambda archive, info: read.append(info.filename) or original(archive, info))
    report = import_zip(zip_bytes(course_files), root)
    assert not set(read) & set(big)  # skipped on their declared size: not one byte of them was read
    assert {file for file, reason in report.skipped if "a photo may be at most" in reason} == set(big)


def test_a_validation_zip_with_split_folders_of_its_own_is_refused(root, course_files):
    with pytest.raises(DatasetError, match="Give the validation photos once"):
        import_zip(zip_bytes(course_files), root, validation=zip_bytes(course_files))


# ---------------------------------------------------------------------------------------------
# Webcam shots


def test_webcam_shots_become_a_dataset(root):
    from photos import encode, photo

    rng = np.random.default_rng(5)
    classes = WebcamClasses()
    assert classes.rename("thumbs up, thumbs down, thumbs up") == ["thumbs up", "thumbs down"]
    least = min_shots_per_class(2)  # 10: the validation and test splits then hold both classes
    for name, kind in (("thumbs up", "round"), ("thumbs down", "angular")):
        for _ in range(least + 1):
            classes.add(name, encode(photo(kind, rng, (704, 396)), "JPEG"))  # Chromium's fake camera's frame size
    assert classes.problem() is None
    classes.delete("thumbs down", shot_id(classes.shots["thumbs down"][0]))
    assert classes.counts() == {"thumbs up": least + 1, "thumbs down": least} and classes.problem() is None
    classes.delete("thumbs down", shot_id(classes.shots["thumbs down"][0]))
    assert f"Take at least {least} photos of every class" in classes.problem()
    classes.add("thumbs down", encode(photo("angular", rng, (704, 396)), "JPEG"))
    with pytest.raises(DatasetError, match="Name 2 to 5"):
        classes.rename("only one")
    with pytest.raises(Exception, match="Could not read"):
        classes.add("thumbs up", b"not a photo")
    # the camera restarts after each shot: a quick press took a black frame, 6 of a class's 34 photos
    from PIL import Image

    before = classes.counts()
    for blank in (Image.new("RGB", (940, 529)), Image.new("RGB", (640, 480), (120, 121, 119))):
        with pytest.raises(ImageError, match="all one colour .* was not added to 'thumbs up'"):
            classes.add("thumbs up", encode(blank, "JPEG"))
    assert classes.counts() == before
    dark = np.clip(np.asarray(photo("round", rng, (704, 396)), dtype=float) * 0.15, 0, 255).astype(np.uint8)
    classes.add("thumbs up", encode(Image.fromarray(dark), "JPEG"))  # a dim room is still a photo
    classes.delete("thumbs up", shot_id(classes.shots["thumbs up"][-1]))
    assert classes.rename("thumbs up, thumbs down, ok") == ["thumbs up", "thumbs down", "ok"]
    assert classes.counts()["thumbs up"] == least + 1 and "ok" in classes.problem()
    assert "With 3 classes, 11 each is the fewest" in classes.problem()
    classes.rename("thumbs up, thumbs down")

    # Nothing is lost by editing the names: a name typed over another is a rename, a removed class waits aside.
    counts = classes.counts()
    classes.rename("Thumbs Up, thumbs down")
    assert classes.counts() == {"Thumbs Up": counts["thumbs up"], "thumbs down": counts["thumbs down"]}
    classes.rename("Thumbs Up, left")  # 'thumbs down' typed over: renamed, photos and all
    assert classes.counts() == {"Thumbs Up": counts["thumbs up"], "left": counts["thumbs down"]}
    assert classes.renamed == {"thumbs down": "left"}  # the page's "Take photos of" follows it
    classes.rename("left, right")  # 'Thumbs Up' taken out, a new class in its place: set aside
    assert classes.counts() == {"left": counts["thumbs down"], "right": 0}
    assert classes.set_aside_note() == f"Set aside: 'Thumbs Up' ({counts['thumbs up']} photos). Type a name again to " \
                                      "bring its photos back."
    classes.rename("Thumbs Up, left")  # typed again: back with its photos
    assert classes.counts() == {"Thumbs Up": counts["thumbs up"], "left": counts["thumbs down"]}
    assert classes.set_aside_note() is None
    classes.rename("thumbs up, thumbs down")  # both places typed over: both renamed
    assert classes.counts() == counts
    report = classes.to_dataset(root)
    assert report.counts == {"thumbs down": least, "thumbs up": least + 1}
    assert report.title == "Webcam: thumbs up vs thumbs down"
    assert read_manifest(root, report.name).image_shape == (64, 64, 3)  # 704x396: loads at 64x64 by default
    with pytest.raises(DatasetError, match="at most 40 characters"):
        import_images(root, {"a/b": [b"x"], "c": [b"y"]})


def test_an_import_decodes_each_photo_once_and_training_reads_the_same_arrays(course_files, root, monkeypatch):
    """The photos are prepared at IMPORT_SIDES while they are checked; loading at such a size then decodes nothing
    and gives exactly the arrays that decoding the stored photos gives (a damaged photo skipped on the way)."""
    from core import folder_arrays

    files = dict(course_files) | {"horse-or-human/train/round/damaged.png": b"\x89PNG\r\n\x1a\n not a photo"}
    report = import_zip(zip_bytes(files), root)
    assert [path for path, _ in report.skipped] == ["horse-or-human/train/round/damaged.png"]

    def decoding(*arguments, **keywords):
        raise AssertionError("a photo was decoded again after the import")

    side = folder_arrays.IMPORT_SIDES[0]
    with monkeypatch.context() as patched:
        patched.setattr(folder_arrays, "photo_to_input", decoding)
        reordered = load_dataset(report.name, image_size=side, color_mode="rgb", root=root)
    for decoded in (folder_path(root, report.name) / DECODED_FOLDER).iterdir():
        decoded.unlink()
    fresh = load_dataset(report.name, image_size=side, color_mode="rgb", root=root)
    for split in ("x_train", "x_val", "x_test"):
        assert getattr(reordered, split).shape[1:] == (side, side, 3)
        np.testing.assert_array_equal(getattr(reordered, split), getattr(fresh, split), err_msg=split)


def test_a_class_missing_from_the_test_photos_is_refused_before_it_could_score_100_percent(root):
    """30 round photos and 1 angular one: the stratified test split would hold round photos only, so a model that
    always answers 'round' would score 100% there. The import says so; training is refused."""
    files = photo_files({"train": 30}, kinds=("round",), size=(64, 64), split_folders=False)
    files |= photo_files({"train": 1}, kinds=("angular",), size=(64, 64), split_folders=False, seed=1)
    report = import_zip(zip_bytes(files), root)
    assert "Class 'angular' has only 1 image;" in " ".join(report.notes)
    assert any("add at least 10 images per class" in note for note in report.notes)
    with pytest.raises(DatasetError, match="class 'angular' has 1 photo, and none of them is left for the test photos"):
        check_trainable(root, report.name)  # what the training pages, the command line and the worker ask first


def test_a_validation_folder_without_a_class_is_named_since_more_training_photos_cannot_mend_it():
    from core.splits import check_enough_images

    splits = ["train"] * 40 + ["validation"] * 5
    labels = [0] * 20 + [1] * 20 + [0] * 5  # the validation folder (also the test photos) holds no pears
    with pytest.raises(DatasetError, match="the validation folder has no 'pears' photos"):
        check_enough_images(splits, labels, ["apples", "pears"], 0.1, "fruit")


def test_a_deleted_dataset_waits_in_the_trash_and_comes_back(root, course_files, capsys):
    from core import cli
    from core.folders import delete_dataset, restore_dataset
    from core.trash import list_dataset_trash

    report = import_zip(zip_bytes(course_files), root, title="Horses, lesson 3")
    item = delete_dataset(root, report.name)
    assert item.title == report.title and report.name not in [info.name for info in list_datasets(root)]
    assert [deleted.key for deleted in list_dataset_trash(root)] == [report.name.removeprefix("folder:")]
    with pytest.raises(DatasetError, match=f"The dataset “{report.title}” was deleted on .* waits in the trash until"):
        delete_dataset(root, report.name)
    restore_dataset(root, report.name)
    assert load_dataset(report.name, image_size=32, root=root).y_train.size and not list_dataset_trash(root)

    assert cli.main(["--root", str(root), "datasets", "delete", report.title]) == 0  # by its title, as pages name it
    assert cli.main(["--root", str(root), "datasets", "restore"]) == 0
    assert f"{report.name}  deleted" in capsys.readouterr().out
    assert cli.main(["--root", str(root), "datasets", "restore", report.title]) == 0
    capsys.readouterr()
    assert cli.main(["--root", str(root), "datasets", "delete", report.name]) == 0
    # named by its title or its id's beginning while deleted: training on it says where it is, not "no dataset here"
    # (nor "Did you mean 'shapes'?"), and `list --dataset` looks for its models, which stay
    for typed in (report.title.upper(), report.name.removeprefix("folder:")[:5]):
        assert cli.main(["--root", str(root), "train", "--dataset", typed, "--epochs", "1"]) == 1
        assert f"The dataset “{report.title}” was deleted on" in capsys.readouterr().err
    assert cli.main(["--root", str(root), "list", "--dataset", report.title]) == 0
    assert "No model matches" in capsys.readouterr().out  # none trained here; the filter was its name
    from core.lookup import dataset_named
    assert dataset_named(report.title, root) == report.name
    again = import_zip(zip_bytes(course_files), root)  # the same photos imported again meanwhile
    assert again.name == report.name and not list_dataset_trash(root)  # the deleted copy is no longer listed
    assert again.title == report.title  # its models were trained under it (it was the zip's name, "horse-or-human")
    assert "A deleted copy of these photos waited in the trash" in " ".join(again.notes)
    assert cli.main(["--root", str(root), "datasets", "restore", report.name]) == 1
    assert "No deleted dataset" in capsys.readouterr().err
    # two deleted datasets of one title (only live datasets hold a title): named by their ids, not "no dataset here"
    delete_dataset(root, again.name)
    train_only = {name.replace("train/", ""): data for name, data in course_files.items() if "/train/" in name}
    delete_dataset(root, import_zip(zip_bytes(train_only), root, title=report.title).name)  # other photos, one title
    with pytest.raises(DatasetError, match=r"2 deleted datasets are named or titled 'HORSES, LESSON 3': name one by"):
        dataset_named(report.title.upper(), root)


def test_the_photo_sizes_named_are_sizes_of_real_photos(root):
    """Width and height each had their own median: 300×300 and 480×640 photos made a 'median 390×470' no photo has."""
    from photos import photo_files

    files = photo_files({"train": 5}, kinds=("round",), size=(300, 300), split_folders=False)
    files |= photo_files({"train": 6}, kinds=("angular",), size=(480, 640), split_folders=False, seed=2)
    report = import_zip(zip_bytes(files), root)
    assert sizes_text(report.image_sizes) == ("from 300×300 to 480×640, the middle one 480×640 (width × height, ranked "
                                              "by their number of pixels)")  # 6 of the 11 are 480×640


def test_large_photos_are_named_by_their_own_size_not_the_size_they_decode_at(root):
    """A large JPEG decodes at 1/2, 1/4 or 1/8 scale (core.imaging.read_image): 4000×3000 photos were said to be
    "from 1200×900 to 2000×1500", and photos all 320×240 to "differ in size or be large"."""
    import io

    from photos import encode, photo

    from core.imaging import read_image

    rng = np.random.default_rng(3)  # at least 2,048 a side: decoded at half size (1,200 × 1,050)
    files = photo_files({"train": 3}, kinds=("round",), size=(2400, 2100), image_format="JPEG", split_folders=False)
    turned = photo("angular", rng, (2400, 2100))
    exif = turned.getexif()
    exif[0x0112] = 6  # taken with the phone upright: shown 2,100 wide and 2,400 tall
    for index in range(3):
        buffer = io.BytesIO()
        turned.save(buffer, "JPEG", quality=85, exif=exif)
        files[f"angular/{index}.jpg"] = buffer.getvalue()
    report = import_zip(zip_bytes(files), root)
    assert (tuple(report.image_sizes["min"]), tuple(report.image_sizes["max"])) == ((2100, 2400), (2400, 2100))
    assert "1200" not in sizes_text(report.image_sizes) and "1050" not in sizes_text(report.image_sizes)
    assert any(note.startswith("The images differ in size;") for note in report.notes)
    same = {f"{kind}/{index}.png": encode(photo(kind, rng, (320, 240))) for kind in ("round", "angular") for index in range(3)}
    notes = import_zip(zip_bytes(same), root).notes
    assert any(note.startswith("The images are more than 256 pixels on a side;") for note in notes), notes
    assert not any("differ in size" in note for note in notes)
    assert read_image(files["round/round-train-0000.jpg"], "x.jpg").size == (1200, 1050)  # what the import decodes


def test_validation_photos_that_are_training_photos_are_refused_or_noted(root, course_files):
    """The training zip given again as its validation zip tested the model on photos it learned (the helper's walk:
    `datasets import train.zip --validation train.zip` was accepted); a few shared photos are noted."""
    train_only = {path: data for path, data in course_files.items() if "/train/" in path}
    as_class_folders = {path.replace("horse-or-human/train/", ""): data for path, data in train_only.items()}
    with pytest.raises(DatasetError, match="Every validation photo is also a training photo"):
        import_zip(zip_bytes(as_class_folders), root, validation=zip_bytes(as_class_folders))
    assert not list((root / "datasets").glob("*"))  # nothing stored
    shared = dict(course_files)
    copied = [path for path in train_only][:2]
    for number, path in enumerate(copied):
        shared[path.replace("/train/", "/validation/").replace(".jpg", f"-copy{number}.jpg")] = train_only[path]
    report = import_zip(zip_bytes(shared), root)
    assert "2 of the 10 validation photos are also training photos" in " ".join(report.notes)
