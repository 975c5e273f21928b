"""core.shapes: the shape arithmetic explained per layer matches what Keras builds."""

import pytest

from core.errors import ConfigError
from core.models import build_cnn, build_dnn, summary_rows
from core.shapes import conv_output_size, multiply_adds, network_plan, plan_summary, shape_flow, shape_walkthrough


def test_classic_cnn_walkthrough_is_28_26_13_11_5_1600_with_the_course_parameters():
    rows = shape_walkthrough(build_cnn((28, 28, 1), 10))
    assert shape_flow(rows) == "28 → 26 → 13 → 11 → 5 → 1,600"
    params = {row["layer"]: row["params"] for row in rows}
    assert [params[name] for name in ("conv_1", "conv_2", "dense_1", "head")] == [320, 18496, 204928, 1290]
    by_name = {row["layer"]: row for row in rows}
    assert by_name["conv_1"]["formula"].startswith("⌊(28 − 3 + 2·0) / 1⌋ + 1 = 26")
    assert by_name["pool_2"]["formula"].startswith("⌊11 / 2⌋ = 5")
    assert by_name["flatten"]["formula"] == "5 × 5 × 64 = 1,600 numbers in one row"
    assert by_name["dense_1"]["params_formula"] == "(1,600 + 1 bias) × 128 units = 204,928"


@pytest.mark.parametrize(
    "settings",
    [
        {"padding": "same"},
        {"kernel_size": 5},
        {"conv_strides": 2, "filters": (16, 32)},
        {"padding": "same", "kernel_size": 5, "conv_strides": 2},
        {"filters": (8, 16, 32), "batch_norm": True, "dropout_rate": 0.2},
    ],
)
def test_the_formulas_agree_with_keras_and_summary_rows(settings):
    model = build_cnn((28, 28, 1), 10, **settings)
    rows = shape_walkthrough(model)
    summary = summary_rows(model)
    assert [row["layer"] for row in rows] == [row["layer"] for row in summary]
    for row, keras_row in zip(rows, summary):
        assert row["output_shape"] == keras_row["output_shape"] and row["params"] == keras_row["params"]
        assert row["computed_shape"] == row["output_shape"], row
    assert rows[-1]["output_shape"] == tuple(model.output_shape[1:])


def test_rectangular_colour_input_and_a_dense_network():
    rows = shape_walkthrough(build_cnn((40, 30, 3), 2, filters=(8,)))
    assert all(row["computed_shape"] == row["output_shape"] for row in rows)
    assert shape_flow(rows) == "40×30 → 38×28 → 19×14 → 2,128"
    dense = shape_walkthrough(build_dnn((28, 28, 1), 10))
    assert shape_flow(dense) == "28 → 784"


def test_conv_output_size_valid_and_same():
    assert conv_output_size(28, 3) == 26
    assert conv_output_size(28, 3, padding="same") == 28
    assert conv_output_size(28, 5, stride=2) == 12
    assert conv_output_size(27, 3, stride=2, padding="same") == 14
    assert conv_output_size(2, 3) == 0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((0, 3), r"size must be .*Received: size=0"),
        ((28, 3, 1, "full"), r"padding must be one of \['valid', 'same'\]. Received: padding='full'"),
        ((28, 3, 1.5), r"Received: stride=1.5"),
    ],
)
def test_conv_output_size_refuses_bad_input(arguments, message):
    with pytest.raises(ConfigError, match=message):
        conv_output_size(*arguments)


@pytest.mark.parametrize("settings", [
    {"input_shape": (28, 28, 1), "num_classes": 10, "filters": (32, 64)},
    {"input_shape": (28, 28, 1), "num_classes": 10, "filters": (16, 32), "padding": "same", "batch_norm": True,
     "dropout_rate": 0.2, "hidden_units": (64, 32)},
    {"input_shape": (64, 64, 3), "num_classes": 2, "filters": (8,), "kernel_size": 5, "conv_strides": 2},
    {"input_shape": (150, 150, 3), "num_classes": 3, "filters": (64, 64, 128, 128), "hidden_units": (512,)},
    {"input_shape": (300, 300, 3), "num_classes": 2, "filters": (16, 32, 64, 64, 64), "hidden_units": (512,)},
    {"input_shape": (28, 28, 1), "num_classes": 10, "family": "dnn", "hidden_units": (128,), "dropout_rate": 0.5},
])
def test_the_planned_network_is_row_by_row_the_one_keras_builds(settings):

    keyword = {name: value for name, value in settings.items() if name not in ("family", "input_shape", "num_classes")}
    if settings.get("family") == "dnn":
        model = build_dnn(settings["input_shape"], settings["num_classes"], **keyword)
    else:
        model = build_cnn(settings["input_shape"], settings["num_classes"], **keyword)
    plan = network_plan(**settings)
    assert plan == shape_walkthrough(model)
    summary = plan_summary(plan)
    assert summary["parameters"] == model.count_params() and summary["weights bytes"] == 4 * model.count_params()


def test_a_plan_whose_maps_vanish_is_refused_like_the_model():
    with pytest.raises(ConfigError, match="nothing left to look at"):
        network_plan((28, 28, 1), 10, filters=(8, 16, 32, 64))


def test_vanishing_maps_are_explained_with_the_stage_the_arithmetic_and_what_fits():
    from core.shapes import feature_map_problem

    strided = feature_map_problem((28, 28, 1), (32, 64), 5, 2, "valid")  # 28 -> 12 -> 6 -> 1 -> 0
    assert "block 2 has nothing left to look at after its pooling: the feature map shrinks 28 -> 12 -> 6 -> 1 -> 0" in strided
    assert "with stride 2 makes each side ⌊(side − 5) / 2⌋ + 1" in strided  # 28 -> 12 is not "divided by 2"
    assert ("Use at most 1 block for this input, or conv_strides=1, padding='same' or a larger image_size (at least 31)."
            in strided)  # each alone is enough: 28 -> 24 -> 12 -> 8 -> 4; 28 -> 14 -> 7 -> 4 -> 2; 31 -> 14 -> 7 -> 2 -> 1
    deeper = feature_map_problem((28, 28, 1), (32, 64, 128, 256), 5, 2, "valid")  # neither alone is: both, together
    assert "or conv_strides=1 and padding='same' or a larger image_size (at least 511)." in deeper
    too_large = feature_map_problem((8, 8, 1), (32,), 9, 1, "valid")
    assert "block 1 has nothing left to look at after its convolution" in too_large
    assert "Not even one block fits this input: use padding='same' or a larger image_size (at least 10)." in too_large


def test_multiply_adds_count_each_convolution_weight_once_per_output_position():
    """The classic CNN on 28×28: conv 26·26 positions × 320 weights, conv 11·11 × 18,496, then the dense layers once."""
    plan = network_plan((28, 28, 1), 10, filters=(32, 64), hidden_units=(128,))
    assert multiply_adds(plan) == 26 * 26 * 320 + 11 * 11 * 18_496 + 204_928 + 1_290 == 2_660_554
    assert multiply_adds(network_plan((28, 28, 1), 10, family="dnn", hidden_units=(128,))) == 100_480 + 1_290
