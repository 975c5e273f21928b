"""Tests for core.inspection: the lesson's filters and pooling, feature maps, Grad-CAM and saliency."""

import numpy as np
import pytest

from core.errors import CoreError
from core.inspection import (
    PRESET_FILTERS,
    apply_filter,
    feature_maps,
    filter_sums,
    first_layer_filters,
    flat_area_note,
    grad_cam,
    max_pool,
    overlay,
    saliency_map,
)
from tests.helpers_fmnist import fit_briefly, load_fashion_mnist, small_cnn, small_dnn

CANVAS_SIDE = 56
CANVAS_CLASSES = [0, 1, 8, 9]  # T-shirt/top, Trouser, Bag, Ankle boot: told apart by the item itself


def lesson_loop(image, kernel, weight=1.0):
    """The classic lesson's double loop, written out pixel by pixel (valid positions only)."""
    size = len(kernel)
    height, width = image.shape
    output = np.zeros((height - size + 1, width - size + 1), dtype=np.uint8)
    for y in range(height - size + 1):
        for x in range(width - size + 1):
            total = 0.0
            for i in range(size):
                for j in range(size):
                    total = total + float(image[y + i, x + j]) * kernel[i][j]
            total = total * weight
            if total < 0:
                total = 0
            if total > 255:
                total = 255
            output[y, x] = round(total)  # the lesson truncates; rounding is robust to float error
    return output


def on_black_canvas(images, seed):
    """Paste each 28x28 item at a random place on a black canvas; also return the boxes."""
    rng = np.random.default_rng(seed)
    canvases = np.zeros((len(images), CANVAS_SIDE, CANVAS_SIDE, 1), dtype=np.uint8)
    boxes = []
    for index, image in enumerate(images):
        top, left = rng.integers(0, CANVAS_SIDE - 28 + 1, size=2)
        canvases[index, top : top + 28, left : left + 28] = image
        boxes.append((top, left))
    return canvases, boxes


@pytest.fixture(scope="module")
def trained_cnn():
    """The same network whatever ran before: its starting weights drawn from a seed. Unseeded, one order of the test
    files gave a model whose Grad-CAM of the test image is flat (Predict says so for such a model)."""
    from tensorflow import keras

    keras.utils.set_random_seed(0)
    x_train, y_train = load_fashion_mnist("train", 600)
    return fit_briefly(small_cnn(), x_train, y_train, epochs=2)


@pytest.fixture(scope="module")
def fashion_image():
    x_test, _ = load_fashion_mnist("test", 1)
    return x_test[0]


# --- The lesson: filters and pooling ---------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PRESET_FILTERS))
def test_apply_filter_matches_the_lesson_loop(name, fashion_image):
    image = fashion_image[:12, 5:15, 0]
    expected = lesson_loop(image, PRESET_FILTERS[name])
    assert np.array_equal(apply_filter(image, PRESET_FILTERS[name]), expected)


def test_apply_filter_with_weight_and_random_kernel():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, size=(9, 11), dtype=np.uint8)
    kernel = rng.integers(-3, 4, size=(3, 3)).tolist()
    result = apply_filter(image, kernel, weight=0.5)
    assert result.shape == (7, 9) and result.dtype == np.uint8
    assert np.array_equal(result, lesson_loop(image, kernel, weight=0.5))


def test_apply_filter_computes_what_conv2d_computes(fashion_image):
    from tensorflow import keras

    kernel = np.array(PRESET_FILTERS["sobel horizontal edges"], dtype=np.float32)
    conv = keras.layers.Conv2D(1, 3, use_bias=False, kernel_initializer=keras.initializers.Constant(kernel[:, :, None, None]))
    conv_output = np.asarray(conv(fashion_image[np.newaxis].astype(np.float32)))[0, :, :, 0]
    assert np.array_equal(apply_filter(fashion_image, kernel), np.clip(conv_output, 0, 255).astype(np.uint8))
    assert not np.array_equal(apply_filter(fashion_image, kernel.T), apply_filter(fashion_image, kernel))


def test_vertical_edges_filter_finds_a_vertical_edge():
    image = np.zeros((10, 10), dtype=np.uint8)
    image[:, 5:] = 200  # dark left half, bright right half: one vertical edge
    response = apply_filter(image, PRESET_FILTERS["vertical edges"])
    assert response.shape == (8, 8)
    assert np.all(response[:, 3:5] == 255) and np.all(response[:, :3] == 0) and np.all(response[:, 5:] == 0)
    assert np.all(apply_filter(image, PRESET_FILTERS["horizontal edges"]) == 0)


@pytest.mark.parametrize("name", PRESET_FILTERS)
def test_flat_area_note_says_what_each_filter_gives_on_a_flat_area(name):
    """Convolutions said "move them to a flat area to see a sum near 0" for every filter: a blur there gave 186."""
    kernel = PRESET_FILTERS[name]
    flat = np.full((6, 6), 100.0)
    given = float(np.unique(np.round(filter_sums(flat, kernel), 6))[0])  # one value: the area is flat
    note = flat_area_note(kernel)
    if given == 0:
        assert "the sum is 0" in note
    elif given == 100:
        assert "the sum is that area's own brightness" in note and "near 0" not in note
    else:
        assert f"a flat area of 100 gives {given:g}" in note


def test_flat_area_note_for_a_hand_made_filter():
    assert "the sum is 0:" not in flat_area_note([[0.1, 0, 0], [0, 0, 0], [0, 0, 0]])
    assert "a flat area of 100 gives 10." in flat_area_note([[0.1, 0, 0], [0, 0, 0], [0, 0, 0]])
    assert "add up to 0.999, almost 1" in flat_area_note(np.full((3, 3), 0.111))  # the page's blur, to three decimals
    assert "add up to −9" in flat_area_note(-np.ones((3, 3)))  # a true minus, as the page writes numbers
    assert "gives −900, drawn as 0 (clipped to 0…255)" in flat_area_note(-np.ones((3, 3)))
    assert "gives 900, drawn as 255 (clipped to 0…255)" in flat_area_note(np.ones((3, 3)))


def test_apply_filter_refuses_bad_input():
    with pytest.raises(CoreError, match=r"odd size.*Received: kernel of shape \(2, 2\)"):
        apply_filter(np.zeros((5, 5)), [[1, 0], [0, 1]])
    with pytest.raises(CoreError, match=r"larger than the image"):
        apply_filter(np.zeros((2, 2)), PRESET_FILTERS["blur"])
    with pytest.raises(CoreError, match=r"pass one channel.*Received: shape \(5, 5, 3\)"):
        apply_filter(np.zeros((5, 5, 3)), PRESET_FILTERS["blur"])


def test_max_pool_halves_the_size_and_keeps_block_maxima():
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, size=(26, 26), dtype=np.uint8)
    pooled = max_pool(image)
    assert pooled.shape == (13, 13) and pooled.dtype == np.uint8
    expected = [[image[2 * y : 2 * y + 2, 2 * x : 2 * x + 2].max() for x in range(13)] for y in range(13)]
    assert pooled.tolist() == expected
    assert max_pool(image[:11, :11, np.newaxis]).shape == (5, 5)  # odd sizes round down, like Keras
    with pytest.raises(CoreError, match="Received: size=0"):
        max_pool(image, size=0)


# --- Learned filters and feature maps ---------------------------------------------------------------


def test_first_layer_filters_are_the_conv_1_kernels(trained_cnn):
    filters = first_layer_filters(trained_cnn)
    assert filters.shape == (3, 3, 1, 8)
    assert np.array_equal(filters, trained_cnn.get_layer("conv_1").get_weights()[0])
    with pytest.raises(CoreError, match="no Conv2D layer.*dense network"):
        first_layer_filters(small_dnn())


def test_feature_maps_follow_the_model_summary(trained_cnn, fashion_image):
    maps = feature_maps(trained_cnn, fashion_image)
    assert [name for name, _ in maps] == ["conv_1", "pool_1", "conv_2", "pool_2"]
    for name, values in maps:
        assert values.shape == tuple(trained_cnn.get_layer(name).output.shape[1:]), name
    assert [values.shape for _, values in maps] == [(26, 26, 8), (13, 13, 8), (11, 11, 16), (5, 5, 16)]


def test_feature_maps_are_the_lessons_convolution_and_pooling(trained_cnn, fashion_image):
    maps = dict(feature_maps(trained_cnn, fashion_image))
    kernel, bias = trained_cnn.get_layer("conv_1").get_weights()
    windows = np.lib.stride_tricks.sliding_window_view(fashion_image[:, :, 0] / 255.0, (3, 3))
    expected_conv = np.maximum(np.einsum("yxij,ijk->yxk", windows, kernel[:, :, 0, :]) + bias, 0)
    assert np.allclose(maps["conv_1"], expected_conv, atol=1e-5)
    for channel in range(8):
        assert np.allclose(maps["pool_1"][:, :, channel], max_pool(maps["conv_1"][:, :, channel]))


def test_feature_maps_refuse_dense_networks_and_wrong_shapes(trained_cnn):
    with pytest.raises(CoreError, match="no convolution or pooling layers"):
        feature_maps(small_dnn(), np.zeros((28, 28, 1), dtype=np.uint8))
    with pytest.raises(CoreError, match=r"shape \(32, 32, 3\).*expects \(28, 28, 1\).*prepare_image"):
        feature_maps(trained_cnn, np.zeros((32, 32, 3), dtype=np.uint8))


# --- Grad-CAM and saliency ---------------------------------------------------------------------------


def test_grad_cam_looks_at_the_object():
    """Items pasted at random places on a black canvas: the heatmap must follow the item.

    Measured over 3 training seeds: inside/outside ratio 4 to 34, inside wins on 96-100% of the
    images; the same heatmaps transposed win on at most 75%, flipped on at most 33%.
    """
    x_train, y_train = load_fashion_mnist("train", 800, classes=CANVAS_CLASSES)
    x_test, y_test = load_fashion_mnist("test", 24, classes=CANVAS_CLASSES)
    canvases_train, _ = on_black_canvas(x_train, seed=0)
    canvases_test, boxes = on_black_canvas(x_test, seed=1)
    model = fit_briefly(small_cnn((CANVAS_SIDE, CANVAS_SIDE, 1), len(CANVAS_CLASSES)), canvases_train, y_train, epochs=3)
    inside_means, outside_means = [], []
    for canvas, (top, left) in zip(canvases_test, boxes):
        heatmap = grad_cam(model, canvas)
        assert heatmap.shape == (CANVAS_SIDE, CANVAS_SIDE)
        inside = np.zeros(heatmap.shape, dtype=bool)
        inside[top : top + 28, left : left + 28] = True
        inside_means.append(heatmap[inside].mean())
        outside_means.append(heatmap[~inside].mean())
    inside_mean, outside_mean = np.mean(inside_means), np.mean(outside_means)
    wins = np.mean(np.array(inside_means) > np.array(outside_means))
    print(f"\nGrad-CAM mean inside the item {inside_mean:.3f}, outside {outside_mean:.3f}, "
          f"inside wins on {wins:.0%} of {len(boxes)} images")
    assert inside_mean > 3 * outside_mean
    assert wins >= 0.9


def test_grad_cam_range_and_class_choice(trained_cnn, fashion_image):
    heatmap = grad_cam(trained_cnn, fashion_image)
    assert heatmap.shape == (28, 28) and heatmap.dtype == np.float32
    assert heatmap.min() >= 0.0 and heatmap.max() == pytest.approx(1.0)
    other_class = grad_cam(trained_cnn, fashion_image, class_index=3)
    assert other_class.shape == (28, 28) and not np.allclose(other_class, heatmap)
    with pytest.raises(CoreError, match="from 0 to 9.*Received: class_index=10"):
        grad_cam(trained_cnn, fashion_image, class_index=10)
    with pytest.raises(CoreError, match="Use saliency_map"):
        grad_cam(small_dnn(), fashion_image)


def test_grad_cam_works_for_a_binary_sigmoid_model(fashion_image):
    from tensorflow import keras

    keras.utils.set_random_seed(3)
    model = small_cnn(num_classes=2)
    for class_index in (None, 0, 1):
        heatmap = grad_cam(model, fashion_image, class_index=class_index)
        assert heatmap.shape == (28, 28) and 0.0 <= heatmap.min() and heatmap.max() <= 1.0
    with pytest.raises(CoreError, match="from 0 to 1"):
        grad_cam(model, fashion_image, class_index=2)


def test_saliency_map_picks_the_method(trained_cnn, fashion_image):
    cam, method = saliency_map(trained_cnn, fashion_image)
    assert method == "Grad-CAM on layer 'conv_2'"
    assert np.array_equal(cam, grad_cam(trained_cnn, fashion_image))
    x_train, y_train = load_fashion_mnist("train", 300)
    dnn = fit_briefly(small_dnn(), x_train, y_train, epochs=1)
    saliency, method = saliency_map(dnn, fashion_image)
    assert method.startswith("input-gradient saliency")
    assert saliency.shape == (28, 28) and saliency.max() == pytest.approx(1.0) and saliency.min() >= 0.0
    predicted = int(np.argmax(dnn.predict(fashion_image[np.newaxis], verbose=0)))
    other_class, _ = saliency_map(dnn, fashion_image, class_index=(predicted + 1) % 10)
    assert other_class.shape == (28, 28) and not np.allclose(other_class, saliency)
    assert np.array_equal(saliency_map(dnn, fashion_image, class_index=predicted)[0], saliency)


def test_overlay_blends_a_colour_map_at_the_photo_size():
    import cv2

    photo = np.full((60, 90, 3), 200, dtype=np.uint8)
    heatmap = np.zeros((28, 28), dtype=np.float32)
    heatmap[:, 14:] = 1.0
    blended = overlay(photo, heatmap)
    assert blended.shape == (60, 90, 3) and blended.dtype == np.uint8
    cold = cv2.applyColorMap(np.array([[0]], dtype=np.uint8), cv2.COLORMAP_JET)[0, 0, ::-1].astype(int)
    hot = cv2.applyColorMap(np.array([[255]], dtype=np.uint8), cv2.COLORMAP_JET)[0, 0, ::-1].astype(int)
    assert np.abs(blended[30, 5].astype(int) - (200 + cold) / 2).max() <= 1  # left: cold colour, 50/50
    assert np.abs(blended[30, 85].astype(int) - (200 + hot) / 2).max() <= 1  # right: hot colour
    gray = overlay(np.full((20, 20), 50, dtype=np.uint8), np.ones((5, 5)))
    assert gray.shape == (20, 20, 3)
    with pytest.raises(CoreError, match="dtype float64"):
        overlay(np.zeros((4, 4, 3)), heatmap)


def test_a_phone_photo_comes_back_at_display_size_and_the_model_sees_all_of_it(trained_cnn):
    import io

    from PIL import Image, ImageDraw

    from core.card import DatasetFacts, ModelCard, ParameterCounts
    from core.imaging import DISPLAY_SIDE, prepare_image
    from core.prediction import predict_file

    photo = Image.new("RGB", (4000, 3000), (225, 220, 210))  # a 12-megapixel phone photo: a dark bag on a table
    ImageDraw.Draw(photo).rectangle((1200, 700, 2800, 2300), fill=(30, 25, 25))
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=90)
    card = ModelCard(key="0123456789abcdef", title="a CNN", config=None, created="", layers=(),
                     params=ParameterCounts(0, 0, 0),
                     dataset=DatasetFacts(tuple(str(i) for i in range(10)), (28, 28, 1), name="fashion_mnist"))
    prediction = predict_file(trained_cnn, card, buffer.getvalue(), "bag.jpg")
    assert prediction.error is None
    assert prediction.photo.shape == (768, 1024, 3)  # 4:3 kept, at most DISPLAY_SIDE a side
    assert prediction.saliency_overlay.shape == (1024, 1024, 3)  # the photo padded square, as the model saw it
    full_size = prepare_image(photo, (28, 28, 1), light_on_dark=True).array
    assert np.abs(prediction.model_input.astype(int) - full_size.astype(int)).mean() < 2
    assert max(prediction.photo.shape) <= DISPLAY_SIDE


def test_a_flat_grad_cam_is_said_to_be_flat(trained_cnn, fashion_image):
    """Grad-CAM keeps only what raises the class's score (a ReLU of the weighted maps). A head that weighs every
    channel of the last maps against the class it predicts leaves nothing: Predict then says the map is flat, and does
    not show an empty overlay as if the model had looked nowhere."""
    from tensorflow import keras

    import io

    from PIL import Image

    from core.card import DatasetFacts, ModelCard, ParameterCounts
    from core.prediction import predict_file

    card = ModelCard(key="0123456789abcdef", title="a CNN", config=None, created="", layers=(),
                     params=ParameterCounts(0, 0, 0),
                     dataset=DatasetFacts(tuple(str(i) for i in range(10)), (28, 28, 1), name="fashion_mnist"))
    buffer = io.BytesIO()
    Image.fromarray(fashion_image[..., 0]).save(buffer, "PNG")
    photo = buffer.getvalue()
    assert not predict_file(trained_cnn, card, photo, "shoe.png").saliency_flat  # the seeded CNN has a peak
    against = keras.models.clone_model(trained_cnn)
    against.set_weights(trained_cnn.get_weights())
    head = against.layers[-1]
    kernel, bias = head.get_weights()
    head.set_weights([-np.abs(kernel), np.where(np.arange(len(bias)) == 4, 50.0, 0.0)])  # class 4, against every map
    prediction = predict_file(against, card, photo, "shoe.png")
    assert prediction.top_class == "4" and prediction.saliency_flat
    assert not grad_cam(against, fashion_image).any()


def test_nested_base_model_like_a_transfer_model(fashion_image):
    from tensorflow import keras
    from tensorflow.keras import layers

    base_input = keras.Input(shape=(32, 32, 3))
    x = layers.Conv2D(4, 3, activation="relu", name="base_conv_1")(base_input)
    x = layers.MaxPooling2D(name="base_pool_1")(x)
    x = layers.Conv2D(8, 3, activation="relu", name="base_conv_2")(x)
    base = keras.Model(base_input, x, name="base")

    def transfer_model(num_classes):
        inputs = keras.Input(shape=(28, 28, 1))
        x = layers.Rescaling(1 / 255, name="rescale")(inputs)
        x = layers.Resizing(32, 32)(x)
        x = layers.Concatenate()([x, x, x])
        x = base(x)
        x = layers.GlobalAveragePooling2D()(x)
        return keras.Model(inputs, layers.Dense(num_classes, activation="softmax")(x))

    for model in (transfer_model(3), transfer_model(5)):  # one base shared by two models
        maps = feature_maps(model, fashion_image)  # a small nested base is shown layer by layer
        assert [(name, values.shape) for name, values in maps] == [
            ("base_conv_1", (30, 30, 4)), ("base_pool_1", (15, 15, 4)), ("base_conv_2", (13, 13, 8))]
        heatmap, method = saliency_map(model, fashion_image)
        assert method == "Grad-CAM on the pretrained base's last maps" and heatmap.shape == (28, 28)
        assert first_layer_filters(model).shape == (3, 3, 3, 4)


def test_one_convolution_step_and_one_pooling_step_are_the_arrays_own_pixels():
    from core.inspection import convolution_step, pooling_step

    image = np.arange(36, dtype=np.uint8).reshape(6, 6) * 7
    kernel = PRESET_FILTERS["sobel vertical edges"]
    filtered = apply_filter(image, kernel)
    for row in range(4):
        for column in range(4):
            step = convolution_step(image, kernel, row, column)
            assert step.shown == filtered[row, column]
            assert step.total == pytest.approx(float((image[row:row + 3, column:column + 3] * np.array(kernel)).sum()))
    pooled = max_pool(filtered, 2)
    assert pooling_step(filtered, 1, 0).maximum == pooled[1, 0]
    with pytest.raises(CoreError, match=r"from \(0, 0\) to \(3, 3\).*Received: row=4, column=0"):
        convolution_step(image, kernel, 4, 0)


def test_grad_cam_of_a_batch_norm_cnn_reads_the_maps_after_their_nonlinearity(fashion_image):
    from core.models import build_cnn

    model = build_cnn((28, 28, 1), 10, filters=(8, 16), batch_norm=True)
    _, method = saliency_map(model, fashion_image)
    assert method == "Grad-CAM on layer 'relu_2'"  # not conv_2, whose output comes before BatchNormalization and ReLU
