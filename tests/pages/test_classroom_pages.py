"""AppTest: a shared classroom server — teacher mode on the Models page, and a waiting student's place on the Train page."""

import dataclasses
import time

import pytest
from apptest import open_page
from conftest import TINY_CNN, TINY_DNN
from helpers_jobs import finish_at

from core import workers
from core.jobs import JobQueue

PASSPHRASE = "owls-at-dusk-42"


def texts(at) -> str:
    return "\n".join(str(element.value) for kind in ("markdown", "caption", "info", "error", "success")
                     for element in getattr(at, kind))


def keys_of(at, kind: str) -> set:
    return {element.key for element in at.get(kind)}


def select_model(at, key: str):
    """Click the row of model `key` in the Models page's table."""
    row = list(at.dataframe[0].value["key"]).index(key)
    at.session_state[at.dataframe[0].key] = {"selection": {"rows": [row], "columns": [], "cells": []}}
    return at.run()


@pytest.fixture
def classroom(own_trained_registry, monkeypatch):
    """A registry with two models on a server whose teacher set a passphrase."""
    monkeypatch.setenv("CNNCLASSROOM_TEACHER_PASSPHRASE", PASSPHRASE)
    return own_trained_registry


def test_a_model_deleted_while_picked_leaves_no_other_model_shown_as_picked(own_trained_registry):
    """The details followed the row's place: after the picked model was deleted (here, by the command line or another
    teacher), the model that took its row was shown, ready to download or pin, though nobody had picked it."""
    for picked in (TINY_DNN, TINY_CNN):  # whichever row it is: the last one's place is then past the table's end
        at = select_model(open_page("pages/11_Models.py").run(), picked.key)
        assert at.subheader[0].value == picked.title
        own_trained_registry.delete(picked.key)
        at.run()
        assert not at.exception and not at.subheader, [header.value for header in at.subheader]
        own_trained_registry.restore(picked.key)


def test_a_student_cannot_delete_or_import_on_the_models_page(classroom):
    at = select_model(open_page("pages/11_Models.py").run(), TINY_DNN.key)
    assert not at.exception
    accuracies = dict(zip(at.dataframe[0].value["key"], at.dataframe[0].value["test accuracy"]))
    assert accuracies[TINY_DNN.key] == pytest.approx(100 * classroom.get(TINY_DNN.key).test_accuracy)  # in percent,
    # written with two decimals each ("percent" wrote 38% beside 38.33%)
    assert "deleting, importing and pinning are for the teacher" in texts(at)
    assert "models_delete_button" not in keys_of(at, "button") and not at.get("file_uploader")
    assert "models_pin_button" not in keys_of(at, "button")
    at.text_input(key="teacher_passphrase").input("owls-at-noon")
    at.button(key="teacher_unlock_button").click().run()
    assert "not the teacher's passphrase" in texts(at)
    assert "models_delete_button" not in keys_of(at, "button")
    assert classroom.has(TINY_DNN.key) and classroom.has(TINY_CNN.key)


def test_the_teacher_unlocks_pins_and_deletes_on_the_models_page(classroom):
    at = open_page("pages/11_Models.py").run()
    at.text_input(key="teacher_passphrase").input(PASSPHRASE)
    at.button(key="teacher_unlock_button").click().run()
    assert "teacher_lock_button" in keys_of(at, "button") and at.get("file_uploader")
    at = select_model(at, TINY_CNN.key)
    at.button(key="models_pin_button").click().run()
    assert not at.exception and classroom.is_pinned(TINY_CNN.key)
    assert "Unpin (allow deleting)" in [button.label for button in at.button]
    assert at.multiselect(key="models_to_delete").options == [classroom.get(TINY_DNN.key).title]  # the pinned one: not
    assert "1 pinned model is not listed: a lesson needs it" in texts(at)
    at.multiselect(key="models_to_delete").set_value([TINY_DNN.key]).run()
    at.button(key="models_delete_button").click().run()
    classroom.pin(TINY_DNN.key)  # pinned in another tab before the confirmation: no longer offered, nothing deleted
    at.run()
    assert not at.exception and "models_confirm_delete_button" not in keys_of(at, "button")
    assert "2 pinned models are not listed" in texts(at) and "models_to_delete" not in keys_of(at, "multiselect")
    classroom.pin(TINY_DNN.key, pinned=False)
    at.run()
    at.multiselect(key="models_to_delete").set_value([TINY_DNN.key]).run()
    at.button(key="models_delete_button").click().run()
    assert classroom.has(TINY_DNN.key)  # not yet: the confirmation names the model first
    assert classroom.get(TINY_DNN.key).title in at.warning[0].value
    at.button(key="models_confirm_delete_button").click().run()
    assert not at.exception
    assert at.success[0].value.startswith("Deleted 1 model: Recently deleted models, below, brings")
    assert not classroom.has(TINY_DNN.key) and classroom.has(TINY_CNN.key)
    assert list(at.dataframe[0].value["key"]) == [TINY_CNN.key]
    at.button(key="models_restore_0_button").click().run()  # from "Recently deleted"
    assert not at.exception and classroom.has(TINY_DNN.key)
    assert at.success[0].value == f"Restored {classroom.get(TINY_DNN.key).title}."


def test_a_waiting_student_sees_their_place_and_about_when_it_starts(registry_root, monkeypatch):
    """Three classmates' jobs wait before this student's; two finished jobs give the speed. No worker runs here."""
    monkeypatch.setattr(workers, "ensure_workers", lambda *args, **kwargs: None)
    queue = JobQueue(registry_root)
    for seed in (1, 2):  # 500 images x 2 epochs in 4 s each, one after the other
        ended = time.time() - 10 * (3 - seed)
        finish_at(queue, dataclasses.replace(TINY_DNN, seed=seed), ended - 4, ended, session="earlier")
    for seed in (3, 4, 5):
        queue.enqueue(dataclasses.replace(TINY_DNN, seed=seed), session=f"classmate-{seed}")
    at = open_page("pages/8_Train.py").run()
    at.select_slider(key="train_subset").set_value(500)
    at.radio(key="train_family").set_value("dnn").run()
    at.button(key="train_start_button").click().run()
    assert not at.exception
    progress = [element.proto.text for element in at.get("progress")]
    # one worker (no pool has recorded more): three 4-second jobs ahead -> about 12 s
    assert any("queued: 3 trainings ahead of yours, starts in about 12 s" in text for text in progress), progress


def test_the_teachers_budget_set_on_the_models_page_refuses_a_long_training_on_the_train_page(classroom):
    at = open_page("pages/11_Models.py").run()
    at.text_input(key="teacher_passphrase").input(PASSPHRASE)
    at.button(key="teacher_unlock_button").click().run()
    at.number_input(key="teacher_budget_epochs").set_value(3)
    at.number_input(key="teacher_budget_seconds").set_value(120)
    at.button(key="teacher_budget_button").click().run()
    assert not at.exception and "Saved" in texts(at)
    assert JobQueue(classroom.root).budget().max_epochs == 3 and JobQueue(classroom.root).budget().max_seconds == 120
    student = open_page("pages/8_Train.py").run()
    student.slider(key="train_epochs").set_value(4).run()
    student.button(key="train_start_button").click().run()
    assert "at most 3 epochs per training" in texts(student) and "ask for 4" in texts(student)
    assert JobQueue(classroom.root).active() == []


def test_the_teacher_deletes_a_wrong_zips_dataset_and_restores_it(registry_root):
    """A wrong or duplicate zip need not stay in every student's dataset list: deleted like a model, restorable."""
    from photos import photo_files, zip_bytes

    from core.catalogue import list_datasets
    from core.folders import import_zip

    report = import_zip(zip_bytes(photo_files({"train": 12}, size=(64, 48), split_folders=False)), registry_root,
                        title="wrong zip")
    at = open_page("pages/11_Models.py").run()
    at.multiselect(key="datasets_to_delete").set_value([report.name]).run()
    at.button(key="datasets_delete_button").click().run()
    assert "wrong zip" in at.warning[0].value and report.name in [info.name for info in list_datasets(registry_root)]
    assert at.warning[0].value.startswith("Delete 1 imported dataset? It goes to the trash")
    at.button(key="datasets_confirm_delete_button").click().run()
    assert not at.exception and at.success[0].value.startswith("Deleted 1 imported dataset")
    assert report.name not in [info.name for info in list_datasets(registry_root)]
    at.button(key="datasets_restore_0_button").click().run()
    assert not at.exception and report.name in [info.name for info in list_datasets(registry_root)]
    assert at.success[0].value == "Restored wrong zip."


def test_an_imagenet_base_without_its_weights_is_refused_before_the_train_button(registry_root, monkeypatch, tmp_path):
    """Offline, Transfer with MobileNetV2 failed 5 s after Train with a message whose paths had eaten its full stops."""
    monkeypatch.setattr(workers, "ensure_workers", lambda *args, **kwargs: None)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))

    def unreachable(url, timeout, stale_ok=False):
        raise OSError("offline")

    monkeypatch.setattr("core.pretrained.check_reachable", unreachable)
    at = open_page("pages/8_Train.py").run()
    at.radio(key="train_family").set_value("transfer").run()
    assert not at.exception and "train_start_button" not in keys_of(at, "button")
    message = at.error[0].value
    assert message.startswith("The ImageNet weights for MobileNetV2 are not on this machine and could not be downloaded. "
                              "Expected the file mobilenet_v2_")
    assert " in a folder on the server. To fix: " in message and "/root" not in message
    assert "A teacher can add the file by hand (the README says where)." in message  # the path is not said here
    assert message.endswith("Without internet, choose a CNN trained here as the base instead (marked “trained here” in "
                            "the list of bases).")


def test_a_model_deleted_while_chosen_is_replaced_with_a_notice(own_trained_registry):
    """Predict once switched to another model silently when the chosen one was deleted on another page."""
    at = open_page("pages/10_Predict.py").run()
    at.selectbox(key="predict_model").set_value(TINY_DNN.key).run()
    assert not at.info or "no longer in the registry" not in texts(at)
    own_trained_registry.delete(TINY_DNN.key)
    at.run()
    assert not at.exception and at.selectbox(key="predict_model").value == TINY_CNN.key
    assert (f"The model you had chosen is no longer in the registry (deleted on another page, or by the teacher): "
            f"showing {TINY_CNN.title}") in texts(at)
    at.run()  # said once, on the run that replaced it
    assert "no longer in the registry" not in texts(at)


def test_a_damaged_model_file_tells_a_student_what_to_do_and_the_log_the_exact_error(own_trained_registry, caplog):
    """A model file broken on the server's disk: Predict says so in a student's words (no exception type, no command
    only the teacher can run); the exact error, with the command that mends it, goes to the server's log."""
    from core.registry import DAMAGED_MODEL, MODEL_FILE

    from core import ui

    ui.load_model.clear()  # a model loaded before it was damaged stays usable: the server keeps it in memory
    (own_trained_registry.entry_dir(TINY_DNN.key) / MODEL_FILE).write_bytes(b"PK\x03\x04 not a whole zip")
    at = open_page("pages/10_Predict.py").run()
    at.selectbox(key="predict_model").set_value(TINY_DNN.key).run()
    assert not at.exception
    assert [error.value for error in at.error] == [DAMAGED_MODEL]
    assert "python -m core delete" not in texts(at) and "Error:" not in texts(at)
    assert f"Delete the entry with `python -m core delete {TINY_DNN.key}`" in caplog.text


def test_a_reloaded_train_page_still_shows_the_trainings_under_way(registry_root, monkeypatch):
    """A reload resets the sidebar: the training it started went on, unseen. No worker runs here."""
    monkeypatch.setattr(workers, "ensure_workers", lambda *args, **kwargs: None)
    mine = dataclasses.replace(TINY_DNN, seed=7)
    JobQueue(registry_root).enqueue(mine, session="before-the-reload")
    at = open_page("pages/8_Train.py").run()
    assert not at.exception
    assert "Other trainings under way on this server (1)" in [expander.label for expander in at.expander]
    assert f"- {mine.title}: queued" in texts(at)
    at.select_slider(key="train_subset").set_value(500)
    at.radio(key="train_family").set_value("dnn")
    at.select_slider(key="train_units").set_value(32)
    at.slider(key="train_epochs").set_value(2)
    at.number_input(key="train_seed").set_value(7).run()  # its settings again: shown by the training panel itself
    assert not at.exception and "Other trainings under way" not in [expander.label for expander in at.expander]


def test_a_prepared_download_stays_when_another_format_is_prepared(own_trained_registry):
    """Preparing a second format took the first one's Download button away."""
    at = select_model(open_page("pages/11_Models.py").run(), TINY_DNN.key)
    at.button(key="models_prepare_keras_button").click().run()
    at.button(key="models_prepare_savedmodel_button").click().run()
    assert not at.exception
    labels = [button.proto.label for button in at.get("download_button")]
    assert labels == ["Download .keras", "Download SavedModel (zip)"]  # the format first: long names are cut
    names = [caption.value for caption in at.caption if caption.value.endswith((".keras", ".zip"))]
    assert len(names) == 2 and names[0].endswith(".keras") and names[1].endswith("_saved_model.zip"), names


def test_a_train_button_says_about_when_its_model_would_be_ready_once_a_similar_training_finished_here(registry_root,
                                                                                                          monkeypatch):
    from core.jobs import JobRunner
    from core.registry import Registry

    monkeypatch.setattr(workers, "ensure_workers", lambda *args, **kwargs: None)
    asked, ready_in = [], JobRunner.ready_in
    monkeypatch.setattr(JobRunner, "ready_in", lambda self, configs: asked.append(configs) or ready_in(self, configs))
    at = open_page("pages/8_Train.py").run()
    assert not at.exception and "from the press" not in texts(at)  # nothing finished here yet: nothing promised
    [config] = asked[-1]
    # but what the press trains is said, in numbers (Augmentation's button trained two models, 30 epochs each, unsaid)
    images = min(config.train_subset or 54_000, 54_000)  # Fashion-MNIST's 60,000 less the validation tenth
    assert (f"No time can be promised yet (a training like this one has to finish on this server first): the button "
            f"trains a model, {config.epochs} epochs on {images:,} training images ({config.epochs * images:,} images "
            "seen in all).") in texts(at)
    queue = JobQueue(registry_root)
    for done, promised, ago in ((dataclasses.replace(TINY_DNN, family=config.family, seed=7), False, 10),  # far smaller
                                (dataclasses.replace(config, seed=config.seed + 1), True, 0)):  # the same network, data
        ended = time.time() - ago  # 4 s each, one after the other (two at once would have shared the cores)
        finish_at(queue, done, ended - 4, ended, session="earlier")
        at.run()
        assert ("from the press" in texts(at)) == promised
    [caption] = [caption.value for caption in at.caption if "from the press" in caption.value]
    assert caption == ("About 4 s from the press to a model, going by this server's last trainings and the ones "
                       "queued now.")
    from core.jobs import Budget

    queue.set_budget(Budget(max_seconds=3))  # the teacher's limit is under what it would take: warned, not promised
    at.run()
    assert "from the press" not in texts(at)
    assert at.warning[-1].value.startswith("This training would take about 4 s, going by this server's last trainings, "
                                           "and your teacher allows 3 s per training: it would be stopped")
    assert Registry(registry_root).list_entries() == []  # finished jobs, not models: the page trained nothing


def test_a_running_training_says_where_it_is_in_words_that_do_not_mix_meanings():
    """"epoch 0 of 3" for the first seconds, then "epoch 1 of 3: batch 63 of 63" followed by "epoch 1 of 3" meaning one
    done: a student read the same words two ways. Now: starting, the first epoch's batches, then epochs done."""
    from core.jobs import JobStatus
    from core.guide import progress_fraction, progress_text

    starting = JobStatus("k", "running", epochs=3)
    first = JobStatus("k", "running", epochs=3, first_epoch_batches=(21, 63))
    later = JobStatus("k", "running", epochs=3, progress=[{"eta_seconds": 7.2}], first_epoch_batches=(63, 63))
    assert progress_text(starting, 3) == "starting: loading the images and building the network…"
    assert progress_text(first, 3) == "running, epoch 1 of 3: batch 21 of 63"
    assert progress_text(later, 3) == "running: 1 of 3 epochs done · about 7 s left"
    assert [progress_fraction(status, 3) for status in (starting, first, later)] == [0, 21 / 63 / 3, 1 / 3]
    ray = JobStatus("k", "running", epochs=1, progress=[{"eta_seconds": 0}], placement="Ray node 10.0.0.7, process 9")
    assert progress_text(ray, 1) == "1 of 1 epoch done on Ray node 10.0.0.7: testing on its test images and saving the model…"
    last = JobStatus("k", "running", epochs=2, progress=[{}, {"eta_seconds": 0}])  # "running: …" while it tested
    assert progress_text(last, 2) == "2 of 2 epochs done: testing on its test images and saving the model…"
