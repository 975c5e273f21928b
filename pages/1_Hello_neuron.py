"""Hello, neuron: one Dense unit learns y = 2x − 1 from six points, with real Keras and plain SGD."""

import numpy as np
import streamlit as st

from core import charts, ui
from core.neuron import QUERY_X, TRUE_BIAS, TRUE_WEIGHT, build_neuron, fit_line, training_points

LEARNING_RATES = [0.001, 0.003, 0.01, 0.03, 0.1, 0.15, 0.2]

ui.page_setup("Hello, neuron")
st.title("Hello, neuron")
st.markdown(
    "Here are six numbers **x** and their partners **y**: `x = −1, 0, 1, 2, 3, 4` and `y = −3, −1, 1, 3, 5, 7`. "
    "You can probably see the rule (y = 2x − 1). A neural network does not *see* rules: it starts with a random "
    "guess and nudges it, epoch after epoch, to make its mistakes smaller. Our network is the smallest there is: "
    "**one neuron** (`Dense(units=1)`), which computes `y = w·x + b` and learns the weight `w` and the bias `b`."
)


@st.cache_data(max_entries=32, show_spinner="Training the neuron…")
def cached_fit(epochs: int, learning_rate: float, seed: int):
    return fit_line(epochs, learning_rate, seed)


def neuron_form() -> tuple[int, float, int]:
    """Epochs, learning rate and seed from the widgets."""
    left, middle, right = st.columns([3, 3, 1])
    epochs = left.slider("Epochs (passes over the six points)", 10, 500, 500, 10, key="neuron_epochs")
    learning_rate = middle.select_slider("Learning rate (size of each SGD step)", LEARNING_RATES, 0.01,
                                         key="neuron_learning_rate")
    seed = int(right.number_input("Seed", 0, 999, 0, key="neuron_seed", help="The random starting weight."))
    return epochs, learning_rate, seed


epochs, learning_rate, seed = neuron_form()
with ui.guard():
    fit = cached_fit(epochs, learning_rate, seed)

if fit.diverged:
    st.error(f"The loss grew instead of shrinking: a learning rate of {learning_rate} makes every step overshoot the "
             "minimum, further each time, until the numbers overflow. Pick a smaller learning rate.")

xs, ys = training_points()
line_xs = np.array([-2.0, QUERY_X + 1])
cols = st.columns(4)
cols[0].metric(f"prediction for x = {QUERY_X:g}", f"{fit.prediction:.4f}", f"{fit.prediction - 19:+.4f} from 19",
               delta_color="off")
cols[1].metric("learned weight w", f"{fit.weight:.4f}", f"{fit.weight - TRUE_WEIGHT:+.4f} from {TRUE_WEIGHT:g}",
               delta_color="off")
cols[2].metric("learned bias b", f"{fit.bias:.4f}", f"{fit.bias - TRUE_BIAS:+.4f} from {TRUE_BIAS:g}", delta_color="off")
cols[3].metric("final loss (MSE)", f"{fit.final_loss:.2e}")

left, right = st.columns(2)
left.plotly_chart(charts.line_fit_figure(xs[:, 0], ys[:, 0], line_xs, fit.weight * line_xs + fit.bias), width="stretch")
right.plotly_chart(charts.loss_figure(fit.losses, "How wrong the neuron is after each epoch"), width="stretch")

st.subheader("Why not exactly 19?")
st.markdown(
    f"The neuron predicts **{fit.prediction:.4f}** for x = 10, where the rule gives 19. It learned "
    f"w = {fit.weight:.4f} (truth {TRUE_WEIGHT:g}) and b = {fit.bias:.4f} (truth {TRUE_BIAS:g}). Three reasons:\n"
    "- It saw only **six points**. Nothing tells it the rule holds everywhere; it finds the line that fits "
    "those six best, and x = 10 lies outside them, so small errors in w are multiplied by 10.\n"
    "- Each step shrinks the loss by a fraction of what is left, so the loss gets **close to 0 but never "
    "exactly 0** in a finite number of epochs. Fewer epochs or a smaller learning rate leave it further away.\n"
    "- A network learns an **approximation** from data — the most likely answer given what it saw — not the "
    "rule itself. That is what every classifier later in the course does too: it gives probabilities, not certainty."
)
st.info(
    "Try it: 50 epochs at learning rate 0.01 stops well short of 19; 500 epochs gets within a few hundredths; "
    "0.1 converges in far fewer epochs; 0.2 is too big a step and the loss explodes.",
    icon="🧪",
)

st.subheader("The code")
st.markdown(
    "The classic tutorial writes `model.compile(optimizer='sgd', loss='mean_squared_error')` and "
    "`model.fit(xs, ys, epochs=500)`. We do the same with two modern details: the optimizer is "
    "`keras.optimizers.SGD(learning_rate=0.01)` — Keras 3 spells it **`learning_rate=`**; the old `lr=` "
    "argument is gone and raises an error — and each epoch is one `train_on_batch` call on all six points, "
    "the identical gradient step `fit(..., batch_size=6)` takes, without fit's per-epoch overhead "
    "(500 epochs in about a second instead of about fifteen)."
)
ui.show_code(build_neuron, fit_line)
