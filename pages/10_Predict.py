"""Predict: upload photos, pick a model, see what it sees, what it thinks and where it looked."""

import streamlit as st

from core import charts, ui
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
invert = st.radio("Invert colours", ["auto", True, False], horizontal=True, key="predict_invert",
                  format_func={"auto": "automatic", True: "always", False: "never"}.get,
                  help="Fashion-MNIST shows light clothes on a black background; a photo of a dark shoe on a "
                       "white table is inverted to match.")
uploads = st.file_uploader("Photos", accept_multiple_files=True, key="predict_upload")
if not uploads:
    st.info("Upload a photo to classify it.")
    st.stop()

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
    chart.plotly_chart(charts.probabilities_figure(prediction.probabilities, prediction.class_names),
                       key=f"predict_chart_{upload.file_id}")
    st.success(f"**{prediction.top_class}** ({prediction.top_probability:.1%})")
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
