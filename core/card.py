"""ModelCard: what the registry knows about one model, typed, versioned and built in one place.

A card is written as `card.json` beside the model and read back with `ModelCard.from_dict`, which
also reads the cards of earlier versions. Pages, the CLI and core read attributes
(`card.params.total`, `card.dataset.test_images`), never dictionary paths. Building a card for a
trained model needs the model itself (parameter counts, layer summary); this module imports
TensorFlow only inside the function that does that.
"""

import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone

from core.config import TrainConfig
from core.errors import RegistryError
from core.history import History

CARD_VERSION = 5  # 1: the same layout without "card_version"; 2: without "warnings"; 3: without "preprocessing";
# 4: without the dataset's "title"
PREPROCESSING_BEFORE_V4 = {"folder": "stretch", "other": "pad"}  # what older code did: folder photos were stretched


@dataclass(frozen=True)
class DatasetFacts:
    """The data a model was trained and tested on (for an imported model: only what it expects)."""

    class_names: tuple[str, ...]
    input_shape: tuple[int, int, int]
    name: str | None = None  # None for an imported model
    source: str | None = None
    fingerprint: str | None = None
    train_images: int | None = None
    validation_images: int | None = None
    test_images: int | None = None
    title: str | None = None  # the dataset's readable name ('Horses or humans'); None in cards before version 5

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


@dataclass(frozen=True)
class ParameterCounts:
    """Weights in the model: trainable ones learn, the others are frozen (a base, BatchNorm statistics)."""

    total: int
    trainable: int
    non_trainable: int


@dataclass(frozen=True)
class LayerSummary:
    """One row of `model.summary()`."""

    layer: str
    type: str
    output_shape: str
    parameters: int
    trainable: bool

    def to_row(self) -> dict:
        """The row as a page's table shows it."""
        return {"layer": self.layer, "type": self.type, "output shape": self.output_shape,
                "parameters": self.parameters, "trainable": self.trainable}


@dataclass(frozen=True)
class Timings:
    """Seconds spent training and evaluating (None for an imported model)."""

    train_seconds: float | None = None
    eval_seconds: float | None = None
    seconds_per_epoch: float | None = None


@dataclass(frozen=True)
class ModelCard:
    """One registry entry's description: how it was made, what it expects, how well it did."""

    key: str
    title: str
    config: TrainConfig | None  # None for an imported model
    dataset: DatasetFacts
    params: ParameterCounts
    layers: tuple[LayerSummary, ...]
    created: str
    versions: dict[str, str] = field(default_factory=dict)
    imported: bool = False
    source_file: str | None = None
    timings: Timings = Timings()
    epochs_run: int | None = None
    stopped_reason: str | None = None
    test_accuracy: float | None = None
    test_loss: float | None = None
    status: str = "ready"
    # What core.lint.model_warnings found in the model (softmax over one unit, NaN weights, ...); () when nothing,
    # None for a card written before warnings were kept (version 1 or 2): check the model when it is loaded.
    warnings: tuple[str, ...] | None = None
    preprocessing: str = "pad"  # how a photo becomes this model's input (core.imaging.METHODS); Predict does the same
    base_title: str | None = None  # a transfer model's registry base, by its title when it was trained (else its key)

    @property
    def family(self) -> str:
        """'dnn', 'cnn', 'transfer', or 'imported'."""
        return self.config.family if self.config else "imported"

    @property
    def class_names(self) -> list[str]:
        return list(self.dataset.class_names)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.dataset.input_shape

    @property
    def is_binary(self) -> bool:
        return self.dataset.num_classes == 2

    @property
    def epochs_planned(self) -> int | None:
        return self.config.epochs if self.config else None

    @property
    def created_in_utc(self) -> str:
        """When the model was made, to the minute in UTC ("2026-12-02 04:59"), as a table shows it; "" when unknown."""
        try:
            return datetime.fromisoformat(self.created).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M")
        except (TypeError, ValueError):  # an imported card without a time, or with one that is not ISO 8601
            return ""

    def checked_warnings(self, model) -> tuple[str, ...]:
        """The card's model warnings; an older card that has none stored gets them from `model`, its loaded model."""
        return self.warnings if self.warnings is not None else model_warnings(model, self.class_names)

    def layer_rows(self) -> list[dict]:
        """`model.summary()` as table rows."""
        return [layer.to_row() for layer in self.layers]

    def listing_row(self) -> dict:
        """The flat row that `python -m core list --json` prints."""
        return {"key": self.key, "title": self.title, "dataset": self.dataset.name, "family": self.family,
                "test_accuracy": self.test_accuracy, "test_loss": self.test_loss, "test_images": self.dataset.test_images,
                "params": self.params.total, "train_seconds": self.timings.train_seconds, "epochs_run": self.epochs_run,
                "created": self.created}

    def to_dict(self) -> dict:
        """The JSON form written as card.json."""
        dataset = self.dataset
        return {
            "card_version": CARD_VERSION,
            "key": self.key,
            "title": self.title,
            "status": self.status,
            "imported": self.imported,
            "config": self.config.canonical().to_dict() if self.config else None,
            "dataset": {
                "name": dataset.name, "title": dataset.title, "source": dataset.source, "fingerprint": dataset.fingerprint,
                "class_names": list(dataset.class_names), "num_classes": dataset.num_classes,
                "input_shape": list(dataset.input_shape),
                "sizes": {"train": dataset.train_images, "validation": dataset.validation_images, "test": dataset.test_images},
            },
            "params": {"total": self.params.total, "trainable": self.params.trainable,
                       "non_trainable": self.params.non_trainable},
            "summary": [{"layer": row.layer, "type": row.type, "output shape": row.output_shape,
                         "parameters": row.parameters, "trainable": row.trainable} for row in self.layers],
            "timings": {"train_seconds": self.timings.train_seconds, "eval_seconds": self.timings.eval_seconds,
                        "seconds_per_epoch": self.timings.seconds_per_epoch},
            "epochs_run": self.epochs_run,
            "stopped_reason": self.stopped_reason,
            "test": {"accuracy": self.test_accuracy, "loss": self.test_loss},
            "versions": dict(self.versions),
            "created": self.created,
            "source_file": self.source_file,
            "warnings": None if self.warnings is None else list(self.warnings),
            "preprocessing": self.preprocessing,
            **({"base_title": self.base_title} if self.base_title else {}),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "ModelCard":
        """Read a card.json of this version or an earlier one; RegistryError when it is not a card."""
        if not isinstance(data, dict):  # "[]" read as "version None… Update CNN Classroom"
            raise RegistryError(f"This is not a model card: it holds a {type(data).__name__}, where a card holds named "
                                "fields. Delete the entry and train it again.")
        version = data.get("card_version", 1)
        if version not in range(1, CARD_VERSION + 1):
            raise RegistryError(f"This model card has version {version!r}; this CNN Classroom reads versions 1 to "
                                f"{CARD_VERSION}. Update CNN Classroom, or delete the entry and train it again.")
        try:
            dataset, sizes = data["dataset"], data["dataset"].get("sizes") or {}
            timings, test = data.get("timings") or {}, data.get("test") or {}
            config = TrainConfig.from_dict(data["config"]) if data.get("config") else None
            return cls(
                key=data["key"],
                # A trained model's title is made from its config, so cards written before titles named every setting
                # read with today's unique title; an imported model keeps the title it was given.
                title=config.describe(dataset.get("title"), data.get("base_title")) if config
                else data.get("title") or data["key"],
                config=config,
                dataset=DatasetFacts(
                    class_names=tuple(dataset["class_names"]), input_shape=tuple(int(side) for side in dataset["input_shape"]),
                    name=dataset.get("name"), source=dataset.get("source"), fingerprint=dataset.get("fingerprint"),
                    train_images=sizes.get("train"), validation_images=sizes.get("validation"), test_images=sizes.get("test"),
                    title=dataset.get("title"),
                ),
                params=ParameterCounts(**data["params"]),
                layers=tuple(LayerSummary(row["layer"], row["type"], row["output shape"], int(row["parameters"]),
                                          bool(row["trainable"])) for row in data.get("summary") or []),
                created=data.get("created") or "",
                versions=dict(data.get("versions") or {}),
                imported=bool(data.get("imported")),
                source_file=data.get("source_file"),
                timings=Timings(timings.get("train_seconds"), timings.get("eval_seconds"), timings.get("seconds_per_epoch")),
                epochs_run=data.get("epochs_run"),
                stopped_reason=data.get("stopped_reason"),
                test_accuracy=test.get("accuracy"),
                test_loss=test.get("loss"),
                status=data.get("status", "ready"),
                warnings=None if data.get("warnings") is None else tuple(str(text) for text in data["warnings"]),
                preprocessing=data.get("preprocessing") or _preprocessing_before_v4(dataset.get("name")),
                base_title=data.get("base_title"),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise RegistryError(f"The model card of {data.get('key', 'this entry')} is damaged (missing or wrong "
                                f"field: {error}). Delete the entry and train or import it again.") from error


def _preprocessing_before_v4(dataset_name) -> str:
    """A card without the field: its folder-dataset photos were stretched in training, the others never were photos."""
    is_folder = isinstance(dataset_name, str) and dataset_name.startswith("folder:")
    return PREPROCESSING_BEFORE_V4["folder" if is_folder else "other"]


def trained_card(config: TrainConfig, dataset, model, history: History, train_seconds: float,
                 stopped_reason: str | None, evaluation, eval_seconds: float) -> ModelCard:
    """The card of a model just trained from `config` on `dataset` and evaluated on its test split."""
    return ModelCard(
        key=config.key,
        title=config.describe(dataset.title),
        config=config.canonical(),
        dataset=DatasetFacts(
            class_names=tuple(dataset.class_names), input_shape=tuple(dataset.input_shape), name=dataset.name,
            source=dataset.source, fingerprint=dataset.fingerprint, train_images=len(dataset.x_train),
            validation_images=len(dataset.x_val), test_images=len(dataset.x_test), title=dataset.title,
        ),
        params=parameter_counts(model),
        layers=layer_summaries(model),
        created=now(),
        versions=versions(),
        timings=Timings(round(train_seconds, 3), round(eval_seconds, 3), round(train_seconds / max(1, len(history)), 3)),
        epochs_run=len(history),
        stopped_reason=stopped_reason,
        test_accuracy=evaluation.accuracy,
        test_loss=evaluation.loss,
        warnings=model_warnings(model, dataset.class_names),
        preprocessing=dataset.preprocessing,
    )


def imported_card(key: str, model, class_names: list[str], title: str, source_file: str,
                  about: "ModelCard | None" = None) -> ModelCard:
    """The card of a .keras file made elsewhere: what it expects and predicts, no training or test figures. `about`,
    the card an export of this app carried, names the dataset it learned from and how photos are prepared for it."""
    learned_from = about.dataset if about else None
    return ModelCard(
        key=key,
        title=title,
        config=None,
        dataset=DatasetFacts(class_names=tuple(class_names), input_shape=tuple(int(side) for side in model.input_shape[1:]),
                             name=learned_from and learned_from.name, title=learned_from and learned_from.title),
        params=parameter_counts(model),
        layers=layer_summaries(model),
        created=now(),
        versions=versions(),
        imported=True,
        source_file=source_file,
        warnings=model_warnings(model, class_names),
        **({"preprocessing": about.preprocessing} if about else {}),
    )


def model_warnings(model, class_names) -> tuple[str, ...]:
    """core.lint's warnings about a finished model, kept in its card so pages show them without loading it."""
    from core.lint import model_warnings as lint_model_file

    return tuple(lint_model_file(model, list(class_names)))


def parameter_counts(model) -> ParameterCounts:
    from core.models import count_params

    return ParameterCounts(**count_params(model))


def layer_summaries(model) -> tuple[LayerSummary, ...]:
    """model.summary() rows, stored in the card so pages show them without loading TensorFlow."""
    from core.models import summary_rows

    return tuple(LayerSummary(row["layer"], row["type"], str(tuple(row["output_shape"])), int(row["params"]),
                              bool(row["trainable"])) for row in summary_rows(model))


def versions() -> dict[str, str]:
    from core.backend import keras, tf

    return {"tensorflow": tf.__version__, "keras": keras.__version__, "python": platform.python_version()}


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def numbered_title(title: str, taken) -> str:
    """`title`, or "title (2)", "(3)"… when `taken` has it already, in any case: two models (or datasets) of one
    title could not be told apart in a picker, nor named on the command line."""
    taken = {name.casefold() for name in taken}
    unique, number = title, 1
    while unique.casefold() in taken:
        number += 1
        unique = f"{title} ({number})"
    return unique
