"""Ray as the engine: each job is a Ray task that trains with `core.training` and returns what the server publishes.

Chosen when $CNNCLASSROOM_RAY_ADDRESS is set: a Ray head's address (`ray start --head` on one of the school's
machines, others joined with `ray start --address`), or `local` for a Ray started here, every port on
127.0.0.1. The task gets the config and the files it needs that only the server has (a registry CNN used as a
transfer base, an imported folder dataset); it yields where it runs, then each epoch's metrics, then the
model file, history, evaluation and card, which the server publishes into its registry exactly as a local
training (same key, same card). Cancel and the teacher's time budget call `ray.cancel`; a node lost
mid-training fails the job (`max_retries=0`), and pressing Train again trains it again. Ray is imported
here only, and only when this engine is chosen; the dispatcher never imports TensorFlow.
"""

import os
import queue as queue_module
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from core.card import ModelCard
from core.catalogue import DATASETS_FOLDER, DECODED_FOLDER, FOLDER_PREFIX
from core.config import TrainConfig, validate_key
from core.errors import CoreError, EntryNotFoundError, TrainingCancelled, unexpected_training_error
from core.guide import counted
from core.history import EpochRow
from core.network_view import VIEW_FILE, save_first_view
from core.paths import PROJECT_ROOT
from core.registry import EVAL_FILE, MODEL_FILE, MODELS_DIR, Entry, Registry

CPUS_PER_JOB_ENV = "CNNCLASSROOM_RAY_CPUS_PER_JOB"  # default 1: the classroom's small networks use one core well
GPUS_PER_JOB_ENV = "CNNCLASSROOM_RAY_GPUS_PER_JOB"  # default 1 where the cluster has GPUs, else 0
WAIT_SECONDS = 0.25  # how often the dispatcher looks for Cancel while it waits for the next epoch
CANCEL_GRACE_SECONDS = 5.0  # after a polite ray.cancel, the task's process is killed
LOCAL_OBJECT_STORE_BYTES = 512 * 2**20
MAX_JOBS_AT_ONCE = 64
NAMESPACE = "cnnclassroom"


@dataclass(frozen=True)
class ReportedEpoch:
    """One epoch's metrics as a Ray task reported them (what `core.training.EpochProgress.to_dict` made)."""

    data: EpochRow

    @property
    def epoch(self) -> int:
        return self.data["epoch"]

    def to_dict(self) -> EpochRow:
        return EpochRow(self.data)


class RayEngine:
    """Sends each job to a Ray cluster as a task and publishes its result here."""

    name = "ray"

    def __init__(self, registry: Registry, address: str):
        self.registry, self.address = registry, address
        self._remote_train = None
        self._lock = threading.Lock()

    def jobs_at_once(self) -> int:
        """How many jobs the cluster runs side by side: its CPUs (or GPUs) over what one job asks for."""
        try:
            ray = self._connect()
        except CoreError:
            return 1  # each job then fails with the message that says why
        resources = ray.cluster_resources()
        options = self._task_options()
        jobs = resources.get("CPU", 1) // options["num_cpus"]
        if options["num_gpus"]:
            jobs = min(jobs, resources.get("GPU", 0) // options["num_gpus"])
        return int(max(1, min(jobs, MAX_JOBS_AT_ONCE)))

    def run(self, config: TrainConfig, on_epoch=None, should_stop=None, on_placed=None, on_batch=None,
            on_first_batch=None) -> Entry:
        """Train `config` as a Ray task and publish it here (or return it, if it is published already).

        `on_batch` and `on_first_batch` are accepted for the engines' common interface and not called: a Ray task
        reports whole epochs only."""
        if self.registry.has(config.key):
            return self.registry.get(config.key)
        with self.registry.key_lock(config.key):  # the same key trains once, wherever it trains
            if self.registry.has(config.key):
                return self.registry.get(config.key)
            ray = self._connect()
            options = self._task_options()
            generator = self._remote_train.options(**options).remote(
                config.to_json(), files_to_ship(self.registry, config), int(max(1, options["num_cpus"])))
            result = self._follow(ray, generator, config, on_epoch, should_stop, on_placed)
            return publish_result(self.registry, config, result)

    def _follow(self, ray, generator, config: TrainConfig, on_epoch, should_stop, on_placed) -> dict:
        """Relay the task's reports until its result arrives; cancel it when asked."""
        epochs_done, cancelled_at, killed = 0, None, False
        try:
            while True:
                if cancelled_at is None and should_stop and should_stop():
                    ray.cancel(generator)
                    cancelled_at = time.monotonic()
                elif cancelled_at is not None and not killed and time.monotonic() - cancelled_at > CANCEL_GRACE_SECONDS:
                    ray.cancel(generator, force=True)
                    killed = True
                ready, _ = ray.wait([generator], timeout=WAIT_SECONDS)
                if not ready:
                    continue
                try:
                    kind, value = ray.get(next(generator))
                except StopIteration:
                    if cancelled_at is not None:  # a cancelled task can also end its stream without a result
                        raise TrainingCancelled(
                            f"Training of '{config.title}' was cancelled after {counted(epochs_done, 'epoch')}.") from None
                    raise CoreError(f"The Ray task training '{config.title}' ended without a result. Press Train to "
                                    f"try again.") from None
                if kind == "placed" and on_placed:
                    on_placed(value)
                elif kind == "epoch":
                    epochs_done += 1
                    if on_epoch:
                        on_epoch(ReportedEpoch(value))
                elif kind == "result":
                    return value
        except ray.exceptions.RayError as error:
            if cancelled_at is not None:  # cancelled: however the task ended, it was stopped on purpose
                raise TrainingCancelled(f"Training of '{config.title}' was cancelled after {counted(epochs_done, 'epoch')}.") from None
            if isinstance(error, ray.exceptions.RayTaskError):
                if isinstance(error.cause, CoreError):
                    raise error.cause from None  # the task's own message: no such data on that node, ...
                raise CoreError(f"Training '{config.title}' failed on the Ray cluster: {error.cause!r}",
                                student=unexpected_training_error(error.cause)) from None
            raise node_lost(config, error) from None  # the worker or its node died, the cluster went away

    def _connect(self):
        """Ray, connected to the cluster (once per process)."""
        with self._lock:
            if self._remote_train is None:
                ray = connect(self.address)
                self._remote_train = ray.remote(max_retries=0)(train_task)
        import ray

        return ray

    def _task_options(self) -> dict:
        import ray

        cpus = float(os.environ.get(CPUS_PER_JOB_ENV) or 1)
        gpus_default = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        gpus = float(os.environ.get(GPUS_PER_JOB_ENV) or gpus_default)
        return {"num_cpus": cpus, "num_gpus": gpus}


def connect(address: str):
    """Connect this process to Ray at `address` ("local": start one here on loopback); return the ray module."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # never report usage to Ray's servers
    if address == "local":
        # Ray puts a node on the machine's network address unless clusters are off; then every port is on 127.0.0.1.
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    try:
        import ray
    except ImportError as error:
        raise CoreError(f"$CNNCLASSROOM_RAY_ADDRESS is set ({address!r}) but Ray is not installed: "
                        f"run `pip install -r requirements.txt`, or unset the variable to train on this machine.") from error
    if ray.is_initialized():
        return ray
    if address != "local":
        check_reachable(address)
    runtime_env = {"py_modules": [str(PROJECT_ROOT / "core")], "excludes": ["__pycache__", "*.pyc"]}
    options = {"runtime_env": runtime_env, "namespace": NAMESPACE, "log_to_driver": False, "configure_logging": False}
    if address == "local":
        from core.machine import usable_cores

        options |= {"num_cpus": usable_cores(), "include_dashboard": False,
                    "object_store_memory": LOCAL_OBJECT_STORE_BYTES}
    try:
        ray.init(address="local" if address == "local" else address, **options)
    except Exception as error:  # Ray raises ConnectionError, RuntimeError or ValueError for an unreachable head
        raise CoreError(f"Cannot reach the Ray cluster at {address!r} ({type(error).__name__}: {error}). Start it with "
                        f"`ray start --head` and check the address in $CNNCLASSROOM_RAY_ADDRESS, or unset the "
                        f"variable to train on this machine.") from error
    return ray


def check_reachable(address: str, timeout: float = 5.0):
    """Fail at once, with the address, when nothing listens at a `host:port` Ray address (Ray itself retries for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto" and other forms: Ray finds the cluster itself
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as error:
        raise CoreError(f"Cannot reach the Ray cluster at {address!r} ({error}). Start it with `ray start --head` on that "
                        f"machine and check the address in $CNNCLASSROOM_RAY_ADDRESS, or unset the variable to train on "
                        f"this machine.") from error


def files_to_ship(registry: Registry, config: TrainConfig) -> dict[str, bytes]:
    """The files a node needs that only the server has, by their path inside a registry folder."""
    shipped = {}
    if config.registry_base_key:
        key = validate_key(config.registry_base_key)
        path = registry.entry_dir(key) / MODEL_FILE
        if not path.is_file():
            raise EntryNotFoundError(f"The transfer base {config.base_model} is not in the registry at {registry.root}. "
                                     f"Pick another base, or train that CNN first.")
        shipped[f"{MODELS_DIR}/{key}/{MODEL_FILE}"] = path.read_bytes()
    if config.dataset.startswith(FOLDER_PREFIX):
        folder = registry.root / DATASETS_FOLDER / config.dataset[len(FOLDER_PREFIX):]
        for file in sorted(folder.rglob("*")):
            decoded = file.relative_to(folder).parts[0] == DECODED_FOLDER  # the node decodes the photos itself
            if file.is_file() and not file.is_symlink() and not decoded:
                shipped[file.relative_to(registry.root).as_posix()] = file.read_bytes()
    return shipped


def publish_result(registry: Registry, config: TrainConfig, result: dict) -> Entry:
    """Publish what a task returned, exactly as a local training does: same key, same card, same files."""
    card = ModelCard.from_dict(result["card"])
    if card.key != config.key:
        raise CoreError(f"The Ray task returned model {card.key} for job {config.key}; nothing was published.")

    def write_files(folder: Path):
        (folder / MODEL_FILE).write_bytes(result["model"])
        (folder / EVAL_FILE).write_bytes(result["evaluation"])
        if result.get("view") is not None:
            save_first_view(result["view"], folder / VIEW_FILE)

    return registry.publish(card, result["history"], write_files)


def node_lost(config: TrainConfig, error) -> CoreError:
    return CoreError(f"The machine training '{config.title}' stopped before it finished ({type(error).__name__}). "
                     f"Nothing was saved. Press Train to try again.")


def train_task(config_json: str, shipped: dict[str, bytes], threads: int):
    """The Ray task: yields ("placed", where), ("epoch", metrics) per epoch, then ("result", files and card).

    Training runs in a thread so that this generator can report each epoch as it ends; a cancelled task
    (KeyboardInterrupt here) tells the training to stop at its next check.
    """
    items, stop = queue_module.Queue(), threading.Event()

    def work():
        try:
            result = train_here(TrainConfig.from_json(config_json), shipped, threads,
                                on_epoch=lambda progress: items.put(("epoch", progress.to_dict())), should_stop=stop.is_set)
            items.put(("result", result))
        except BaseException as error:  # handed to the generator, which raises it to the dispatcher
            items.put(("error", error))

    import ray

    yield "placed", f"Ray node {ray.util.get_node_ip_address()} ({socket.gethostname()}), process {os.getpid()}"
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        while True:
            kind, value = items.get()
            if kind == "error":
                raise value
            yield kind, value
            if kind == "result":
                return
    finally:
        stop.set()
        thread.join(timeout=60)


def train_here(config: TrainConfig, shipped: dict[str, bytes], threads: int, on_epoch, should_stop) -> dict:
    """Train and evaluate `config` on this node with `core.training`; the files and card the server publishes."""
    from core.backend import keras

    from core.training import train_and_evaluate
    from core.workers import limit_tensorflow_threads

    limit_tensorflow_threads(threads)
    with tempfile.TemporaryDirectory(prefix="cnnclassroom-ray-") as folder:
        root = Path(folder) / "registry"
        for relative, data in shipped.items():
            target = (root / relative).resolve()
            if not target.is_relative_to(root.resolve()):
                raise CoreError(f"A shipped file would land outside the task's folder. Received: {relative!r}")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        try:  # imported folder datasets are read from the shipped copy: `root` is passed down, not set globally
            trained = train_and_evaluate(config, on_epoch=on_epoch, should_stop=should_stop,
                                         base_loader=Registry(root).load_model, root=root)
            trained.model.save(str(root / MODEL_FILE))
            trained.evaluation.save(root / EVAL_FILE)
            return {"card": trained.card.to_dict(), "history": trained.history,
                    "model": (root / MODEL_FILE).read_bytes(), "evaluation": (root / EVAL_FILE).read_bytes(),
                    "view": trained.first_view}
        finally:
            keras.backend.clear_session()
