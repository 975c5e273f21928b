"""Inputs that once gave a wrong answer without a word, or a traceback: each now has a defined outcome.

Float TIFFs with values 0 to 1, EXIF orientation tags outside 1-8, "café" written in NFC and NFD, a dataset
of one photo per class, and the command line on them (plus a model no photo can fill): every command ends
in a clear line and an exit status, never a Python traceback.
"""

import io
import os
import re
import shutil
import sys
import threading
import unicodedata
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image, ImageDraw

from core.errors import DatasetError
from core.folders import FOLDER_IMAGE_FORMATS, import_images, import_zip
from core.imaging import read_image
from core.jobs import JobQueue
from robustness.support import PROJECT, core_command, encode, record, snapshot

NFC, NFD = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")


def photo(shape: str, seed: int, size=64) -> bytes:
    """A small noisy photo of a dark disc or square on a light background, as PNG."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(170, 256, 3)))
    box = (size // 5, size // 5, 4 * size // 5, 4 * size // 5)
    getattr(ImageDraw.Draw(image), "ellipse" if shape == "disc" else "rectangle")(box, fill=(30, 30, 60))
    noisy = np.clip(np.asarray(image) + rng.integers(-12, 13, (size, size, 3)), 0, 255).astype(np.uint8)
    return encode(Image.fromarray(noisy), "PNG")


def zip_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def float_tiff(values: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(values.astype(np.float32)).save(buffer, "TIFF")
    return buffer.getvalue()


def jpeg_with_orientation(orientation: int) -> bytes:
    """A 60x40 JPEG, bright on its left half, whose EXIF orientation tag holds `orientation`."""
    array = np.full((40, 60, 3), 40, np.uint8)
    array[:, :30] = 220
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(Image.fromarray(array), "JPEG", exif=exif.tobytes(), quality=95)


def test_float_tiffs_keep_their_brightness():
    ramp = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (48, 1))
    cases = [("values 0 to 1", ramp, ramp * 255, "floating-point values 0 to 1"),
             ("values 0 to 255", ramp * 255, ramp * 255, "high bit depth (F)"),
             ("values up to 65,535", ramp * 65_535, ramp * 255, "read as 0 to 65,535")]
    for kind, values, expected, note in cases:
        image = read_image(float_tiff(values), f"{kind}.tif", formats=FOLDER_IMAGE_FORMATS)
        array = np.asarray(image, dtype=np.float64)
        assert image.mode == "L" and np.abs(array - expected).max() <= 1, (kind, array.max())
        assert any(note in text for text in image.info["cnnclassroom.notes"]), (kind, image.info)
    record("Uploads", "float TIFFs (values 0-1, 0-255, up to 65,535) in a dataset", len(cases),
           "the same brightness as the values mean (0-1 no longer imports as black), within one grey level; a note "
           "says how the values were read")


def test_an_exif_orientation_outside_1_to_8_is_ignored_and_said_so():
    stored = np.asarray(read_image(jpeg_with_orientation(1), "plain.jpg"))
    for orientation in (0, 9, 255, 65_535):
        image = read_image(jpeg_with_orientation(orientation), f"orientation-{orientation}.jpg")
        notes = image.info["cnnclassroom.notes"]
        assert np.array_equal(np.asarray(image), stored), orientation
        assert not any("Rotated upright" in note for note in notes), (orientation, notes)
        assert any(f"holds {orientation}, which is not an orientation (1 to 8)" in note for note in notes), notes
    rotated = read_image(jpeg_with_orientation(6), "orientation-6.jpg")  # a real tag still turns the photo upright
    assert rotated.size == (40, 60) and "Rotated upright" in " ".join(rotated.info["cnnclassroom.notes"])
    record("Uploads", "EXIF orientation tags outside 1-8 (0, 9, 255, 65,535)", 4,
           "used as stored, with a note that the tag is not an orientation; no false 'rotated upright'")


def test_cafe_in_nfc_and_nfd_is_one_class(tmp_path):
    entries = [(f"{NFC}/{index}.png", photo("disc", index)) for index in range(3)]
    entries += [(f"{NFD}/{index + 3}.png", photo("disc", index + 3)) for index in range(3)]
    entries += [(f"tea/{index}.png", photo("square", index + 10)) for index in range(6)]
    report = import_zip(zip_of(dict(entries)), tmp_path / "registry")
    assert report.class_names == [NFC, "tea"] and report.counts == {NFC: 6, "tea": 6}
    assert any("two Unicode forms" in note for note in report.notes), report.notes
    with pytest.raises(DatasetError, match="each with a different, non-empty name"):  # webcam classes too
        import_images(tmp_path / "registry", {NFC: [photo("disc", 1)], NFD: [photo("disc", 2)]})
    record("Dataset zips", "one class folder written 'café' in NFC and in NFD; webcam classes named so", 2,
           "one class with a note (the zip); refused as the same name twice (webcam classes)")


@pytest.fixture
def line_model(tmp_path) -> Path:
    """A classifier whose 1x512 input no photo can fill, saved as a .keras file."""
    inputs = keras.Input((1, 512, 3))
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inputs))
    keras.Model(inputs, outputs).save(tmp_path / "line.keras")
    return tmp_path / "line.keras"


def run(*arguments, root) -> tuple[int, str, str]:
    process = core_command(*arguments, root=root)
    stdout, stderr = process.communicate(timeout=300)
    return process.returncode, stdout, stderr


def test_hostile_command_lines_end_in_one_line_never_a_traceback(tmp_path, line_model):
    root = tmp_path / "registry"
    tiny = tmp_path / "tiny"  # 2 classes x 1 photo, and a pipe named like a photo (opening it would hang)
    for name, data in (("discs/one.png", photo("disc", 1)), ("squares/one.png", photo("square", 2))):
        (tiny / name).parent.mkdir(parents=True, exist_ok=True)
        (tiny / name).write_bytes(data)
    os.mkfifo(tiny / "squares" / "pipe.png")
    cafe = tmp_path / "cafe"  # café in both Unicode forms, and a float TIFF with values 0 to 1 among the tea photos
    for name, data in [(f"{NFC}/{index}.png", photo("disc", index)) for index in range(3)] + \
                      [(f"{NFD}/{index}.png", photo("disc", index + 3)) for index in range(3)] + \
                      [(f"tea/{index}.png", photo("square", index + 10)) for index in range(5)]:
        (cafe / name).parent.mkdir(parents=True, exist_ok=True)
        (cafe / name).write_bytes(data)
    (cafe / "tea" / "scan.tif").write_bytes(float_tiff(np.tile(np.linspace(0, 1, 64), (64, 1))))

    model_import = core_command("import", line_model, root=root)  # loads TensorFlow: started first, runs meanwhile
    outcomes = []
    code, out, err = run("datasets", "import", tiny, root=root)
    outcomes.append((code, err))
    assert code == 0 and "add at least 10 images per class" in out and "squares/pipe.png: not a regular file" in out, out
    tiny_name = re.search(r" as (folder:\w+):", out).group(1)
    code, out, err = run("train", "--dataset", tiny_name, "--family", "dnn", "--hidden-units", "8", "--epochs", "1",
                         root=root)
    outcomes.append((code, err))
    assert code == 1 and "Add at least 10 images per class" in err, err[-600:]
    assert "Training DNN Dense 8 on tiny, 1 epoch" in out  # the dataset's title, not its folder: id
    code, out, err = run("datasets", "import", cafe, root=root)
    outcomes.append((code, err))
    assert code == 0 and "2 classes, 12 images" in out and "two Unicode forms" in out, out
    out, err = model_import.communicate(timeout=300)
    outcomes.append((model_import.returncode, err))
    assert model_import.returncode == 1 and "1x512-pixel images, which no photo can sensibly fill" in err, err[-600:]

    for code, err in outcomes:
        assert "Traceback" not in err, err[-2000:]
    assert not (root / "models").exists() or not any((root / "models").iterdir())  # nothing trained, nothing imported
    shutil.rmtree(tiny)  # the pipe: nothing may be left to open it
    record("Command line", "`datasets import` of 2 classes x 1 photo with a pipe named .png, then `train` on it; "
           "`datasets import` of café in NFC and NFD with a float TIFF; `import` of a model with a 1x512 input",
           len(outcomes),
           "imported with the pipe skipped and a note; training refused in one line ('add at least 10 images per "
           "class'), exit status 1, before TensorFlow is loaded; one café class; the model refused in one line; no traceback")


def test_the_train_page_refuses_a_tiny_dataset_and_a_huge_network_before_any_job(registry_root):
    sys.path.insert(0, str(PROJECT / "tests" / "pages"))
    from apptest import open_page

    tiny = import_zip(zip_of({"discs/one.png": photo("disc", 1), "squares/one.png": photo("square", 2)}), registry_root)
    large = import_zip(zip_of({f"{shape}s/{index}.png": photo(shape, index, size=256) for shape in ("disc", "square")
                               for index in range(10)}), registry_root)  # 256x256x3: a wide DNN has 100 M weights
    at = open_page("pages/8_Train.py").run()
    at.selectbox(key="train_dataset").set_value(tiny.name).run()
    assert not at.exception and "Add at least 10 images per class" in at.error[0].value
    at.selectbox(key="train_dataset").set_value(large.name).run()
    at.radio(key="train_family").set_value("dnn").run()
    at.select_slider(key="train_units").set_value(512).run()
    assert not at.exception and "million weights; the limit is 50 million" in at.error[0].value
    assert not at.button, "no Train button under a refusal"
    assert JobQueue(registry_root).active() == []
    record("Train page", "the Train page on a dataset of 2 classes x 1 photo, and a 100-million-weight DNN", 2,
           "refused on the page with the same message as the CLI, no Train button, no job queued")


def test_a_snapshot_of_a_test_folder_passes_a_named_pipe_without_opening_it(tmp_path):
    """Tests snapshot their whole temporary folder, where another test may have left a pipe named like a photo."""
    (tmp_path / "photo.png").write_bytes(b"a photo")
    os.mkfifo(tmp_path / "pipe.png")
    found = {}
    reader = threading.Thread(target=lambda: found.update(snapshot(tmp_path)), daemon=True)
    reader.start()
    reader.join(timeout=10)
    if reader.is_alive():
        (tmp_path / "pipe.png").write_bytes(b"")  # a writer lets the blocked open go on
        pytest.fail("the snapshot opened the named pipe and waited for a writer")
    assert found["pipe.png"].startswith("special file") and len(found["photo.png"]) == 64
