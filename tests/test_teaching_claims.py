"""Teach correctly, page by page: every number a page states is computed from the model or data it shows, and the
statements issue 15 found false or untraceable are gone, replaced by ones a test can check."""

import dataclasses
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_CNN, TINY_DNN

sys.path.insert(0, str(Path(__file__).parent / "pages"))
from apptest import figure_arrays, figures, open_page  # noqa: E402

from core.config import PRESETS  # noqa: E402
from core.guide import percent, percent_sure  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]

# Statements that were false or typed in without any computation behind them, and the page they were on.
REMOVED = {
    "pages/1_Hello_neuron.py": ["finds the line that fits", "the most likely answer", "gives probabilities, not certainty",
                                "about a second instead of about fifteen"],
    "pages/2_Datasets.py": ["this page reads the same files from the Debian package"],
    "pages/5_Inside_the_network.py": ["bright where the image matches"],
    "pages/7_Transfer_learning.py": ["10–60 MB", "about 43%", "+2 points", "+6 points", "3,900", "73%", "2.26 million",
                                     "54,000", "about 2 minutes", "1.4 million"],
    "pages/8_Train.py": ["= the defaults", "exactly the TensorFlow course networks", "doubles each block"],
    "core/evaluation.py": ["unlikely to be noise"],
}


def text(at) -> str:
    """Everything a reader sees as text on the page."""
    kinds = ("title", "header", "subheader", "markdown", "caption", "info", "success", "warning", "error")
    return "\n".join(str(element.value) for kind in kinds for element in getattr(at, kind))


@pytest.mark.parametrize("path", sorted(REMOVED))
def test_the_false_and_untraceable_statements_are_gone(path):
    source = (PROJECT / path).read_text()
    assert [statement for statement in REMOVED[path] if statement in source] == []


# ----- Hello, neuron -------------------------------------------------------------------------------------------


def test_hello_neuron_explains_the_miss_with_the_fit_it_shows_and_its_try_it_claims_hold():
    from core.neuron import DEFAULT_LEARNING_RATE, TRUE_ANSWER, TRY_IT, fit_line

    at = open_page("pages/1_Hello_neuron.py").run()
    fit = fit_line(500, 0.01, 0)
    shown = text(at)
    assert at.metric[0].value == f"{fit.prediction:.4f}" and at.metric[1].value == f"{fit.weight:.4f}"
    assert "lie **exactly** on y = 2x − 1" in shown and "**unfinished optimisation**" in shown
    minus = lambda text: text.replace("-", "−")  # noqa: E731  (prose writes a true minus sign)
    # the worked sum, read off the page, adds up and comes from w and b as shown (each rounded to four decimals alone,
    # −2.8667 + 0.8763 was shown as −1.9905 at 50 epochs)
    shown_weight, shown_bias = (float(value.replace("−", "-")) for value in
                                re.search(r"at w = (\S+) and b = (\S+) \(final loss", shown).groups())
    parts = re.search(r"\+ \(b \+ 1\) = (\S+) ([+−]) (\S+) = \*\*(\S+)\*\*", shown).groups()
    weight_part, bias_part = float(parts[0].replace("−", "-")), float(parts[1].replace("−", "-") + parts[2])
    miss = float(parts[3].replace("−", "-"))
    assert round(weight_part + bias_part, 6) == miss and abs(miss - (fit.prediction - 19)) < 1e-4
    assert round((shown_weight - 2) * 10, 6) == weight_part and round(shown_bias + 1, 6) == bias_part

    at.toggle(key="neuron_noise").set_value(True).run()
    noisy, shown = fit_line(500, 0.01, 0, noise=1.0), text(at)
    # the two parts add up to the miss as shown: −3.6405 and −0.0061, each rounded alone, made −3.6466, not −3.6465
    data_part, rest = noisy.miss_parts()
    assert minus(f"make up the miss of {noisy.prediction - 19:+.4f}") in shown and abs(rest - noisy.optimisation_gap) < 1e-4
    assert minus(f"**{data_part:+.4f} comes from the data**") in shown and abs(data_part - noisy.data_gap) < 1e-4
    assert minus(f"**{rest:+.4f} is unfinished optimisation**") in shown
    assert f"{data_part + rest:.4f}" == f"{noisy.prediction - 19:.4f}"
    assert f"gives **{noisy.best_prediction:.4f}**" in shown

    # "Try it, with the noise off: 50 epochs at 0.01 stops well short of 19; 500 epochs gets within a few hundredths;
    # 0.1 converges in far fewer epochs; 0.2 is too big a step and the loss explodes": the page's numbers, checked
    assert (f"{TRY_IT.short_epochs} epochs at learning rate {DEFAULT_LEARNING_RATE:g} stops well short of "
            f"{TRUE_ANSWER:g}; {TRY_IT.long_epochs} epochs gets within a few hundredths; "
            f"{TRY_IT.faster_learning_rate:g} converges in far fewer epochs; {TRY_IT.too_large_learning_rate:g} is too "
            "big a step") in shown.replace("\n", " ")
    assert abs(fit_line(TRY_IT.short_epochs, DEFAULT_LEARNING_RATE).prediction - TRUE_ANSWER) > 1
    long = fit_line(TRY_IT.long_epochs, DEFAULT_LEARNING_RATE)
    assert abs(long.prediction - TRUE_ANSWER) < 0.05
    assert abs(fit_line(TRY_IT.long_epochs // 5, TRY_IT.faster_learning_rate).prediction - TRUE_ANSWER) < abs(
        long.prediction - TRUE_ANSWER)  # in a fifth of the epochs
    assert fit_line(TRY_IT.long_epochs // 5, TRY_IT.too_large_learning_rate).diverged


# ----- Datasets --------------------------------------------------------------------------------------------------


def test_datasets_counts_come_from_the_data_and_each_source_is_named_truthfully():
    from core.datasets import load_dataset

    at = open_page("pages/2_Datasets.py").run()
    data = load_dataset("fashion_mnist")
    assert [metric.value for metric in at.metric] == [
        "10", "28 × 28 × 1", f"{len(data.y_train):,} / {len(data.y_val):,}", f"{len(data.y_test):,}"]
    assert f"this page read them from {data.source}" in text(at)
    per_class = np.bincount(data.y_train)  # the balance note counts the training images it charts
    assert f"The classes are balanced ({per_class.min():,} training images each)" in text(at) and np.ptp(per_class) == 0

    at.selectbox(key="datasets_name").set_value("shapes").run()
    shown = text(at)
    assert "drawn on this machine, from a fixed seed" in shown and "Debian" not in shown


# ----- Convolutions ----------------------------------------------------------------------------------------------


def test_convolutions_sizes_and_parameters_are_the_models():
    from core.course import COURSE_NETWORKS
    from core.models import build_cnn

    at = open_page("pages/3_Convolutions.py").run()
    assert f"{build_cnn((28, 28, 1), 10).count_params():,} parameters in total" in text(at)
    for name in ("cats vs dogs", "rock, paper, scissors"):
        at.selectbox(key="conv_network").set_value(name).run()
        network = COURSE_NETWORKS[name]
        model = build_cnn(network.input_shape, network.num_classes, filters=network.filters,
                          hidden_units=network.hidden_units)
        flatten = math.prod(model.get_layer("flatten").output.shape[1:])
        assert f"{model.count_params():,} parameters in total" in text(at), name
        assert f"every one of the {flatten:,} flattened numbers" in text(at), name


# ----- Augmentation ----------------------------------------------------------------------------------------------


def test_augmentation_states_the_experiment_it_runs(registry_root):
    at = open_page("pages/4_Augmentation.py").run()
    at.select_slider(key="augment_experiment_subset").set_value(500)
    at.slider(key="augment_experiment_epochs").set_value(7).run()
    assert "trained twice on 500 Shapes images for 7 epochs" in text(at)


def test_augmentation_helps_with_the_pages_defaults_as_its_lesson_says(tmp_path, monkeypatch):
    """The default experiment (shapes, which lie anywhere at any size and angle) shows the lesson: augmentation closes
    the overfitting gap and raises test accuracy beyond the luck of the test images. On Fashion-MNIST, whose items are
    centred and upright, the same transformations cost accuracy (500 images, 30 epochs: 78.2% → 63.2% in one run)."""
    from core.augment import WITHOUT, augmentation_experiment, augmentation_result
    from core.config import Augmentation
    from core.engines import train_and_publish
    from core.registry import Registry

    registry = Registry(tmp_path / "registry")
    monkeypatch.setenv("CNNCLASSROOM_REGISTRY", str(registry.root))
    at = open_page("pages/4_Augmentation.py").run()
    value = lambda key: at.slider(key=key).value  # noqa: E731
    augmentation = Augmentation(rotation_range=value("augment_rotation"), width_shift_range=value("augment_width_shift"),
                                height_shift_range=value("augment_height_shift"), shear_range=value("augment_shear"),
                                zoom_range=value("augment_zoom"), horizontal_flip=at.checkbox(key="augment_flip").value,
                                fill_mode=at.selectbox(key="augment_fill_mode").value)
    configs = augmentation_experiment(augmentation, "shapes", at.select_slider(key="augment_experiment_subset").value,
                                      value("augment_experiment_epochs"))
    assert at.radio(key="augment_source").value == "shapes" and configs[WITHOUT].train_subset == 2000
    entries = {name: train_and_publish(registry, config) for name, config in configs.items()}
    result = augmentation_result(entries, registry)
    assert result.gap_with < result.gap_without  # the overfitting gap closes
    assert result.helped, (result.accuracy_with, result.accuracy_without, result.p_value)  # and beyond the test's luck
    at.run()
    assert not at.exception and "Here augmentation **helped**" in text(at)
    assert (f"here the gap narrowed from {result.gap_without * 100:.1f} to {result.gap_with * 100:.1f} points".replace(
        "-", "−") in text(at))  # the narrowing the page states is the one measured


# ----- Inside the network ----------------------------------------------------------------------------------------


def test_inside_the_network_states_the_models_numbers(trained_registry):
    from core.activations import layer_activations
    from core.datasets import load_dataset

    at = open_page("pages/5_Inside_the_network.py").run()
    assert at.selectbox(key="inside_model").value == TINY_CNN.key
    model = trained_registry.load_model(TINY_CNN.key)
    data = load_dataset("fashion_mnist")
    index = np.flatnonzero(data.y_test == 0)[0]  # the default image: the first test image of the first class
    conv_1 = layer_activations(model, data.x_test[index])[0]
    shown = text(at)
    assert f"{np.mean(conv_1.values == 0):.0%} of the numbers conv_1 passes on are exactly 0" in shown
    assert "The first convolution has **8 filters of 3×3** weights" in shown
    assert f"between −{np.sqrt(6 / (9 + 72)):.3f} and +{np.sqrt(6 / (9 + 72)):.3f}" in shown
    evaluation = trained_registry.load_evaluation(TINY_CNN.key)
    assert f"({percent_sure(evaluation.probabilities[index].max())} sure)" in shown
    boots = evaluation.y_true == 9  # section 3's class: the last one, Ankle boot
    found = int(np.sum(evaluation.predicted[boots] == 9))
    assert f"finds {found:,} of the {int(boots.sum()):,} Ankle boot images ({percent(found / boots.sum())})" in shown
    captions = [caption for image in at.get("image") for caption in image.captions]
    # the number section 3's captions use, beside the one picked ("Which one" read 1 above "test image #19")
    assert f"T-shirt/top 1 of 1,000 (test image #{index}) · input 28×28×1" in captions


# ----- Your own images -------------------------------------------------------------------------------------------


def test_your_own_images_costs_every_input_size_before_training(registry_root):
    from test_own_images_page import sneakers_and_bags_zip, upload

    from core.models import build_cnn

    at = open_page("pages/6_Your_own_images.py").run()
    upload(at, "shoes_and_bags.zip", sneakers_and_bags_zip())
    at.select_slider(key="own_size").set_value(300).run()
    assert not at.exception
    table = next(block.value for block in at.markdown if block.value.startswith("| input |"))
    model = build_cnn((300, 300, 3), 2, filters=(16, 32, 64), hidden_units=(128,))
    flatten = math.prod(model.get_layer("flatten").output.shape[1:])
    row = next(line for line in table.splitlines() if line.startswith("| 300×300×3"))
    assert [cell.strip() for cell in row.strip("|").split("|")][1:5] == [
        f"{flatten:,}", f"{model.get_layer('dense_1').count_params():,}", f"{model.count_params():,}",
        f"{4 * model.count_params() / 1e6:.1f}"]


# ----- Transfer learning -----------------------------------------------------------------------------------------


def test_transfer_learning_computes_its_sizes_and_counts(registry_root):
    from core.course import training_images
    from core.models import application_base

    at = open_page("pages/7_Transfer_learning.py").run()
    at.selectbox(key="transfer_application").set_value("inception_v3").run()
    inception = application_base("inception_v3", (75, 75), weights=None).count_params()
    shown = text(at)
    assert f"**{inception:,} weights**" in shown and f"about **{inception * 4 / 1e6:.0f} MB**" in shown
    assert 80 < inception * 4 / 1e6 < 95  # the notop file Keras downloads is about 88 MB, not "10–60 MB"
    at.selectbox(key="transfer_application").set_value("vgg16").run()
    assert "a white pixel becomes (151.1, 138.2, 131.3)" in text(at)  # 255 minus the ImageNet mean, B, G, R
    images = training_images("fashion_mnist")
    assert images == 60_000 - 6_000
    assert at.button(key="transfer_base_button").label == f"Train a base CNN on all {images:,} Fashion-MNIST training images"


def test_transfer_learning_helps_with_the_pages_defaults_and_scratch_catches_up_with_more_images(tmp_path, monkeypatch):
    """Section 3's defaults (the page's base CNN, 300 Shapes images, 20 epochs) show the lesson: both pretrained
    networks beat scratch beyond the luck of the test images. Measured: 33.4% from scratch against 37.2% and 36.9%
    (seed 0; seed 1: 29.4% against 38.1% and 37.3%); at 500 images the three tie, at 2,000 scratch wins (71.3% against
    56.7%), as the page's last line says."""
    from core.engines import train_and_publish
    from core.registry import Registry
    from core.transfer import BASE_CNN, FEATURE_EXTRACTION, FINE_TUNING, transfer_experiment, transfer_verdict

    registry = Registry(tmp_path / "registry")
    monkeypatch.setenv("CNNCLASSROOM_REGISTRY", str(registry.root))
    train_and_publish(registry, TINY_CNN)  # a CNN trained earlier, on fewer images: the page's base until...
    at = open_page("pages/7_Transfer_learning.py").run()
    assert at.selectbox(key="transfer_base").value == TINY_CNN.key
    base = train_and_publish(registry, BASE_CNN)  # ...section 2's button trains the lesson's base: chosen at once
    at.run()
    assert at.selectbox(key="transfer_base").value == base.key
    form = {"dataset": at.selectbox(key="transfer_dataset").value, "train_subset": at.select_slider(key="transfer_subset").value,
            "epochs": at.slider(key="transfer_epochs").value, "fine_tune_layers": at.slider(key="transfer_fine_tune").value}
    assert form == {"dataset": "shapes", "train_subset": 300, "epochs": 20, "fine_tune_layers": 1}
    configs = transfer_experiment(base.key, **form, registry=registry)
    for config in configs.values():
        train_and_publish(registry, config)
    verdict = transfer_verdict(configs, registry)
    for name in (FEATURE_EXTRACTION, FINE_TUNING):
        comparison = verdict.comparisons[name]
        assert comparison.difference > 0 and comparison.p_value < 0.05, comparison.statement
    at.run()
    assert "Both pretrained networks beat training from scratch" in text(at) and "did not clearly help" not in text(at)


# ----- Train -----------------------------------------------------------------------------------------------------


def test_train_presets_name_their_lesson_with_computed_sizes_and_steps_per_epoch_are_images_over_batch(trained_registry):
    from core.course import PRESET_LESSONS
    from core.models import build_model

    at = open_page("pages/8_Train.py").run()
    table = next(block.value for block in at.markdown if block.value.startswith("| preset |"))
    shown = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in table.splitlines()[2:]}
    for name, config in PRESETS.items():
        assert shown[name] == f"{build_model(config, (28, 28, 1), 10).count_params():,}", name
    assert shown["classic CNN"] == "225,034" and shown["course CNN 64-64"] == "243,786"  # the counts
    at.selectbox(key="train_preset").set_value("course CNN 64-64").run()
    assert PRESET_LESSONS["course CNN 64-64"] in text(at) and at.subheader[0].value == PRESETS["course CNN 64-64"].title

    from test_experiment_pages import set_train_widgets

    set_train_widgets(at, TINY_CNN)
    card = trained_registry.get(TINY_CNN.key).card
    steps = math.ceil(card.dataset.train_images / TINY_CNN.batch_size)
    assert (f"each of its {card.dataset.train_images:,} training images once, in batches of {TINY_CNN.batch_size}: "
            f"⌈{card.dataset.train_images:,} ÷ {TINY_CNN.batch_size}⌉ = {steps:,} steps per epoch") in text(at)


# ----- Compare, Predict, Models ----------------------------------------------------------------------------------


def test_compare_says_which_noise_mcnemar_covers(trained_registry):
    from core.evaluation import compare

    at = open_page("pages/9_Compare.py").run()
    at.multiselect(key="compare_models").set_value([TINY_CNN.key, TINY_DNN.key]).run()
    result = compare(trained_registry.load_evaluation(TINY_CNN.key), trained_registry.load_evaluation(TINY_DNN.key))
    shown = text(at)
    assert "which test images were drawn" in shown and "be noise" not in shown
    assert (f"McNemar exact p = {result.p_value:.3g}" if result.p_value >= 0.001 else "McNemar exact p < 0.001") in shown
    assert f"Only A right on {result.only_a_right:,} images, only B right on {result.only_b_right:,}" in shown
    better = "A − B" if result.difference > 0 else "B − A"  # the caption is signed like the sentence: better minus worse
    assert f"{better} = {abs(result.difference) * 100:+.2f} points" in shown


def test_predict_shows_percentages_only_for_probabilities(trained_registry):
    import io

    from PIL import Image

    at = open_page("pages/10_Predict.py").run()
    at.selectbox(key="predict_model").set_value(TINY_CNN.key).run()
    photo = io.BytesIO()
    Image.new("RGB", (120, 90), (240, 240, 240)).save(photo, "PNG")
    at.get("file_uploader")[0].set_value([("white.png", photo.getvalue(), "image/png")]).run()
    bars = figure_arrays(figures(at)[0], "x")[0]
    assert abs(bars.sum() - 1) < 1e-4  # softmax outputs: percentages that add up to 100%
    top = re.search(r"\(([\d.]+)%\)", at.success[0].value)
    assert float(top.group(1)) == pytest.approx(100 * bars.max(), abs=0.05)


def test_compare_one_click_pair_cnn_leads_with_5000_images_as_its_note_says(tmp_path, monkeypatch):
    """The note Compare shows when the one-click CNN is not ahead (core.guide.cnn_not_ahead_note) sends the student
    to more training images: on 5,000 the classic CNN is ahead, and the page shows no such note."""
    from core.engines import train_and_publish
    from core.evaluation import compare
    from core.registry import Registry

    registry = Registry(tmp_path / "registry")
    dense, convolutional = (dataclasses.replace(PRESETS[name], dataset="fashion_mnist", train_subset=5000)
                            for name in ("classic DNN", "classic CNN"))  # the page's one-click pair on 5,000 images
    for config in (dense, convolutional):
        train_and_publish(registry, config)
    result = compare(registry.load_evaluation(dense.key), registry.load_evaluation(convolutional.key))
    assert result.difference < 0 and result.p_value < 0.05, result.statement  # B, the CNN, is ahead
    monkeypatch.setenv("CNNCLASSROOM_REGISTRY", str(registry.root))
    at = open_page("pages/9_Compare.py")
    at.session_state["compare_subset"] = 5000
    at.run()
    assert not at.exception
    assert at.multiselect(key="compare_models").value == [dense.key, convolutional.key]
    assert not any("the CNN is not ahead" in block.value for block in at.info)
