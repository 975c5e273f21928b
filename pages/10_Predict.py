"""Predict: a photo (uploaded or from the webcam) or a drawing; see what the model sees, what it thinks and where it looked."""

import streamlit as st

from core import charts, outputs, server, ui
from core.errors import student_message
from core.guide import classes_note, dataset_title, guessing_note, is_photo_model, percent_sure, predict_order
from core.imaging import MAX_PIXELS, MAX_UPLOAD_BYTES, METHOD_TEXT, PREPROCESSING
from core.prediction import DRAWING_NAME, predict_drawing, predict_file, preprocessing_text
from core.tables import markdown_table

DRAWING_SHAPE = (28, 28, 1)  # the drawing pad is offered to 28x28 grayscale models (MNIST, Fashion-MNIST)
PAD_SIDE = 280

ui.page_setup("Predict")
st.title("What does the model think?")
st.caption(f"Upload photos (PNG, JPEG, WebP, GIF, BMP — up to {MAX_UPLOAD_BYTES // 2**20} MB and "
           f"{MAX_PIXELS // 1_000_000} megapixels each), take one with your webcam, or draw. Each is turned "
           "into exactly the input the model was trained on; you see that input, the model's probabilities and a heat "
           "map of where it looked.")

with ui.guard():
    cards = predict_order(ui.registry().list_entries())
key = ui.model_picker("Model", key="predict_model", cards=cards,
                      help="Listed best first: the most trustworthy models trained on photos, if any, then the others; "
                           "models no better than guessing come last.")
if key is None:
    st.stop()
with ui.guard():
    entry = ui.registry().get(key)
    model = ui.load_model(key)
card = entry.card
shape = card.input_shape
st.caption(f"Input {shape[0]}×{shape[1]}×{shape[2]} · registry key `{key}`")
st.info(classes_note(card), icon="ℹ️")
if guessing := guessing_note(card):
    st.warning(guessing)
ui.show_model_warnings(key)
invert = st.radio("Invert colours", ["auto", True, False], horizontal=True, key="predict_invert",
                  persist_state="session",
                  format_func={"auto": "automatic", True: "always", False: "never"}.get,
                  help="Fashion-MNIST shows light clothes on a black background; a photo of a dark shoe on a "
                       "white table is inverted to match.")


def show_preprocessing():
    """How a photo becomes this model's input: the method its card records, and why this app pads."""
    st.caption(f"How your photo becomes the model's input: {preprocessing_text(card)} — "
               + ("the same function and method its training photos went through (recorded in the model's card)."
                  if is_photo_model(card) else
                  ("it was made elsewhere, and what its training images went through is not known here" if card.imported
                   and card.dataset.name is None else
                   f"its training images ({dataset_title(card)}) were never photos put through this step") +
                  ", so a photo only comes close to them: compare your photo with what the model sees."))
    with st.expander("Stretch, crop or pad?"):
        st.markdown(
            f"Keras's `image_dataset_from_directory` **stretches** every photo to the model's size by default "
            f"(`crop_to_aspect_ratio=False`, `pad_to_aspect_ratio=False`): a 16:9 webcam frame is squashed into a "
            f"square, so a ball becomes an egg — and if training photos were square, the model never saw an egg. "
            f"**Centre-cropping** keeps shapes but can cut off the object at the edges. This app **pads**: "
            f"{METHOD_TEXT[PREPROCESSING]}. Whatever the method, what matters is that training and prediction use "
            f"the same one: here one function, `imaging.photo_to_input`, prepares every photo for both.")


def photos_form() -> list[tuple[str, bytes, str]]:
    """Uploaded photos and a webcam shot, as (name, bytes, id) to classify."""
    upload_tab, webcam_tab = st.tabs(["Upload photos", "Webcam"])
    uploads = upload_tab.file_uploader("Photos", accept_multiple_files=True, key="predict_upload",
                                       max_upload_size=MAX_UPLOAD_BYTES // 2**20)
    shot = webcam_tab.camera_input("Take a photo to classify", key="predict_camera_upload")
    found = [(upload.name, upload.getvalue(), upload.file_id) for upload in uploads or []]
    found += [("webcam photo", shot.getvalue(), shot.file_id)] if shot is not None else []
    return ui.photos_kept(found, "predict_photos")  # Streamlit empties an uploader whose page was left


def drawing_form():
    """A drawing pad for 28x28 grayscale models; returns its RGBA pixels once something is drawn."""
    if tuple(shape) != DRAWING_SHAPE:
        return None
    from streamlit_drawable_canvas import st_canvas  # registers its component on first use, inside the server

    with st.expander("Or draw a digit or a garment", expanded=False):
        pads = st.session_state.setdefault("predict_pads_cleared", 0)  # a new key is a fresh, empty pad
        result = st_canvas(stroke_width=18, stroke_color="#000000", background_color="#ffffff", height=PAD_SIDE,
                           width=PAD_SIDE, drawing_mode="freedraw", return_image_data=True, key=f"predict_pad_{pads}")
        st.caption("Draw in black on the white pad; it is cropped to your drawing, centred and shrunk to 28×28 like "
                   "the model's training images (and inverted to light on dark).")  # below: the pad's tools sit above it
        if st.button("Clear the pad", key="predict_clear_pad_button"):  # the pad's own tools show only under a mouse
            st.session_state["predict_pads_cleared"] = pads + 1
            st.rerun()
    drawn = result.json_data and result.json_data.get("objects")
    return result.image_data if drawn and result.image_data is not None else None


def show_binary(prediction):
    """A sigmoid head's single output, p, and 1 - p, named by class."""
    if prediction.binary_explanation:
        st.markdown(prediction.binary_explanation)


def show_scores(prediction, chart_key: str):
    """Outputs that are not probabilities: raw numbers and the reason, never a percentage."""
    values = prediction.raw_outputs
    labels = card.class_names if len(card.class_names) == len(values) else [f"output {i}" for i in range(len(values))]
    st.warning(prediction.output_kind.reason or "This model's outputs are not numbers (NaN): its weights are broken.")
    st.plotly_chart(charts.raw_outputs_figure(values, labels), key=chart_key)
    st.info(f"Highest output: **{labels[int(values.argmax())]}** = {values.max():.4g}. That is a raw score, not a "
            "probability, so no percentage is shown.")
    show_notes(prediction)


def show_notes(prediction):
    """How the photo was prepared, a caption per step ("Inverted: …"), a sentence each."""
    for note in prediction.notes:
        st.caption(f"ℹ️ {note[:1].upper()}{note[1:]}" + ("" if note.endswith(".") else "."))


def show_output_arithmetic(prediction):
    """Softmax (or sigmoid) by the numbers: the last layer's scores turned into the probabilities above."""
    steps = prediction.output_steps
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
        st.markdown(markdown_table([{"class": name, "logit z": f"{z:.3f}", f"e^(z{shifted})": f"{e:.4g}",
                                     f"÷ {steps.total:.4g} = probability": f"{p:.4f}"}
                                    for name, z, e, p in zip(names, steps.logits, steps.exponentials,
                                                             steps.probabilities)]))


def show_prediction(prediction, file_id):
    """The photo, the model's input, its probabilities (or raw scores), the notes and where it looked."""
    if prediction.error:
        st.error(student_message(prediction.error))
        return
    if prediction.shows_probabilities:  # the answer first: on a phone the columns below stack, 1,400 px tall
        st.success(f"**{prediction.top_class}** ({percent_sure(prediction.top_probability, 1)})")  # as the chart reads
    photo, seen, chart = st.columns([2, 1, 3])
    drawn = prediction.filename == DRAWING_NAME
    photo.image(prediction.photo, caption="your drawing" if drawn else "your photo (upright)", width="stretch")
    seen.image(ui.displayable(prediction.model_input), caption=f"what the model sees ({shape[0]}×{shape[1]})",
               width="stretch", output_format="PNG")  # lossless: exactly the pixels the model got
    if not prediction.shows_probabilities:
        with chart:
            show_scores(prediction, f"predict_scores_{file_id}")
        return  # no probabilities, so no "where it looked for class X" either
    chart.plotly_chart(charts.probabilities_figure(prediction.probabilities, prediction.class_names),
                       key=f"predict_chart_{file_id}")
    show_binary(prediction)
    show_output_arithmetic(prediction)
    show_notes(prediction)
    if prediction.saliency_overlay is not None:
        st.image(prediction.saliency_overlay, width=320)
        st.caption(f"Where the model looked ({prediction.saliency_method}): red = most important for "
                   f"'{prediction.top_class}'.")
        if prediction.saliency_flat:
            st.caption("This map is flat (no red anywhere): no region of the image raised the score of "
                       f"'{prediction.top_class}' at that layer, which is common for small or briefly trained "
                       "models. A model trained longer usually shows where it looked.")


show_preprocessing()
photos = photos_form()
drawing = drawing_form()
if drawing is not None:
    st.markdown("#### Your drawing")
    show_prediction(predict_drawing(model, card, drawing, invert=invert, with_saliency=True), "drawing")
if not photos and drawing is None:
    ui.prepare_predictions(key)  # traced in the background while the student picks a photo
    st.info("Upload a photo" + (", take one with the webcam or draw" if tuple(shape) == DRAWING_SHAPE else
                                 " or take one with the webcam") + " to classify it.")
    ui.load_element_scripts_early(server.CHART_SCRIPT)  # the probabilities' chart then appears at once
    st.stop()
for name, data, file_id in photos:
    st.markdown(f"#### {name}")
    show_prediction(predict_file(model, card, data, name, invert=invert), file_id)
