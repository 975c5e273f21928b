"""Prediction on photos (uploads, webcam shots) and drawings: prepare exactly as the model was trained, classify, explain.

A photo becomes the model's input through `imaging.photo_to_input` with the method the model's card records: for a
model trained on imported photos, the same function and method its training photos went through.
"""

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from core.errors import ImageError
from core.imaging import CROP, DISPLAY_SIDE, METHOD_TEXT, PAD, STRETCH, drawing_to_image, photo_to_input, prepare_image
from core.outputs import OutputKind, SigmoidSteps, SoftmaxSteps, output_kind, output_steps, raw_outputs

LIGHT_ON_DARK_DATASETS = ("fashion_mnist", "mnist")  # white objects on black, like the originals
DRAWING_NAME = "your drawing"


@dataclass
class Prediction:
    """What a model thinks of one uploaded file (or why the file could not be used)."""

    filename: str
    error: str | None = None
    photo: np.ndarray | None = None  # the upright upload, RGB or gray, at most DISPLAY_SIDE pixels a side
    model_input: np.ndarray | None = None  # (H, W, C) uint8: exactly what the model saw
    probabilities: np.ndarray | None = None  # one per class
    class_names: list[str] = field(default_factory=list)
    sigmoid_output: float | None = None  # binary models: P(class_names[1])
    saliency_overlay: np.ndarray | None = None
    saliency_method: str | None = None
    saliency_flat: bool = False  # the map has no peak: nothing in the image raised the class score
    notes: list[str] = field(default_factory=list)
    output_kind: OutputKind | None = None  # how to read the model's outputs
    raw_outputs: np.ndarray | None = None  # the last layer's output vector, as it is
    output_steps: SoftmaxSteps | SigmoidSteps | None = None  # the softmax's (sigmoid's) arithmetic, when it has one

    @property
    def shows_probabilities(self) -> bool:
        """Whether the outputs are one probability per class, all of them numbers (else: raw scores, and why)."""
        return bool(self.output_kind and self.output_kind.are_probabilities and np.isfinite(self.probabilities).all())

    @property
    def top_class(self) -> str:
        return self.class_names[int(np.argmax(self.probabilities))]

    @property
    def top_probability(self) -> float:
        return float(np.max(self.probabilities))

    @property
    def binary_explanation(self) -> str | None:
        """For a one-unit sigmoid head: both class probabilities, p and 1 - p, named by class; else None."""
        if self.sigmoid_output is None:
            return None
        first, second = self.class_names
        p = self.sigmoid_output
        verdict = second if p >= 0.5 else first
        return (f"A binary model has **one** output neuron with a sigmoid: p = {p:.3f} is the probability of "
                f"**{second}** (label 1). The probability of **{first}** (label 0) is 1 − p = {1 - p:.3f}. "
                f"p is {'at least' if p >= 0.5 else 'below'} 0.5, so the answer is **{verdict}**.")


def predict_file(model, card, data: bytes, filename: str, invert="auto", with_saliency: bool = True) -> Prediction:
    """Classify one uploaded file for the model that `card` (a ModelCard) describes; a bad file gives a
    Prediction with `error` set, never an exception."""
    try:
        prepared, image = photo_to_input(data, filename, card.input_shape, method=card.preprocessing, invert=invert,
                                         light_on_dark=card.dataset.name in LIGHT_ON_DARK_DATASETS)
    except ImageError as error:
        return Prediction(filename, error=str(error))
    return _classify(model, card, filename, image, prepared, with_saliency)


def predict_drawing(model, card, rgba: np.ndarray, invert="auto", with_saliency: bool = False) -> Prediction:
    """Classify a drawing pad's RGBA pixels: cropped to the ink and centred, then prepared like any photo."""
    image = drawing_to_image(rgba)
    prepared = prepare_image(image, card.input_shape, invert=invert, method=card.preprocessing,
                             light_on_dark=card.dataset.name in LIGHT_ON_DARK_DATASETS)
    return _classify(model, card, DRAWING_NAME, image, prepared, with_saliency)


def preprocessing_text(card) -> str:
    """How a photo becomes this model's input, in words, from its card."""
    return METHOD_TEXT.get(card.preprocessing, card.preprocessing)


def _classify(model, card, filename, image, prepared, with_saliency) -> Prediction:
    """Run the model on a prepared input and collect what the page shows."""
    input_shape = card.input_shape
    class_names = card.class_names
    outputs = raw_outputs(model, prepared.array)
    probabilities, sigmoid_output = probabilities_of(outputs)
    photo = display_size(image)
    prediction = Prediction(filename, photo=np.asarray(photo), model_input=prepared.array, probabilities=probabilities,
                            class_names=class_names, sigmoid_output=sigmoid_output, notes=prepared.notes,
                            output_kind=output_kind(model, len(class_names)), raw_outputs=outputs)
    if not prediction.shows_probabilities:
        return prediction  # raw scores: no arithmetic of probabilities, nor where the model looked for a class
    prediction.output_steps = output_steps(model, prepared.array)
    if with_saliency:
        from core.inspection import overlay, saliency_map

        heatmap, prediction.saliency_method = saliency_map(model, prepared.array, int(np.argmax(probabilities)))
        region = display_region(np.asarray(photo.convert("RGB")), input_shape, card.preprocessing)
        prediction.saliency_overlay = overlay(region, heatmap)
        prediction.saliency_flat = float(np.ptp(heatmap)) < 1e-6
    return prediction


def class_probabilities(model, model_input: np.ndarray) -> tuple[np.ndarray, float | None]:
    """Probabilities per class; for a one-unit sigmoid head also the raw sigmoid output."""
    return probabilities_of(raw_outputs(model, model_input))


def probabilities_of(outputs: np.ndarray) -> tuple[np.ndarray, float | None]:
    """A model's output vector as probabilities per class: a one-unit sigmoid's p becomes (1 - p, p), and p is kept."""
    if outputs.shape[-1] == 1:
        probability = float(outputs[0])
        return np.array([1 - probability, probability]), probability
    return outputs, None


def display_size(image):
    """The image at most DISPLAY_SIDE pixels a side: what a page shows (the model's input comes from the full image).

    A browser shows a photo at most about that wide; a larger one only costs encoding and transfer time.
    """
    if max(image.size) <= DISPLAY_SIDE:
        return image
    smaller = image.copy()
    smaller.thumbnail((DISPLAY_SIDE, DISPLAY_SIDE))
    return smaller


def display_region(photo: np.ndarray, input_shape, method: str = PAD) -> np.ndarray:
    """The part of the photo the model saw, at the model's aspect ratio, so the heatmap lines up with it.

    Padded like the model's input (pad), cut like it (crop), or the whole photo (stretch: the model saw all of it).
    The padded canvas is at most DISPLAY_SIDE pixels a side, whatever the model's aspect ratio.
    """
    height, width = input_shape[:2]
    photo_height, photo_width = photo.shape[:2]
    if method == STRETCH:
        return photo
    if method == CROP:
        crop_height = min(photo_height, round(photo_width * height / width))
        crop_width = min(photo_width, round(photo_height * width / height))
        top, left = (photo_height - crop_height) // 2, (photo_width - crop_width) // 2
        return photo[top:top + crop_height, left:left + crop_width]
    scale = max(photo_height / height, photo_width / width)
    shrink = DISPLAY_SIDE / max(height * scale, width * scale)
    if shrink < 1:  # a model much wider than tall (or the reverse): bound the canvas by pixels, not by its aspect ratio
        photo_width, photo_height = max(1, round(photo_width * shrink)), max(1, round(photo_height * shrink))
        photo = np.asarray(Image.fromarray(photo).resize((photo_width, photo_height), Image.Resampling.BOX))
        scale = max(photo_height / height, photo_width / width)
    canvas_height, canvas_width = max(photo_height, round(height * scale)), max(photo_width, round(width * scale))
    border = np.concatenate([photo[0], photo[-1], photo[:, 0], photo[:, -1]])
    canvas = np.empty((canvas_height, canvas_width, 3), dtype=np.uint8)
    canvas[:] = np.median(border, axis=0).astype(np.uint8)
    top, left = (canvas_height - photo_height) // 2, (canvas_width - photo_width) // 2
    canvas[top:top + photo_height, left:left + photo_width] = photo
    return canvas
