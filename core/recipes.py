"""What the Your-own-images page trains on a folder dataset: a small CNN from scratch, or a pretrained MobileNetV2.

Thirty webcam shots per class are too few to train a CNN from scratch: it has to learn edges, textures and
shapes from them as well as the classes, and it latches onto the background. A network pretrained on
ImageNet's 1.4 million photos already knows those; only a new head learns the classes (feature
extraction), which is how Teachable Machine gets good results from a few dozen photos. Small datasets
start from the pretrained network when its weights are here or downloadable; otherwise from scratch,
saying what is missing. Both are ordinary TrainConfigs, so both are trained, kept and compared like any other.
"""

from dataclasses import dataclass

from core.config import TrainConfig
from core.pretrained import APPLICATIONS, weights_status

SCRATCH, PRETRAINED = "from scratch", "pretrained MobileNetV2"
PRETRAINED_BASE = "mobilenet_v2"
SMALL_DATASET_IMAGES = 1_000  # training photos below which a pretrained start is the default


@dataclass(frozen=True)
class StartingPoint:
    """Which network to start from for one dataset, and why."""

    default: str  # SCRATCH or PRETRAINED
    pretrained_available: bool
    reason: str  # where the weights come from, or that they cannot be had and what that costs
    teacher_fix: str | None = None  # without the weights: which file, from where, into which folder on the server


def recipe(start: str, dataset: str, image_size: int, epochs: int) -> TrainConfig:
    """The config of one starting point: a 3-block CNN from scratch, or a frozen MobileNetV2 with a new head."""
    if start == PRETRAINED:
        return TrainConfig(dataset=dataset, image_size=image_size, color_mode="rgb", family="transfer",
                           base_model=PRETRAINED_BASE, fine_tune_layers=0, hidden_units=(64,), dropout_rate=0.2,
                           epochs=epochs, batch_size=32)
    return TrainConfig(dataset=dataset, image_size=image_size, color_mode="rgb", family="cnn", filters=(16, 32, 64),
                       hidden_units=(128,), epochs=epochs, batch_size=32)


def starting_point(training_images: int, image_size: int) -> StartingPoint:
    """Pretrained for a small dataset when the ImageNet weights are cached or downloadable now; else from scratch."""
    available, where = weights_status(PRETRAINED_BASE, (image_size, image_size, 3))
    small = training_images < SMALL_DATASET_IMAGES
    if available:
        reason = (f"{training_images:,} training photos is {'a small dataset' if small else 'enough to try from scratch'}"
                  f": {where}.")
        return StartingPoint(PRETRAINED if small else SCRATCH, True, reason)
    missing = ("Training from scratch: without those weights the network starts from random filters, so from these "
               "photos alone it must learn edges, textures and shapes as well as your classes, and it tends to learn the "
               "background and the light instead of the objects. Expect a lower test accuracy than a pretrained start "
               "would give.")
    title = APPLICATIONS[PRETRAINED_BASE]["title"]
    return StartingPoint(SCRATCH, False, f"The ImageNet weights for {title} are not on this server and cannot be "
                                         f"downloaded now, so a pretrained start is not possible here.\n\n{missing}",
                         teacher_fix=where)
