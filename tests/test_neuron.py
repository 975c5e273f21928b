"""core.neuron: one Dense unit learns y = 2x - 1 with real Keras SGD."""

import numpy as np
import pytest

from core.errors import ConfigError
from core.neuron import QUERY_X, build_neuron, fit_line, training_points


def test_classic_settings_learn_close_to_but_not_exactly_19():
    fit = fit_line(epochs=500, learning_rate=0.01, seed=0)
    assert abs(fit.prediction - 19) < 0.1
    assert fit.prediction != 19
    assert abs(fit.weight - 2) < 0.01 and abs(fit.bias + 1) < 0.02
    assert len(fit.losses) == 500 and fit.losses[-1] < fit.losses[0] / 1000
    assert fit.prediction == pytest.approx(fit.weight * QUERY_X + fit.bias, rel=1e-5)
    assert not fit.diverged


def test_same_seed_same_result_and_fewer_epochs_land_further_away():
    first, again = fit_line(50, 0.01, seed=3), fit_line(50, 0.01, seed=3)
    assert first.losses == again.losses and first.prediction == again.prediction
    assert abs(first.prediction - 19) > abs(fit_line(500, 0.01, seed=3).prediction - 19)


def test_each_epoch_is_the_same_step_model_fit_takes():
    """train_on_batch on all six points per epoch gives exactly what fit(batch_size=6) gives."""
    from tensorflow import keras

    fit = fit_line(epochs=20, learning_rate=0.03, seed=5)
    keras.utils.set_random_seed(5)
    model = build_neuron(0.03)
    xs, ys = training_points()
    history = model.fit(xs, ys, epochs=20, batch_size=6, verbose=0, shuffle=False)
    assert np.allclose(history.history["loss"], fit.losses, rtol=1e-5)
    assert float(model.layers[0].get_weights()[0][0, 0]) == pytest.approx(fit.weight, rel=1e-5)


def test_too_large_a_learning_rate_diverges():
    assert fit_line(epochs=100, learning_rate=0.2).diverged


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"epochs": 0}, r"epochs must be .*Received: epochs=0"),
        ({"epochs": 2.5}, r"Received: epochs=2.5"),
        ({"learning_rate": 0}, r"learning_rate must be .*Received: learning_rate=0"),
        ({"learning_rate": 5.0}, r"Received: learning_rate=5.0"),
        ({"seed": -1}, r"Received: seed=-1"),
    ],
)
def test_bad_arguments_are_refused_with_the_value(arguments, message):
    with pytest.raises(ConfigError, match=message):
        fit_line(**arguments)


def test_without_noise_the_best_line_is_the_rule_so_the_miss_is_unfinished_training():
    fit = fit_line(epochs=200, learning_rate=0.01)
    assert (fit.best_weight, fit.best_bias) == (pytest.approx(2, abs=1e-9), pytest.approx(-1, abs=1e-9))
    assert abs(fit.data_gap) < 1e-9
    assert fit.optimisation_gap == pytest.approx(fit.prediction - 19, abs=1e-9) and abs(fit.optimisation_gap) > 0.01


def test_with_noise_a_fully_trained_neuron_lands_on_the_least_squares_line_not_the_rule():
    fit = fit_line(epochs=500, learning_rate=0.1, noise=1.0)
    xs, ys = training_points(1.0)
    assert not np.allclose(ys, 2 * xs - 1)
    assert abs(fit.data_gap) > 0.1  # the data moved the best line away from y = 2x - 1
    assert abs(fit.optimisation_gap) < 1e-3  # and training got there
    assert fit.prediction - 19 == pytest.approx(fit.data_gap + fit.optimisation_gap, abs=1e-9)
    with pytest.raises(ConfigError, match=r"noise must be .*Received: noise=-1"):
        fit_line(noise=-1)


def test_the_two_parts_of_the_miss_add_up_to_the_miss_as_shown():
    """Each rounded alone, −3.6405 (the data's) and −0.0061 (training's) were shown under a miss of −3.6465."""
    from core.neuron import LineFit

    fit = LineFit(epochs=500, learning_rate=0.01, seed=0, weight=1.6, bias=-0.64652, losses=[1.0, 0.5],
                  prediction=19 - 3.64652, noise=1.0, best_weight=1.5, best_bias=0.35954)
    assert (round(fit.data_gap, 4), round(fit.optimisation_gap, 4)) == (-3.6405, -0.0061)  # the old sentence's parts
    assert fit.miss_parts() == (-3.6405, -0.006) and round(sum(fit.miss_parts()), 4) == round(fit.prediction - 19, 4)
    converged = LineFit(epochs=500, learning_rate=0.01, seed=0, weight=1.5, bias=0.35954, losses=[1.0, 0.5],
                        prediction=19 - 3.64046 + 0.00004, noise=1.0, best_weight=1.5, best_bias=0.35954)
    assert converged.converged and converged.miss_parts() == (-3.6404, 0.0)  # nothing left, and the data's is the miss


def test_the_worked_miss_adds_up_from_w_and_b_as_shown():
    """50 epochs at 0.01: −2.8667 + 0.8763, each rounded to four decimals alone, was shown as a miss of −1.9905."""
    from core.neuron import fit_line

    fit = fit_line(50, 0.01, 0)
    weight_term, bias_term, miss = fit.miss_terms()
    # the old sentence: each to four decimals, the sum of the shown parts one off the miss shown
    old_parts = round((fit.weight - 2) * 10, 4), round(fit.bias + 1, 4)
    assert f"{sum(old_parts):.4f}" != f"{fit.prediction - 19:.4f}"
    assert f"{weight_term + bias_term:.6f}" == f"{miss:.6f}" and abs(miss - (fit.prediction - 19)) < 1e-4

