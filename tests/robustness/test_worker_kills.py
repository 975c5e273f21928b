"""Kill the training worker with SIGKILL at random moments and at every step of the final save.

The worker is core.workers.run_worker in its own process, with probes that print each step as it happens
(claimed, epoch N, evaluating, saving the model, history and card written, published, indexed, finished).
The probes change nothing; for the "at a step" trials they also stop at that step, like a very slow disk,
so the kill lands exactly there. Random trials kill after a random delay (seeded, stratified over the job; printed with where they landed):
one in the first half of the job, one in the second, and one in the first 0.3 s of the final save. Each trial costs a
fresh worker (TensorFlow imported) and a retrain, so each kill point is hit once, not repeated.

After every kill: an entry exists if and only if it was published, and then it is complete and loads;
nothing half-written is ever listed or served; the job shows as failed (or done, if it had finished).
At the end every killed job is submitted again to a real `python -m core worker`, and all of them train.
"""

import dataclasses
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time

from conftest import TINY_DNN

from core.errors import EntryNotFoundError
from core.jobs import JobRunner
from core.registry import Registry
from helpers_jobs import stop_workers, stop_workers_of, wait_for
from robustness.support import PROJECT, record

PROBED_WORKER = r'''
import os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import core.evaluation as evaluation
import core.registry as registry_module
import core.workers as workers
from core.jobs import JobQueue
from core.registry import Registry

root, pause_at = sys.argv[1], sys.argv[2]


def phase(name):
    print(name, flush=True)
    if name == pause_at:
        time.sleep(3600)  # a very slow disk: the test kills the worker right here


def wrap(owner, attribute, before=None, after=None):
    original = getattr(owner, attribute)

    def probed(*args, **kwargs):
        if before:
            phase(before(*args, **kwargs))
        result = original(*args, **kwargs)
        if after:
            phase(after(*args, **kwargs))
        return result

    setattr(owner, attribute, probed)


wrap(JobQueue, "fail_orphans", after=lambda *a: "worker-ready")
wrap(workers, "run_job", before=lambda *a: "claimed", after=lambda *a: "finished")
wrap(JobQueue, "record_progress", after=lambda self, key, progress: f"epoch-{progress['epoch']}")
wrap(evaluation, "evaluate", before=lambda *a, **k: "evaluating")
wrap(registry_module, "_write_json", after=lambda path, value: f"{path.stem}-written")
wrap(Registry, "_index", after=lambda *a: "indexed")
original_publish, original_replace = Registry.publish, os.replace


def publish(self, card, history, write_files):
    def write(folder):
        phase("saving-model")
        import keras.src.saving.saving_lib as saving_lib
        original_state, seen = saving_lib._save_state, []

        def save_state(*args, **kwargs):  # called once metadata and config are in the zip, before the weights
            if not seen:
                seen.append(1)
                phase("model-file-half-written")
            return original_state(*args, **kwargs)

        saving_lib._save_state = save_state
        try:
            return write_files(folder)
        finally:
            saving_lib._save_state = original_state
    return original_publish(self, card, history, write)


def replace(source, target):
    original_replace(source, target)
    if os.path.basename(os.path.dirname(str(target))) == "models" and not os.path.basename(str(target)).startswith("."):
        phase("published")


Registry.publish, registry_module.os.replace = publish, replace
workers.run_worker(Registry(root), idle_exit_seconds=600)
'''

STEPS = ["claimed", "epoch-1", "epoch-2", "evaluating", "saving-model", "model-file-half-written", "history-written",
         "card-written", "published", "indexed", "finished"]
PLANS = {  # two lanes (two registries, two workers at once); the steps of the final save are hit on purpose
    "lane A": ["model-file-half-written", "published", "random", "random during save"],
    "lane B": ["card-written", "indexed", "random"],
}
RANDOM_SPAN_SECONDS = 9.0  # from "claimed" to "finished" takes about this long here (TensorFlow import included)


@dataclasses.dataclass
class Trial:
    lane: str
    plan: str
    config: object
    delay: float | None = None
    span: tuple = (0.0, RANDOM_SPAN_SECONDS)  # random trials: the delay after "claimed" is drawn from this range
    steps: list = dataclasses.field(default_factory=list)
    outcome: str = ""

    @property
    def killed_after(self) -> str:
        return self.steps[-1] if self.steps else "start-up"


class ProbedWorker:
    """The probed worker process and the steps it has printed so far."""

    def __init__(self, root, pause_at):
        self.process = subprocess.Popen([sys.executable, "-c", PROBED_WORKER, str(root), pause_at], cwd=PROJECT,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                                        text=True)
        self.lines, self.steps = queue.Queue(), []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def wait_for_step(self, step, timeout=300):
        deadline = time.monotonic() + timeout
        while step not in self.steps:
            line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            if line is None:
                raise AssertionError(f"the worker exited before '{step}' (steps: {self.steps})")
            self.steps.append(line)

    def kill(self):
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(30)
        while (line := self.lines.get(timeout=30)) is not None:  # what it printed before dying
            self.steps.append(line)
        return [step for step in self.steps if step != "worker-ready"]


def run_trial(root, trial: Trial, rng):
    worker = ProbedWorker(root, trial.plan if trial.plan in STEPS else "none")
    worker.wait_for_step("worker-ready")
    JobRunner(Registry(root)).submit(trial.config)  # the probed worker holds the worker lock: no other starts
    worker.wait_for_step("claimed")
    if trial.plan == "random":
        trial.delay = rng.uniform(*trial.span)
        time.sleep(trial.delay)
    elif trial.plan == "random during save":
        worker.wait_for_step("saving-model")
        trial.delay = rng.uniform(0, 0.3)
        time.sleep(trial.delay)
    else:
        worker.wait_for_step(trial.plan)
    trial.steps = worker.kill()
    check_after_kill(root, trial)


def check_after_kill(root, trial: Trial):
    registry, key = Registry(root), trial.config.key
    published = "published" in trial.steps
    assert registry.has(key) == published, f"{trial}: entry present={registry.has(key)} but published={published}"
    listed = {card.key for card in registry.list_entries()}
    assert (key in listed) == published, f"{trial}: listed={key in listed}"
    for directory in registry.models_dir.iterdir():  # every visible folder is a complete, loadable entry
        if not directory.name.startswith("."):
            entry = registry.get(directory.name)
            assert entry.card.status == "ready" and registry.load_model(entry.key) is not None
            assert registry.load_evaluation(entry.key).accuracy > 0.1
    if not published:
        try:
            registry.get(key)
            raise AssertionError(f"{trial}: an unpublished entry was served")
        except EntryNotFoundError:
            pass
    status = JobRunner(registry).status(key)
    if published:
        assert status.state == "done", f"{trial}: {status}"  # the entry is complete: the job is done
    else:
        assert status.state == "failed" and "stopped unexpectedly" in status.message, f"{trial}: {status}"
    trial.outcome = "complete entry" if published else "no entry"


def run_lane(lane, root, trials, errors):
    rng = random.Random(f"robustness {lane}")
    try:
        for trial in trials:
            run_trial(root, trial, rng)
    except BaseException as error:  # reported by the main thread
        errors.append((lane, error))


def test_sigkill_at_random_moments_and_during_the_final_save_never_leaves_a_partial_entry(tmp_path):
    lanes = {}
    for lane_number, (lane, plans) in enumerate(PLANS.items()):
        configs = [dataclasses.replace(TINY_DNN, train_subset=300, seed=700 + 20 * lane_number + index)
                   for index in range(len(plans))]
        trials = [Trial(lane, plan, config) for plan, config in zip(plans, configs)]
        lanes[lane] = (tmp_path / lane.replace(" ", "_"), trials)
    randoms = [trial for _, trials in lanes.values() for trial in trials if trial.plan == "random"]
    for number, trial in enumerate(randoms):  # stratified over both lanes: each random kill draws from its own part
        width = RANDOM_SPAN_SECONDS / len(randoms)
        trial.span = (number * width, (number + 1) * width)
    errors = []
    threads = [threading.Thread(target=run_lane, args=(lane, root, trials, errors)) for lane, (root, trials) in lanes.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    trials = [trial for _, lane_trials in lanes.values() for trial in lane_trials]
    for trial in trials:
        delay = f" after {trial.delay:.2f}s" if trial.delay is not None else ""
        print(f"{trial.lane}: plan '{trial.plan}'{delay}: killed after '{trial.killed_after}' -> {trial.outcome}")
    assert not errors, errors

    # Retry: submit every job again to a real worker; all must train, and the leftovers must be gone.
    for root, lane_trials in lanes.values():
        runner = JobRunner(Registry(root))
        for trial in lane_trials:
            runner.submit(trial.config)
    try:
        for root, lane_trials in lanes.values():
            runner = JobRunner(Registry(root))
            for trial in lane_trials:
                wait_for(lambda: runner.status(trial.config.key).state in ("done", "failed"), timeout=400,
                         what=f"retry of {trial.config.key}")
                assert runner.status(trial.config.key).state == "done", runner.status(trial.config.key)
    finally:
        stop_lane_workers(lanes)
    for root, lane_trials in lanes.values():
        registry = Registry(root)
        assert {card.key for card in registry.list_entries()} == {trial.config.key for trial in lane_trials}
        assert not list(registry.models_dir.glob(".tmp-*")), "a killed run's temporary folder was not cleaned"
    during_save = [trial for trial in trials if trial.killed_after in STEPS[STEPS.index("saving-model"):-1]]
    chosen = sum(trial.plan in STEPS for trial in trials)
    record("Registry faults", f"SIGKILL of the training worker: {chosen} at chosen steps of the final save, "
           f"{len(trials) - chosen} at random moments "
           f"({len(during_save)} landed between the start of the final save and the job's end)", len(trials),
           f"entry iff published ({sum(t.outcome == 'complete entry' for t in trials)} complete, "
           f"{sum(t.outcome == 'no entry' for t in trials)} none, nothing partial listed or served); job shows failed "
           f"(done if published); all {len(trials)} resubmitted and done; leftovers cleaned")


def stop_lane_workers(lanes):
    """End the real workers the retry started (by the PIDs in the jobs table)."""
    for root, _ in lanes.values():
        stop_workers(Registry(root), status="done")
        stop_workers_of(root)  # and any that started ahead of a job and are idling
