"""core.training: the one-cycle schedule Keras runs is the curve `one_cycle_rate` defines."""

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
    queue = JobQueue(tmp_path)
    queue.record_batches(TINY_DNN.key, 3, 16)
    assert queue.progress(TINY_DNN.key) == [] and queue.first_epoch_batches(TINY_DNN.key) == (3, 16)
    queue.record_progress(TINY_DNN.key, {"epoch": 1, "accuracy": 0.5})
    assert queue.progress(TINY_DNN.key) == [{"epoch": 1, "accuracy": 0.5}]
