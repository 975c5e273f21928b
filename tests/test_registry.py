"""The registry: train once, serve from disk, survive races, kills, damage and hostile model files."""

import dataclasses
import errno
import json
import signal
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_CNN, TINY_DNN, copy_registry

from core import training
from core.card import DatasetFacts, ModelCard, ParameterCounts
from core.engines import train_and_publish
from core.errors import EntryNotFoundError, ModelFileError, RegistryError
from core.exchange import ALREADY_THERE, IMPORTED, TESTED_HERE, import_model_file
from core.network_view import stored_first_view
from core.model_files import ENTRY_NOTE
from core.registry import CARD_FILE, INDEX_FILE, MODEL_FILE, Registry

PROJECT = Path(__file__).resolve().parents[1]


def test_tiny_dnn_and_cnn_learn_fashion_mnist_well_above_chance(trained_registry):
    for config in (TINY_DNN, TINY_CNN):
        entry = trained_registry.get(config.key)
        assert entry.test_accuracy > 0.5, f"{config.title} reached only {entry.test_accuracy:.2%} (chance is 10%)"
        assert entry.card.dataset.test_images == 10_000
        assert entry.card.dataset.source.startswith("Debian") or "fashion" in entry.card.dataset.source.lower()
        assert len(entry.history) == config.epochs
        assert entry.card.params.total > 0 and entry.card.layers


def test_a_hit_does_not_train_and_returns_the_identical_model(trained_registry, monkeypatch):
    calls = []
    monkeypatch.setattr(training, "train", lambda *args, **kwargs: calls.append(1))
    entry = train_and_publish(trained_registry, TINY_DNN)
    assert calls == []
    first = trained_registry.load_model(entry.key)
    second = trained_registry.load_model(train_and_publish(trained_registry, TINY_DNN).key)
    for weight_a, weight_b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(weight_a, weight_b)


def test_listing_filters_and_sorts(trained_registry):
    cards = trained_registry.list_entries(order_by="test_accuracy")
    assert {card.key for card in cards} >= {TINY_DNN.key, TINY_CNN.key}
    assert [card.test_accuracy for card in cards] == sorted((card.test_accuracy for card in cards), reverse=True)
    assert [card.family for card in trained_registry.list_entries(family="cnn")] == ["cnn"]
    with pytest.raises(RegistryError, match="Cannot sort by"):
        trained_registry.list_entries(order_by="key; DROP TABLE entries")


RACE_SCRIPT = textwrap.dedent("""
    import os, sys
    from core.config import TrainConfig
    from core.engines import train_and_publish
    from core.registry import Registry
    config = TrainConfig.from_json(sys.argv[2])
    marker = sys.argv[3]
    def on_epoch(progress):
        open(os.path.join(marker, f"trained-by-{os.getpid()}"), "a").write(f"{progress.epoch}\\n")
    entry = train_and_publish(Registry(sys.argv[1]), config, on_epoch=on_epoch)
    print(entry.card.created, entry.key)
""")


def run_script(script, *arguments, **popen):
    return subprocess.Popen([sys.executable, "-c", script, *map(str, arguments)], cwd=PROJECT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)


def test_processes_racing_for_one_key_train_it_once(registry_root, tmp_path):
    config = dataclasses.replace(TINY_DNN, seed=7)
    processes = [run_script(RACE_SCRIPT, registry_root, config.to_json(), tmp_path) for _ in range(3)]
    outputs = [process.communicate(timeout=300) for process in processes]
    assert all(process.returncode == 0 for process in processes), outputs
    assert len(list(tmp_path.glob("trained-by-*"))) == 1
    assert len({stdout.strip() for stdout, _ in outputs}) == 1  # same entry, same creation time


KILL_SCRIPT = textwrap.dedent("""
    import sys
    from core.config import TrainConfig
    from core.engines import train_and_publish
    from core.registry import Registry
    config = TrainConfig.from_json(sys.argv[2])
    def on_epoch(progress):
        print("epoch", progress.epoch, flush=True)
    train_and_publish(Registry(sys.argv[1]), config, on_epoch=on_epoch)
""")


def test_a_run_killed_mid_training_leaves_no_servable_entry_and_can_be_retried(registry_root):
    config = dataclasses.replace(TINY_DNN, epochs=50, seed=11)
    process = run_script(KILL_SCRIPT, registry_root, config.to_json())
    assert process.stdout.readline().startswith("epoch")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    registry = Registry(registry_root)
    assert not registry.has(config.key)
    assert registry.list_entries() == []
    registry.clean_partial()
    assert not any(registry.models_dir.iterdir())
    retried = train_and_publish(registry, dataclasses.replace(config, epochs=1))
    assert registry.has(retried.key)


def test_a_run_killed_during_the_final_save_leaves_no_servable_entry(registry_root, monkeypatch):
    registry = Registry(registry_root)
    config = dataclasses.replace(TINY_DNN, epochs=1, seed=12)

    def crash_after_model_file(card, history, write_files):
        temp_dir = registry.models_dir / f".tmp-{card.key}-crashed"
        temp_dir.mkdir()
        write_files(temp_dir)
        assert (temp_dir / MODEL_FILE).is_file()
        raise KeyboardInterrupt("simulated kill between writing the model and the card")

    monkeypatch.setattr(registry, "publish", crash_after_model_file)
    with pytest.raises(KeyboardInterrupt):
        train_and_publish(registry, config)
    assert not registry.has(config.key)
    assert registry.clean_partial() == [f".tmp-{config.key}-crashed"]


def test_leftover_temp_folders_are_removed_unless_their_trainer_holds_the_lock(registry_root):
    """A stray `.tmp-` folder whose name holds no key (copied in by hand, an older version's) is removed like a dead
    training's; a folder whose trainer still holds the key's lock is kept. `doctor` and every worker start clean up."""
    registry = Registry(registry_root)
    stray = registry.models_dir / ".tmp-notakey-1"
    alive = registry.models_dir / f".tmp-{TINY_DNN.key}-alive"
    dead = registry.models_dir / f".tmp-{TINY_CNN.key}-dead"
    for folder in (stray, alive, dead):
        folder.mkdir()
    with registry.key_lock(TINY_DNN.key) as acquired:
        assert acquired
        assert sorted(registry.clean_partial()) == sorted([stray.name, dead.name])
        assert alive.is_dir()
    doctor = subprocess.run([sys.executable, "-m", "core", "--root", str(registry_root), "doctor"],
                            capture_output=True, text=True, timeout=120)
    assert doctor.returncode == 0, doctor.stderr
    assert f"{alive.name}" in doctor.stdout and not alive.exists()


def test_disk_full_gives_a_clear_error_and_leaves_nothing_behind(registry_root, monkeypatch):
    registry = Registry(registry_root)

    def disk_full(path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    card = ModelCard(key="0123456789abcdef", title="a model", config=None, dataset=DatasetFacts(("a", "b"), (28, 28, 1)),
                     params=ParameterCounts(1, 1, 0), layers=(), created="")
    with pytest.raises(RegistryError, match="No space left on device.*Free some disk space"):
        registry.publish(card, [], disk_full)
    assert list(registry.models_dir.iterdir()) == []


def test_an_unwritable_registry_folder_gives_a_clear_error(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the registry folder should be")
    with pytest.raises(RegistryError, match="Cannot open the model registry.*CNNCLASSROOM_REGISTRY"):
        Registry(blocker / "registry")


def test_index_is_rebuilt_when_deleted_and_heals_when_a_folder_is_removed(trained_registry_root, tmp_path):
    registry = Registry(copy_registry(trained_registry_root, tmp_path / "copy"))
    (registry.root / INDEX_FILE).unlink()
    rebuilt = Registry(registry.root)
    assert {card.key for card in rebuilt.list_entries()} == {TINY_DNN.key, TINY_CNN.key}
    import shutil

    shutil.rmtree(rebuilt.entry_dir(TINY_DNN.key))
    assert [card.key for card in rebuilt.list_entries()] == [TINY_CNN.key]
    with pytest.raises(EntryNotFoundError, match="python -m core list"):
        rebuilt.get(TINY_DNN.key)


def test_damaged_entries_are_reported_and_skipped(trained_registry_root, tmp_path):
    registry = Registry(copy_registry(trained_registry_root, tmp_path / "copy"))
    (registry.entry_dir(TINY_DNN.key) / CARD_FILE).write_text("{ not json")
    (registry.models_dir / "fedcba9876543210").mkdir()  # a folder without a card or model
    problems = registry.reindex()
    assert any("damaged card" in problem for problem in problems)
    assert any("incomplete entry" in problem for problem in problems)
    assert [card.key for card in registry.list_entries()] == [TINY_CNN.key]


def test_export_keras_savedmodel_and_tflite(trained_registry, tmp_path):
    keras_file = trained_registry.export(TINY_CNN.key, "keras", tmp_path)
    assert zipfile.is_zipfile(keras_file)
    saved_model_zip = trained_registry.export(TINY_CNN.key, "savedmodel", tmp_path)
    assert any(name.endswith("saved_model.pb") for name in zipfile.ZipFile(saved_model_zip).namelist())
    tflite_file = trained_registry.export(TINY_CNN.key, "tflite", tmp_path)
    assert tflite_file.read_bytes()[4:8] == b"TFL3"
    with pytest.raises(RegistryError, match="Export format must be one of"):
        trained_registry.export(TINY_CNN.key, "onnx", tmp_path)


def test_an_export_imported_elsewhere_keeps_its_card_and_is_tested_there(trained_registry, registry_root, tmp_path):
    """The registry's own .keras export carries its card and history: imported into another registry it keeps its
    title and class names, and is tested there on the same test images (never read from the file)."""
    original = trained_registry.get(TINY_DNN.key)
    exported = trained_registry.export(TINY_DNN.key, "keras", tmp_path / "teacher.keras")
    assert exported == tmp_path / "teacher.keras"
    with pytest.raises(RegistryError, match="exists already and is kept"):
        trained_registry.export(TINY_DNN.key, "keras", exported)
    with pytest.raises(RegistryError, match="A tflite export is a .tflite file"):
        trained_registry.export(TINY_DNN.key, "tflite", tmp_path / "other.keras")
    registry = Registry(registry_root)
    moved = import_model_file(registry, exported)
    assert moved.outcome == TESTED_HERE and moved.entry.key == TINY_DNN.key and not moved.entry.card.imported
    assert moved.entry.title == original.title and moved.entry.class_names == original.class_names
    assert moved.entry.history == original.history and moved.entry.card.preprocessing == original.card.preprocessing
    here, there = registry.load_evaluation(TINY_DNN.key), trained_registry.load_evaluation(TINY_DNN.key)
    assert np.array_equal(here.predicted, there.predicted) and moved.entry.test_accuracy == pytest.approx(there.accuracy)
    assert f"tested here on its {len(here.y_true):,} test images: {here.accuracy:.1%}" in moved.message
    view_here, view_there = (stored_first_view(folder.entry_dir(TINY_DNN.key)) for folder in (registry, trained_registry))
    np.testing.assert_array_equal(view_here.first_layer.weights, view_there.first_layer.weights)  # Inside's first view
    assert import_model_file(registry, exported).outcome == ALREADY_THERE

    retitled = import_model_file(registry, exported, title="Teacher DNN")  # a title of one's own: an imported model
    assert retitled.outcome == IMPORTED and retitled.entry.card.imported and retitled.entry.title == "Teacher DNN"
    assert retitled.entry.class_names == original.class_names and retitled.entry.test_accuracy is None
    assert retitled.entry.card.dataset.name == original.card.dataset.name  # Predict prepares photos for its data

    def with_note(name: str, change) -> Path:
        """The export with its note changed by `change(note)`."""
        note = json.loads(zipfile.ZipFile(exported).read(ENTRY_NOTE))
        change(note["card"])
        with zipfile.ZipFile(exported) as source, zipfile.ZipFile(tmp_path / name, "w") as target:
            for info in source.infolist():
                target.writestr(info, json.dumps(note) if info.filename == ENTRY_NOTE else source.read(info))
        return tmp_path / name

    # another file given a title a model has: numbered (a teacher's walk found two "Plain CNN" in `list`)
    twin = import_model_file(registry, with_note("twin.keras", lambda card: card.update(about="twin")), title="teacher dnn")
    assert twin.outcome == IMPORTED and twin.entry.key != retitled.entry.key and twin.entry.title == "teacher dnn (2)"

    elsewhere = Registry(tmp_path / "elsewhere")  # the same dataset name, other images: not tested here
    untested = import_model_file(elsewhere, with_note("other.keras", lambda card: card["dataset"].update(fingerprint="0")))
    assert untested.outcome == IMPORTED and untested.entry.class_names == original.class_names
    assert "holds other images than the ones it learned from" in untested.message
    assert not elsewhere.has(TINY_DNN.key)
    odd = import_model_file(elsewhere, with_note("odd.keras", lambda card: card["dataset"].update(name="../../etc")))
    assert odd.outcome == IMPORTED and odd.entry.card.dataset.name is None  # a name no dataset has is not kept


def test_import_a_keras_file_and_refuse_hostile_ones(trained_registry, registry_root, tmp_path):
    import keras

    exported = trained_registry.export(TINY_DNN.key, "keras", tmp_path)
    registry = Registry(registry_root)
    entry = registry.import_model(exported, class_names=trained_registry.get(TINY_DNN.key).class_names)
    assert entry.card.imported and registry.list_entries()[0].family == "imported"
    assert registry.import_model(exported).key == entry.key  # same file, same entry

    inputs = keras.Input((4,))
    outputs = keras.layers.Lambda(lambda x: x * 2)(inputs)
    lambda_file = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(lambda_file)
    with pytest.raises(ModelFileError, match="custom code"):
        registry.import_model(lambda_file)

    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(exported.read_bytes()[: exported.stat().st_size // 2])
    with pytest.raises(ModelFileError, match="not a valid .keras file"):
        registry.import_model(truncated)
    text = tmp_path / "notes.keras"
    text.write_text("not a model")
    with pytest.raises(ModelFileError, match="not a valid .keras file"):
        registry.import_model(text)
    legacy = tmp_path / "old.h5"
    legacy.write_bytes(b"\x89HDF\r\n\x1a\n")
    with pytest.raises(ModelFileError, match="legacy HDF5"):
        registry.import_model(legacy)
    assert len(registry.list_entries()) == 1


def test_invalid_keys_never_reach_the_filesystem(registry_root):
    registry = Registry(registry_root)
    for key in ("../../etc/passwd", "0123456789ABCDEF", "x" * 16):
        with pytest.raises(Exception, match="16 lowercase hexadecimal digits"):
            registry.get(key)
        with pytest.raises(Exception, match="16 lowercase hexadecimal digits"):
            registry.delete(key)


def test_seeded_training_is_reproducible(registry_root):
    config = dataclasses.replace(TINY_DNN, epochs=1, seed=3)
    first = training.train(config)
    second = training.train(config)
    for weight_a, weight_b in zip(first.model.get_weights(), second.model.get_weights()):
        np.testing.assert_allclose(weight_a, weight_b, rtol=1e-5, atol=1e-6)


def test_stop_at_accuracy_and_cancellation():
    target = dataclasses.replace(TINY_DNN, epochs=30, stop_at_accuracy=0.6, seed=4)
    result = training.train(target)
    assert len(result.history) < 30 and "target 60%" in result.stopped_reason
    assert result.history[-1]["accuracy"] >= 0.6

    from core.errors import TrainingCancelled

    with pytest.raises(TrainingCancelled, match="cancelled"):
        training.train(dataclasses.replace(TINY_DNN, epochs=30, seed=5), should_stop=lambda: True)


def test_augmented_training_runs_through_the_pipeline():
    from core.config import Augmentation

    config = dataclasses.replace(TINY_CNN, epochs=1, augmentation=Augmentation(rotation_range=15, horizontal_flip=True))
    result = training.train(config)
    assert len(result.history) == 1 and np.isfinite(result.history[0]["loss"])


def test_a_damaged_history_draws_fewer_points_never_a_crash(trained_registry_root, tmp_path):
    """history.json was read as it was: a row without val_loss failed `show` and the pages' curves."""
    import json

    from conftest import copy_registry

    root = copy_registry(trained_registry_root, tmp_path / "registry")
    path = root / "models" / TINY_DNN.key / "history.json"
    rows = json.loads(path.read_text())
    path.write_text(json.dumps([rows[0], {"epoch": 2, "loss": "high"}, "not a row", {**rows[0], "loss": float("nan")}]))
    history = Registry(root).get(TINY_DNN.key).history
    assert len(history) == 2 and history[0] == rows[0] and history[1]["loss"] != history[1]["loss"]  # NaN kept
    path.write_text(json.dumps({"not": "a list"}))
    assert Registry(root).get(TINY_DNN.key).history == []
