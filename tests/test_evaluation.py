"""Tests for core.evaluation on real Fashion-MNIST models and hand-computed comparisons."""

import math

import numpy as np
import pytest

from core.errors import CoreError
from core.evaluation import Comparison, Evaluation, compare, evaluate, mcnemar_exact_p_value
from tests.helpers_fmnist import CLASS_NAMES, fit_briefly, load_fashion_mnist, small_cnn, small_dnn


class FixedPredictions:
    """Stands in for a model whose predictions we choose, to check the arithmetic by hand."""

    def __init__(self, predicted, num_classes):
        self.outputs = np.eye(num_classes, dtype=np.float32)[predicted] * 0.8 + 0.2 / num_classes

    def predict(self, x, batch_size=None, verbose=0):
        return self.outputs[: len(x)]


def evaluation_of(y_true, predicted, num_classes=3):
    """Evaluate fixed predictions against fixed labels."""
    model = FixedPredictions(np.asarray(predicted), num_classes)
    x = np.zeros((len(y_true), 2, 2, 1), dtype=np.uint8)
    return evaluate(model, x, np.asarray(y_true), [f"class {i}" for i in range(num_classes)])


def paired_evaluations(both_right, only_a_right, only_b_right, both_wrong):
    """Two evaluations on one 2-class test set with the given agreement counts."""
    pattern = [(1, 1)] * both_right + [(1, 0)] * only_a_right + [(0, 1)] * only_b_right
    pattern += [(0, 0)] * both_wrong
    right_a, right_b = (np.array(column, dtype=bool) for column in zip(*pattern))
    y_true = np.arange(len(pattern)) % 2
    a = evaluation_of(y_true, np.where(right_a, y_true, 1 - y_true), num_classes=2)
    b = evaluation_of(y_true, np.where(right_b, y_true, 1 - y_true), num_classes=2)
    return a, b


@pytest.fixture(scope="module")
def fashion_data():
    x_train, y_train = load_fashion_mnist("train", 600)
    x_test, y_test = load_fashion_mnist("test", 500)
    return x_train, y_train, x_test, y_test


@pytest.fixture(scope="module")
def trained_cnn(fashion_data):
    x_train, y_train, _, _ = fashion_data
    return fit_briefly(small_cnn(), x_train, y_train, epochs=2)


# --- evaluate ------------------------------------------------------------------------------------


def test_evaluate_matches_keras_on_a_trained_cnn(trained_cnn, fashion_data):
    _, _, x_test, y_test = fashion_data
    evaluation = evaluate(trained_cnn, x_test, y_test, CLASS_NAMES)
    keras_loss, keras_accuracy = trained_cnn.evaluate(x_test.astype("float32"), y_test, verbose=0)
    assert evaluation.accuracy == pytest.approx(keras_accuracy, abs=1e-6)
    assert evaluation.loss == pytest.approx(keras_loss, rel=1e-3)
    assert evaluation.accuracy > 0.5  # it learned something in two short epochs
    assert evaluation.probabilities.shape == (500, 10)
    assert np.allclose(evaluation.probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert evaluation.confusion.sum() == 500
    assert np.trace(evaluation.confusion) / 500 == pytest.approx(evaluation.accuracy)
    assert np.array_equal(evaluation.confusion.sum(axis=1), np.bincount(y_test, minlength=10))
    assert evaluation.y_true.dtype == np.int64 and evaluation.predicted.dtype == np.int64


def test_per_class_precision_and_recall_by_hand():
    y_true = [0, 0, 0, 1, 1, 2, 2, 2]
    predicted = [0, 0, 1, 1, 2, 2, 2, 0]
    evaluation = evaluation_of(y_true, predicted)
    assert evaluation.confusion.tolist() == [[2, 1, 0], [0, 1, 1], [1, 0, 2]]
    assert evaluation.precision == pytest.approx([2 / 3, 1 / 2, 2 / 3])
    assert evaluation.recall == pytest.approx([2 / 3, 1 / 2, 2 / 3])
    assert evaluation.accuracy == pytest.approx(5 / 8)
    assert evaluation.loss == pytest.approx(-(5 * math.log(0.8 + 0.2 / 3) + 3 * math.log(0.2 / 3)) / 8, rel=1e-6)
    assert evaluation.misclassified().tolist() == [2, 4, 7]


def test_class_never_predicted_has_zero_precision():
    evaluation = evaluation_of([0, 1, 2], [0, 0, 0])
    assert evaluation.precision.tolist() == [pytest.approx(1 / 3), 0.0, 0.0]
    assert evaluation.recall.tolist() == [1.0, 0.0, 0.0]


def test_binary_sigmoid_model_gets_two_probability_columns():
    classes = [1, 8]  # Trouser vs Bag
    x_train, y_train = load_fashion_mnist("train", 300, classes=classes)
    x_test, y_test = load_fashion_mnist("test", 200, classes=classes)
    model = fit_briefly(small_dnn(num_classes=2), x_train, y_train, epochs=2)
    evaluation = evaluate(model, x_test, y_test, ["Trouser", "Bag"])
    p = model.predict(x_test, verbose=0)[:, 0]
    assert evaluation.probabilities.shape == (200, 2)
    assert np.allclose(evaluation.probabilities[:, 1], p) and np.allclose(evaluation.probabilities[:, 0], 1 - p)
    assert np.array_equal(evaluation.predicted, (p > 0.5).astype(np.int64))
    keras_loss, keras_accuracy = model.evaluate(x_test.astype("float32"), y_test, verbose=0)
    assert evaluation.accuracy == pytest.approx(keras_accuracy, abs=1e-6)
    assert evaluation.loss == pytest.approx(keras_loss, rel=1e-3)
    assert evaluation.accuracy > 0.8
    assert evaluation.confusion.shape == (2, 2)


def test_evaluate_refuses_mismatched_inputs(trained_cnn, fashion_data):
    _, _, x_test, y_test = fashion_data
    with pytest.raises(CoreError, match=r"Received: len\(x_test\)=500, len\(y_test\)=499"):
        evaluate(trained_cnn, x_test, y_test[:-1], CLASS_NAMES)
    with pytest.raises(CoreError, match="model predicts 10 classes but 2 class names"):
        evaluate(trained_cnn, x_test, y_test % 2, ["even", "odd"])
    with pytest.raises(CoreError, match="class indices 0..2. Received: labels from 0 to 9"):
        evaluate(trained_cnn, x_test, y_test, ["a", "b", "c"])


# --- save / load ---------------------------------------------------------------------------------


def test_save_and_load_roundtrip_without_pickle(trained_cnn, fashion_data, tmp_path):
    _, _, x_test, y_test = fashion_data
    evaluation = evaluate(trained_cnn, x_test, y_test, CLASS_NAMES)
    path = tmp_path / "eval.npz"
    evaluation.save(path)
    assert [file.name for file in tmp_path.iterdir()] == ["eval.npz"]  # no temporary file left
    with np.load(path, allow_pickle=False) as stored:
        assert all(stored[name].dtype != object for name in stored.files)
    loaded = Evaluation.load(path)
    assert loaded.accuracy == evaluation.accuracy and loaded.loss == evaluation.loss
    assert loaded.class_names == CLASS_NAMES
    for name in ("y_true", "probabilities", "predicted", "confusion", "precision", "recall"):
        assert np.array_equal(getattr(loaded, name), getattr(evaluation, name)), name
        assert getattr(loaded, name).dtype == getattr(evaluation, name).dtype, name


def test_load_refuses_pickled_and_broken_files(tmp_path):
    evaluation = evaluation_of([0, 1, 2], [0, 1, 1])
    evaluation.save(tmp_path / "good.npz")
    with np.load(tmp_path / "good.npz") as stored:
        fields = dict(stored)
    fields["class_names"] = np.array([{"evil": "object"}, 1, 2], dtype=object)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, **fields)
    with pytest.raises(CoreError, match=r"damaged or not one that CNN Classroom wrote \(it holds pickled objects, "
                                        r"which are never loaded\)") as refused:
        Evaluation.load(pickled)
    assert "allow_pickle" not in str(refused.value)  # numpy's words invited an unsafe load
    assert Evaluation.load(tmp_path / "good.npz").class_names == ["class 0", "class 1", "class 2"]
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CoreError, match="Could not read the evaluation file"):
        Evaluation.load(broken)
    with pytest.raises(CoreError, match="Could not read the evaluation file"):
        Evaluation.load(tmp_path / "missing.npz")


# --- McNemar and compare -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "only_a_right, only_b_right, expected",
    [
        (10, 2, 2 * (1 + 12 + 66) / 2**12),  # 0.0386
        (2, 10, 2 * (1 + 12 + 66) / 2**12),
        (15, 5, 2 * (1 + 20 + 190 + 1140 + 4845 + 15504) / 2**20),  # 0.0414
        (5, 5, 1.0),
        (0, 0, 1.0),
        (3, 0, 0.25),
    ],
)
def test_mcnemar_exact_p_value_by_hand(only_a_right, only_b_right, expected):
    assert mcnemar_exact_p_value(only_a_right, only_b_right) == pytest.approx(expected, rel=1e-12)


def test_mcnemar_matches_scipy_for_large_counts():
    from scipy import stats
    for b, c in [(4900, 5100), (4000, 6000), (5000, 5000), (9990, 10)]:
        expected = stats.binomtest(min(b, c), b + c, 0.5).pvalue
        assert mcnemar_exact_p_value(b, c) == pytest.approx(expected, rel=1e-9, abs=1e-300), (b, c)
    assert mcnemar_exact_p_value(10, 2) == pytest.approx(0.0386, abs=1e-4)


def test_compare_counts_interval_and_statement():
    a, b = paired_evaluations(both_right=75, only_a_right=15, only_b_right=5, both_wrong=5)
    comparison = compare(a, b, "CNN", "DNN")
    assert isinstance(comparison, Comparison)
    assert (comparison.both_right, comparison.only_a_right, comparison.only_b_right, comparison.both_wrong) == (
        75, 15, 5, 5,
    )
    assert comparison.n == 100
    assert comparison.accuracy_a == pytest.approx(0.90) and comparison.accuracy_b == pytest.approx(0.80)
    assert comparison.difference == pytest.approx(0.10)
    half_width = 1.959963984540054 * math.sqrt(20 - 10**2 / 100) / 100
    assert comparison.ci_low == pytest.approx(0.10 - half_width)
    assert comparison.ci_high == pytest.approx(0.10 + half_width)
    assert comparison.p_value == pytest.approx(0.041389, abs=1e-6)
    assert comparison.statement == (
        "Model CNN is more accurate than model DNN by 10.0 points (90.0% vs 80.0% on 100 test "
        "images; 95% CI 1.5 to 18.5 points); McNemar p = 0.041, so the difference is unlikely "
        "to come from which test images were drawn."
    )


def test_compare_when_b_is_better_and_it_could_be_noise():
    a, b = paired_evaluations(both_right=50, only_a_right=3, only_b_right=6, both_wrong=41)
    comparison = compare(a, b)
    assert comparison.difference == pytest.approx(-0.03)
    assert comparison.statement.startswith(  # not "Model B is more accurate": a winner chance could have made
        "No clear difference: model B scored higher than model A by 3.0 points (56.0% vs 53.0% on 100")
    assert "p = 0.508, so the difference could come from which test images were drawn" in comparison.statement
    low, high = comparison.ci_low, comparison.ci_high
    assert low < -0.03 < high < 0.05  # the interval is about A - B, so it straddles 0


def test_compare_very_significant_difference():
    a, b = paired_evaluations(both_right=800, only_a_right=120, only_b_right=30, both_wrong=50)
    comparison = compare(a, b)
    assert comparison.p_value < 0.001
    assert "McNemar p < 0.001, so the difference is very unlikely to come from which test images were drawn." \
        in comparison.statement


def test_identical_models_have_p_value_one(trained_cnn, fashion_data):
    _, _, x_test, y_test = fashion_data
    evaluation = evaluate(trained_cnn, x_test, y_test, CLASS_NAMES)
    comparison = compare(evaluation, evaluation)
    assert comparison.p_value == 1.0
    assert comparison.difference == 0.0 and comparison.ci_low == 0.0 and comparison.ci_high == 0.0
    assert comparison.only_a_right == comparison.only_b_right == 0
    assert "no evidence of a difference" in comparison.statement


def test_equally_accurate_models_that_disagree():
    a, b = paired_evaluations(both_right=40, only_a_right=7, only_b_right=7, both_wrong=6)
    comparison = compare(a, b)
    assert comparison.p_value == 1.0
    assert "equally accurate" in comparison.statement and "neither is shown to be better" in comparison.statement


def test_compare_refuses_different_test_sets(trained_cnn, fashion_data):
    _, _, x_test, y_test = fashion_data
    full = evaluate(trained_cnn, x_test, y_test, CLASS_NAMES)
    part = evaluate(trained_cnn, x_test[:400], y_test[:400], CLASS_NAMES)
    with pytest.raises(CoreError, match="different test sets .*500 and 400") as refused:
        compare(full, part, "full", "part")
    assert refused.value.student == ("they were tested on different test images (500 and 400), so their answers "
                                     "cannot be paired image by image. Only models of the same dataset, tested at the "
                                     "same image size, compare that way.")  # Compare's words: "B cannot be compared …: "
    shuffled = evaluate(trained_cnn, x_test[::-1], y_test[::-1], CLASS_NAMES)
    with pytest.raises(CoreError, match="Evaluate both on the same dataset split"):
        compare(full, shuffled)


def test_cnn_and_dnn_compared_on_real_data(trained_cnn, fashion_data):
    x_train, y_train, x_test, y_test = fashion_data
    dnn = fit_briefly(small_dnn(), x_train, y_train, epochs=2)
    cnn_evaluation = evaluate(trained_cnn, x_test, y_test, CLASS_NAMES)
    dnn_evaluation = evaluate(dnn, x_test, y_test, CLASS_NAMES)
    comparison = compare(cnn_evaluation, dnn_evaluation, "CNN", "DNN")
    counts = comparison.both_right + comparison.only_a_right + comparison.only_b_right + comparison.both_wrong
    assert counts == comparison.n == 500
    assert comparison.accuracy_a == pytest.approx(cnn_evaluation.accuracy)
    assert comparison.accuracy_b == pytest.approx(dnn_evaluation.accuracy)
    assert comparison.ci_low <= comparison.difference <= comparison.ci_high
    assert 0.0 <= comparison.p_value <= 1.0
    if comparison.difference == 0:  # an exact tie (it happens, the DNN being unseeded): nothing for McNemar to test
        assert "equally accurate" in comparison.statement
    else:
        assert "McNemar" in comparison.statement


def test_a_name_of_several_words_reads_as_a_name():
    """Transfer learning's sentence read "Model feature extraction is more accurate than model from scratch"."""
    a, b = paired_evaluations(both_right=75, only_a_right=15, only_b_right=5, both_wrong=5)
    assert compare(a, b, name_a="feature extraction", name_b="from scratch").statement.startswith(
        "“feature extraction” is more accurate than “from scratch” by 10.0 points")
    assert compare(b, a, name_a="B", name_b="feature extraction").statement.startswith(
        "“feature extraction” is more accurate than model B by 10.0 points")
    same = compare(a, a, name_a="feature extraction", name_b="fine-tuning").statement
    assert same.startswith("“feature extraction” and “fine-tuning” got exactly the same test images right and wrong")
