"""AppTest: the Transfer-learning page explains the offline ImageNet case and runs the registry-base experiment."""

import shutil
from pathlib import Path

from conftest import TINY_CNN, TRANSFER_SLICE
from apptest import open_page

from core.guide import percent
from core.transfer import (EXPERIMENT_NAMES, FEATURE_EXTRACTION, FINE_TUNING, SCRATCH, transfer_experiment,
                           transfer_verdict)

PAGE = Path(__file__).resolve().parents[2] / "pages/7_Transfer_learning.py"


def test_empty_registry_offers_a_base_and_says_at_once_whether_the_imagenet_weights_are_here(registry_root, monkeypatch,
                                                                                             tmp_path):
    from core.pretrained import cached_weights_path

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))

    def unreachable(url, timeout, stale_ok=False):
        raise OSError("offline")

    monkeypatch.setattr("core.pretrained.check_reachable", unreachable)
    at = open_page(PAGE).run()
    assert not at.exception
    assert any("no trained CNN" in info.value for info in at.info)
    assert "Fashion-MNIST" in at.button(key="transfer_base_button").label
    assert at.selectbox(key="transfer_application").value == "mobilenet_v2"
    message = at.warning[0].value  # on opening the page, no button to press first
    assert "ImageNet weights for MobileNetV2" in message and "section 2 below" in message  # the page's way round
    assert "registry:<key>" not in message and "Received:" not in message  # the command line's, and its values
    assert str(tmp_path) not in message  # a server path is not a student's business
    (note,) = [block for block in at.expander if block.label.startswith("For the teacher")]  # but the teacher's
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5" in note.markdown[0].value
    cached_weights_path("mobilenet_v2", (96, 96, 3)).parent.mkdir(parents=True)
    cached_weights_path("mobilenet_v2", (96, 96, 3)).write_bytes(b"weights")
    at.run()
    assert not at.warning and "are on this machine: pick it on the **Train** page" in at.success[0].value


def test_registry_base_experiment_shows_parameters_and_gains(own_trained_registry, transfer_registry_root):
    registry = own_trained_registry
    at = open_page(PAGE).run()
    assert not at.exception
    assert at.selectbox(key="transfer_base").value == TINY_CNN.key  # the only CNN; the DNN is no base
    assert at.selectbox(key="transfer_dataset").value == "shapes"
    assert at.button(key="transfer_train_button").label == "Train the 3 missing network(s)"

    # The experiment the page describes, on a small slice: trained once per session by train_and_publish (not through
    # the background worker) in transfer_registry_root, and published here by copying its entry folders.
    at.selectbox(key="transfer_dataset").set_value(TRANSFER_SLICE["dataset"])
    at.select_slider(key="transfer_subset").set_value(TRANSFER_SLICE["train_subset"])
    at.slider(key="transfer_epochs").set_value(TRANSFER_SLICE["epochs"]).run()
    assert any("base's own dataset" in warning.value for warning in at.warning)
    configs = transfer_experiment(TINY_CNN.key, registry=registry, **TRANSFER_SLICE)
    for config in configs.values():
        shutil.copytree(transfer_registry_root / "models" / config.key, registry.models_dir / config.key)
    registry.heal()
    entries = {name: registry.get(config.key) for name, config in configs.items()}
    at.run()
    assert not at.exception
    table = at.dataframe[0].value.set_index("network")
    assert list(table.index) == list(EXPERIMENT_NAMES)
    for name, entry in entries.items():
        assert table.loc[name, "test accuracy"] == f"{entry.test_accuracy:.1%}"
        assert table.loc[name, "trainable parameters"] == f"{entry.card.params.trainable:,}"
        assert table.loc[name, "frozen parameters"] == f"{entry.card.params.non_trainable:,}"
    trainable = {name: entry.card.params.trainable for name, entry in entries.items()}
    assert trainable[FEATURE_EXTRACTION] < trainable[FINE_TUNING] < trainable[SCRATCH]
    gain = 100 * (entries[FINE_TUNING].test_accuracy - entries[SCRATCH].test_accuracy)
    assert table.loc[FINE_TUNING, "gain over scratch (points)"] == f"{round(gain, 2):+.1f}"
    assert table.loc[SCRATCH, "gain over scratch (points)"] == "—"
    verdict = transfer_verdict(configs, registry)
    early = ", ".join(f"{percent(accuracy)} ({name})" for name, accuracy in verdict.early_validation_accuracy.items())
    assert any(f"After {verdict.early_epoch} epochs the validation accuracy is {early}" in block.value for block in at.markdown)
    assert len(at.get("plotly_chart")) == 2  # accuracy bars and learning curves
    assert "transfer_train_button" not in [button.key for button in at.button]

    models = open_page(Path(__file__).resolve().parents[2] / "pages/11_Models.py").run()  # deleting the base says so
    models.multiselect(key="models_to_delete").set_value([TINY_CNN.key]).run()
    models.button(key="models_delete_button").click().run()
    warning = next(box.value for box in models.warning if box.value.startswith("Delete 1 model?"))
    assert "2 transfer models started from it and stay" in warning
    assert entries[FEATURE_EXTRACTION].title in warning and entries[FINE_TUNING].title in warning


def test_a_target_with_fewer_images_than_asked_says_all_are_used(own_trained_registry):
    """The slider read 300 above a photo dataset of 120 training photos; only the chart's title said 120."""
    from photos import photo_files, zip_bytes

    from core.folders import import_zip

    report = import_zip(zip_bytes(photo_files({"train": 30, "validation": 6}, size=(64, 64))),
                        own_trained_registry.root, title="round or angular")
    at = open_page(PAGE).run()
    at.selectbox(key="transfer_dataset").set_value(report.name).run()
    assert not at.exception
    assert at.select_slider(key="transfer_subset").value == 300
    assert "round or angular has 60 training images, fewer than the 300 asked for: the three networks learn from all " \
           "of them." in [caption.value for caption in at.caption]
    at.select_slider(key="transfer_subset").set_value(200).run()  # fewer than Fashion-MNIST holds: no such caption
    at.selectbox(key="transfer_dataset").set_value("fashion_mnist").run()
    assert not [caption.value for caption in at.caption if "fewer than the" in caption.value]
