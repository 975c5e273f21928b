"""Look inside a network: hand-set filters, max pooling, feature maps, Grad-CAM and saliency.

`apply_filter` and `max_pool` are the lesson's numpy versions of what Conv2D and MaxPooling2D
do, so a student can compare them with the layers' own feature maps. `grad_cam` shows where a
CNN looked; `saliency_map` picks Grad-CAM for CNNs and input gradients for dense networks.
"""

import weakref
from dataclasses import dataclass

import numpy as np

from core.errors import CoreError
from core.guide import signed

PRESET_FILTERS = {
    "vertical edges": [[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]],
    "horizontal edges": [[-1, -1, -1], [0, 0, 0], [1, 1, 1]],
    "sobel vertical edges": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "sobel horizontal edges": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "edges (Laplacian)": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    "outline": [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]],
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "blur": [[1 / 9, 1 / 9, 1 / 9], [1 / 9, 1 / 9, 1 / 9], [1 / 9, 1 / 9, 1 / 9]],
    "emboss": [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]],
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
}


def apply_filter(image_2d, kernel, weight=1.0) -> np.ndarray:
    """Slide a k x k kernel over a grayscale image, multiply by weight and clip to 0..255.

    The same arithmetic as the lesson's double loop, vectorised: output[y, x] is the sum of
    kernel[i, j] * image[y + i, x + j], with kernel rows along image rows, exactly like Conv2D
    (cross-correlation, no flip). Like Conv2D with padding="valid" the output is k - 1 pixels
    smaller: a 28x28 image gives 26x26. Values are rounded to the nearest integer (the lesson's
    loop truncates, which makes 99.99999 from a blur come out as 99).
    """
    return np.clip(np.rint(filter_sums(image_2d, kernel) * weight), 0, 255).astype(np.uint8)


def filter_sums(image_2d, kernel) -> np.ndarray:
    """apply_filter's sums before rounding and clipping (float): where the kernel's pattern is strongest, even among
    the many pixels that clip to 255."""
    image = _as_2d(image_2d).astype(np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim != 2 or kernel.shape[0] != kernel.shape[1] or kernel.shape[0] % 2 == 0:
        raise CoreError(
            f"The kernel must be a square grid with an odd size, like 3x3. "
            f"Received: kernel of shape {kernel.shape}"
        )
    if kernel.shape[0] > min(image.shape):
        raise CoreError(
            f"The kernel ({kernel.shape[0]}x{kernel.shape[0]}) is larger than the image "
            f"({image.shape[0]}x{image.shape[1]}). Use a bigger image or a smaller kernel."
        )
    windows = np.lib.stride_tricks.sliding_window_view(image, kernel.shape)
    return np.einsum("yxij,ij->yx", windows, kernel)


def strongest_response(image_2d, kernel) -> tuple[int, int]:
    """(row, column) of the filtered image where the kernel's sum is largest."""
    sums = filter_sums(image_2d, kernel)
    row, column = np.unravel_index(np.argmax(sums), sums.shape)
    return int(row), int(column)


def flat_area_note(kernel) -> str:
    """What the filter gives on a flat area (every pixel the same brightness b): the weights' sum times b. Zero only
    for filters whose weights add up to 0, the edge finders; a blur's add up to 1 and give the area back."""
    total = float(np.round(np.sum(np.asarray(kernel, dtype=np.float64)), 6))
    if total == 0:
        return "Its weights add up to 0, so on a flat area (every pixel alike) the sum is 0: move the sliders there to see it."
    if abs(total - 1) <= 0.01:  # blur, sharpen, emboss, identity (the page's blur: nine weights of 0.111, to 3 decimals)
        return (f"Its weights add up to {'1' if total == 1 else f'{total:g}, almost 1'}, so on a flat area (every pixel "
                f"alike) the sum is {'' if total == 1 else 'almost '}that area's own brightness: it finds no pattern "
                "there, it passes the area on.")
    flat = round(100 * total, 6)
    clipped = f", drawn as {min(max(round(flat), 0), 255)} (clipped to 0…255)" if not 0 <= flat <= 255 else ""
    return (f"Its weights add up to {signed(total, 'g')}, so on a flat area (every pixel alike, brightness b) the sum "
            f"is {signed(total, 'g')} × b: a flat area of 100 gives {signed(flat, 'g')}{clipped}.")


def max_pool(image_2d, size=2) -> np.ndarray:
    """Keep the largest value of each size x size block, like MaxPooling2D: 26x26 -> 13x13."""
    image = _as_2d(image_2d)
    if not isinstance(size, (int, np.integer)) or size < 1 or size > min(image.shape):
        raise CoreError(
            f"size must be a whole number from 1 to the image's smallest side "
            f"({min(image.shape)}). Received: size={size!r}"
        )
    height, width = image.shape[0] // size * size, image.shape[1] // size * size
    blocks = image[:height, :width].reshape(height // size, size, width // size, size)
    return blocks.max(axis=(1, 3))


@dataclass(frozen=True)
class ConvolutionStep:
    """One output pixel of `apply_filter`, worked out: the window under the kernel, the products and their sum."""

    row: int  # the output pixel, which is also the window's top-left corner in the image
    column: int
    window: np.ndarray  # the k x k image pixels under the kernel
    kernel: np.ndarray
    products: np.ndarray  # window * kernel, element by element
    total: float  # their sum: the output before rounding and clipping
    shown: int  # what apply_filter draws: the sum rounded and clipped to 0..255


@dataclass(frozen=True)
class PoolingStep:
    """One output pixel of `max_pool`: the size x size block it keeps the largest value of."""

    row: int  # the output pixel; its block starts at (row * size, column * size) in the input
    column: int
    window: np.ndarray
    maximum: int


def convolution_step(image_2d, kernel, row: int, column: int) -> ConvolutionStep:
    """The arithmetic behind apply_filter(image_2d, kernel)[row, column]."""
    image = _as_2d(image_2d).astype(np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    size = kernel.shape[0]
    _check_position(row, column, image.shape[0] - size + 1, image.shape[1] - size + 1, "filtered image")
    window = image[row:row + size, column:column + size]
    products = window * kernel + 0.0  # + 0.0: a 0 × −1 reads 0, not −0
    total = float(products.sum())
    return ConvolutionStep(row, column, window, kernel, products, total, int(np.clip(np.rint(total), 0, 255)))


def pooling_step(feature_map_2d, row: int, column: int, size: int = 2) -> PoolingStep:
    """The arithmetic behind max_pool(feature_map_2d, size)[row, column]."""
    values = _as_2d(feature_map_2d)
    _check_position(row, column, values.shape[0] // size, values.shape[1] // size, "pooled image")
    window = values[row * size:(row + 1) * size, column * size:(column + 1) * size]
    return PoolingStep(row, column, window, int(window.max()))


def _check_position(row, column, height, width, what):
    if not (0 <= row < height and 0 <= column < width):
        raise CoreError(f"The {what} is {height} x {width} pixels, so a position runs from (0, 0) to "
                        f"({height - 1}, {width - 1}). Received: row={row}, column={column}")


def first_layer_filters(model) -> np.ndarray:
    """The learned kernels of the model's first Conv2D layer, shaped (k, k, in, out)."""
    from core.backend import keras

    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.Conv2D):
            return np.asarray(layer.get_weights()[0])
    raise CoreError(
        f"The model {model.name!r} has no Conv2D layer, so it has no filters to show (it is a "
        f"dense network). Pick a CNN, or use saliency_map to see what a dense network looks at."
    )


def feature_maps(model, image_hwc) -> list[tuple[str, np.ndarray]]:
    """Each convolution block's maps after its nonlinearity, and each pooling's, for one image, in order, each (H, W, C).

    core.activations says which tensor each one is (a batch-norm block is shown after its Activation layer, not
    straight out of Conv2D); a small CNN base nested in a transfer model is shown layer by layer.
    """
    from core.activations import layer_activations

    maps = [(activation.name, activation.values) for activation in layer_activations(model, image_hwc)
            if activation.values.ndim == 3]
    if not maps:
        raise CoreError(
            f"The model {model.name!r} has no convolution or pooling layers, so it makes no "
            f"feature maps (it is a dense network). Pick a CNN, or use saliency_map."
        )
    return maps


def layer_maps_for_images(model, images, layer_name: str) -> tuple[list[np.ndarray], np.ndarray]:
    """One layer's feature maps (H, W, C) for several images, and each channel's mean activation over all of them.

    A channel with a high mean responds to something these images share; one that stays at 0 never fires on them.
    """
    from core.activations import layer_activations_for_images

    maps = [dict((activation.name, activation.values) for activation in activations if activation.values.ndim == 3)
            [layer_name] for activations in layer_activations_for_images(model, images)]
    strengths = np.mean([layer_maps.mean(axis=(0, 1)) for layer_maps in maps], axis=0)
    return maps, strengths


def grad_cam(model, image_hwc, class_index=None) -> np.ndarray:
    """Grad-CAM heatmap (H, W) in [0, 1] at the input size, from the last convolution's maps (`_grad_cam_layer`).

    The class score is the head's logit (the Dense layer before its softmax or sigmoid), so a
    confident prediction does not flatten the gradients. class_index None explains the
    predicted class. Dense networks have no conv layer: use saliency_map instead.
    """
    layer = _grad_cam_layer(model)
    if layer is None:
        raise CoreError(
            f"Grad-CAM needs a Conv2D layer and the model {model.name!r} has none (it is a "
            f"dense network). Use saliency_map(model, image), which falls back to input gradients."
        )
    gradients, feature_map = _class_gradients(model, image_hwc, class_index, layer)
    channel_weights = gradients.mean(axis=(0, 1))
    heatmap = np.maximum(np.tensordot(feature_map, channel_weights, axes=([2], [0])), 0)
    height, width = model.input_shape[1:3]
    return _to_unit_range(_resize(heatmap, height, width))


def saliency_map(model, image_hwc, class_index=None) -> tuple[np.ndarray, str]:
    """Grad-CAM for models with a conv layer, input-gradient saliency otherwise; says which."""
    layer = _grad_cam_layer(model)
    if layer is not None:
        return grad_cam(model, image_hwc, class_index), f"Grad-CAM on {layer_words(layer)}"
    gradients, _ = _class_gradients(model, image_hwc, class_index, layer=None)
    saliency = np.abs(gradients).max(axis=-1)
    return _to_unit_range(saliency), "input-gradient saliency (the model has no Conv2D layer)"


def overlay(image_rgb_uint8, heatmap, alpha=0.5) -> np.ndarray:
    """Colour the heatmap (jet colour map), resize it to the photo and blend the two."""
    import cv2

    photo = np.asarray(image_rgb_uint8)
    if photo.dtype != np.uint8 or photo.ndim not in (2, 3) or (
        photo.ndim == 3 and photo.shape[2] not in (1, 3)
    ):
        raise CoreError(
            "Expected a uint8 photo of shape (H, W), (H, W, 1) or (H, W, 3). "
            f"Received: dtype {photo.dtype}, shape {photo.shape}"
        )
    if photo.ndim == 2 or photo.shape[2] == 1:
        photo = np.repeat(photo.reshape(photo.shape[0], photo.shape[1], 1), 3, axis=2)
    height, width = photo.shape[:2]
    heat = np.clip(_resize(np.asarray(heatmap, dtype=np.float32), height, width), 0, 1)
    colours = cv2.applyColorMap(np.rint(heat * 255).astype(np.uint8), cv2.COLORMAP_JET)
    colours = cv2.cvtColor(colours, cv2.COLOR_BGR2RGB)
    return cv2.addWeighted(np.ascontiguousarray(photo), 1 - alpha, colours, alpha, 0)


def _as_2d(image_2d):
    """A (H, W) array from (H, W) or (H, W, 1) input."""
    image = np.asarray(image_2d)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim != 2:
        raise CoreError(
            "Expected a grayscale image of shape (H, W) or (H, W, 1); for a colour image pass "
            f"one channel, e.g. image[:, :, 0]. Received: shape {image.shape}"
        )
    return image


def _all_layers(model):
    """Every layer, with the layers of nested models in place of the models."""
    from core.backend import keras

    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)
        else:
            yield layer


def layer_words(layer) -> str:
    """A layer as a student reads its name: a nested base (named base_<registry key>, or after its ImageNet network)
    is the pretrained base, not 'base_74fca0f682bfa905'."""
    from core.backend import keras

    return "the pretrained base's last maps" if isinstance(layer, keras.Model) else f"layer '{layer.name}'"


def _grad_cam_layer(model):
    """The last convolution's maps after their nonlinearity: the last Conv2D, or in a batch-norm CNN the Activation
    after its BatchNormalization (the Conv2D's own output comes before both, as Inside the network explains); or the
    last nested base whose output is a feature map."""
    from core.backend import keras

    for layer in reversed(model.layers):
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Activation, keras.Model)) and len(layer.output.shape) == 4:
            return layer
    return None


def _output_in(model, layer):
    """The layer's output tensor in the model's graph.

    A nested model's `output` belongs to its own graph, so take the output of the node where
    the outer model calls it (Keras keeps no public accessor for that).
    """
    from core.backend import keras

    if not isinstance(layer, keras.Model):
        return layer.output
    nodes_of_model = [node for nodes in model._nodes_by_depth.values() for node in nodes]
    calls = [node for node in layer._inbound_nodes if any(node is own for own in nodes_of_model)]
    return (calls or layer._inbound_nodes)[-1].output_tensors[0]


def _model_input(model, image_hwc):
    """One image as a float32 batch of one, checked against the model's input shape."""
    image = np.asarray(image_hwc)
    if image.ndim == 2:
        image = image[:, :, np.newaxis]
    expected = tuple(model.input_shape[1:])
    if image.ndim != 3 or any(want not in (None, got) for want, got in zip(expected, image.shape)):
        raise CoreError(
            f"The image has shape {image.shape} but the model expects {expected}. Prepare it "
            f"with core.imaging.prepare_image(image, input_shape={expected})."
        )
    return image[np.newaxis].astype(np.float32)


def _class_gradients(model, image_hwc, class_index, layer):
    """Gradient of one class's score with respect to a layer's output (the input when layer is None)."""
    from core.backend import tf

    x = tf.convert_to_tensor(_model_input(model, image_hwc))
    index = -1 if class_index is None else _checked_class_index(class_index, int(model.output.shape[-1]))
    gradients, watched = _gradient_function(model, layer)(x, tf.constant(index, tf.int32))
    return np.asarray(gradients)[0], np.asarray(watched)[0]


_GRADIENT_FUNCTIONS = weakref.WeakKeyDictionary()  # model -> {layer name, or None for the input: function}


def _gradient_function(model, layer):
    """A compiled (image batch, class index or -1 for the predicted class) -> (gradients, watched values).

    Made once per model and layer: the page calls it for every upload, and the same work run eagerly,
    layer by layer from Python, takes about 15 times as long (31 ms against 2 ms for the fast CNN).
    """
    from core.backend import keras, tf

    functions = _GRADIENT_FUNCTIONS.setdefault(model, {})
    name = None if layer is None else layer.name
    if name in functions:
        return functions[name]
    head = model.layers[-1]
    activation_name = getattr(getattr(head, "activation", None), "__name__", "")
    use_logits = isinstance(head, keras.layers.Dense) and activation_name in ("softmax", "sigmoid")
    head_tensor = head.input if use_logits else model.output
    watched_tensors = [_output_in(model, layer)] if layer is not None else []
    extractor = keras.Model(model.input, watched_tensors + [head_tensor])

    @tf.function(reduce_retracing=True)
    def gradients(x, class_index):
        with tf.GradientTape() as tape:
            tape.watch(x)
            outputs = extractor(x, training=False)
            outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
            watched, head_values = (outputs[0] if layer is not None else x), outputs[-1]
            scores = tf.matmul(head_values, head.kernel) + head.bias if use_logits else head_values
            score = _class_score(scores, class_index, use_logits)
        return tape.gradient(score, watched), watched

    functions[name] = gradients
    return gradients


def _checked_class_index(class_index, num_outputs) -> int:
    """class_index as an int, or a CoreError naming the valid range (one sigmoid output means 2 classes)."""
    num_classes = 2 if num_outputs == 1 else num_outputs
    if not isinstance(class_index, (int, np.integer)) or not 0 <= class_index < num_classes:
        raise CoreError(
            f"class_index must be a class number from 0 to {num_classes - 1}, or None for the "
            f"predicted class. Received: class_index={class_index!r}"
        )
    return int(class_index)


def _class_score(scores, class_index, are_logits):
    """The score of class_index (a tensor; -1 picks the predicted class), for softmax or sigmoid heads."""
    from core.backend import tf

    if scores.shape[-1] > 1:
        predicted = tf.argmax(scores[0], output_type=tf.int32)
        return tf.gather(scores, tf.where(class_index < 0, predicted, class_index), axis=1)
    predicted = tf.cast(scores[0, 0] > (0.0 if are_logits else 0.5), tf.int32)
    positive = scores[:, 0]  # the sigmoid unit scores class 1; class 0's score is its opposite
    negative = -scores[:, 0] if are_logits else 1.0 - scores[:, 0]
    return tf.where(tf.where(class_index < 0, predicted, class_index) == 1, positive, negative)


def _resize(array_2d, height, width):
    """Bilinear resize of a float map to height x width."""
    import cv2

    array = np.asarray(array_2d, dtype=np.float32)
    if array.shape == (height, width):
        return array
    return cv2.resize(array, (width, height), interpolation=cv2.INTER_LINEAR)


def _to_unit_range(array):
    """Scale a non-negative map so that its maximum is 1 (all zeros stays all zeros)."""
    array = np.asarray(array, dtype=np.float32)
    peak = float(array.max(initial=0.0))
    return array / peak if peak > 0 else np.zeros_like(array)
