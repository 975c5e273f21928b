"""core.guide: rankings within a dataset, the pickers' defaults, a student's words, and download names."""

import dataclasses

from core.card import DatasetFacts, ModelCard, ParameterCounts
from core.catalogue import CourseDatasetInfo, list_datasets
from core.config import PRESETS, Augmentation, TrainConfig
from core.errors import student_message
from core.guide import (accuracy_lower_bound, article, best_by_dataset, classes_note, default_base_key,
                        guessing_note, one_mistake_note, predict_order, ready_summary, safe_file_name, singular, with_article)
from core.transfer import BASE_CNN


def card(config: TrainConfig | None, accuracy: float | None, test_images: int | None, train_images: int = 1000,
         dataset: str = "fashion_mnist", title: str | None = None) -> ModelCard:
    """A card as the registry stores it (the builders need a trained model; these tests need only the figures)."""
    classes = ("horses", "humans") if dataset.startswith("folder:") else ("T-shirt/top", "Trouser", "Ankle boot")
    return ModelCard(key=config.key if config else "00000000000000aa", title=title or (config.title if config else "x"),
                     config=config, dataset=DatasetFacts(classes, (28, 28, 1), name=dataset if config else None,
                                                         train_images=train_images, test_images=test_images,
                                                         title="Horses or humans" if dataset.startswith("folder") else None),
                     params=ParameterCounts(10, 10, 0), layers=(), created="2026-11-29T00:00:00+00:00",
                     test_accuracy=accuracy, imported=config is None)


def test_home_ranks_within_each_dataset_and_a_tiny_test_set_is_not_trusted_like_a_big_one():
    fashion = card(TrainConfig(family="cnn"), 0.917, 10_000)
    photos = card(TrainConfig(family="cnn", dataset="folder:abc"), 1.0, 40, dataset="folder:abc")
    weaker = card(TrainConfig(family="dnn"), 0.88, 10_000)
    ranked = best_by_dataset([photos, weaker, fashion])
    assert list(ranked) == ["Fashion-MNIST", "Horses or humans"]  # the largest test set first
    assert [found.key for found in ranked["Fashion-MNIST"]] == [fashion.key, weaker.key]
    assert accuracy_lower_bound(1.0, 30) < accuracy_lower_bound(0.917, 10_000) < 0.917 < accuracy_lower_bound(0.93, 10_000)
    assert accuracy_lower_bound(None, 10) is None and accuracy_lower_bound(0.5, None) is None
    assert one_mistake_note(ranked) == "one mistake moves an accuracy by 2.5 points on 40 test images, by 0.01 on 10,000"
    assert one_mistake_note({"Fashion-MNIST": [fashion]}) == "one mistake moves an accuracy by 0.01 points on 10,000 test images"
    twin = card(TrainConfig(family="dnn", dataset="folder:def"), 0.5, 16, dataset="folder:def")  # titled alike
    ranked = best_by_dataset([photos, twin, fashion])
    assert list(ranked) == ["Fashion-MNIST", "Horses or humans", "Horses or humans (2)"]  # ranked apart, not together
    assert ranked["Horses or humans"] == [photos] and ranked["Horses or humans (2)"] == [twin]


def test_home_says_what_is_ready_in_counts_computed_from_the_registry_and_the_machine(tmp_path):
    datasets = list_datasets(tmp_path)
    here = [info.title for info in datasets if info.on_this_machine]
    courses = [CourseDatasetInfo("horses_or_humans", "Horses or humans", "", "folder:abc", ""),
               CourseDatasetInfo("rock_paper_scissors", "Rock paper scissors", "", None, "download it")]
    lines = ready_summary([card(TrainConfig(), 0.9, 10_000), card(None, None, None)], datasets, courses, 1).split("\n\n")
    assert lines[0] == "**2 models** ready (1 trained here, 1 imported)."
    assert lines[1].startswith(f"**{len(here)} of {len(datasets)} datasets** on this machine")
    assert lines[2] == "**1 of 2** course photo datasets imported: Horses or humans."
    assert lines[3] == "1 training running or queued right now."
    empty = ready_summary([card(TrainConfig(), 0.9, 10_000)], [], courses[1:], 0).split("\n\n")
    assert empty == ["**1 model** ready (1 trained here, 0 imported).", "**0 of 0 datasets** on this machine.",
                     "**0 of 1** course photo datasets imported."]


def test_the_transfer_base_is_the_full_data_cnn_not_the_newest_and_predict_prefers_photo_models():
    full = card(dataclasses.replace(BASE_CNN, epochs=2), 0.90, 10_000, train_images=54_000)
    newer_weaker = card(dataclasses.replace(BASE_CNN, train_subset=500, augmentation=Augmentation(rotation_range=20)),
                        0.70, 10_000, train_images=500)
    assert default_base_key([newer_weaker, full], BASE_CNN) == full.key
    named = card(BASE_CNN, 0.85, 10_000, train_images=54_000)
    assert default_base_key([newer_weaker, full, named], BASE_CNN) == BASE_CNN.key
    assert default_base_key([], BASE_CNN) is None
    photos = card(TrainConfig(family="cnn", dataset="folder:abc"), 0.80, 256, dataset="folder:abc")
    imported = card(None, None, None)
    assert predict_order([imported, full, newer_weaker])[0].key == full.key
    assert predict_order([full, photos, imported])[0].key == photos.key
    assert "only 3 classes from Fashion-MNIST" in classes_note(full) and "Trouser or Ankle boot" in classes_note(full)


def test_a_model_no_better_than_guessing_comes_last_on_predict_and_says_so():
    """A photo model at 50% on 20 test images (two classes) was Predict's first choice over a 92% CNN, and answered
    "discs (95.1%)" with no word that it does no better than a coin (a teaching walk, 2026-12-02)."""
    fashion = card(TrainConfig(family="cnn"), 0.921, 10_000)
    coin = card(TrainConfig(family="cnn", dataset="folder:abc"), 0.50, 20, dataset="folder:abc")
    learned = card(TrainConfig(family="cnn", dataset="folder:def", epochs=20), 0.80, 40, dataset="folder:def")
    assert predict_order([fashion, coin])[0].key == fashion.key
    assert predict_order([fashion, coin, learned])[0].key == learned.key  # 80% on 40: its interval starts above 50%
    note = guessing_note(coin)
    assert "right on 50% of its 20 test images" in note and "2 classes at random (50%)" in note
    assert guessing_note(learned) is None and guessing_note(fashion) is None and guessing_note(card(None, None, None)) is None
    assert guessing_note(card(TrainConfig(family="cnn"), 0.40, 100)) is not None  # 3 classes: 40% on 100 is chance-like
    untested = card(None, None, None)
    assert predict_order([coin, untested])[0].key == untested.key  # unknown before known to guess
    # the picker lists them in that order: a phone cuts every label short, and a newest-first list opened with the
    # model at chance near the top
    assert predict_order([coin, untested, fashion, learned]) == [learned, fashion, untested, coin]


def test_class_names_read_as_english_and_downloads_are_named_by_title():
    assert [singular(name) for name in ("humans", "horses", "daisies", "boxes", "scissors", "Trouser", "glass")] == [
        "human", "horse", "daisy", "box", "scissors", "Trouser", "glass"]
    assert article("Ankle boot") == "an" and article("T-shirt/top") == "a" and article("8") == "an"
    assert with_article("humans") == "a human" and with_article("Ankle boot") == "an Ankle boot"
    assert with_article("scissors") == "scissors"
    title = TrainConfig(family="cnn", image_size=32, train_subset=2000).title
    assert safe_file_name(title, ".tflite") == "cnn-32-64-dense-128-on-fashion-mnist-2-000-images-5-epochs-32x32-px.tflite"
    assert safe_file_name("???", ".keras") == "model.keras" and len(safe_file_name("a" * 500, ".keras")) < 100
    long = "CNN 16-32 / Dense 256 on Fashion-MNIST, 1 epoch · same padding, batch norm, rate 0.01, one-cycle, batch 64"
    assert safe_file_name(long, ".keras") == "cnn-16-32-dense-256-on-fashion-mnist-1-epoch-same-padding-batch-norm-rate-0-01.keras"


def test_pages_get_plain_words_while_the_exact_values_stay_for_the_command_line():
    message = ("Fashion-MNIST is not on this machine: put its files in $CNNCLASSROOM_DATA_DIR or /root/.keras/datasets. "
               "Received: name='mnist'")
    plain = student_message(message)
    assert plain == "Fashion-MNIST is not on this machine: put its files in $CNNCLASSROOM_DATA_DIR or a folder on the server."
    assert student_message("Get it from https://example.org/a/b.zip. Received: filters=(32, 64)") == (
        "Get it from https://example.org/a/b.zip.")


def test_an_error_with_a_student_sentence_shows_it_on_pages_and_keeps_it_across_processes():
    """The registry's own failures name a command only the teacher can run: a page shows their student sentence. A
    worker's error crosses to the page's process pickled (a Ray task's, say): the sentence goes with it."""
    import pickle

    from core.errors import EntryNotFoundError

    error = EntryNotFoundError("No model with key 0123456789abcdef. Run `python -m core list`.", student="Pick another.")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is EntryNotFoundError and str(copy) == str(error) and copy.student == "Pick another."
    assert student_message(copy) == "Pick another."
    assert student_message(EntryNotFoundError("Gone. Received: key='x'")) == "Gone."


def test_the_one_click_cnn_not_ahead_is_explained_with_its_own_numbers():
    from types import SimpleNamespace

    from core.evaluation import Comparison
    from core.guide import cnn_not_ahead_note

    def entry(name, accuracy, training_accuracy):
        config = dataclasses.replace(PRESETS[name], train_subset=2000)
        return SimpleNamespace(card=dataclasses.replace(card(config, accuracy, 10_000, train_images=2000), epochs_run=5),
                               history=[{"accuracy": 0.6}, {"accuracy": training_accuracy}])

    dense, convolutional = entry("classic DNN", 0.798, 0.844), entry("classic CNN", 0.787, 0.831)
    behind = Comparison(0.798, 0.787, 0.011, 0.004, 0.018, 7_500, 695, 584, 1_221, 0.002, 10_000, "")
    note = cnn_not_ahead_note(dense, convolutional, behind)
    updates = -(-2000 // convolutional.card.config.batch_size) * 5  # ⌈2,000 ÷ batch size⌉ steps in each of 5 epochs
    assert "2,000 images for 5 epochs" in note and f"{updates:,} weight updates" in note
    assert "83% of its own training images" in note and "the dense network: 84%" in note
    level = dataclasses.replace(behind, difference=-0.004, p_value=0.4)  # ahead by a hair: could be the test images
    assert cnn_not_ahead_note(dense, convolutional, level) is not None
    ahead = dataclasses.replace(behind, difference=-0.02, p_value=0.0004)
    assert cnn_not_ahead_note(dense, convolutional, ahead) is None


def test_a_probability_never_reads_as_a_certainty_it_is_not():
    from core.guide import percent_sure

    assert percent_sure(0.9996) == ">99%" and percent_sure(0.9996, decimals=1) == ">99.9%"  # not "100%"
    assert percent_sure(1.0) == ">99%"  # a float32 softmax rounds to exactly 1.0: still not certain
    assert percent_sure(0.0004) == "<1%" and percent_sure(0.0, decimals=1) == "<0.1%"
    assert (percent_sure(0.9949), percent_sure(0.873), percent_sure(0.5, decimals=1)) == ("99%", "87%", "50.0%")


def test_a_measured_share_reads_100_percent_only_when_it_is_exactly_that():
    from core.guide import percent

    assert (percent(1.0), percent(0.0), percent(997 / 1000), percent(3 / 1000, decimals=1)) == ("100%", "0%", ">99%", "0.3%")


def test_side_by_side_starts_from_two_models_tested_on_the_same_images():
    from core.guide import default_compare_keys

    webcam = card(TrainConfig(family="cnn", dataset="folder:abc"), 0.9, 4, dataset="folder:abc")  # the newest
    dense = card(TrainConfig(family="dnn"), 0.85, 10_000)
    convolutional = card(TrainConfig(family="cnn"), 0.9, 10_000)
    assert default_compare_keys([webcam, dense, convolutional], []) == [dense.key, convolutional.key]  # A: the dense one
    assert default_compare_keys([webcam, dense], []) == [dense.key]  # no pair: one model (one that learned), and the page
    # asks for another. Two newer models at chance (90% of 4 photos, 34% of 1,000 on 3 classes) come after those that
    # learned: the page opened on "A is more accurate than B by 2.3 points" of two such models
    chance = [card(TrainConfig(family=family, seed=9), 0.34, 1_000, dataset="shapes") for family in ("cnn", "dnn")]
    assert default_compare_keys([*chance, webcam, dense, convolutional], []) == [dense.key, convolutional.key]
    # the one-click pair once both are tested; with one of them tested (the other training), not that one alone
    assert default_compare_keys([webcam, dense, convolutional], [dense.key, webcam.key]) == [dense.key, webcam.key]
    assert default_compare_keys([webcam, dense, convolutional], [dense.key, "training"]) == [dense.key, convolutional.key]
    # like for like before the newest: a newer CNN on 500 images opened the page against a dense network on 3,000, and
    # the lesson read "dense beats CNN by 15 points"; two CNNs on as many images come after a dense network and a CNN
    dense_3000 = card(TrainConfig(family="dnn", train_subset=3000), 0.8, 10_000, train_images=3000)
    cnn_3000 = card(TrainConfig(family="cnn", train_subset=3000), 0.83, 10_000, train_images=3000)
    cnn_500 = card(TrainConfig(family="cnn", train_subset=500), 0.7, 10_000, train_images=500)
    assert default_compare_keys([cnn_500, dense_3000, cnn_3000], []) == [dense_3000.key, cnn_3000.key]  # dense is A
    other_cnn_3000 = card(TrainConfig(family="cnn", train_subset=3000, seed=1), 0.84, 10_000, train_images=3000)
    assert default_compare_keys([other_cnn_3000, cnn_500, dense_3000, cnn_3000], []) == [dense_3000.key, other_cnn_3000.key]
    assert default_compare_keys([cnn_500, other_cnn_3000], []) == [other_cnn_3000.key, cnn_500.key]  # all there is


def test_the_balance_note_is_computed_from_the_counts_shown():
    from core.guide import balance_note

    balanced = balance_note(["T-shirt", "Bag"], [5400, 5400], [1000, 1000])
    assert balanced.startswith("The classes are balanced (5,400 training images each)") and "scores 50%" in balanced
    lopsided = balance_note(["apples", "pears"], [22, 3], [5, 1])
    assert lopsided.startswith("The classes are not balanced: apples has 22 training images, pears 3.")
    assert "Always answering apples scores 83% on the test images" in lopsided


def test_a_transfer_models_first_weights_are_said_to_come_from_its_base():
    """Inside the network said of every model "Before training these weights were random: glorot_uniform…"."""
    from types import SimpleNamespace

    from core.config import TrainConfig
    from core.guide import pretrained_start_note

    base = SimpleNamespace(key="0123456789abcdef", title="CNN 32-64 / Dense 128 on Fashion-MNIST, 3 epochs",
                           dataset=SimpleNamespace(name="fashion_mnist", title="Fashion-MNIST"))
    frozen = TrainConfig(family="transfer", base_model=f"registry:{base.key}", dataset="shapes", image_size=28,
                         color_mode="grayscale")
    assert pretrained_start_note(frozen, [base]) == (
        "These weights did not start random: they are the base network's, learned before from Fashion-MNIST images "
        "(CNN 32-64 / Dense 128 on Fashion-MNIST, 3 epochs); transfer learning starts from them, and they stayed "
        "frozen while this model trained (feature extraction).")
    tuned = TrainConfig(family="transfer", base_model="mobilenet_v2", fine_tune_layers=2)
    assert pretrained_start_note(tuned, []).endswith(
        "learned before from ImageNet's photos; transfer learning starts from them, and fine-tuning then let the "
        "base's top 2 layers change, at a 10× lower learning rate.")
    assert "a CNN since deleted" in pretrained_start_note(frozen, [])


def test_side_by_side_says_when_the_models_learned_from_different_numbers_of_images():
    from types import SimpleNamespace

    from core.guide import training_sizes_note

    def card(images, dataset="fashion_mnist"):
        return SimpleNamespace(dataset=SimpleNamespace(train_images=images, name=dataset))

    assert training_sizes_note(["A", "B"], [card(54000), card(54000)]) is None
    assert training_sizes_note(["A", "B"], [card(54000), card(1000)]) == (
        "These models learned from different numbers of training images (A from 54,000, B from 1,000): a difference "
        "in accuracy mixes the network with the amount of data. To compare networks, train them on the same images.")
    # another dataset is more than fewer images: the page says its test images differ (the sizes named a wrong cause)
    assert training_sizes_note(["A", "B", "C"], [card(2000), card(2000), card(200, "shapes")]) is None


def test_the_train_page_names_settings_as_its_controls_do():
    from core.lint import in_page_words

    assert in_page_words("learning_rate=0.1 is far above the usual range for adam (0.0001 to 0.01). Try "
                         "learning_rate=0.001.") == ("Learning rate 0.1 is far above the usual range for adam (0.0001 to "
                                                     "0.01). Try learning rate 0.001.")
    assert in_page_words("early_stopping_patience=5 is not smaller than epochs=3") == "Patience 5 is not smaller than epochs 3"


def test_a_change_in_points_is_the_difference_of_the_two_percentages_shown():
    """Augmentation showed 22.7% and 23.8% with "+1.0 points" (Compare said 1.08): the fractions were rounded to
    three places first, and 0.2375 is stored just under itself."""
    from core.guide import points_between

    assert points_between(272 / 1200, 285 / 1200) == 1.1
    for before, after in [(a / 1200, b / 1200) for a in range(0, 1200, 7) for b in range(0, 1200, 11)]:
        shown = float(f"{after:.1%}".rstrip("%")) - float(f"{before:.1%}".rstrip("%"))
        assert f"{points_between(before, after):+.1f}" == f"{shown:+.1f}"


def test_the_overfitting_gap_is_the_difference_of_the_two_accuracies_it_shows():
    """Train showed "training accuracy (92.4%) is 9.6 points above validation accuracy (82.7%)" (0.92353 − 0.82731)."""
    from core.guide import overfitting_note

    note = overfitting_note([{"accuracy": 0.92353, "val_accuracy": 0.82731}])
    assert "(92.4%) is 9.7 points above validation accuracy (82.7%)" in note
    assert overfitting_note([{"accuracy": 0.90, "val_accuracy": 0.86}]) is None  # 4 points: not memorising yet


def test_an_experiment_with_a_model_at_chance_says_what_its_comparison_can_teach():
    from core.guide import experiment_guessing_note

    learned, chance = card(TrainConfig(family="cnn"), 0.9, 1_000), card(TrainConfig(family="dnn"), 0.34, 1_000)
    assert experiment_guessing_note({"with": learned, "without": learned}) is None
    both = experiment_guessing_note({"with": chance, "without": chance})
    assert both.startswith("Neither model can yet be told apart from guessing one of the 3 classes at random (33%) on "
                           "these 1,000 test images") and "whatever differs is chance" in both
    one = experiment_guessing_note({"from scratch": chance, "feature extraction": learned, "fine-tuning": learned})
    assert one.startswith("The *from scratch* model cannot yet be told apart") and "needs more training" in one
    assert experiment_guessing_note({"a": chance, "b": chance, "c": chance}).startswith("None of the 3 models can")


def test_inside_the_network_opens_on_the_most_trustworthy_cnn_not_the_highest_number():
    """88% on 16 test photos opened the page over 78.7% on 10,000 images, and its channels' differences were noise."""
    from core.preload import inside_default

    few = card(TrainConfig(family="cnn", dataset="shapes"), 0.88, 16, dataset="shapes")
    many = card(TrainConfig(family="cnn"), 0.787, 10_000)
    assert inside_default([few, many]).key == many.key and inside_default([many, few]).key == many.key
