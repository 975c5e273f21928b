"""Transfer learning as an experiment: one small dataset, three networks with the same head.

- from scratch: the base's architecture, every weight starting random;
- feature extraction: the base's trained convolutions frozen, only the new head learns;
- fine-tuning: the same, in two phases: the head first with the base frozen, then the top layers of the
  base unfrozen and trained too, at a ten times lower learning rate.

Everything here builds TrainConfigs and reads registry cards; nothing imports TensorFlow until a
function that builds a model is called.
"""

import dataclasses
import math
from dataclasses import dataclass

from core.config import REGISTRY_BASE_PREFIX, TrainConfig
from core.course import within_the_data
from core.errors import ConfigError
from core.guide import Z_95

SCRATCH, FEATURE_EXTRACTION, FINE_TUNING = "from scratch", "feature extraction", "fine-tuning"
EXPERIMENT_NAMES = (SCRATCH, FEATURE_EXTRACTION, FINE_TUNING)

# A base worth transferring from: the classic CNN trained on all 54,000 Fashion-MNIST training images.
BASE_CNN = TrainConfig(family="cnn", dataset="fashion_mnist", filters=(32, 64), hidden_units=(128,), epochs=3)


def transfer_experiment(
    base_key: str,
    dataset: str = "shapes",
    train_subset: int | None = 300,
    fine_tune_layers: int = 1,
    epochs: int = 20,
    hidden_units: tuple[int, ...] = (128,),
    learning_rate: float = 0.001,
    seed: int = 0,
    registry=None,
) -> dict[str, TrainConfig]:
    """The three configs of the experiment, all trained on the same slice of `dataset`.

    The target images are resized and converted to the base's input shape (a base trained on
    28x28 grayscale Fashion-MNIST sees 28x28 grayscale shapes), so all three networks see the same pixels.
    """
    base_config, (height, width, channels) = base_architecture(base_key, registry)
    if fine_tune_layers < 1:
        raise ConfigError(f"Fine-tuning unfreezes at least one layer of the base. Received: fine_tune_layers={fine_tune_layers}")
    data = dict(
        dataset=dataset,
        train_subset=train_subset,
        image_size=height,
        color_mode="grayscale" if channels == 1 else "rgb",
        hidden_units=tuple(hidden_units),
        epochs=epochs,
        learning_rate=learning_rate,
        batch_size=32,
        seed=seed,
    )
    data["train_subset"] = within_the_data(TrainConfig(**data), registry.root if registry else None).train_subset
    transfer = TrainConfig(family="transfer", base_model=f"{REGISTRY_BASE_PREFIX}{base_key}", **data)
    scratch = TrainConfig(
        family="cnn",
        filters=base_config.filters,
        kernel_size=base_config.kernel_size,
        conv_strides=base_config.conv_strides,
        padding=base_config.padding,
        batch_norm=base_config.batch_norm,
        activation=base_config.activation,
        **data,
    )
    return {
        SCRATCH: scratch,
        FEATURE_EXTRACTION: dataclasses.replace(transfer, fine_tune_layers=0),
        FINE_TUNING: dataclasses.replace(transfer, fine_tune_layers=fine_tune_layers),
    }


@dataclass(frozen=True)
class TransferVerdict:
    """What the three trained networks of the experiment show."""

    early_epoch: int  # the epoch at which the curves are compared
    early_validation_accuracy: dict[str, float]  # per network, at early_epoch
    learns_faster: bool  # both pretrained networks ahead of scratch at early_epoch, beyond the validation set's luck
    # each pretrained network against scratch, image by image on the same test set: 95% interval and McNemar's test
    comparisons: dict = dataclasses.field(default_factory=dict)
    validation_images: int = 0  # the images early_validation_accuracy was measured on

    def against_scratch(self, ahead: bool = True) -> list[str]:
        """The pretrained networks ahead of (or, ahead=False, behind) scratch beyond McNemar's test (p < 0.05)."""
        return [name for name, comparison in self.comparisons.items()
                if comparison.p_value < 0.05 and (comparison.difference > 0) == ahead and comparison.difference != 0]

    def headline(self) -> str:
        """Who wins, in a sentence that claims only what McNemar's test supports: each pretrained network is tested
        against scratch, never against the other (37.2% and 36.9% were called "Best here: feature extraction")."""
        ahead, behind = self.against_scratch(), self.against_scratch(ahead=False)
        points = {name: f"{abs(100 * comparison.difference):.1f} points" for name, comparison in self.comparisons.items()}
        other = {FEATURE_EXTRACTION: FINE_TUNING, FINE_TUNING: FEATURE_EXTRACTION}
        if len(ahead) == 2:
            return (f"Both pretrained networks beat training from scratch: {FEATURE_EXTRACTION} by "
                    f"{points[FEATURE_EXTRACTION]}, {FINE_TUNING} by {points[FINE_TUNING]}.")
        if len(behind) == 2:
            return "Training **from scratch** beats both pretrained networks here."
        if ahead and behind:
            return (f"**{ahead[0]}** beats training from scratch by {points[ahead[0]]}; **{behind[0]}** does worse "
                    f"than scratch, by {points[behind[0]]}.")
        if ahead:
            return f"**{ahead[0]}** beats training from scratch by {points[ahead[0]]}; {other[ahead[0]]} does not clearly."
        if behind:  # "No clear winner" sat above "from scratch is more accurate by 42.5 points, p < 0.001"
            return (f"Training **from scratch** beats {behind[0]} by {points[behind[0]]}; McNemar's test (below) cannot "
                    f"tell {other[behind[0]]} from scratch.")
        return ("No clear winner here: McNemar's test (below) cannot tell the pretrained networks from scratch beyond "
                "the luck of which test images were drawn.")


def transfer_verdict(configs: dict[str, TrainConfig], registry=None) -> TransferVerdict | None:
    """Whether a pretrained base learns faster, and each pretrained network compared with scratch on the same test
    images (core.evaluation.compare); None until all three are trained."""
    from core.evaluation import compare
    from core.registry import Registry

    registry = registry or Registry()
    entries = {name: registry.find(config) for name, config in configs.items()}
    if any(entry is None for entry in entries.values()):
        return None
    early = min(5, *(len(entry.history) for entry in entries.values()))
    early_accuracy = {name: entry.history[early - 1]["val_accuracy"] for name, entry in entries.items()}
    validation_images = entries[SCRATCH].card.dataset.validation_images or 0
    faster = all(clearly_ahead(early_accuracy[name], early_accuracy[SCRATCH], validation_images)
                 for name in (FEATURE_EXTRACTION, FINE_TUNING))
    scratch = registry.load_evaluation(entries[SCRATCH].key)
    comparisons = {name: compare(registry.load_evaluation(entries[name].key), scratch, name_a=name, name_b=SCRATCH)
                   for name in (FEATURE_EXTRACTION, FINE_TUNING)}
    return TransferVerdict(early, early_accuracy, faster, comparisons, validation_images)


def clearly_ahead(accuracy: float, other: float, images: int) -> bool:
    """True when `accuracy` beats `other`, both measured on the same `images` images, by more than the 95% margin of
    their difference (1.96 standard errors): 32% against 30% on 30 validation images is luck, not a lead."""
    if images <= 0:
        return False
    margin = Z_95 * math.sqrt((accuracy * (1 - accuracy) + other * (1 - other)) / images)
    return accuracy - other > max(margin, 1 / images)


def base_architecture(base_key: str, registry=None) -> tuple[TrainConfig, tuple[int, int, int]]:
    """(training config, input shape) of a CNN in the registry that can serve as a base."""
    from core.registry import Registry

    entry = (registry or Registry()).get(base_key)
    config = entry.config
    if config is None or config.family != "cnn":
        family = "an imported model" if config is None else f"a {config.family.upper()}"
        raise ConfigError(
            f"A transfer base must be a CNN trained in this registry; {base_key} is {family}. "
            f"Pick a CNN, or train one (the Train page, or `python -m core warmup`). Received: base_key={base_key!r}"
        )
    height, width, channels = entry.card.input_shape
    if height != width:
        raise ConfigError(f"The base CNN must take square images. Received: input_shape={(height, width, channels)}")
    return config, (int(height), int(width), int(channels))


def experiment_rows(configs: dict[str, TrainConfig], registry=None) -> list[dict]:
    """One row per network: trained or not, test accuracy, gain over scratch, trainable and frozen parameters."""
    from core.registry import Registry

    registry = registry or Registry()
    entries = {name: registry.find(config) for name, config in configs.items()}
    scratch = entries.get(SCRATCH)
    baseline = scratch.test_accuracy if scratch is not None else None
    rows = []
    for name, config in configs.items():
        entry = entries[name]
        row = {"network": name, "key": config.key, "trained": entry is not None, "test accuracy": None,
               "gain over scratch (points)": None, "trainable parameters": None, "frozen parameters": None,
               "total parameters": None, "training time (s)": None}
        if entry is not None:
            params = entry.card.params
            row.update({
                "test accuracy": entry.test_accuracy,
                "trainable parameters": params.trainable,
                "frozen parameters": params.non_trainable,
                "total parameters": params.total,
                "training time (s)": entry.card.timings.train_seconds,
            })
            if baseline is not None and name != SCRATCH:
                row["gain over scratch (points)"] = round(100 * (entry.test_accuracy - baseline), 2)
        rows.append(row)
    return rows


TABLE_COLUMNS = ("network", "trained", "test accuracy", "gain over scratch (points)", "trainable parameters",
                 "frozen parameters", "training time (s)")
NOT_YET = "—"  # a cell of a network not trained yet


def experiment_table(rows: list[dict]) -> list[dict[str, str]]:
    """`experiment_rows` as the page shows them: every cell in words, a dash where a network is not trained yet."""
    formats = {"trained": lambda trained: "yes" if trained else "not yet", "test accuracy": lambda value: f"{value:.1%}",
               "gain over scratch (points)": lambda points: f"{points:+.1f}",
               "trainable parameters": "{:,}".format, "frozen parameters": "{:,}".format,
               "training time (s)": lambda seconds: f"{seconds:.1f}"}
    return [{column: NOT_YET if row[column] is None else formats.get(column, str)(row[column]) for column in TABLE_COLUMNS}
            for row in rows]


@dataclass(frozen=True)
class ImageNetBase:
    """What an ImageNet base is, computed from the network Keras builds (random weights, so nothing is downloaded)."""

    title: str
    parameters: int
    file_name: str
    url: str

    @property
    def megabytes(self) -> float:
        """Its weights as float32 numbers: 4 bytes each, which is about the size of the weight file."""
        return self.parameters * 4 / 1e6


def imagenet_base(base_model: str) -> ImageNetBase:
    """The base without its top, as transfer learning uses it: its weight count and the file its weights come in."""
    from core.models import application_base
    from core.pretrained import APPLICATIONS, application_image_size, weights_file

    image_size = application_image_size(base_model, (APPLICATIONS[base_model]["minimum_size"],) * 2 + (3,))
    base = application_base(base_model, image_size, weights=None)
    file_name, url, _ = weights_file(base_model, image_size)
    return ImageNetBase(APPLICATIONS[base_model]["title"], int(base.count_params()), file_name, url)


def preprocessing_note(base_model: str) -> str:
    """What the base expects its pixels to look like, what the classic code fed it, and what this app does."""
    from core.models import IMAGENET_MEAN_BGR
    from core.pretrained import APPLICATIONS

    title = APPLICATIONS[base_model]["title"]
    if base_model == "vgg16":
        white = ", ".join(f"{255 - mean:.1f}" for mean in IMAGENET_MEAN_BGR)
        black = ", ".join(f"{-mean:.1f}" for mean in IMAGENET_MEAN_BGR)
        return (f"**The classic code** feeds {title} pixels divided by 255 (0 to 1). {title} learned from images in "
                "Caffe style: colour channels in BGR order with the ImageNet mean subtracted, which is what "
                "`keras.applications.vgg16.preprocess_input` does. Given 0…1 values, the base sees almost black, "
                "colourless images unlike anything it learned from, which is part of why the classic VGG16 transfer "
                "lesson scored poorly on CIFAR-10. **Here** the model does preprocess_input's arithmetic itself, as its "
                f"first layers: a white pixel becomes ({white}) and a black one ({black}), in BGR order.")
    return (f"{title} learned from pixels scaled to −1…1 (`keras.applications.{base_model}.preprocess_input`), not "
            "0…1: the classic code's division by 255 gives it only half the range it knows. **Here** the model scales "
            "its own input, x / 127.5 − 1: black 0 becomes −1.0 and white 255 becomes 1.0.")
