"""How long a training will take, going by the trainings that finished here: the seconds behind a Train button's
"About 40 s from the press to a model", a waiting student's "starts in about 20 s" and a budget's warning
(`core.jobs` asks, on a snapshot of its queue).

A job's cost is `training_cost` (images × epochs × each image's multiply-adds); its expected time is that cost times
the median seconds per unit of cost of recent jobs of the same family. A job that shared the machine with other
trainings ran slower than one alone: on 2 cores a student training alone after a class's burst was promised 1.55
times what it took (bench/promises.py), going by jobs that had each had one core. So each finished job is marked
shared or alone, by how much of its run overlapped other jobs', and a promise goes by the jobs that ran as it will.
"""

import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from core.config import TrainConfig
from core.errors import CoreError

# A transfer network's multiply-adds per number of its input, for estimates: the Transfer lesson's base CNN costs
# about 700 on 64×64 colour photos, MobileNetV2 about 2,000 at 96 px.
TRANSFER_ADDS_PER_INPUT_NUMBER = 1000
# A time promised before Train is pressed comes only from jobs of the same family within this factor of its cost: a
# job's fixed part (its start, its test, its save) is scaled with the cost too. From the "fast preview" (2,000 images,
# 3 epochs), the quick CNN (20 times its cost) was promised 42 s and took 11 s; from the quick CNN the default CNN (9
# times its cost) would be promised 103 s, and took 50 s; the fast preview at 30 epochs (10 times) was promised 2 min
# and took 37 s (a student's walk, 2026-12-02). Within 3 times, the fixed part at most doubles.
SIMILAR_COST_FACTOR = 3
AUTO_TRAIN_IMAGE_EPOCHS = 20_000  # training images x epochs below which auto-train is allowed (a few seconds)
SHARED_FRACTION = 0.5  # a job that overlapped other trainings for at least this part of its run counts as shared
# How much slower a job beside others runs than one alone, until this server has seen both: a lone quick CNN was
# published in 0.8 times the time on 2 cores (core.workers.LONE_THREADS_PER_SHARE). Measured here once it can be.
SHARED_SLOWDOWN = 1.25


@dataclass(frozen=True)
class FinishedJob:
    """A training done here, as an estimate reads it."""

    config: TrainConfig
    seconds: float  # from its start to its end
    shared: bool  # it ran beside other trainings for most of its time


def finished_jobs(done: list[tuple[str, TrainConfig, float, float]],
                  runs: list[tuple[str, float, float]]) -> list[FinishedJob]:
    """The jobs `done` ((key, config, started, finished) each) marked shared or alone, from `runs`: (key, started,
    ended) of every job that ran while they did. A job without a positive duration (a clock set back) is left out."""
    jobs = []
    for key, config, started, finished in done:
        if finished <= started:
            continue
        overlap = sum(max(0.0, min(finished, end) - max(started, start)) for other, start, end in runs if other != key)
        jobs.append(FinishedJob(config, finished - started, overlap >= SHARED_FRACTION * (finished - started)))
    return jobs


def expected_seconds_function(recent: list[FinishedJob], max_seconds: float | None = None,
                              root=None) -> Callable[..., float | None] | None:
    """A function (config, similar_only, shared) -> expected seconds of training, from `recent` finished jobs; None
    when none has finished.

    The rate (seconds per unit of cost) is the median of the family's jobs that ran as this one will, alone or shared
    (of all families when its own has none yet). Where none did, it is the median of the others, times how much
    slower shared jobs ran than lone ones in the families that had both (SHARED_SLOWDOWN until one has). Never more
    than `max_seconds`, the teacher's limit. `root` is the registry whose imported datasets jobs may name.
    """
    costs: dict[str, int] = {}  # per config, and each dataset's facts (None: gone), looked up once per estimate
    datasets: dict[str, object] = {}

    def cost(config: TrainConfig) -> int:
        if config.key not in costs:
            if config.dataset not in datasets:
                datasets[config.dataset] = _dataset_facts(config.dataset, root)
            costs[config.key] = _cost_on(config, datasets[config.dataset])
        return costs[config.key]

    rates: dict[str, list[tuple[int, float, bool]]] = {}  # per family: (cost, seconds per unit of cost, shared)
    for job in recent:
        rates.setdefault(job.config.family, []).append((cost(job.config), job.seconds / cost(job.config), job.shared))
    if not rates:
        return None
    everything = [rate for family_rates in rates.values() for rate in family_rates]
    slowdown = _shared_slowdown(rates.values())
    limit = max_seconds or float("inf")

    def expected(config: TrainConfig, similar_only: bool = False, shared: bool = False) -> float | None:
        """Seconds for `config` run alone, or beside others when `shared`. With `similar_only`, from jobs of the same
        family within SIMILAR_COST_FACTOR of its cost only (None without one): small networks use each multiply-add
        less well, so a far smaller job overstates a big one."""
        family = rates.get(config.family, [])
        if similar_only:
            family = [(other, rate, was_shared) for other, rate, was_shared in family
                      if max(other, cost(config)) <= SIMILAR_COST_FACTOR * min(other, cost(config))]
            if not family:
                return None
        jobs = family or everything
        alike = [rate for _, rate, was_shared in jobs if was_shared == shared]
        if alike:
            rate = statistics.median(alike)
        else:  # every one ran the other way
            rate = statistics.median([rate for _, rate, _ in jobs]) * (slowdown if shared else 1 / slowdown)
        return min(limit, rate * cost(config))

    return expected


def _shared_slowdown(families: Iterable[list[tuple[int, float, bool]]]) -> float:
    """Shared jobs' median rate ÷ lone jobs' median rate, the median over the families that have both kinds, and
    never under 1: a worker's first job, alone while the others start, also loads its data (3.1 s, and 1.6 s for the
    same network in the burst after it), which is no reason to promise a job beside others less."""
    ratios = []
    for family in families:
        shared = [rate for _, rate, was_shared in family if was_shared]
        alone = [rate for _, rate, was_shared in family if not was_shared]
        if shared and alone:
            ratios.append(statistics.median(shared) / statistics.median(alone))
    return max(1.0, statistics.median(ratios)) if ratios else SHARED_SLOWDOWN


def training_cost(config: TrainConfig, root=None) -> int:
    """What a training's time grows with: images × epochs × the multiply-adds of one image through the network (for
    a transfer network, whose base is not planned here, TRANSFER_ADDS_PER_INPUT_NUMBER per number of its input).
    Reads no image; a dataset deleted since counts as 10,000 images of 28×28."""
    return _cost_on(config, _dataset_facts(config.dataset, root))


def _cost_on(config: TrainConfig, info) -> int:
    """`training_cost` on a dataset whose catalogue info is `info` (None: gone)."""
    from core.catalogue import input_shape_for
    from core.shapes import config_plan, multiply_adds

    shape, plan, images = (28, 28, 1), None, 10_000  # a dataset deleted since: the estimate goes on with a guess
    if info is not None:
        try:
            shape, images = input_shape_for(info, config.image_size, config.color_mode), info.training_images
            plan = config_plan(config, shape, len(info.class_names))
        except CoreError:  # a network no plan fits (it would be refused before training): counted by its input
            pass
    per_image = multiply_adds(plan) if plan else shape[0] * shape[1] * shape[2] * TRANSFER_ADDS_PER_INPUT_NUMBER
    return max(1, estimated_images_seen(config, images) * per_image)


def _dataset_facts(name: str, root):
    """A dataset's catalogue info without asking any host, or None when it is gone (deleted since)."""
    from core.catalogue import dataset_info

    try:
        return dataset_info(name, root, ask_network=False)
    except CoreError:
        return None


def estimated_images_seen(config: TrainConfig, info=None) -> int:
    """Training images times epochs: the cost that decides whether auto-train may start by itself.

    `info` is the dataset's catalogue info, or its number of training images, for a config without a subset.
    """
    whole = info if isinstance(info, int) else info.training_images if info is not None else 10**9
    return (config.train_subset or whole) * config.epochs


def no_promise_note(configs: list[TrainConfig], root=None) -> str:
    """What a press will train, in numbers, where no time can be promised (a training like each has not finished on
    this server): a student pressed Augmentation's button without knowing it trains two models for 30 epochs each."""
    from core.course import config_training_images
    from core.guide import counted

    try:  # the images each trains on: its subset, less validation (54,000 of Fashion-MNIST's 60,000 by default)
        images = {config_training_images(config, root) for config in configs}
    except CoreError:  # a dataset deleted since
        images = set()
    epochs = {config.epochs for config in configs}
    what = f"{len(configs)} models, " if len(configs) > 1 else "a model, "
    if len(epochs) == 1:
        what += counted(configs[0].epochs, "epoch") + (" each" if len(configs) > 1 else "")
        if len(images) == 1:
            count = next(iter(images))
            what += f" on {count:,} training images ({len(configs) * configs[0].epochs * count:,} images seen in all)"
    else:
        what += f"for {' + '.join(str(config.epochs) for config in configs)} epochs"
    like = "a training like each of these" if len(configs) > 1 else "a training like this one"
    return f"No time can be promised yet ({like} has to finish on this server first): the button trains {what}."
