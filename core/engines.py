"""Where a training runs: the one replaceable piece between the job queue and `core.training`.

An engine takes a `TrainConfig`, trains it with `core.training` (the same code everywhere), reports
each epoch and honours Cancel, and publishes the result into the registry under the config's key.
`LocalEngine` trains in the calling process: the background worker's, or the CLI's.
"""

from pathlib import Path

from core.config import TrainConfig
from core.registry import EVAL_FILE, MODEL_FILE, Entry, Registry


class LocalEngine:
    """Trains in this process."""

    name = "local"

    def __init__(self, registry: Registry):
        self.registry = registry

    def run(self, config: TrainConfig, on_epoch=None, should_stop=None) -> Entry:
        """Train `config` and publish it (or return it, if it is published already)."""
        import keras

        try:
            return train_and_publish(self.registry, config, on_epoch=on_epoch, should_stop=should_stop)
        finally:
            keras.backend.clear_session()  # the next job starts from a clean Keras state


def engine_for(registry: Registry):
    """The engine this installation trains with."""
    return LocalEngine(registry)


def train_and_publish(registry: Registry, config: TrainConfig, on_epoch=None, should_stop=None) -> Entry:
    """Train `config` in this process and publish it, unless it is published already; concurrent callers train once."""
    if registry.has(config.key):
        return registry.get(config.key)
    with registry.key_lock(config.key):
        if registry.has(config.key):
            return registry.get(config.key)
        from core.training import train_and_evaluate

        trained = train_and_evaluate(config, on_epoch=on_epoch, should_stop=should_stop, base_loader=registry.load_model,
                                     root=registry.root)

        def write_files(folder: Path):
            trained.model.save(str(folder / MODEL_FILE))
            trained.evaluation.save(folder / EVAL_FILE)

        return registry.publish(trained.card, trained.history, write_files)
