"""Ray as the engine, for real: a Ray started on this machine (every port on 127.0.0.1) trains through the job runner.

One registry and one dispatcher (one Ray) serve the whole module: starting Ray and importing TensorFlow in its
workers are the slow parts. The Ray jobs are tiny Fashion-MNIST trainings.
"""

import dataclasses
import os
import re
import shutil
import signal
import subprocess
import sys

import pytest
import ray  # noqa: F401  (in requirements.txt: a broken install fails here rather than skipping)
from conftest import TINY_CNN, TINY_DNN
from helpers_jobs import stop_workers_of, wait_for

from core.jobs import JobRunner
from core.network_view import stored_first_view
from core.registry import Registry

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def ray_runner(trained_registry_root, tmp_path_factory):
    """A job runner whose jobs go to a local Ray, on a copy of the session's trained registry."""
    root = tmp_path_factory.mktemp("ray") / "registry"
    shutil.copytree(trained_registry_root, root, ignore=shutil.ignore_patterns("*.lock", "*-wal", "*-shm"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CNNCLASSROOM_RAY_ADDRESS", "local")
        patch.setenv("CNNCLASSROOM_REGISTRY", str(root))
        yield JobRunner(Registry(root))
    stop_workers_of(root)  # the dispatcher; the Ray it started goes with it


def follow(runner, key, until=("done", "failed", "cancelled"), timeout=240):
    """Poll like the Train page until the job's state is in `until`; (final status, epochs seen on the way)."""
    seen = set()

    def reached():
        status = runner.status(key)
        seen.update(epoch["epoch"] for epoch in status.progress)
        return status if status.state in until else None

    return wait_for(reached, timeout=timeout, interval=0.3), seen


def ray_process(placement: str) -> int:
    return int(re.search(r"process (\d+)", placement).group(1))


def test_a_tiny_training_runs_on_ray_and_is_published_exactly_like_a_local_one(ray_runner):
    config = dataclasses.replace(TINY_DNN, epochs=3)  # the same data as TINY_DNN, trained here on this machine
    ray_runner.submit(config, session="anna")
    status, seen = follow(ray_runner, config.key)
    assert status.state == "done", status.message
    assert seen == {1, 2, 3}  # each epoch reached the server's progress table while it trained
    assert ray_runner.queue.job(config.key)["placement"].startswith("Ray node 127.0.0.1")
    entry, local = ray_runner.registry.get(config.key), ray_runner.registry.get(TINY_DNN.key)
    assert entry.card.key == config.key and entry.card.config == config.canonical()
    assert entry.card.dataset == local.card.dataset  # same slice, same fingerprint, same class names
    assert entry.card.layers == local.card.layers and entry.card.params == local.card.params
    assert [epoch["epoch"] for epoch in entry.history] == [1, 2, 3]
    assert ray_runner.registry.load_evaluation(config.key).accuracy == pytest.approx(entry.test_accuracy)
    assert ray_runner.registry.load_model(config.key).count_params() == entry.card.params.total
    assert stored_first_view(entry.path).first_layer.name == "dense_1"  # Inside the network's first view came along


def test_a_registry_cnn_is_shipped_to_the_ray_task_as_a_transfer_base(ray_runner):
    config = dataclasses.replace(TINY_DNN, family="transfer", base_model=f"registry:{TINY_CNN.key}", epochs=1, seed=3)
    ray_runner.submit(config, session="ben")
    status, _ = follow(ray_runner, config.key)
    assert status.state == "done", status.message
    card = ray_runner.registry.get(config.key).card
    assert card.params.non_trainable > 0  # the shipped CNN's layers, frozen


def test_cancel_stops_a_ray_training_and_publishes_nothing(ray_runner):
    config = dataclasses.replace(TINY_DNN, epochs=300, seed=5)
    ray_runner.submit(config, session="cleo")
    wait_for(lambda: ray_runner.status(config.key).progress, timeout=240)
    ray_runner.cancel(config.key)
    status, _ = follow(ray_runner, config.key, timeout=60)
    assert status.state == "cancelled" and "cancelled" in status.message
    assert not ray_runner.registry.has(config.key)


def test_a_killed_ray_worker_fails_the_job_and_a_resubmit_trains_it(ray_runner):
    config = dataclasses.replace(TINY_DNN, epochs=25, seed=6)
    ray_runner.submit(config, session="dan")
    wait_for(lambda: ray_runner.status(config.key).progress, timeout=240)
    os.kill(ray_process(ray_runner.queue.job(config.key)["placement"]), signal.SIGKILL)  # the node's training process
    status, _ = follow(ray_runner, config.key, timeout=60)
    assert status.state == "failed" and "stopped before it finished" in status.message
    assert not ray_runner.registry.has(config.key)
    ray_runner.submit(config, session="dan")
    status, _ = follow(ray_runner, config.key)
    assert status.state == "done", status.message


def test_an_unreachable_ray_head_fails_the_job_with_its_address(registry_root, monkeypatch):
    monkeypatch.setenv("CNNCLASSROOM_RAY_ADDRESS", "127.0.0.1:1")
    runner = JobRunner(Registry(registry_root))
    config = dataclasses.replace(TINY_DNN, seed=7)
    runner.submit(config, session="eve")
    status, _ = follow(runner, config.key, timeout=120)
    assert status.state == "failed"
    assert "Cannot reach the Ray cluster at '127.0.0.1:1'" in status.message and "unset the variable" in status.message


def test_without_the_variable_nothing_imports_ray(tmp_path):
    code = ("import sys; from core.engines import engine_for; from core.registry import Registry; import core.workers, "
            "core.jobs, core.teacher; engine = engine_for(Registry(sys.argv[1])); "
            "print(type(engine).__name__, 'ray' in sys.modules)")
    environment = {name: value for name, value in os.environ.items() if name != "CNNCLASSROOM_RAY_ADDRESS"}
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "registry")], capture_output=True, text=True,
                            cwd=PROJECT, env=environment, check=True)
    assert result.stdout.split() == ["LocalEngine", "False"]


def test_a_node_without_the_servers_registry_trains_an_imported_dataset_from_the_shipped_files(registry_root, tmp_path,
                                                                                                  monkeypatch):
    """What a node on another machine gets: the files shipped with the task, and nothing of the server's registry."""
    from PIL import Image, ImageDraw

    from core.config import TrainConfig
    from core.folders import import_folder
    from core.ray_engine import files_to_ship, publish_result, train_here

    for label in ("circles", "squares"):
        (tmp_path / "photos" / label).mkdir(parents=True)
        for number in range(24):
            image = Image.new("RGB", (40 + number, 36 + number), (number * 9 % 255, 90, 200 - number * 5))
            box = (6 + number % 5, 5, 30 + number % 7, 28 + number % 4)
            (ImageDraw.Draw(image).ellipse if label == "circles" else ImageDraw.Draw(image).rectangle)(box, fill="white")
            image.save(tmp_path / "photos" / label / f"{number}.{'png' if number % 2 else 'jpg'}")
    dataset = import_folder(tmp_path / "photos", registry_root).name
    registry = Registry(registry_root)
    config = TrainConfig(dataset=dataset, family="dnn", hidden_units=(16,), image_size=32, epochs=2, batch_size=8)
    shipped = files_to_ship(registry, config)
    assert shipped and all(path.startswith("datasets/") for path in shipped)
    monkeypatch.setenv("CNNCLASSROOM_REGISTRY", str(tmp_path / "a-node-with-no-registry"))
    epochs = []
    result = train_here(config, shipped, 1, on_epoch=epochs.append, should_stop=lambda: False)
    monkeypatch.setenv("CNNCLASSROOM_REGISTRY", str(registry_root))
    assert [progress.epoch for progress in epochs] == [1, 2]
    entry = publish_result(registry, config, result)
    assert entry.key == config.key and entry.card.dataset.name == dataset and entry.card.class_names == ["circles", "squares"]
    assert not (tmp_path / "a-node-with-no-registry").exists()  # the node read only the shipped copy
