"""Augmentation: random rotations, shifts, shears, zooms and flips — and how they fight overfitting."""

import dataclasses

import streamlit as st

from core import ui
from core.augment import (augment_samples, augmentation_experiment, augmentation_result, build_augmenter, keras_code,
                          legacy_code)
from core.config import FILL_MODES, Augmentation, dataset_display_name
from core.course import COURSE_AUGMENTATION
from core.guide import experiment_guessing_note, points_between, signed
from core.imaging import prepare_image, read_image

# Shapes first: like the course's photos, its objects vary in place, size and angle, which is what augmentation imitates
SOURCES = {"shapes": "shapes image", "fashion_mnist": "Fashion-MNIST image", "upload": "my own image"}
UPLOAD_SHAPE = (128, 128, 3)

ui.page_setup("Augmentation")
st.title("Data augmentation")
st.markdown(
    "With few training images a network starts to **memorise** them: training accuracy keeps climbing while "
    "accuracy on new images stalls. **Augmentation** shows it a slightly different version of every image in "
    "every epoch — turned, shifted, sheared, zoomed, mirrored — so there is nothing exact to memorise, only the "
    "object itself. The random changes happen only during training; predictions use the image as it is."
)


def augmentation_form() -> tuple[Augmentation, int, int]:
    """The transformations, how many samples to draw and the seed."""
    # A column per pair that belongs together, so a phone, which stacks the columns, keeps the pairs: turn (rotation,
    # shear), shift (width, height), zoom and what fills the corners it leaves, flip and the number of samples.
    turn, shift, zoom, other = st.columns(4)
    augmentation = Augmentation(
        rotation_range=turn.slider("Rotation (± degrees)", 0, 90, 15, key="augment_rotation", persist_state="session",
                                   bind="query-params"),
        shear_range=turn.slider("Shear (factor)", 0.0, 0.5, 0.1, 0.05, key="augment_shear", persist_state="session",
                                bind="query-params"),
        width_shift_range=shift.slider("Width shift (fraction)", 0.0, 0.5, 0.1, 0.05, key="augment_width_shift",
                                       persist_state="session", bind="query-params"),
        height_shift_range=shift.slider("Height shift (fraction)", 0.0, 0.5, 0.1, 0.05, key="augment_height_shift",
                                        persist_state="session", bind="query-params"),
        zoom_range=zoom.slider("Zoom (± fraction)", 0.0, 0.5, 0.1, 0.05, key="augment_zoom", persist_state="session",
                               bind="query-params"),
        fill_mode=zoom.selectbox("Fill mode (the empty corners)", FILL_MODES, key="augment_fill_mode",
                                 persist_state="session", bind="query-params"),
        horizontal_flip=other.checkbox("Horizontal flip", True, key="augment_flip", persist_state="session",
                                       bind="query-params"),
    )
    count = other.slider("Samples", 4, 24, 11, key="augment_count", persist_state="session", bind="query-params")
    seed_column, button_column = st.columns([1, 5], vertical_alignment="bottom")
    seed = int(seed_column.number_input("Seed", 0, 10**6, 0, key="augment_seed", persist_state="session",
                                        bind="query-params"))
    button_column.button("New samples", key="augment_new_button",
                         on_click=lambda: st.session_state.update(augment_seed=st.session_state.get("augment_seed", 0) + 1))
    return augmentation, count, seed


def image_form():
    """The image to augment (H, W, C) uint8, and the dataset the experiment trains on."""
    left, right = st.columns(2)
    source = left.radio("Image", list(SOURCES), format_func=SOURCES.get, horizontal=True, key="augment_source",
                        persist_state="session", bind="query-params")
    if source == "upload":
        upload = right.file_uploader("An image (PNG, JPEG, GIF, BMP, WebP)", key="augment_image_upload", max_upload_size=20)
        if upload is None:
            st.info("Choose an image file to augment it.")
            st.stop()
        return prepare_image(read_image(upload.getvalue(), upload.name), UPLOAD_SHAPE, invert=False).array, "shapes"
    dataset = ui.load_dataset(source)
    index = int(right.number_input(f"Test image number (0 to {len(dataset.y_test) - 1})", 0, len(dataset.y_test) - 1, 0,
                                   key="augment_index", persist_state="session", bind="query-params"))
    return dataset.x_test[index], source


@st.cache_data(max_entries=32, show_spinner="Augmenting…")
def samples(image, augmentation: dict, count: int, seed: int):
    return augment_samples(image, Augmentation(**augmentation), count, seed)


with ui.guard():
    image, experiment_dataset = image_form()
    augmentation, count, seed = augmentation_form()
    augmented = samples(image, dataclasses.asdict(augmentation), count, seed)
side = 96 if image.shape[0] <= 32 else 128
st.image([ui.displayable(image)] + [ui.displayable(sample) for sample in augmented], width=side,
         caption=["original"] + [f"sample {number}" for number in range(1, count + 1)])

modern_tab, legacy_tab = st.tabs(["Keras 3: preprocessing layers", "Old tutorials: ImageDataGenerator (deprecated)"])
modern_tab.code(keras_code(augmentation), language="python")
legacy_tab.code(legacy_code(augmentation), language="python")
legacy_tab.caption(
    "`ImageDataGenerator` is deprecated: Keras recommends the `Random…` layers above, inside the model or mapped over "
    "a `tf.data` pipeline. `model.fit_generator(...)` is gone — `model.fit` takes generators and datasets directly — "
    "and `flow_from_directory` became `keras.utils.image_dataset_from_directory`."
)
ui.show_code(augment_samples, build_augmenter)

st.subheader("Experiment: does it help?")
subset_column, epochs_column = st.columns(2)
subset = subset_column.select_slider("Training images", [200, 500, 1000, 2000], 2000, key="augment_experiment_subset",
                                     persist_state="session", bind="query-params")
epochs = epochs_column.slider("Epochs", 2, 30, 30, key="augment_experiment_epochs", persist_state="session",
                              bind="query-params")
configs = augmentation_experiment(augmentation, experiment_dataset, subset, epochs)
variety = ("Fashion-MNIST items are centred and upright: here augmentation mostly shows variety the test images never "
           "have (a Shapes image, above, shows the opposite)." if experiment_dataset == "fashion_mnist" else
           "Shapes lie anywhere, at any size and angle, like the objects in the course's photos (which it augmented "
           f"with rotation {COURSE_AUGMENTATION.rotation_range:g} and {COURSE_AUGMENTATION.zoom_range:g} for the rest): "
           "augmentation shows the network more of that variety. Fashion-MNIST items are centred and upright: pick a "
           "Fashion-MNIST image above to see it there.")
st.caption(f"The same small CNN, trained twice on {subset:,} {dataset_display_name(experiment_dataset)} images for {epochs} "
           f"epochs: once as they are, once with the augmentation above. Both models are kept in the registry. {variety}")

if not augmentation.is_active:
    st.info("Switch on at least one transformation to compare training with and without it.")
    st.stop()
entries = ui.training_panel(configs, key="augment_experiment", button_label="Run the experiment")
if not entries:
    st.stop()
ui.history_charts({name: entry.history for name, entry in entries.items()})
with ui.guard():
    result = augmentation_result(entries, ui.registry())
plain, augmented = result.accuracy_without, result.accuracy_with
columns = st.columns(4)
columns[0].metric("test accuracy · no augmentation", f"{plain:.1%}")
columns[1].metric("test accuracy · augmented", f"{augmented:.1%}",  # the difference of the two numbers shown
                  f"{points_between(plain, augmented):+.1f} points")
for column, name, gap in zip(columns[2:], ["no augmentation", "augmented"], [result.gap_without, result.gap_with]):
    column.metric(f"overfitting gap · {name}", f"{gap * 100:+.1f} points", help="training − validation accuracy, last epoch")
unseen_variety = ("Fashion-MNIST items are centred and upright, so turns, shifts, shears and flips make images the test "
                  "set never shows; " if experiment_dataset == "fashion_mnist" else "")
odds = f"McNemar's p = {result.p_value:.3g}"
if guessing := experiment_guessing_note({name: entry.card for name, entry in entries.items()}):
    verdict = ""  # the gap and the verdict of a model that learned nothing would teach a lesson that is not there
    st.warning(guessing)
elif result.helped:
    verdict = (f"Here augmentation **helped**: {augmented:.1%} against {plain:.1%} on the test images ({odds}: more "
               "than the luck of which test images were drawn).")
elif result.hurt:
    verdict = (f"Here augmentation **cost accuracy** ({augmented:.1%} against {plain:.1%}, {odds}): {unseen_variety}"
               "varied images also need more epochs to learn from. Try gentler settings or more epochs.")
else:
    verdict = (f"Here augmentation made **no clear difference** ({augmented:.1%} against {plain:.1%}, {odds}: the "
               "luck of which test images were drawn could explain it). Try more epochs or other settings.")
gaps = f"from {signed(result.gap_without * 100, '.1f')} to {signed(result.gap_with * 100, '.1f')} points"
gap_change = ("here a model that learned nothing has no gap worth reading" if guessing else
              f"here the gap narrowed {gaps}" if result.gap_with < result.gap_without else
              f"here it did not narrow ({gaps}: the settings or the epochs were not enough)")
st.markdown(
    "Solid lines are accuracy on the training images, dashed lines on validation images the network never trains "
    "on. A dashed line falling behind its solid line is **overfitting**: the network memorises its "
    f"{subset:,} images instead of learning what the classes look like. Augmentation makes the training images harder "
    f"to memorise, so the gap should narrow; {gap_change}. The augmented run's training accuracy is measured on "
    f"transformed images, which is why it can even sit below its validation accuracy. {verdict}"
    + (" " if verdict else "") + "Other cures for overfitting: more data, dropout, a smaller network, early stopping."
)
