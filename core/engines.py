"""Where a training runs: the one replaceable piece between the job queue and `core.training`.

An engine takes a `TrainConfig`, trains it with `core.training` (the same code everywhere), reports
each epoch and honours Cancel, and publishes the result into the registry under the config's key.
`LocalEngine` trains in the calling process: a pool worker's, or the CLI's. `RayEngine`
(`core.ray_engine`, chosen when $CNNCLASSROOM_RAY_ADDRESS is set) sends each job to a Ray cluster as a
task and publishes what the task returns; without that variable nothing imports Ray.
"""

import os
from pathlib import Path

from core.config import TrainConfig
from core.network_view import VIEW_FILE, save_first_view
from core.registry import EVAL_FILE, MODEL_FILE, Entry, Registry

RAY_ADDRESS_ENV = "CNNCLASSROOM_RAY_ADDRESS"  # a Ray head's address (host:port), or "local" for a Ray on this machine


def ray_address() -> str | None:
    """The Ray cluster jobs are sent to, or None to train on this machine."""
    return os.environ.get(RAY_ADDRESS_ENV, "").strip() or None


class LocalEngine:
    """Trains in this process, one job at a time."""

    name = "local"

    def __init__(self, registry: Registry):
        self.registry = registry

    def jobs_at_once(self) -> int:
        return 1

    def run(self, config: TrainConfig, on_epoch=None, should_stop=None, on_placed=None, on_batch=None,
            on_first_batch=None) -> Entry:
        """Train `config` and publish it (or return it, if it is published already)."""
        from core.backend import keras, tf

        if on_placed:
            threads = tf.config.threading.get_intra_op_parallelism_threads() or "all"
            on_placed(f"this server (process {os.getpid()}, TensorFlow threads: {threads})")
        try:
            return train_and_publish(self.registry, config, on_epoch=on_epoch, should_stop=should_stop, on_batch=on_batch,
                                     on_first_batch=on_first_batch)
        finally:
            keras.backend.clear_session()  # the next job starts from a clean Keras state


def engine_for(registry: Registry):
    """The engine this installation trains with: Ray when $CNNCLASSROOM_RAY_ADDRESS is set, else this machine."""
    address = ray_address()
    if address:
        from core.ray_engine import RayEngine

        return RayEngine(registry, address)
    return LocalEngine(registry)


def train_and_publish(registry: Registry, config: TrainConfig, on_epoch=None, should_stop=None, on_batch=None,
                      on_first_batch=None) -> Entry:
    """Train `config` in this process and publish it, unless it is published already; concurrent callers train once."""
    if registry.has(config.key):
        return registry.get(config.key)
    with registry.key_lock(config.key):
        if registry.has(config.key):
            return registry.get(config.key)
        from core.training import train_and_evaluate

        trained = train_and_evaluate(config, on_epoch=on_epoch, should_stop=should_stop, base_loader=registry.load_model,
                                     root=registry.root, on_batch=on_batch, on_first_batch=on_first_batch)

        def write_files(folder: Path):
            trained.model.save(str(folder / MODEL_FILE))
            trained.evaluation.save(folder / EVAL_FILE)
            if trained.first_view is not None:
                save_first_view(trained.first_view, folder / VIEW_FILE)

        return registry.publish(trained.card, trained.history, write_files)
