"""AppTest: the Your-own-images page imports zips of real Fashion-MNIST images and of generated photos in the course's
train/validation layout, adds a validation zip, refuses bad zips, compares sizes; Predict explains the binary model."""

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers_fmnist import load_fashion_mnist
from photos import photo_files, zip_bytes
from PIL import Image
from apptest import open_page
from streamlit.testing.v1 import AppTest

PAGE = Path(__file__).resolve().parents[2] / "pages/6_Your_own_images.py"
PER_CLASS = 40


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No ImageNet weights and no download host, as on this machine, wherever the tests run."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))

    def unreachable(url, timeout, stale_ok=False):
        raise OSError("offline")

    monkeypatch.setattr("core.pretrained.check_reachable", unreachable)


def png(image) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image[..., 0]).save(buffer, "PNG")
    return buffer.getvalue()


def sneakers_and_bags_zip() -> bytes:
    """sneakers/ and bags/ folders of real Fashion-MNIST test images, one broken image and a stray text file."""
    images, labels = load_fashion_mnist("test", 2 * PER_CLASS, classes=[7, 8])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for index, (image, label) in enumerate(zip(images, labels)):
            archive.writestr(f"shoes_and_bags/{['sneakers', 'bags'][label]}/{index:03d}.png", png(image))
        archive.writestr("shoes_and_bags/bags/broken.png", b"\x89PNG\r\n\x1a\n not really")
        archive.writestr("shoes_and_bags/README.txt", "sneakers vs bags")
    return buffer.getvalue()


def escaping_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("cats/ok.png", png(load_fashion_mnist("test", 1)[0][0]))
        archive.writestr("../../evil.png", b"payload")
    return buffer.getvalue()


def bomb_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a/zeros.png", bytes(8 * 2**20))  # 8 MiB of zeros squeeze into a few KiB
        archive.writestr("b/zeros.png", b"\0")
    return buffer.getvalue()


def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.get("file_uploader")[0].set_value((name, data, "application/zip"))
    return at.run()


def text(at: AppTest) -> str:
    return "\n".join(str(element.value) for kind in ("markdown", "info", "warning", "success", "error", "caption")
                     for element in getattr(at, kind))


def test_empty_registry_asks_for_a_zip(registry_root):
    at = open_page(PAGE).run()
    assert not at.exception
    assert "upload a zip" in text(at)


def test_uploading_a_zip_of_class_folders_reports_what_was_found(registry_root):
    at = open_page(PAGE).run()
    upload(at, "shoes_and_bags.zip", sneakers_and_bags_zip())
    assert not at.exception
    shown = text(at)
    assert "Imported **shoes_and_bags**" in shown
    _, labels = load_fashion_mnist("test", 2 * PER_CLASS, classes=[7, 8])
    from core.datasets import split_table

    splits = split_table(registry_root, at.selectbox(key="own_dataset").value)
    table = next(block.value for block in at.markdown if block.value.startswith("| class |"))
    assert table.splitlines()[2:] == [f"| {name} | {splits['train'][name]} | {splits['validation'][name]} | "
                                      f"{splits['test'][name]} |" for name in ("bags", "sneakers")]
    assert sum(splits["test"].values()) == round(0.2 * len(labels)) and splits["test"]["bags"] == round(0.2 * (labels == 1).sum())
    assert "carved from the photos: a stratified 20%" in shown
    skipped = at.dataframe[0].value
    assert set(skipped["file"]) == {"shoes_and_bags/bags/broken.png", "shoes_and_bags/README.txt"}
    assert "Photo sizes: all 28×28 (width × height)." in shown and "Photos all 28×28 (width × height), " in shown
    assert "binary task" in shown and "Dense(1, activation='sigmoid')" in shown and "binary_crossentropy" in shown
    assert at.selectbox(key="own_dataset").value.startswith("folder:")
    assert at.button(key="own_train_button").label == "Train from scratch at 64×64"
    assert any("Training from scratch" in warning.value and "random filters" in warning.value for warning in at.warning)
    at.select_slider(key="own_size").set_value(300).run()
    assert any("can take minutes" in warning.value for warning in at.warning)
    upload(at, "shoes_and_bags.zip", sneakers_and_bags_zip())  # the same photos again: nothing new, said as such
    assert not at.success and any("imported before, as **shoes_and_bags**" in info.value for info in at.info)


def test_a_fresh_session_starts_on_the_last_import_not_the_last_id(registry_root):
    """The Dataset picker started on "huge", the dataset whose id sorts last, not the one imported last."""
    import time

    from core.folders import import_zip

    imports = []
    while len(imports) < 2 or imports[-1].name == max(report.name for report in imports):  # as in the walk: the
        time.sleep(1.1 if imports else 0)  # last import's id is not the last id (an import's time is to the second)
        files = photo_files({"train": 6}, prefix=f"set{len(imports)}/", size=(40, 30), seed=len(imports),
                            split_folders=False)
        imports.append(import_zip(zip_bytes(files), registry_root))
    at = open_page(PAGE).run()
    assert not at.exception and at.selectbox(key="own_dataset").value == imports[-1].name


def test_photos_too_few_to_train_on_are_said_at_the_import_not_only_at_train(registry_root):
    """A class of 3 photos was reported "Imported …: it is in the dataset pickers now", and refused only at Train."""
    files = photo_files({"train": 3}, kinds=("round",), size=(40, 30), split_folders=False, prefix="tiny/")
    files |= photo_files({"train": 12}, kinds=("angular",), size=(40, 30), split_folders=False, prefix="tiny/", seed=1)
    at = open_page(PAGE).run()
    upload(at, "tiny.zip", zip_bytes(files))
    assert not at.exception and at.success  # imported: it can get more photos
    assert any("too few photos to train" in warning.value and "round" in warning.value for warning in at.warning), [
        warning.value for warning in at.warning]


def test_test_photos_that_are_the_validation_photos_are_headed_so(registry_root):
    """With train/ and validation/ folders, the table read "26 / 6 / 6": the test photos are the validation ones."""
    at = open_page(PAGE).run()
    upload(at, "course.zip", zip_bytes(photo_files({"train": 8, "validation": 3}, prefix="course/", size=(64, 48))))
    assert not at.exception
    table = next(block.value for block in at.markdown if block.value.startswith("| class |"))
    assert table.splitlines()[0] == "| class | train images | validation images | test images (the validation ones) |"
    assert "| round | 8 | 3 | 3 |" in table


def test_hostile_and_broken_zips_are_refused_without_a_traceback(registry_root):
    at = open_page(PAGE).run()
    upload(at, "shoes_and_bags.zip", sneakers_and_bags_zip())
    assert "Imported **shoes_and_bags**" in at.success[0].value
    upload(at, "evil.zip", escaping_zip())
    assert not at.exception
    assert "outside the archive" in at.error[0].value
    assert not at.success  # the last good import's report would read as this file's
    assert len(list((registry_root / "datasets").glob("*/manifest.json"))) == 1  # shoes_and_bags alone
    upload(at, "bomb.zip", bomb_zip())
    assert not at.exception
    assert "zip bomb" in at.error[0].value
    upload(at, "not_a_zip.zip", b"PK\x03\x04 this is not really a zip file")
    assert not at.exception
    assert "not a readable .zip" in at.error[0].value


def test_the_course_layout_shows_its_splits_and_a_second_zip_adds_validation_photos(registry_root):
    at = open_page(PAGE).run()
    files = photo_files({"train": 8, "validation": 3}, prefix="rps/", size=(96, 96), image_format="JPEG")
    upload(at, "rps.zip", zip_bytes(files))
    assert not at.exception
    table = next(block.value for block in at.markdown if block.value.startswith("| class |"))
    assert table.splitlines()[2:] == ["| angular | 8 | 3 | 3 |", "| round | 8 | 3 | 3 |"]  # train, validation, test
    shown = text(at)
    assert "**validation**: the folder rps/validation/" in shown and "**test**: the validation photos" in shown
    first = at.selectbox(key="own_dataset").value

    train_only = {name.replace("rps/train/", ""): data for name, data in files.items() if "/train/" in name}
    upload(at, "train.zip", zip_bytes(train_only))
    assert at.selectbox(key="own_dataset").value not in (first, None)
    validation = {name.replace("rps/validation/", ""): data for name, data in files.items() if "/validation/" in name}
    validation.pop(next(iter(validation)))  # all of them would make the course zip's photos again: that dataset
    at.get("file_uploader")[1].set_value(("rps-test-set.zip", zip_bytes(validation), "application/zip"))
    at.run()
    assert not at.exception
    assert "**validation**: the second zip (rps-test-set" in text(at)
    assert len(at.selectbox(key="own_dataset").options) == 3  # the course zip, the training photos alone, and with validation
    assert not list((registry_root / "tmp").iterdir())  # the uploads, copied to disk, are gone


def test_two_trained_sizes_are_compared_and_predict_explains_the_binary_model(registry_root):
    import dataclasses

    from core.engines import train_and_publish
    from core.folders import import_zip
    from core.recipes import SCRATCH, recipe
    from core.registry import Registry

    report = import_zip(sneakers_and_bags_zip(), registry_root, title="shoes_and_bags")
    small = recipe(SCRATCH, report.name, 32, epochs=3)
    registry = Registry(registry_root)
    trained = {size: train_and_publish(registry, dataclasses.replace(small, image_size=size)) for size in (32, 64)}

    at = open_page(PAGE).run()
    at.slider(key="own_epochs").set_value(3)
    at.select_slider(key="own_size").set_value(32).run()
    assert not at.exception
    tested = trained[32].card.dataset.test_images
    assert tested < 100 and at.metric[0].value == f"{trained[32].test_accuracy:.0%}"  # one photo: over a point
    table = at.dataframe[-1].value
    assert list(table["input size"]) == ["32×32", "64×64"]
    params = list(table["parameters"])
    assert params == [trained[32].card.params.total, trained[64].card.params.total]
    assert params[1] > params[0]  # the Flatten layer grows with the square of the size
    # The table shown before training computes the same sizes, and the 300-pixel row without building anything.
    size_table = next(block.value for block in at.markdown if block.value.startswith("| input |"))
    rows = {line.split("|")[1].strip(): line.split("|")[4].strip() for line in size_table.splitlines()[2:]}
    assert rows["32×32×3"] == f"{trained[32].card.params.total:,}" and rows["64×64×3"] == f"{trained[64].card.params.total:,}"
    from core.models import build_cnn

    assert rows["300×300×3"] == f"{build_cnn((300, 300, 3), 2, filters=(16, 32, 64), hidden_units=(128,)).count_params():,}"

    predict = open_page("pages/10_Predict.py").run()
    predict.selectbox(key="predict_model").set_value(trained[32].key).run()
    photo = Image.fromarray(load_fashion_mnist("test", 1, classes=[7])[0][0][..., 0]).resize((120, 60))
    buffer = io.BytesIO()
    photo.save(buffer, "PNG")
    predict.file_uploader(key="predict_upload").set_value(("sneaker.png", buffer.getvalue(), "image/png")).run()
    assert not predict.exception
    shown = "\n".join(block.value for block in predict.markdown)
    assert "is the probability of **sneakers** (label 1)" in shown and "**bags** (label 0) is 1 − p" in shown
    assert any("aspect ratio kept" in caption.value and "card" in caption.value for caption in predict.caption)


def test_the_class_being_photographed_follows_its_rename(registry_root):
    """Mending the name of the class being photographed switched the camera to the first class."""
    at = open_page(PAGE).run()
    at.radio(key="own_webcam_class").set_value("thumbs down").run()
    at.text_input(key="own_webcam_names").set_value("thumbs up, thumbs sideways").run()
    assert not at.exception and at.radio(key="own_webcam_class").value == "thumbs sideways"


def test_a_slip_in_the_class_names_is_said_and_the_page_stays(registry_root):
    """Typing "thumbs up" alone (one class) hid the photos and every section after the names, as if all were lost."""
    at = open_page(PAGE).run()
    at.text_input(key="own_webcam_names").set_value("thumbs up").run()
    assert not at.exception
    assert any("Name 2 to 5 different classes" in error.value for error in at.error)
    assert [str(option) for option in at.radio(key="own_webcam_class").options] == ["thumbs up (0)", "thumbs down (0)"]
    assert any("No folder dataset yet" in info.value for info in at.info)  # the page goes on below the webcam
    at.text_input(key="own_webcam_names").set_value("thumbs up, peace").run()  # mended: as a rename would
    assert not at.error and at.radio(key="own_webcam_class").options[-1].startswith("peace")


def test_a_reload_finds_the_webcam_shots_and_their_class_names_by_the_address(registry_root):
    """A browser reload starts a new session: the page reopens the album named in its address (`?webcam=<token>`),
    with the class names the student typed, not the default ones typed over them (which would rename the classes)."""
    from photos import encode, photo

    from core.webcam import ALBUM_PARAMETER, WebcamClasses

    rng = np.random.default_rng(7)
    taken = WebcamClasses.reopen(registry_root, None)
    taken.rename("cat, dog")
    for name, kind, count in (("cat", "round", 3), ("dog", "angular", 2)):
        for _ in range(count):
            taken.add(name, encode(photo(kind, rng, (704, 396)), "JPEG"))
    at = open_page(PAGE)
    at.query_params[ALBUM_PARAMETER] = taken.token
    at.run()
    assert not at.exception
    assert at.text_input(key="own_webcam_names").value == "cat, dog"
    assert [str(option) for option in at.radio(key="own_webcam_class").options] == ["cat (3)", "dog (2)"]
    assert "**cat**: 3 photo(s)" in text(at) and "**dog**: 2 photo(s)" in text(at)
    assert "kept on this server for 7 days" in text(at) and at.query_params[ALBUM_PARAMETER] == taken.token
    at.button(key="own_forget_button").click().run()  # "Forget these photos", then "Yes, delete…"
    assert not at.exception and not taken.folder.exists() and ALBUM_PARAMETER not in at.query_params
    assert [str(option) for option in at.radio(key="own_webcam_class").options] == ["cat (0)", "dog (0)"]
    fresh = open_page(PAGE).run()  # no album in the address: a new student's page, nothing written for it
    assert [str(option) for option in fresh.radio(key="own_webcam_class").options] == ["thumbs up (0)", "thumbs down (0)"]
    assert not list((registry_root / "tmp").iterdir())


def test_two_tabs_on_one_album_see_each_others_shots_names_and_deletes(registry_root):
    """A tab duplicated (the same `?webcam=<token>`): a shot taken in one appears in the other on its next run, a
    rename in one is the other's names, and a Delete button deletes its own photo even after the list moved under it."""
    from photos import encode, photo

    from core.webcam import ALBUM_PARAMETER, WebcamClasses, shot_id

    rng = np.random.default_rng(11)
    taken = [encode(photo(kind, rng, (704, 396)), "JPEG") for kind in ("round", "round", "angular", "round")]
    album = WebcamClasses.reopen(registry_root, None)  # the camera's side of a tab: what its shots do to the album
    album.rename("cat, dog")
    album.add("cat", taken[0])
    album.add("dog", taken[2])
    tabs = []
    for _ in range(2):
        tab = open_page(PAGE)
        tab.query_params[ALBUM_PARAMETER] = album.token
        tabs.append(tab.run())
    first, second = tabs
    album.add("cat", taken[1])  # a shot in another tab: at the end of "cat"
    first.run()
    assert [str(option) for option in first.radio(key="own_webcam_class").options] == ["cat (2)", "dog (1)"]
    second.text_input(key="own_webcam_names").set_value("cats, dog").run()  # a rename in the second tab
    first.run()
    assert not first.exception and first.text_input(key="own_webcam_names").value == "cats, dog"
    assert [str(option) for option in first.radio(key="own_webcam_class").options] == ["cats (2)", "dog (1)"]
    delete_second_cat = next(button for button in first.button if shot_id(taken[1]) in button.key)
    album.refresh()
    album.delete("cats", shot_id(taken[0]))  # meanwhile deleted in the other tab: taken[1] moves to its place
    album.add("cats", taken[3])  # and taken[3] comes where taken[1] was
    delete_second_cat.click().run()  # the button drawn for taken[1], second then, first now: taken[1] goes
    assert not first.exception and "**cats**: 1 photo(s)" in text(first)
    assert WebcamClasses.reopen(registry_root, album.token).shots == {"cats": [taken[3]], "dog": [taken[2]]}
    second.run()
    assert not second.exception and "**cats**: 1 photo(s)" in text(second)
