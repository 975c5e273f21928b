"""Prediction on uploaded photos: decode, prepare exactly as the model expects, classify, explain."""

from dataclasses import dataclass, field

import numpy as np

from core.errors import ImageError
from core.imaging import DISPLAY_SIDE, prepare_image, read_image

LIGHT_ON_DARK_DATASETS = ("fashion_mnist", "mnist")  # white objects on black, like the originals


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

    @property
    def top_class(self) -> str:
        return self.class_names[int(np.argmax(self.probabilities))]

    @property
    def top_probability(self) -> float:
        return float(np.max(self.probabilities))


def predict_file(model, card, data: bytes, filename: str, invert="auto", with_saliency: bool = True) -> Prediction:
    """Classify one uploaded file for the model that `card` (a ModelCard) describes; a bad file gives a
    Prediction with `error` set, never an exception."""
    try:
        image = read_image(data, filename)
    except ImageError as error:
        return Prediction(filename, error=str(error))
    input_shape = card.input_shape
    prepared = prepare_image(image, input_shape, invert=invert, light_on_dark=card.dataset.name in LIGHT_ON_DARK_DATASETS)
    class_names = card.class_names
    probabilities, sigmoid_output = class_probabilities(model, prepared.array)
    photo = display_size(image)
    prediction = Prediction(filename, photo=np.asarray(photo), model_input=prepared.array, probabilities=probabilities,
                            class_names=class_names, sigmoid_output=sigmoid_output, notes=prepared.notes)
    if with_saliency:
        from core.inspection import overlay, saliency_map

        heatmap, prediction.saliency_method = saliency_map(model, prepared.array, int(np.argmax(probabilities)))
        prediction.saliency_overlay = overlay(display_region(np.asarray(photo.convert("RGB")), input_shape), heatmap)
        prediction.saliency_flat = float(np.ptp(heatmap)) < 1e-6
    return prediction


def class_probabilities(model, model_input: np.ndarray) -> tuple[np.ndarray, float | None]:
    """Probabilities per class; for a one-unit sigmoid head also the raw sigmoid output."""
    # predict_on_batch runs Keras' compiled predict function: 2 ms for the fast CNN, against 17 ms for an eager model(x)
    output = np.asarray(model.predict_on_batch(model_input[np.newaxis].astype("float32")))[0]
    if output.shape[-1] == 1:
        probability = float(output[0])
        return np.array([1 - probability, probability]), probability
    return output.astype("float64"), None


def display_size(image):
    """The image at most DISPLAY_SIDE pixels a side: what a page shows (the model's input comes from the full image).

    A browser shows a photo at most about that wide; a larger one only costs encoding and transfer time.
    """
    if max(image.size) <= DISPLAY_SIDE:
        return image
    smaller = image.copy()
    smaller.thumbnail((DISPLAY_SIDE, DISPLAY_SIDE))
    return smaller


def display_region(photo: np.ndarray, input_shape) -> np.ndarray:
    """The photo padded to the model's aspect ratio, so the heatmap lines up with what the model saw."""
    height, width = input_shape[:2]
    photo_height, photo_width = photo.shape[:2]
    scale = max(photo_height / height, photo_width / width)
    canvas_height, canvas_width = round(height * scale), round(width * scale)
    border = np.concatenate([photo[0], photo[-1], photo[:, 0], photo[:, -1]])
    canvas = np.empty((canvas_height, canvas_width, 3), dtype=np.uint8)
    canvas[:] = np.median(border, axis=0).astype(np.uint8)
    top, left = (canvas_height - photo_height) // 2, (canvas_width - photo_width) // 2
    canvas[top:top + photo_height, left:left + photo_width] = photo
    return canvas
