"""Shared helpers for the benchmarks: the project on sys.path, a quiet TensorFlow, load averages, statistics."""

import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

PROJECT = Path(__file__).resolve().parents[1]
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def load_average() -> str:
    """The 1-minute load average, printed next to every figure (this machine is shared)."""
    return f"load {os.getloadavg()[0]:.2f}/{os.cpu_count()} cores"


def header(title: str):
    """The benchmark's name, the machine and the time, so a pasted result explains itself."""
    print(f"== {title} ==")
    print(f"python {platform.python_version()} · {platform.machine()} · {os.cpu_count()} CPU cores · "
          f"{time.strftime('%Y-%m-%d %H:%M')} · {load_average()}", flush=True)


def report(name: str, value: str, target: str = "", met: bool | None = None):
    """One result line: name, value, target and whether it is met, then the load average."""
    verdict = "" if met is None else ("  MET" if met else "  MISSED")
    target_text = f"  (target {target})" if target else ""
    print(f"{name}: {value}{target_text}{verdict}  [{load_average()}]", flush=True)


class Training(NamedTuple):
    """One timed training: wall and CPU seconds, test accuracy, and wall seconds until its first batches were done."""

    seconds: float
    cpu_seconds: float
    accuracy: float
    first_batch_seconds: float


def trained_and_tested(config, dataset) -> Training:
    """One `core.training.train(config, dataset)`, timed, then tested on the test split (the test is not timed)."""
    from core import training

    first_batch = []
    started, cpu_started = time.perf_counter(), time.process_time()
    result = training.train(config, dataset, on_first_batch=lambda: first_batch.append(time.perf_counter()))
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    accuracy = result.model.evaluate(dataset.x_test, dataset.y_test, batch_size=1024, verbose=0)[1]
    return Training(seconds, cpu_seconds, float(accuracy), first_batch[0] - started)


def alternated_trainings(pairs: int, train, names: dict[bool, str]) -> dict[bool, list[Training]]:
    """Pairs of `train(seed, candidate) -> Training`, the candidate (True) and the
    baseline (False) with the same seed, in ABBA order (the candidate first in even pairs); each run is printed as it
    ends, named by `names`. Returns {True: the candidate's runs, False: the baseline's}."""
    runs = {True: [], False: []}
    for pair in range(pairs):
        for candidate in ((True, False) if pair % 2 == 0 else (False, True)):
            run = train(pair, candidate)
            runs[candidate].append(run)
            print(f"  pair {pair + 1} (seed {pair}) {names[candidate]}: {run[0]:.1f} s, {run[1]:.1f} CPU s, "
                  f"test accuracy {run[2]:.2%}  [{load_average()}]", flush=True)
    return runs


def mean_and_spread(values) -> str:
    """'mean ± half-range (min-max)', the form used for seeds and repeats."""
    values = list(values)
    if len(values) == 1:
        return f"{values[0]:.4g}"
    middle = statistics.fmean(values)
    return f"{middle:.4g} ± {(max(values) - min(values)) / 2:.2g} (min {min(values):.4g}, max {max(values):.4g})"


def percentile(values, fraction: float) -> float:
    """The `fraction` quantile (0.95 for p95) by linear interpolation."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def temporary_registry(prefix: str) -> Path:
    """A fresh registry folder in the system temp dir, also set as $CNNCLASSROOM_REGISTRY."""
    root = Path(tempfile.mkdtemp(prefix=f"cnnclassroom-{prefix}-")) / "registry"
    os.environ["CNNCLASSROOM_REGISTRY"] = str(root)
    return root


def tensorflow_settings() -> str:
    """Whether oneDNN is on and how many threads TensorFlow uses (call after TensorFlow is imported)."""
    import tensorflow as tf

    return (f"TensorFlow {tf.__version__}, TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset')}, "
            f"GPUs: {len(tf.config.list_physical_devices('GPU'))}")


def rss_megabytes(pid: int | str = "self") -> float:
    """Resident memory of a process in MiB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def stop_workers(registry):
    """SIGTERM the background worker processes this benchmark's jobs ran in (found by their pid)."""
    import signal

    from core.jobs import JobQueue

    with JobQueue(registry.root).connect() as connection:
        pids = {row["pid"] for row in connection.execute("SELECT DISTINCT pid FROM jobs WHERE pid IS NOT NULL")}
    for pid in pids:
        try:
            if str(registry.root) in Path(f"/proc/{pid}/cmdline").read_text():  # still our worker, not a reused pid
                os.kill(pid, signal.SIGTERM)
        except (FileNotFoundError, ProcessLookupError):
            pass
