"""Seed repeats: the same configuration trained with a few seeds, so a comparison can tell skill from luck.

A model's test accuracy moves with two kinds of chance. Which test images happen to be in the test set:
McNemar's test and the paired interval (core.evaluation.compare) measure that, for two trained models.
The random start of the weights and the order of the batches, set by the seed: only training again
with other seeds shows that. This module builds the repeats and says which kind of noise they rule out.
"""

import dataclasses
import statistics
from dataclasses import dataclass

from core.config import TrainConfig

REPEATS = 3


def seed_variants(config: TrainConfig, repeats: int = REPEATS) -> list[TrainConfig]:
    """`config` with seeds seed, seed + 1, ..., seed + repeats - 1 (the first is `config` itself)."""
    return [dataclasses.replace(config, seed=config.seed + offset) for offset in range(repeats)]


@dataclass(frozen=True)
class SeedSummary:
    """Test accuracies of one configuration trained with several seeds."""

    seeds: tuple[int, ...]
    accuracies: tuple[float, ...]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.accuracies)

    @property
    def spread(self) -> float:
        """The sample standard deviation: how far a single run typically lands from the mean."""
        return statistics.stdev(self.accuracies) if len(self.accuracies) > 1 else 0.0

    @property
    def low(self) -> float:
        return min(self.accuracies)

    @property
    def high(self) -> float:
        return max(self.accuracies)


def summarise(cards) -> SeedSummary:
    """The seeds and test accuracies of the cards of one configuration's seed repeats."""
    ordered = sorted(cards, key=lambda card: card.config.seed)
    return SeedSummary(tuple(card.config.seed for card in ordered), tuple(card.test_accuracy for card in ordered))


def seed_verdict(name_a: str, a: SeedSummary, name_b: str, b: SeedSummary, p_value: float | None = None) -> str:
    """Which kinds of noise the evidence rules out: the seeds' (training) and, with McNemar's p, the test set's."""
    better, worse = (name_a, name_b) if a.mean >= b.mean else (name_b, name_a)
    high, low = (a, b) if a.mean >= b.mean else (b, a)
    runs = f"{len(a.accuracies)} and {len(b.accuracies)} seeds"
    separated = high.low > low.high
    if separated:
        training = (f"Over {runs}, every run of {better} beat every run of {worse} ({better} {high.low:.1%} to "
                    f"{high.high:.1%}, {worse} {low.low:.1%} to {low.high:.1%}): the difference is **not the luck of "
                    "one random start or batch order** (training noise).")
    else:
        training = (f"Over {runs}, the runs overlap ({better} {high.low:.1%} to {high.high:.1%}, {worse} "
                    f"{low.low:.1%} to {low.high:.1%}): **part or all of the difference could be the luck of the random "
                    "start and batch order** (training noise). More seeds, or more training data, would tell.")
    if p_value is None:
        return training
    p_words = "p < 0.001" if p_value < 0.001 else f"p = {p_value:.3g}"
    if p_value < 0.05:
        test = (f"McNemar's test on the first seed's models ({p_words}) makes **which test images were drawn** "
                "an unlikely cause (test-set noise)" + (" too." if separated else
                                                        " of those two models' difference; the other seeds' runs overlap."))
    else:
        test = (f"McNemar's test on the first seed's models ({p_words}) does not rule out **which test images "
                "were drawn** (test-set noise).")
    return f"{training} {test}"
