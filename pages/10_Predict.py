"""Predict: upload photos, pick a model, see what it sees, what it thinks and where it looked."""

import numpy as np
import streamlit as st

from core import charts, outputs, ui
from core.prediction import predict_file

ui.page_setup("Predict")
st.title("What does the model think?")
st.caption("Upload one or more photos (PNG, JPEG, WebP, GIF, BMP — any size). Each is turned into exactly the "
           "input the model was trained on; you see that input, the model's probabilities and a heat map of "
           "where it looked.")

key = ui.model_picker("Model", key="predict_model")
if key is None:
    st.stop()
with ui.guard():
    entry = ui.registry().get(key)
    model = ui.load_model(key)
card = entry.card
shape = card.input_shape
st.caption(f"{entry.title} · input {shape[0]}×{shape[1]}×{shape[2]} · classes: {', '.join(entry.class_names)}")
ui.show_model_warnings(key)
output_kind = outputs.output_kind(model, len(card.class_names))
invert = st.radio("Invert colours", ["auto", True, False], horizontal=True, key="predict_invert",
                  format_func={"auto": "automatic", True: "always", False: "never"}.get,
                  help="Fashion-MNIST shows light clothes on a black background; a photo of a dark shoe on a "
                       "white table is inverted to match.")
uploads = st.file_uploader("Photos", accept_multiple_files=True, key="predict_upload")
if not uploads:
    st.info("Upload a photo to classify it.")
    st.stop()


def show_scores(prediction, chart_key: str):
    """Outputs that are not probabilities: raw numbers and the reason, never a percentage."""
    values = outputs.raw_outputs(model, prediction.model_input)
    labels = card.class_names if len(card.class_names) == len(values) else [f"output {i}" for i in range(len(values))]
    st.warning(output_kind.reason or "This model's outputs are not numbers (NaN): its weights are broken.")
    st.plotly_chart(charts.raw_outputs_figure(values, labels), key=chart_key)
    st.info(f"Highest output: **{labels[int(values.argmax())]}** = {values.max():.4g}. That is a raw score, not a "
            "probability, so no percentage is shown.")
    for note in prediction.notes:
        st.caption(f"ℹ️ {note}")


def show_output_arithmetic(prediction):
    """Softmax (or sigmoid) by the numbers: the last layer's scores turned into the probabilities above."""
    steps = outputs.output_steps(model, prediction.model_input)
    if steps is None:  # a head this app cannot take apart (imported); its probabilities are shown above
        return
    names = prediction.class_names
    with st.expander("Softmax, by the numbers" if isinstance(steps, outputs.SoftmaxSteps) else "Sigmoid, by the numbers"):
        if isinstance(steps, outputs.SigmoidSteps):
            st.markdown(f"The last layer computes one score z = {steps.logit:.4f}. The sigmoid squashes any number into "
                        f"0…1: 1 / (1 + e^−z) = 1 / (1 + {steps.exponential:.4g}) = **{steps.probability:.4f}**, the "
                        f"probability of **{names[1]}**; {names[0]} gets 1 − {steps.probability:.4f} = "
                        f"{1 - steps.probability:.4f}.")
            return
        shifted = f" − {steps.shift:.2f}" if steps.shift else ""
        st.markdown(f"The last layer gives one score (a *logit*) per class. Softmax raises e to each score{shifted}, then "
                    f"divides each result by their sum, {steps.total:.4g}: every probability is positive and together "
                    "they add up to 1. Only the differences between scores matter.")
        st.markdown(ui.markdown_table([{"class": name, "logit z": f"{z:.3f}", f"e^(z{shifted})": f"{e:.4g}",
                                        f"÷ {steps.total:.4g} = probability": f"{p:.4f}"}
                                       for name, z, e, p in zip(names, steps.logits, steps.exponentials,
                                                                steps.probabilities)]))

for upload in uploads:
    prediction = predict_file(model, card, upload.getvalue(), upload.name, invert=invert)
    st.markdown(f"#### {upload.name}")
    if prediction.error:
        st.error(prediction.error)
        continue
    photo, seen, chart = st.columns([2, 1, 3])
    photo.image(prediction.photo, caption="your photo (upright)", width="stretch")
    seen.image(ui.displayable(prediction.model_input), caption=f"what the model sees ({shape[0]}×{shape[1]})",
               width="stretch")
    if not (output_kind.are_probabilities and np.isfinite(prediction.probabilities).all()):
        with chart:
            show_scores(prediction, f"predict_scores_{upload.file_id}")
        continue  # no probabilities, so no "where it looked for class X" either
    chart.plotly_chart(charts.probabilities_figure(prediction.probabilities, prediction.class_names),
                       key=f"predict_chart_{upload.file_id}")
    st.success(f"**{prediction.top_class}** ({prediction.top_probability:.1%})")
    show_output_arithmetic(prediction)
    if prediction.sigmoid_output is not None:
        names = prediction.class_names
        st.caption(f"Binary model: one sigmoid unit output {prediction.sigmoid_output:.3f}, the probability of "
                   f"**{names[1]}**. Above 0.5 means {names[1]}, below means {names[0]}.")
    for note in prediction.notes:
        st.caption(f"ℹ️ {note}")
    if prediction.saliency_overlay is not None:
        st.image(prediction.saliency_overlay, width=320)
        st.caption(f"Where the model looked ({prediction.saliency_method}): red = most important for "
                   f"'{prediction.top_class}'.")
        if prediction.saliency_flat:
            st.caption("This map is flat (all blue): no region of the image raised the score of "
                       f"'{prediction.top_class}' at that layer, which is common for small or briefly trained "
                       "models. A model trained longer usually shows where it looked.")
