"""Model files: hostile and broken .keras / .h5 files are refused with a clear message and never run code.

Every hostile file carries a payload that creates a marker file when it runs. A control proves each
payload is live (loading the file without safe mode, or with its class available, creates the marker);
then the app's import (Registry.import_model, the CLI in a fresh process, the Models page) must refuse
the file and the marker must never appear.
"""

import io
import json
import re
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
from conftest import TINY_CNN
from PIL import Image

from core.errors import ModelFileError
from core.prediction import predict_file
from core.registry import Registry
from robustness.support import PROJECT, changed, core_command, quiet, record, registries_under, snapshot

sys.path.insert(0, str(PROJECT / "tests" / "pages"))
from apptest import open_page  # noqa: E402


@dataclass
class ModelCase:
    kind: str
    path: Path
    error: str  # regular expression of the refusal message


def write_marker_code(marker: Path) -> str:
    """Python source of an expression that creates the marker file (the hostile payload)."""
    return f"__import__('pathlib').Path({str(marker)!r}).write_text('code ran')"


def small_image_classifier(activation="softmax"):
    inputs = keras.Input((28, 28, 1))
    features = keras.layers.Flatten()(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, activation=activation)(features))


def rewrite_archive(source: Path, target: Path, change_config=None, extra=None, replace=None):
    """Copy a .keras archive, changing its config.json and adding or replacing entries."""
    with zipfile.ZipFile(source) as archive:
        contents = {name: archive.read(name) for name in archive.namelist()}
    if change_config:
        config = json.loads(contents["config.json"])
        change_config(config)
        contents["config.json"] = json.dumps(config).encode()
    contents.update(replace or {})
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in {**contents, **(extra or {})}.items():
            archive.writestr(name, data)
    return target


def first_dense(config):
    return next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Dense")


@pytest.fixture(scope="module")
def workshop(tmp_path_factory):
    """A folder of hostile model files, the folder their payloads write markers into, and a good model."""
    folder = tmp_path_factory.mktemp("model_files")
    markers = folder / "markers"
    markers.mkdir()
    good = folder / "good.keras"
    small_image_classifier().save(good)
    return folder, markers, good


def lambda_layer_file(folder, markers) -> tuple[Path, Path]:
    marker = markers / "lambda-layer"
    payload = eval(f"lambda x: ({write_marker_code(marker)}, x)[1]")  # noqa: S307  (the hostile model's code)
    inputs = keras.Input((28, 28, 1))
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(keras.layers.Lambda(payload)(inputs)))
    path = folder / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    marker.unlink()  # building the model ran the payload once; only loading counts from here on
    return path, marker


def lambda_activation_file(folder, markers, good) -> tuple[Path, Path]:
    """A standard Dense layer whose activation is serialized Python code (taken from a Lambda layer's function)."""
    marker = markers / "lambda-activation"
    payload = eval(f"lambda x: ({write_marker_code(marker)}, x)[1]")  # noqa: S307
    inputs = keras.Input((28, 28, 1))
    donor = folder / "donor.keras"
    keras.Model(inputs, keras.layers.Lambda(payload)(inputs)).save(donor)
    marker.unlink()
    with zipfile.ZipFile(donor) as archive:
        layers = json.loads(archive.read("config.json"))["config"]["layers"]
    code = next(layer for layer in layers if layer["class_name"] == "Lambda")["config"]["function"]["config"]["code"]
    activation = {"class_name": "__lambda__", "config": {"value": [code, None, None]}}  # Keras' format for functions
    path = rewrite_archive(good, folder / "activation.keras", lambda config: first_dense(config)["config"].update(activation=activation))
    return path, marker


@keras.saving.register_keras_serializable(package="RobustnessHostile")
class MarkerLayer(keras.layers.Layer):
    """A custom layer whose constructor runs code: it writes its marker file."""

    def __init__(self, marker="", **kwargs):
        super().__init__(**kwargs)
        self.marker = marker
        if marker:
            Path(marker).write_text("code ran")

    def call(self, inputs):
        return inputs

    def get_config(self):
        return {**super().get_config(), "marker": self.marker}


def custom_object_file(folder, markers) -> tuple[Path, Path]:
    marker = markers / "custom-object"
    inputs = keras.Input((28, 28, 1))
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(MarkerLayer(str(marker))(inputs)))
    path = folder / "custom.keras"
    keras.Model(inputs, outputs).save(path)
    marker.unlink()
    return path, marker


def test_payloads_are_live_and_the_import_refuses_them_without_running_code(workshop, registry_root, tmp_path):
    folder, markers, good = workshop
    registry = Registry(registry_root)
    lambda_path, lambda_marker = lambda_layer_file(folder, markers)
    activation_path, activation_marker = lambda_activation_file(folder, markers, good)

    # Controls: the payloads really run when the file is loaded without safe mode and asked for a prediction.
    for path, marker in ((lambda_path, lambda_marker), (activation_path, activation_marker)):
        keras.saving.load_model(path, safe_mode=False)(np.zeros((1, 28, 28, 1), "float32"))
        assert marker.exists(), f"the payload of {path.name} did not run: the test would prove nothing"
        marker.unlink()

    importable = tmp_path / "importable"
    importable.mkdir()
    (importable / "robustness_evil_module.py").write_text(f"{write_marker_code(markers / 'module-import')}\n")
    sys.path.insert(0, str(importable))  # a module the attacker hopes Keras will import by name
    injected = [
        ("config names os.system as a layer", lambda c: first_dense(c).update(
            module="os", class_name="system", registered_name="system", config=f"touch {markers / 'os-system'}")),
        ("config names subprocess.Popen as a layer", lambda c: first_dense(c).update(
            module="subprocess", class_name="Popen", registered_name="Popen",
            config={"args": ["touch", str(markers / "popen")]})),
        ("config names builtins.exec as an activation", lambda c: first_dense(c)["config"].update(activation={
            "module": "builtins", "class_name": "function", "config": "exec", "registered_name": "exec"})),
        ("config names an importable module with side effects", lambda c: first_dense(c).update(
            module="robustness_evil_module", class_name="Evil", registered_name="Evil")),
    ]
    cases = [ModelCase("Lambda layer (Python code)", lambda_path, "contains custom code"),
             ModelCase("Lambda activation (Python code)", activation_path, "contains custom code")]
    for number, (kind, change) in enumerate(injected):
        cases.append(ModelCase(kind, rewrite_archive(good, folder / f"injected{number}.keras", change),
                               "contains custom code|could not be loaded as a Keras model"))
    try:
        for case in cases:
            with pytest.raises(ModelFileError) as refusal:
                registry.import_model(case.path)
            assert re.search(case.error, str(refusal.value)), f"{case.kind}: {refusal.value}"
            assert case.path.name in str(refusal.value)
            assert list(markers.iterdir()) == [], f"{case.kind}: the payload ran"
    finally:
        sys.path.remove(str(importable))
    assert "robustness_evil_module" not in sys.modules
    assert registry.list_entries() == [] and not any(registry.models_dir.iterdir())
    for case in cases:
        record("Model files", case.kind, 1, "refused (safe mode); the payload never ran")


def test_a_custom_object_is_refused_by_the_cli_in_a_fresh_process(workshop, registry_root):
    folder, markers, _ = workshop
    path, marker = custom_object_file(folder, markers)
    keras.saving.load_model(path)  # control: where the class is registered (this process), loading runs its code
    assert marker.exists()
    marker.unlink()
    process = core_command("import", path, root=registry_root)  # the server's situation: the class is unknown there
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 1, quiet(stderr)
    message = quiet(stderr).strip().splitlines()
    assert len(message) == 1 and message[0].startswith("error: custom.keras was refused: it contains custom code"), message
    assert "Traceback" not in stderr and not marker.exists()
    assert Registry(registry_root).list_entries() == []
    record("Model files", "custom object (registered Layer subclass) via `python -m core import`", 1,
           "refused in one line, exit status 1; the payload never ran")


def broken_files(folder: Path, good: Path) -> list[ModelCase]:
    data = good.read_bytes()
    cases = []
    for fraction in (0.25, 0.5, 0.75):
        path = folder / f"truncated_{int(fraction * 100)}.keras"
        path.write_bytes(data[: int(len(data) * fraction)])
        cases.append(ModelCase(f"truncated .keras ({fraction:.0%})", path, "not a valid .keras file"))
    cut = folder / "missing_last_byte.keras"
    cut.write_bytes(data[:-1])
    cases.append(ModelCase("truncated .keras (last byte missing)", cut, "not a valid .keras file"))
    (folder / "notes.keras").write_text("These are my notes about the model.\n")
    (folder / "empty.keras").write_bytes(b"")
    (folder / "photo.keras").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    legacy = folder / "legacy.h5"
    small_image_classifier().save(legacy)  # a real HDF5 file written by Keras' legacy saver
    (folder / "legacy_renamed.keras").write_bytes(legacy.read_bytes())
    corrupt = bytearray(data)
    weights_at = corrupt.index(b"model.weights.h5") + 100
    corrupt[weights_at:weights_at + 64] = bytes(64)
    (folder / "corrupt_weights.keras").write_bytes(bytes(corrupt))
    dataset_zip = io.BytesIO()
    with zipfile.ZipFile(dataset_zip, "w") as archive:
        archive.writestr("cats/1.png", b"x")
    (folder / "dataset.keras").write_bytes(dataset_zip.getvalue())
    bomb = rewrite_archive(good, folder / "bomb.keras", replace={"config.json": b" " * (60 * 2**20) + b"{}"})
    with_slip = rewrite_archive(good, folder / "slip.keras", extra={"../../escaped.txt": b"x", "/tmp/escaped.txt": b"x"})
    inputs = keras.Input((4,))
    keras.Model(inputs, keras.layers.Dense(2)(inputs)).save(folder / "tabular.keras")
    image_inputs = keras.Input((28, 28, 1))
    keras.Model(image_inputs, keras.layers.Conv2D(2, 3)(image_inputs)).save(folder / "segmenter.keras")
    for name, shape in (("line", (1, 512, 3)), ("tiny", (4, 4, 1)), ("strip", (16, 200, 3)), ("bands", (32, 32, 6))):
        odd_inputs = keras.Input(shape)
        keras.Model(odd_inputs, keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(odd_inputs))).save(
            folder / f"{name}.keras")
    cases += oversized_files(folder, good)
    return cases + [
        ModelCase("text file named .keras", folder / "notes.keras", "not a valid .keras file"),
        ModelCase("empty .keras", folder / "empty.keras", "not a valid .keras file"),
        ModelCase("PNG named .keras", folder / "photo.keras", "not a valid .keras file"),
        ModelCase("real .h5 (legacy HDF5)", legacy, "legacy HDF5 .*Re-save it with `model.save\\('model.keras'\\)`"),
        ModelCase(".h5 renamed .keras", folder / "legacy_renamed.keras", "not a valid .keras file"),
        ModelCase(".keras with damaged weights", folder / "corrupt_weights.keras", "its weights cannot be read"),
        ModelCase("a zip that is not a model", folder / "dataset.keras", "is a zip, but not a model saved by Keras"),
        ModelCase(".keras zip bomb (config.json inflates to 60 MB)", bomb, "expands \\d+x .*like a zip bomb"),
        ModelCase("standard layers, not an image model (input (4,))", folder / "tabular.keras",
                  "not an image classifier this app can use"),
        ModelCase("standard layers, image in and image out", folder / "segmenter.keras",
                  "not an image classifier this app can use"),
        ModelCase("an image classifier with a 1x512 input", folder / "line.keras",
                  "1x512-pixel images, which no photo can sensibly fill.*at least 8 pixels a side and at most 8:1"),
        ModelCase("an image classifier with a 4x4 input", folder / "tiny.keras", "4x4-pixel images, which no photo"),
        ModelCase("an image classifier with a 16x200 input (12.5:1)", folder / "strip.keras", "16x200-pixel images"),
        ModelCase("an image classifier with 6 input channels", folder / "bands.keras",
                  "not an image classifier this app can use.*1 or 3 channels"),
    ], with_slip


def huge_dense_file(folder: Path, good: Path) -> Path:
    """An 11 KB .keras whose config asks for Dense(2,000,000) after a 784-pixel Flatten: 6 GB before any weight is read."""
    return rewrite_archive(good, folder / "huge_dense.keras",
                           lambda config: first_dense(config)["config"].update(units=2_000_000))


def oversized_files(folder: Path, good: Path) -> list[ModelCase]:
    """Small files that would make a process allocate gigabytes: at import, or later for each photo."""
    hollow_weights = folder / "hollow.weights.h5"
    with h5py.File(hollow_weights, "w") as weights:  # a header declaring a 6 GB weight that stores nothing
        weights.create_dataset("layers/dense/vars/0", shape=(784, 2_000_000), dtype="float32")
    hollow = rewrite_archive(good, folder / "hollow.keras",
                             lambda config: first_dense(config)["config"].update(units=2_000_000),
                             replace={"model.weights.h5": hollow_weights.read_bytes()})
    inputs = keras.Input((1024, 1024, 3))  # 12,300 parameters, but 16 GB of feature maps for each photo
    wide = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4096, 1)(inputs))
    keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(wide)).save(folder / "huge_maps.keras")
    declares = "declares layers far larger than the weights it holds.*needs 5,981.4 MB.*refused before using that memory"
    return [
        ModelCase("11 KB .keras declaring Dense(2,000,000) (6 GB)", huge_dense_file(folder, good), declares),
        ModelCase(".keras whose weights file declares a 6 GB weight and stores none", hollow, declares),
        ModelCase(".keras whose 1x1 Conv2D(4096) makes 16 GB of feature maps per photo", folder / "huge_maps.keras",
                  "too much memory for each photo.*'conv2d\\w*' alone outputs 16,384 MB"),
    ]


def test_broken_files_are_refused_clearly_and_a_good_one_still_imports(workshop, registry_root, tmp_path, monkeypatch):
    folder, _, good = workshop
    monkeypatch.chdir(tmp_path)
    cases, with_slip = broken_files(folder, good)
    registry = Registry(registry_root)
    registries = [registry_root, *registries_under(tmp_path.parent)]  # ours, and other tests' with live workers
    before = snapshot(tmp_path.parent, skip=registries)
    for case in cases:
        with pytest.raises(ModelFileError) as refusal:
            registry.import_model(case.path)
        assert re.search(case.error, str(refusal.value)), f"{case.kind}: {refusal.value}"
        assert case.path.name in str(refusal.value), f"{case.kind}: the message does not name the file"
    assert registry.list_entries() == [] and not any(registry.models_dir.iterdir())
    for blank in (["a", "", "c"], [" ", " ", " "]):  # stored once, and shown under every prediction: refused
        with pytest.raises(ModelFileError, match=r"Class names cannot be blank: name (2|1, 2, 3) of 3 is empty"):
            registry.import_model(good, class_names=blank)
    slip_entry = registry.import_model(with_slip, class_names=["a", "b", "c"])  # extra entries are never extracted
    entry = registry.import_model(good, class_names=["a", "b", "c"])
    assert {card.key for card in registry.list_entries()} == {entry.key, slip_entry.key}
    with pytest.raises(ModelFileError, match=r"imported before as \w+ with the class names \['a', 'b', 'c'\].*delete it"):
        registry.import_model(good, class_names=["cat", "dog", "owl"])  # once silently kept the old names
    assert registry.import_model(good, class_names=["a", "b", "c"]).key == entry.key  # the same names: the same entry
    assert list(registry.get(entry.key).card.class_names) == ["a", "b", "c"]
    assert not Path("/tmp/escaped.txt").exists() and not (folder.parent.parent / "escaped.txt").exists()
    outside = changed(before, snapshot(tmp_path.parent, skip=registries))
    assert outside == [], f"written outside the registry: {outside}"
    model, card = registry.load_model(entry.key), registry.get(entry.key).card
    photo = io.BytesIO()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(photo, "PNG")
    prediction = predict_file(model, card, photo.getvalue(), "photo.png")
    assert prediction.error is None and len(prediction.probabilities) == 3
    for case in cases:
        record("Model files", case.kind, 1, "refused with a message naming the file")
    record("Model files", ".keras with extra '../' and absolute entries", 1, "imported as a file; nothing extracted")
    record("Model files", "the same .keras imported again with other class names", 1,
           "refused with a message naming the kept names and how to rename (delete, import again); the entry unchanged")


def test_the_models_page_refuses_a_hostile_upload_with_a_hostile_name(workshop, trained_registry, tmp_path):
    folder, markers, _ = workshop
    path, marker = lambda_layer_file(folder, markers)
    before = snapshot(trained_registry.root)
    at = open_page("pages/11_Models.py").run()
    at.file_uploader(key="models_import_upload").set_value(("../../../escape.keras", path.read_bytes(),
                                                            "application/octet-stream")).run()
    at.button(key="models_import_button").click().run()
    assert not at.exception
    assert any("was refused: it contains custom code" in error.value for error in at.error)
    assert not marker.exists() and not (PROJECT / "escape.keras").exists()
    assert changed(before, snapshot(trained_registry.root)) == []
    assert {card.key for card in trained_registry.list_entries()} >= {TINY_CNN.key}
    record("Model files", "Lambda .keras uploaded on the Models page as '../../../escape.keras'", 1,
           "error on the page, no crash; registry unchanged; the payload never ran")
