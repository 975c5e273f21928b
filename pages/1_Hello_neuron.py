"""Hello, neuron: one Dense unit learns a line's rule from six points, with real Keras and plain SGD."""

import numpy as np
import streamlit as st

from core import charts, ui
from core.guide import signed, term
from core.neuron import (DEFAULT_EPOCHS, DEFAULT_LEARNING_RATE, QUERY_X, RULE, TRUE_ANSWER, TRUE_BIAS, TRUE_WEIGHT,
                         TRY_IT, XS, build_neuron, fit_line, least_squares_line, training_points)

LEARNING_RATES = [0.001, 0.003, 0.01, 0.03, 0.1, 0.15, 0.2]
NOISE = 1.0  # standard deviation of the noise the toggle adds to the six y values

ui.page_setup("Hello, neuron")
st.title("Hello, neuron")


def listed(values) -> str:
    """Numbers as the lesson writes them: "−1, 0, 1"."""
    return ", ".join(signed(value, "g") for value in values)


st.markdown(
    f"Here are six numbers **x** and their partners **y**: `x = {listed(XS)}` and "
    f"`y = {listed(training_points(0.0)[1][:, 0])}`. You can probably see the rule ({RULE}). A neural network does "
    "not *see* rules: it starts with a random "
    "guess and nudges it, epoch after epoch, to make its mistakes smaller. Our network is the smallest there is: "
    "**one neuron** (`Dense(units=1)`), which computes `y = w·x + b` and learns the weight `w` and the bias `b`."
)


def neuron_form() -> tuple[int, float, int, float]:
    """Epochs, learning rate, seed and noise from the widgets."""
    left, middle, right = st.columns([3, 3, 1])
    epochs = left.slider("Epochs (passes over the six points)", 10, 500, DEFAULT_EPOCHS, 10, key="neuron_epochs",
                         persist_state="session", bind="query-params")
    learning_rate = middle.select_slider("Learning rate (size of each SGD step)", LEARNING_RATES, DEFAULT_LEARNING_RATE,
                                         key="neuron_learning_rate", persist_state="session", bind="query-params")
    seed = int(right.number_input("Seed", 0, 999, 0, key="neuron_seed",
                                  persist_state="session", bind="query-params", help="The random starting weight."))
    noise = NOISE if st.toggle(f"Noisy data: add random noise (standard deviation {NOISE:g}) to the six y values",
                               key="neuron_noise", persist_state="session", bind="query-params") else 0.0
    return epochs, learning_rate, seed, noise


epochs, learning_rate, seed, noise = neuron_form()
with ui.guard():
    fit = ui.fit_neuron(epochs, learning_rate, seed, noise)  # the default was fitted while the home page was read

overflowed = not np.isfinite([fit.prediction, fit.weight, fit.bias, fit.final_loss]).all()
if fit.diverged:
    st.error(f"The loss grew instead of shrinking: a learning rate of {learning_rate} makes every step overshoot the "
             "minimum, further each time" + (", until the numbers overflow" if overflowed else "") +
             ". Pick a smaller learning rate.")


def learned(value: float, target: float) -> dict:
    """A metric's value and its distance from `target`, or "overflowed" (no distance) once it is not a number."""
    if not np.isfinite(value):
        return {"value": "overflowed", "delta": None}
    gap = float(f"{value - target:.4f}") + 0.0  # as shown: a gap that rounds to 0 is 0, with no arrow and no sign
    return {"value": signed(value, short(value)), "delta": f"{signed(gap, '+' + short(gap)) if gap else '0.0000'} from "
            f"{signed(target, 'g')}", "delta_color": "off",
            "delta_arrow": "off" if not gap else "up" if gap > 0 else "down"}  # a true minus: no "auto"


def short(value: float) -> str:
    """Four decimals, or three digits and a power of ten once a diverging fit's number is 10,000 or more: a phone's
    metric showed "−27513947488445777.0000", cut at its edge."""
    return ".4f" if abs(value) < 10_000 else ".3g"


xs, ys = training_points(noise)
line_xs = np.array([-2.0, QUERY_X + 1])
cols = st.columns(4)
cols[0].metric(f"prediction for x = {QUERY_X:g}", **learned(fit.prediction, TRUE_ANSWER))
cols[1].metric("learned weight w", **learned(fit.weight, TRUE_WEIGHT))
cols[2].metric("learned bias b", **learned(fit.bias, TRUE_BIAS))
cols[3].metric("final loss (MSE)", f"{fit.final_loss:.2e}" if np.isfinite(fit.final_loss) else "overflowed")

left, right = st.columns(2)
left.plotly_chart(charts.line_fit_figure(
    xs[:, 0], ys[:, 0], line_xs, fit.weight * line_xs + fit.bias, data_name="noisy data" if noise else f"data ({RULE})",
    best_ys=fit.best_weight * line_xs + fit.best_bias if noise else None), width="stretch")
right.plotly_chart(charts.loss_figure(fit.losses, "How wrong the neuron is after each epoch"), width="stretch")
if noise:  # the values the neuron trains on now; the lesson's text above lists the rule's
    left.caption(f"The noisy data: `y = {listed(np.round(ys[:, 0], 2))}`, the rule's values plus noise of standard "
                 f"deviation {NOISE:g}.")

st.subheader(f"{TRUE_ANSWER:g}, to four decimals" if fit.converged and not noise else f"Why not exactly {TRUE_ANSWER:g}?")
if fit.diverged:
    st.markdown(
        f"Because the training **diverged**. Each SGD step moves w and b against the slope of the loss, scaled by the "
        f"learning rate; at {learning_rate} the step is so big that it jumps over the bottom of the loss to a point "
        "higher on the other side, and the next step jumps back further still. The loss chart shows it growing "
        "instead of shrinking" + (" until the numbers no longer fit in a float." if overflowed else ".") +
        " More epochs make it worse, not better: pick a smaller learning rate."
    )
elif not noise and fit.converged:
    st.markdown(
        f"The neuron has **converged**: after {fit.epochs} epochs at learning rate {learning_rate:g} it sits on the "
        f"rule itself, w = {fit.weight:.6f} and b = {signed(fit.bias, '.6f')} (final loss {fit.final_loss:.2e}), and "
        f"predicts {fit.prediction:.4f} at x = {QUERY_X:g}. Each SGD step shrinks what is left of the error by a "
        "fraction that grows with the learning rate, so a larger rate (up to a point) gets there in fewer epochs; at "
        f"{DEFAULT_LEARNING_RATE:g} the classic {DEFAULT_EPOCHS} epochs stop short of it."
    )
elif not noise:
    weight_term, bias_term, miss = fit.miss_terms()  # from w and b as shown: the sum works out
    st.markdown(
        f"The six points lie **exactly** on {RULE}, so the best-fitting line *is* the rule: with "
        f"w = {TRUE_WEIGHT:g} and b = {signed(TRUE_BIAS, 'g')} "
        f"the loss would be exactly 0 (the least-squares line through the points, solved exactly, is "
        f"y = {fit.best_weight:.4f}x {term(fit.best_bias)}). So the whole miss is **unfinished optimisation**: each SGD "
        f"step shrinks what is left of the error by a fraction, so after {fit.epochs} epochs the neuron is still on its "
        f"way, at w = {fit.weight:.6f} and b = {signed(fit.bias, '.6f')} (final loss {fit.final_loss:.2e}; six decimals "
        "here, so that the sum below works out from them).\n\n"
        f"At x = {QUERY_X:g} the miss is (w {term(-TRUE_WEIGHT, 0)})·{QUERY_X:g} + (b {term(-TRUE_BIAS, 0)}) = "
        f"{signed(weight_term, '+.6f')} {term(bias_term, 6)} = **{signed(miss, '+.6f')}**: x = {QUERY_X:g} lies far outside the points "
        f"({signed(min(XS), 'g')} to {signed(max(XS), 'g')}), so the small error in w is multiplied by {QUERY_X:g}. More epochs, or a larger "
        "learning rate (up to a point), get closer."
    )
else:
    data_part, training_part = fit.miss_parts()  # they add up to the miss as shown
    st.markdown(
        f"With noise the six points no longer lie on one line. The best any line can do — the **least-squares line**, "
        f"solved exactly — is y = {fit.best_weight:.4f}x {term(fit.best_bias)}, which gives **{fit.best_prediction:.4f}** "
        f"at x = {QUERY_X:g}. Two parts make up the miss of {signed(fit.prediction - TRUE_ANSWER, '+.4f')}:\n"
        f"- **{signed(data_part, '+.4f')} comes from the data**: the noisy points pull the best line away from the rule, and no "
        "amount of training removes that. Only more (or cleaner) data would.\n"
        + (f"- **nothing is left to train away**: after {fit.epochs} epochs the neuron sits on the least-squares line "
           "(it has converged)." if not training_part else
           f"- **{signed(training_part, '+.4f')} is unfinished optimisation**: the neuron is not yet at the "
           f"least-squares line after {fit.epochs} epochs.")
    )
st.info(
    f"Try it, with the noise off: {TRY_IT.short_epochs} epochs at learning rate {DEFAULT_LEARNING_RATE:g} stops well "
    f"short of {TRUE_ANSWER:g}; {TRY_IT.long_epochs} epochs gets within a few hundredths; "
    f"{TRY_IT.faster_learning_rate:g} converges in far fewer epochs; {TRY_IT.too_large_learning_rate:g} is too big a step "
    "and the loss explodes.",
    icon="🧪",
)

st.subheader("The code")
st.markdown(
    "The classic tutorial writes `model.compile(optimizer='sgd', loss='mean_squared_error')` and "
    "`model.fit(xs, ys, epochs=500)`. We do the same with two modern details: the optimizer is "
    "`keras.optimizers.SGD(learning_rate=0.01)` — Keras 3 spells it **`learning_rate=`**; the old `lr=` "
    "argument is gone and raises an error — and each epoch is one `train_on_batch` call on all six points, "
    "the identical gradient step `fit(..., batch_size=6)` takes, without fit's per-epoch overhead."
)
ui.show_code(build_neuron, fit_line, least_squares_line)
