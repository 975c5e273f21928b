"""TrainConfig: everything that determines a trained model, and the registry key derived from it.

The key hashes the canonical JSON, so adding a field would change every key and orphan every trained model.
`fine_tune_phases` was added that way round on purpose: it is written into the key's JSON only for the
configs whose training it changed (fine-tuning, now in two phases by default), so every other key, and
the one-phase fine-tuning entries trained before it existed, keep their keys. A config dict without the
field (an older card, an older queued job) is read as the one-phase training it was.
"""

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field

from core.errors import ConfigError

CONFIG_VERSION = 1
FAMILIES = ("dnn", "cnn", "transfer")
OPTIMIZERS = ("adam", "sgd", "rmsprop")
ACTIVATIONS = ("relu", "tanh", "sigmoid", "elu", "gelu")
PADDINGS = ("valid", "same")
FILL_MODES = ("nearest", "constant", "reflect", "wrap")
COLOR_MODES = ("grayscale", "rgb")
CHANNELS_BY_COLOR_MODE = {"grayscale": 1, "rgb": 3}
SCHEDULES = ("constant", "one_cycle")
APPLICATION_BASES = ("mobilenet_v2", "vgg16", "inception_v3")
REGISTRY_BASE_PREFIX = "registry:"
FINE_TUNE_PHASES = (1, 2)  # 1: head and unfrozen layers together (the old way); 2: head first, then the top layers
FINE_TUNE_RATE_DIVISOR = 10  # the second phase trains at learning_rate / 10
KEY_PATTERN = re.compile(r"^[0-9a-f]{16}$")
# Bounds that keep one training inside a classroom server's memory (each weight costs about 16 bytes while Adam
# trains it: the weight, its gradient and two moments). core.shapes.check_model_size bounds the whole network.
MAX_SEED = 2**32 - 1  # what keras.utils.set_random_seed accepts
MAX_HIDDEN_UNITS = 8192
MAX_FILTERS = 1024
MAX_LAYERS = 8
MAX_PARAMETERS = 50_000_000


@dataclass(frozen=True)
class Augmentation:
    """The classic ImageDataGenerator knobs, applied with Keras preprocessing layers.

    rotation_range is in degrees (like ImageDataGenerator); shifts and zoom are fractions of the
    image size; shear_range is RandomShear's factor (0.2 shears by up to 0.2 of the side).
    """

    rotation_range: float = 0.0
    width_shift_range: float = 0.0
    height_shift_range: float = 0.0
    shear_range: float = 0.0
    zoom_range: float = 0.0
    horizontal_flip: bool = False
    fill_mode: str = "nearest"

    def __post_init__(self):
        _check_range("rotation_range", self.rotation_range, 0, 180)
        for name in ("width_shift_range", "height_shift_range", "shear_range", "zoom_range"):
            _check_range(name, getattr(self, name), 0, 0.9)
        _check_choice("fill_mode", self.fill_mode, FILL_MODES)

    @property
    def is_active(self) -> bool:
        """True when at least one transformation is switched on."""
        return self != Augmentation(fill_mode=self.fill_mode)


@dataclass(frozen=True)
class TrainConfig:
    """One training run, fully specified. Same config, same key, same model."""

    # Data
    dataset: str = "fashion_mnist"
    train_subset: int | None = None
    image_size: int | None = None
    color_mode: str | None = None
    validation_fraction: float = 0.1
    seed: int = 0
    # Architecture
    family: str = "cnn"
    hidden_units: tuple[int, ...] = (128,)
    activation: str = "relu"
    dropout_rate: float = 0.0
    filters: tuple[int, ...] = (32, 64)
    kernel_size: int = 3
    conv_strides: int = 1
    padding: str = "valid"
    batch_norm: bool = False
    base_model: str = "mobilenet_v2"
    fine_tune_layers: int = 0
    fine_tune_phases: int = 2  # with fine_tune_layers > 0: train the head with the base frozen, then fine-tune at rate / 10
    # Optimisation
    optimizer: str = "adam"
    learning_rate: float = 0.001
    lr_schedule: str = "constant"
    batch_size: int = 32
    epochs: int = 5
    augmentation: Augmentation = field(default_factory=Augmentation)
    stop_at_accuracy: float | None = None
    early_stopping_patience: int | None = None

    def __post_init__(self):
        for name in ("hidden_units", "filters"):
            object.__setattr__(self, name, tuple(int(value) for value in getattr(self, name)))
        if isinstance(self.augmentation, dict):
            object.__setattr__(self, "augmentation", Augmentation(**self.augmentation))
        _check_choice("family", self.family, FAMILIES)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("activation", self.activation, ACTIVATIONS)
        _check_choice("padding", self.padding, PADDINGS)
        _check_choice("lr_schedule", self.lr_schedule, SCHEDULES)
        if self.color_mode is not None:
            _check_choice("color_mode", self.color_mode, COLOR_MODES)
        if not self.dataset or not isinstance(self.dataset, str):
            raise ConfigError(f"dataset must be a dataset name such as 'fashion_mnist'. Received: dataset={self.dataset!r}")
        if self.family == "transfer" and not (
            self.base_model in APPLICATION_BASES or self.base_model.startswith(REGISTRY_BASE_PREFIX)
        ):
            raise ConfigError(
                f"base_model must be one of {APPLICATION_BASES} or 'registry:<key>' of a trained CNN. "
                f"Received: base_model={self.base_model!r}"
            )
        _check_whole("seed", self.seed, 0, MAX_SEED)
        _check_range("validation_fraction", self.validation_fraction, 0.01, 0.5)
        _check_range("dropout_rate", self.dropout_rate, 0, 0.9)
        _check_range("learning_rate", self.learning_rate, 1e-7, 10)
        _check_range("batch_size", self.batch_size, 1, 4096)
        _check_range("epochs", self.epochs, 1, 500)
        _check_range("kernel_size", self.kernel_size, 1, 11)
        _check_range("conv_strides", self.conv_strides, 1, 4)
        _check_range("fine_tune_layers", self.fine_tune_layers, 0, 1000)
        _check_choice("fine_tune_phases", self.fine_tune_phases, FINE_TUNE_PHASES)
        if self.fine_tunes_in_two_phases and self.epochs < 2:
            raise ConfigError("Fine-tuning in two phases needs at least 2 epochs: the first trains the new head with the "
                              "base frozen, the rest fine-tune its top layers. Use epochs=2 or more, or "
                              f"fine_tune_phases=1. Received: epochs={self.epochs}")
        if self.image_size is not None:
            _check_range("image_size", self.image_size, 8, 512)
        if self.train_subset is not None:
            _check_range("train_subset", self.train_subset, 10, 10_000_000)
        if self.stop_at_accuracy is not None:
            _check_range("stop_at_accuracy", self.stop_at_accuracy, 0.01, 1.0)
        if self.early_stopping_patience is not None:
            _check_range("early_stopping_patience", self.early_stopping_patience, 1, 100)
        if self.family == "dnn" and not self.hidden_units:
            raise ConfigError("A DNN needs at least one hidden Dense layer. Received: hidden_units=()")
        if self.family == "cnn" and not self.filters:
            raise ConfigError("A CNN needs at least one convolution block. Received: filters=()")
        if any(units < 1 for units in self.hidden_units + self.filters):
            raise ConfigError(
                f"Layer sizes must be positive. Received: hidden_units={self.hidden_units}, filters={self.filters}"
            )
        for name, sizes, largest in (("hidden_units", self.hidden_units, MAX_HIDDEN_UNITS), ("filters", self.filters, MAX_FILTERS)):
            if len(sizes) > MAX_LAYERS or max(sizes, default=0) > largest:
                raise ConfigError(
                    f"{name} allows at most {MAX_LAYERS} layers of at most {largest:,} each: a bigger network does not fit "
                    f"in a classroom server's memory and would not train in a lesson. Received: {name}={sizes}"
                )

    def canonical(self) -> "TrainConfig":
        """The same config with fields that do not affect this family reset to their defaults."""
        defaults = TrainConfig()
        unused = {
            "dnn": ("filters", "kernel_size", "conv_strides", "padding", "batch_norm", "base_model", "fine_tune_layers",
                    "fine_tune_phases"),
            "cnn": ("base_model", "fine_tune_layers", "fine_tune_phases"),
            "transfer": ("filters", "kernel_size", "conv_strides", "padding", "batch_norm")
            + (() if self.fine_tune_layers else ("fine_tune_phases",)),
        }[self.family]
        return dataclasses.replace(self, **{name: getattr(defaults, name) for name in unused})

    @property
    def fine_tunes_in_two_phases(self) -> bool:
        """True for a transfer config that trains its head first, then fine-tunes the base's top layers."""
        return self.family == "transfer" and self.fine_tune_layers > 0 and self.fine_tune_phases == 2

    @property
    def head_epochs(self) -> int:
        """Epochs of the first phase (the head alone, base frozen) of two-phase fine-tuning; 0 otherwise."""
        return (self.epochs + 1) // 2 if self.fine_tunes_in_two_phases else 0

    def to_dict(self) -> dict:
        """A JSON-ready dict of every field (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no spaces, irrelevant fields reset. The key hashes this."""
        payload = {"config_version": CONFIG_VERSION, **self.canonical().to_dict()}
        if not self.fine_tunes_in_two_phases:
            del payload["fine_tune_phases"]  # keys from before the field existed stay as they were (module docstring)
        return json.dumps(payload, sort_keys=True, separators=(",", ":"))

    @property
    def key(self) -> str:
        """16 hex digits of the SHA-256 of the canonical JSON."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    @property
    def registry_base_key(self) -> str | None:
        """The registry key of a transfer model's base CNN; None for an ImageNet base or another family."""
        if self.family == "transfer" and self.base_model.startswith(REGISTRY_BASE_PREFIX):
            return self.base_model.removeprefix(REGISTRY_BASE_PREFIX)
        return None

    @property
    def title(self) -> str:
        """A readable name, unique for different configs: 'CNN 32-64 / Dense 128 on Fashion-MNIST, 5 epochs · seed 3'."""
        return self.describe()

    def describe(self, dataset_title: str | None = None, base_title: str | None = None) -> str:
        """The title, naming the dataset by `dataset_title` (an imported folder's own title) and a registry base by
        `base_title` (its own title; else by its key) when given.

        The body names the network, the data and the epochs; every other setting that differs from
        TrainConfig's defaults follows after a dot, so two different configs never share a title.
        """
        dense = "-".join(map(str, self.hidden_units)) or "none"
        if self.family == "dnn":
            body = f"DNN Dense {dense}"
        elif self.family == "cnn":
            body = f"CNN {'-'.join(map(str, self.filters))} / Dense {dense}"
        else:
            base = self.base_model
            if self.registry_base_key:
                base = f"from “{base_title}”" if base_title else f"registry CNN {self.registry_base_key}"
            mode = f"fine-tune {self.fine_tune_layers}" if self.fine_tune_layers else "frozen"
            mode += ", one phase" if self.fine_tune_layers and self.fine_tune_phases == 1 else ""
            body = f"Transfer ({mode}) {base} / Dense {dense}"  # the mode first: a long base title hides the rest
        subset = f" ({self.train_subset:,} images)" if self.train_subset else ""
        epochs = f"{self.epochs} epoch{'s' if self.epochs != 1 else ''}"
        title = f"{body} on {dataset_title or dataset_display_name(self.dataset)}{subset}, {epochs}"
        settings = self.distinguishing_settings()
        return f"{title} · {', '.join(settings)}" if settings else title

    def distinguishing_settings(self) -> list[str]:
        """Every setting outside the title's body that differs from the default, in words ('seed 3', 'augmented (...)')."""
        config, defaults = self.canonical(), TrainConfig()
        words = {
            "image_size": lambda size: f"{size}×{size} px",
            "color_mode": lambda mode: "colour" if mode == "rgb" else "grayscale",
            "validation_fraction": lambda fraction: f"validation {_number(fraction * 100)}%",
            "activation": str,
            "dropout_rate": lambda rate: f"dropout {_number(rate)}",
            "kernel_size": lambda size: f"{size}×{size} kernels",
            "conv_strides": lambda stride: f"stride {stride}",
            "padding": lambda padding: f"{padding} padding",
            "batch_norm": lambda on: "batch norm" if on else "no batch norm",
            "optimizer": lambda name: {"sgd": "SGD", "rmsprop": "RMSprop"}.get(name, name.capitalize()),
            "learning_rate": lambda rate: f"rate {_number(rate)}",
            "lr_schedule": lambda schedule: schedule.replace("_", "-"),
            "batch_size": lambda size: f"batch {size}",
            "augmentation": _augmentation_words,
            "stop_at_accuracy": lambda target: f"stop at {_number(target * 100)}%",
            "early_stopping_patience": lambda patience: f"early stopping (patience {patience})",
            "seed": lambda seed: f"seed {seed}",
        }
        return [describe(getattr(config, name)) for name, describe in words.items()
                if getattr(config, name) != getattr(defaults, name)]

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        """Build a config from a dict such as `to_dict()` made; unknown fields are an error.

        A fine-tuning config without `fine_tune_phases` was written before two-phase fine-tuning and is read as the
        one-phase training it was, so that its key does not change.
        """
        data = {name: value for name, value in data.items() if name != "config_version"}
        if data.get("family") == "transfer" and data.get("fine_tune_layers"):
            data.setdefault("fine_tune_phases", 1)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"Unknown TrainConfig fields {unknown}. Expected some of: {sorted(known)}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> "TrainConfig":
        """Inverse of `to_json()`."""
        return cls.from_dict(json.loads(text))


def dataset_display_name(name: str) -> str:
    """A catalogue dataset's title ('Fashion-MNIST'); an imported folder's id when its title is not at hand."""
    from core.catalogue import CATALOGUE  # imports no numpy; a lazy import, since the catalogue imports this module

    return CATALOGUE[name][0] if name in CATALOGUE else name


def _number(value) -> str:
    """A number as short as it can be written without changing it (0.001, not 0.0010)."""
    short = f"{value:g}"
    return short if float(short) == value else repr(value)


def _augmentation_words(augmentation: "Augmentation") -> str:
    """'augmented (rotation 15°, shift 0.1×0.1, zoom 0.1, flip)': every knob that is switched on."""
    parts = [f"rotation {_number(augmentation.rotation_range)}°" if augmentation.rotation_range else "",
             f"shift {_number(augmentation.width_shift_range)}×{_number(augmentation.height_shift_range)}"
             if augmentation.width_shift_range or augmentation.height_shift_range else "",
             f"shear {_number(augmentation.shear_range)}" if augmentation.shear_range else "",
             f"zoom {_number(augmentation.zoom_range)}" if augmentation.zoom_range else "",
             "flip" if augmentation.horizontal_flip else "",
             f"{augmentation.fill_mode} fill" if augmentation.fill_mode != "nearest" else ""]
    return f"augmented ({', '.join(part for part in parts if part)})"


def validate_key(key: str) -> str:
    """Return `key` if it is 16 lowercase hex digits, else raise; call before building any path."""
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):  # fullmatch: "$" alone lets a final newline through
        raise ConfigError(f"A model key is 16 lowercase hexadecimal digits (0-9, a-f), like 3f2a9c0d1e4b5a67. "
                          f"Received: key={key!r}")
    return key


def _check_choice(name, value, choices):
    if value not in choices:
        raise ConfigError(f"{name} must be one of {list(choices)}. Received: {name}={value!r}")


def _check_whole(name, value, low, high):
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{name} must be a whole number from {low} to {high:,}. Received: {name}={value!r}")


def _check_range(name, value, low, high):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ConfigError(f"{name} must be a number from {low} to {high}. Received: {name}={value!r}")


# Presets a teacher would recognise; core.course.PRESET_LESSONS says which lesson's network each one reproduces.
# "fast" ones are tuned for speed: the classic networks' accuracy or better in seconds on a CPU (docs/performance.md).
PRESETS = {
    # The classic DNN's network; one-cycle learning rate and batches of 128: >= 88.5% test accuracy in about 8 s.
    "fast DNN": TrainConfig(family="dnn", hidden_units=(128,), batch_size=128, learning_rate=0.005, lr_schedule="one_cycle",
                            epochs=9),
    # Half the classic CNN's filters, 'same' padding, batch norm, Dense 256 and one-cycle: >= 92% test accuracy
    # (3 seeds) in 5 epochs of batches of 128, in about half the classic CNN's time for its 5 (docs/performance.md).
    "fast CNN": TrainConfig(family="cnn", filters=(16, 32), padding="same", batch_norm=True, hidden_units=(256,),
                            batch_size=128, learning_rate=0.01, lr_schedule="one_cycle", epochs=5),
    # The fast CNN's network and peak rate for one epoch of batches of 64: >= 90% test accuracy (3 seeds) in about a
    # seventh of the classic CNN's 5 epochs (docs/performance.md).
    "quick CNN": TrainConfig(family="cnn", filters=(16, 32), padding="same", batch_norm=True, hidden_units=(256,),
                             batch_size=64, learning_rate=0.01, lr_schedule="one_cycle", epochs=1),
    "classic DNN": TrainConfig(family="dnn", hidden_units=(128,), epochs=5, batch_size=32),
    "classic CNN": TrainConfig(family="cnn", filters=(32, 64), hidden_units=(128,), epochs=5, batch_size=32),
    "fast preview": TrainConfig(family="cnn", filters=(16, 32), hidden_units=(64,), train_subset=2000, epochs=3, batch_size=64),
    "course CNN 64-64": TrainConfig(family="cnn", filters=(64, 64), hidden_units=(128,), epochs=5, batch_size=32),
    "course CNN 64-64-64": TrainConfig(family="cnn", filters=(64, 64, 64), hidden_units=(128,), epochs=5, batch_size=32),
    "course MNIST CNN 32": TrainConfig(family="cnn", filters=(32,), hidden_units=(128,), epochs=10, batch_size=32),
}
