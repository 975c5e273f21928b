"""core.training: the one-cycle schedule Keras runs is the curve `one_cycle_rate` defines."""

import numpy as np
import pytest

from core.config import TrainConfig
from core.training import compile_for_task, one_cycle_rate, one_cycle_schedule, steps_per_execution


@pytest.mark.parametrize("total_steps", [10, 333, 4221])
def test_one_cycle_schedule_follows_the_one_cycle_curve(total_steps):
    schedule = one_cycle_schedule(total_steps, peak_rate=0.01)
    for step in sorted({0, 1, total_steps // 3, total_steps // 2, total_steps - 1, total_steps, total_steps + 5}):
        assert float(schedule(step)) == pytest.approx(one_cycle_rate(step, total_steps, 0.01), rel=1e-5, abs=1e-9)


def test_a_one_cycle_config_compiles_with_its_schedule_over_the_whole_run():
    from core.models import build_model

    config = TrainConfig(family="dnn", hidden_units=(8,), lr_schedule="one_cycle", learning_rate=0.01, epochs=4,
                         batch_size=32)
    model = compile_for_task(build_model(config, (28, 28, 1), 10), config, 10, steps_per_epoch=50)
    rates = []
    for step in (0, 60, 199):  # the optimizer computes its rate from its own step count
        model.optimizer.iterations.assign(step)
        rates.append(float(model.optimizer.learning_rate))
    assert rates == pytest.approx([one_cycle_rate(step, 200, 0.01) for step in (0, 60, 199)], rel=1e-5)
    assert steps_per_execution(config, 50) == 50  # 8,192 images per call, but never more than an epoch


def test_the_first_epoch_reports_its_batches_and_the_queue_keeps_them_apart_from_the_epochs(monkeypatch, tmp_path):
    import dataclasses

    from conftest import TINY_DNN

    from core import training
    from core.jobs import JobQueue

    monkeypatch.setattr(training, "BATCH_REPORT_SECONDS", 0.0)
    reports = []
    training.train(dataclasses.replace(TINY_DNN, epochs=2), on_batch=lambda done, total: reports.append((done, total)))
    # ⌈500 / 32⌉ = 16 batches, reported as each group of steps_per_execution batches ends, in the first epoch only
    assert reports[-1] == (16, 16) and reports == sorted(set(reports)) and all(total == 16 for _, total in reports)
    from conftest import TINY_CNN

    reports.clear()  # 20 batches, 16 per execution: Keras names step 32 at the end of the short last chunk
    training.train(dataclasses.replace(TINY_CNN, batch_size=32, train_subset=640, epochs=1),
                   on_batch=lambda done, total: reports.append((done, total)))
    assert reports == [(16, 20), (20, 20)]  # never "batch 32 of 20"
    queue = JobQueue(tmp_path)
    queue.record_batches(TINY_DNN.key, 3, 16)
    assert queue.progress(TINY_DNN.key) == [] and queue.first_epoch_batches(TINY_DNN.key) == (3, 16)
    queue.record_progress(TINY_DNN.key, {"epoch": 1, "accuracy": 0.5})
    assert queue.progress(TINY_DNN.key) == [{"epoch": 1, "accuracy": 0.5}]


def test_each_fit_traces_its_training_step_once_and_trains_the_same(monkeypatch, trained_registry):
    """The optimizer's and metrics' variables exist before `fit`: a step that created them would be traced twice.

    A dense network from arrays, an augmented CNN from a tf.data pipeline, and two-phase fine-tuning (one trace per
    phase, each phase compiling a new optimizer) all trace their step once; the weights trained are what a fit that
    created its own variables trains."""
    import dataclasses

    from conftest import TINY_CNN, TINY_DNN, TRANSFER_SLICE
    from keras.src.backend.tensorflow.trainer import TensorFlowTrainer

    from core import training
    from core.config import Augmentation
    from core.transfer import FINE_TUNING, transfer_experiment

    traces = []
    keras_train_step = TensorFlowTrainer.train_step

    def counted_train_step(model, data):
        traces.append(model.name)
        return keras_train_step(model, data)

    monkeypatch.setattr(TensorFlowTrainer, "train_step", counted_train_step)
    augmented = dataclasses.replace(TINY_CNN, augmentation=Augmentation(horizontal_flip=True, rotation_range=10), epochs=1)
    fine_tuning = transfer_experiment(TINY_CNN.key, registry=trained_registry, **TRANSFER_SLICE)[FINE_TUNING]
    for config, fits in ((TINY_DNN, 1), (augmented, 1), (fine_tuning, 2)):
        traces.clear()
        training.train(config, base_loader=trained_registry.load_model, root=trained_registry.root)
        assert len(traces) == fits, config.title

    traces.clear()
    created_here = training.train(TINY_DNN).model.get_weights()
    monkeypatch.setattr(training, "create_training_variables", lambda *arguments: None)
    created_by_fit = training.train(TINY_DNN).model.get_weights()
    assert len(traces) == 1 + 2  # the step that created the variables was traced twice
    for ours, keras_own in zip(created_here, created_by_fit, strict=True):
        np.testing.assert_array_equal(ours, keras_own)
