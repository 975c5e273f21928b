"""Evaluate a model on a test set, and compare two models on the same test set.

`evaluate` keeps every test prediction, so pages can draw confusion matrices and show the images
a model got wrong. `compare` pairs two evaluations example by example: McNemar's exact test asks
whether the disagreements lean towards one model more than chance would, and a paired 95%
interval says how large the accuracy difference plausibly is.
"""

import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import CoreError
from core.guide import signed

EVALUATION_FORMAT_VERSION = 1
Z_95 = 1.959963984540054  # the standard normal quantile for a two-sided 95% interval
LOG_EPSILON = 1e-7  # probabilities are clipped like Keras' cross-entropy before taking logs
ARRAY_FIELDS = ("y_true", "probabilities", "predicted", "confusion", "precision", "recall")


@dataclass
class Evaluation:
    """A model's predictions on a test set, with the usual summaries."""

    accuracy: float
    loss: float
    y_true: np.ndarray  # (N,) int64
    probabilities: np.ndarray  # (N, num_classes) float32; binary models get [1 - p, p]
    predicted: np.ndarray  # (N,) int64
    confusion: np.ndarray  # (C, C) int64, rows are true classes, columns predicted
    precision: np.ndarray  # (C,) float64, 0 for a class that is never predicted
    recall: np.ndarray  # (C,) float64, 0 for a class absent from the test set
    class_names: list[str]

    @property
    def num_classes(self) -> int:
        """How many classes the model chooses from."""
        return len(self.class_names)

    def misclassified(self) -> np.ndarray:
        """Indices of the test examples the model got wrong, in test-set order."""
        return np.flatnonzero(self.predicted != self.y_true)

    def confident_mistakes(self) -> np.ndarray:
        """The misclassified test examples, most confident first: the model's worst surprises."""
        wrong = self.misclassified()
        confidence = self.probabilities[wrong, self.predicted[wrong]]
        return wrong[np.argsort(-confidence, kind="stable")]

    def confidence(self, index: int) -> float:
        """The probability the model gave its own prediction for test example `index`."""
        return float(self.probabilities[index, self.predicted[index]])

    def save(self, path) -> None:
        """Write to an .npz file (no pickled objects), replacing it atomically."""
        path = Path(path)
        temporary_path = path.with_name(path.name + ".tmp")
        arrays = {name: getattr(self, name) for name in ARRAY_FIELDS}
        try:
            with open(temporary_path, "wb") as file:
                np.savez_compressed(
                    file,
                    format_version=np.int64(EVALUATION_FORMAT_VERSION),
                    accuracy=np.float64(self.accuracy),
                    loss=np.float64(self.loss),
                    class_names=np.array(self.class_names, dtype=str),
                    **arrays,
                )
            os.replace(temporary_path, path)
        finally:
            temporary_path.unlink(missing_ok=True)

    @classmethod
    def load(cls, path) -> "Evaluation":
        """Read an evaluation saved by `save`; object (pickled) arrays are refused."""
        try:
            with np.load(path, allow_pickle=False) as stored:
                version = int(stored["format_version"])
                if version != EVALUATION_FORMAT_VERSION:
                    raise CoreError(
                        f"The evaluation file {str(path)!r} has format version {version}; this "
                        f"version of CNN Classroom reads version {EVALUATION_FORMAT_VERSION} (a newer CNN Classroom "
                        f"reads a newer one)."
                    )
                arrays = {name: stored[name] for name in ARRAY_FIELDS}
                return cls(
                    accuracy=float(stored["accuracy"]),
                    loss=float(stored["loss"]),
                    class_names=[str(name) for name in stored["class_names"]],
                    **arrays,
                )
        except CoreError:
            raise
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
            # numpy's own words for a pickled array invite loading it unsafely: never here
            reason = "it holds pickled objects, which are never loaded" if "pickle" in str(error) else (
                f"{type(error).__name__}: {error}")
            raise CoreError(f"Could not read the evaluation file {str(path)!r}: it is damaged or not one that "
                            f"CNN Classroom wrote ({reason}).") from None


@dataclass
class Comparison:
    """Two models compared example by example on the same test set."""

    accuracy_a: float
    accuracy_b: float
    difference: float  # accuracy_a - accuracy_b
    ci_low: float  # 95% interval of the difference, paired
    ci_high: float
    both_right: int
    only_a_right: int
    only_b_right: int
    both_wrong: int
    p_value: float  # McNemar's exact test, two-sided
    n: int
    statement: str


def evaluate(model, x_test, y_test, class_names, batch_size=256) -> Evaluation:
    """Predict the whole test set and summarise accuracy, loss, confusion, precision and recall.

    The loss is the mean cross-entropy of the predicted probabilities (clipped at 1e-7 like
    Keras), so it needs no compiled model and matches `model.evaluate` for the project's heads.
    """
    y_true = _check_labels(x_test, y_test, class_names)
    probabilities = _predict_probabilities(model, x_test, batch_size)
    num_classes = len(class_names)
    if probabilities.shape[1] != num_classes:
        raise CoreError(
            f"The model predicts {probabilities.shape[1]} classes but {num_classes} class names "
            f"were given. Evaluate the model on the dataset it was trained for. Received: "
            f"class_names={list(class_names)!r}"
        )
    predicted = np.argmax(probabilities, axis=1).astype(np.int64)
    true_class_probability = probabilities[np.arange(len(y_true)), y_true]
    loss = float(-np.mean(np.log(np.clip(true_class_probability, LOG_EPSILON, 1.0))))
    confusion = np.bincount(
        y_true * num_classes + predicted, minlength=num_classes * num_classes
    ).reshape(num_classes, num_classes)
    correct = np.diag(confusion).astype(np.float64)
    return Evaluation(
        accuracy=float(np.mean(predicted == y_true)),
        loss=loss,
        y_true=y_true,
        probabilities=probabilities,
        predicted=predicted,
        confusion=confusion.astype(np.int64),
        precision=_safe_divide(correct, confusion.sum(axis=0)),
        recall=_safe_divide(correct, confusion.sum(axis=1)),
        class_names=[str(name) for name in class_names],
    )


def compare(a: Evaluation, b: Evaluation, name_a="A", name_b="B") -> Comparison:
    """Compare two evaluations of the same test set with McNemar's test and a paired 95% CI.

    The interval is the Wald interval of the mean per-example difference d_i = right_a - right_b
    (each -1, 0 or 1): difference +- 1.96 * sqrt((b + c - (b - c)^2 / n) / n^2), with b and c
    the examples only A or only B got right, clipped to [-1, 1].
    """
    if a.y_true.shape != b.y_true.shape or not np.array_equal(a.y_true, b.y_true):
        raise CoreError(
            f"Models {name_a} and {name_b} were evaluated on different test sets "
            f"({len(a.y_true):,} and {len(b.y_true):,} examples, or different labels), so they "
            f"cannot be compared example by example. Evaluate both on the same dataset split "
            f"at the same image size. Received: name_a={name_a!r}, name_b={name_b!r}",
            student=f"they were tested on different test images ({len(a.y_true):,} and {len(b.y_true):,}), so their "
                    "answers cannot be paired image by image. Only models of the same dataset, tested at the same "
                    "image size, compare that way.")
    right_a = a.predicted == a.y_true
    right_b = b.predicted == b.y_true
    n = len(right_a)
    only_a_right = int(np.sum(right_a & ~right_b))
    only_b_right = int(np.sum(~right_a & right_b))
    difference = (only_a_right - only_b_right) / n
    discordant = only_a_right + only_b_right
    standard_error = math.sqrt(max(0.0, discordant - (only_a_right - only_b_right) ** 2 / n)) / n
    comparison = Comparison(
        accuracy_a=float(np.mean(right_a)),
        accuracy_b=float(np.mean(right_b)),
        difference=difference,
        ci_low=max(-1.0, difference - Z_95 * standard_error),
        ci_high=min(1.0, difference + Z_95 * standard_error),
        both_right=int(np.sum(right_a & right_b)),
        only_a_right=only_a_right,
        only_b_right=only_b_right,
        both_wrong=int(np.sum(~right_a & ~right_b)),
        p_value=mcnemar_exact_p_value(only_a_right, only_b_right),
        n=n,
        statement="",
    )
    statement = _plain_english(comparison, name_a, name_b)
    comparison.statement = statement[0].upper() + statement[1:]  # "model A …" → "Model A …"; a quote stays
    return comparison


def compare_with_first(evaluations: list[Evaluation], letters: list[str]) -> list[Comparison | CoreError]:
    """Each model after the first compared with the first (its McNemar test and interval), or why it cannot be: a
    model tested on other images than the first's."""
    results = []
    for letter, evaluation in zip(letters[1:], evaluations[1:]):
        try:
            results.append(compare(evaluations[0], evaluation, name_a=letters[0], name_b=letter))
        except CoreError as error:
            results.append(error)
    return results


def disagreements(a: Evaluation, b: Evaluation) -> tuple[np.ndarray, np.ndarray] | None:
    """Test indices where only A is right and where only B is right; None when the test sets differ."""
    if a.y_true.shape != b.y_true.shape or not np.array_equal(a.y_true, b.y_true):
        return None
    right_a, right_b = a.predicted == a.y_true, b.predicted == b.y_true
    return np.flatnonzero(right_a & ~right_b), np.flatnonzero(right_b & ~right_a)


def mcnemar_exact_p_value(only_a_right: int, only_b_right: int) -> float:
    """Two-sided exact McNemar p-value: min(1, 2 * P(X <= min(b, c))), X ~ Binomial(b + c, 1/2).

    Computed with exact integers (no scipy), so it stays accurate for b + c in the tens of
    thousands, where 0.5 ** (b + c) would underflow.
    """
    if only_a_right < 0 or only_b_right < 0:
        raise CoreError(
            "Counts of disagreements must not be negative. "
            f"Received: only_a_right={only_a_right}, only_b_right={only_b_right}"
        )
    total = only_a_right + only_b_right
    if total == 0:
        return 1.0
    smaller = min(only_a_right, only_b_right)
    term, tail = 1, 1  # comb(total, 0)
    for count in range(smaller):
        term = term * (total - count) // (count + 1)
        tail += term
    return min(1.0, 2 * tail / 2**total)


def _check_labels(x_test, y_test, class_names):
    """Validate the test set and return the labels as int64."""
    y_true = np.asarray(y_test).reshape(-1).astype(np.int64)
    if len(x_test) != len(y_true) or len(y_true) == 0:
        raise CoreError(
            f"x_test and y_test must hold the same, non-zero number of examples. "
            f"Received: len(x_test)={len(x_test)}, len(y_test)={len(y_true)}"
        )
    if len(class_names) < 2:
        raise CoreError(
            f"A classifier needs at least 2 class names. Received: class_names={list(class_names)!r}"
        )
    if y_true.min() < 0 or y_true.max() >= len(class_names):
        raise CoreError(
            f"Labels must be class indices 0..{len(class_names) - 1}. "
            f"Received: labels from {y_true.min()} to {y_true.max()}"
        )
    return y_true


def _predict_probabilities(model, x_test, batch_size):
    """Class probabilities (N, C); a single sigmoid output p becomes [1 - p, p]."""
    outputs = np.asarray(model.predict(x_test, batch_size=batch_size, verbose=0), dtype=np.float32)
    outputs = outputs.reshape(len(outputs), -1)
    if outputs.shape[1] == 1:
        outputs = np.concatenate([1.0 - outputs, outputs], axis=1)
    return outputs


def _safe_divide(numerator, denominator):
    """numerator / denominator, with 0 where the denominator is 0."""
    denominator = denominator.astype(np.float64)
    return np.divide(numerator, denominator, out=np.zeros_like(denominator), where=denominator > 0)


def comparison_details(c: Comparison, name_a: str = "A", name_b: str = "B") -> str:
    """The numbers behind the statement, signed the same way: the better model minus the other."""
    better, worse, sign = (name_b, name_a, -1) if c.difference < 0 else (name_a, name_b, 1)
    low, high = sorted((sign * c.ci_low * 100, sign * c.ci_high * 100))
    return (f"{better} − {worse} = {signed(sign * c.difference * 100, '+.2f')} points (95% CI {signed(low, '+.2f')} "
            f"to {signed(high, '+.2f')}). Only "
            f"{name_a} right on {c.only_a_right:,} images, only {name_b} right on {c.only_b_right:,}, of {c.n:,}; "
            f"McNemar exact p {'< 0.001' if c.p_value < 0.001 else f'= {c.p_value:.3g}'}.")


VERDICT_TERMS = (
    "**95% CI** (confidence interval): a range built so that, over many test sets drawn the same way, 95 in 100 such "
    "ranges would hold the true difference; if it includes 0, either model could really be the better one.",
    "**McNemar's p**: if both models were equally good, how often would their disagreements split at least this "
    "unevenly by chance alone? Below 0.05 means rarely: the difference is unlikely to be luck of the test images.",
)


def _plain_english(comparison, name_a, name_b):
    """One or two sentences a student can read: who is better, by how much, and could it be noise (its first letter
    is capitalised by the caller)."""
    c = comparison
    name_a, name_b = _model_named(name_a), _model_named(name_b)
    discordant = c.only_a_right + c.only_b_right
    if discordant == 0:
        return (
            f"{name_a} and {name_b} got exactly the same test images right and wrong "
            f"({c.accuracy_a:.1%} on {c.n:,} test images), so there is no evidence of a difference."
        )
    if c.difference == 0:
        return (
            f"{name_a} and {name_b} are equally accurate ({c.accuracy_a:.1%} on {c.n:,} test images); they "
            f"disagree on {discordant:,} images, split evenly, so neither is shown to be better."
        )
    sign = 1 if c.difference > 0 else -1
    better, worse = (name_a, name_b) if sign > 0 else (name_b, name_a)
    higher, lower = sorted((c.accuracy_a, c.accuracy_b), reverse=True)  # in the sentence's order: the better first
    accuracies = f"{higher:.1%} vs {lower:.1%} on {c.n:,} test images"
    low, high = sorted((sign * c.ci_low * 100, sign * c.ci_high * 100))
    figures = f"by {abs(c.difference) * 100:.1f} points ({accuracies}; 95% CI {signed(low, '.1f')} to {signed(high, '.1f')} points)"
    headline = (f"{better} is more accurate than {worse} {figures}" if c.p_value < 0.05 else  # a winner only where
                f"No clear difference: {better} scored higher than {worse} {figures}")  # chance cannot explain it
    if c.p_value < 0.001:
        verdict = "p < 0.001, so the difference is very unlikely to come from which test images were drawn"
    elif c.p_value < 0.05:
        verdict = f"p = {c.p_value:.3f}, so the difference is unlikely to come from which test images were drawn"
    else:
        verdict = (
            f"p = {c.p_value:.3f}, so the difference could come from which test images were drawn: "
            f"another test set might reverse it"
        )
    return f"{headline}; McNemar {verdict}."


def _model_named(name: str) -> str:
    """"model A", "model CNN" for a letter or an acronym; any other name (a title, "fine-tuning") in quotes, which
    read as a name."""
    return f"model {name}" if name.isupper() and " " not in name else f"“{name}”"
