"""Your own images: upload a zip of class folders, see what was found, train a CNN on it at a chosen size."""

import dataclasses

import streamlit as st

from core import charts, ui
from core.config import TrainConfig
from core.catalogue import FOLDER_PREFIX, dataset_info, list_datasets
from core.folders import import_zip

SIZES = [32, 64, 150, 300]
SLOW_SIZE = 300

ui.page_setup("Your own images")
st.title("Your own images")
st.markdown(
    "A network can learn *your* classes too: horses vs humans, rock/paper/scissors, your cat vs your dog. Put the "
    "pictures of each class in its own folder, zip the folders together and upload the zip. **The folder names become "
    "the class names** — that is all the labelling there is. Keep a few dozen images per class at least."
)
st.code("my_dataset.zip\n├── horses/   horse01.jpg, horse02.jpg, …\n└── humans/   human01.jpg, …", language="text")


def show_report(report):
    """What the import found: classes, counts, sizes, skipped files, notes."""
    st.success(f"Imported **{report.title}** as `{report.name}`.")
    cols = st.columns(len(report.counts) if len(report.counts) <= 6 else 6)
    for index, (name, count) in enumerate(report.counts.items()):
        cols[index % len(cols)].metric(f"class: {name}", f"{count} images")
    sizes = report.image_sizes
    st.markdown("Image sizes (width × height): " + ", ".join(f"{key} {w}×{h}" for key, (w, h) in sizes.items()))
    for note in report.notes:
        st.info(note)
    if report.skipped:
        st.warning(f"{len(report.skipped)} file(s) were skipped and are not part of the dataset:")
        st.dataframe([{"file": file, "reason": reason} for file, reason in report.skipped], hide_index=True)


def show_task(class_names):
    """Binary or categorical, and what that means for the last layer and the loss."""
    from core.models import head

    units, _, loss = head(len(class_names))
    if units == 1:
        st.markdown(f"**Two classes → a binary task.** The network ends in **one** neuron, `Dense(1, activation='sigmoid')`, "
                    f"whose output is a number between 0 and 1: the probability that the image is a *{class_names[1]}* "
                    f"(so 1 − that for *{class_names[0]}*). The loss is **`{loss}`**.")
    else:
        st.markdown(f"**{units} classes → a categorical task.** The network ends in `Dense({units}, activation='softmax')`: one "
                    f"probability per class, adding up to 1. The labels are class numbers 0…{units - 1}, so the loss is "
                    f"**`{loss}`**.")


def show_input_sizes(config: TrainConfig, num_classes: int):
    """Before training: how the network below grows with the input size (computed, nothing is built)."""
    from core.course import input_size_rows

    with st.expander("What each input size costs, before you train", expanded=config.image_size >= SLOW_SIZE):
        st.markdown(ui.markdown_table(input_size_rows(config, num_classes, SIZES)))
        st.caption("The convolutions' weights do not depend on the image size, but the map they leave does: Flatten "
                   "turns it into one long row, and the first Dense layer has a weight for every number in that row and "
                   "every unit. Memory is for 4-byte numbers; training keeps a batch's feature maps for the backward pass.")


def own_form(names: list[str]) -> TrainConfig:
    """Pick a folder dataset and the input size; the rest is a small, fixed CNN."""
    labels = {name: f"{dataset_info(name).title} ({name})" for name in names}
    dataset = st.selectbox("Dataset", names, format_func=labels.get, key="own_dataset")
    left, right = st.columns(2)
    size = left.select_slider("Input size (pixels per side)", SIZES, 64, key="own_size",
                              help="Every image is resized to size × size before training.")
    epochs = right.slider("Epochs", 3, 20, 8, key="own_epochs")
    return TrainConfig(dataset=dataset, image_size=size, color_mode="rgb", family="cnn", filters=(16, 32, 64),
                       hidden_units=(128,), epochs=epochs, batch_size=32)


st.header("1. Upload")
upload = st.file_uploader("A .zip of class folders", key="own_zip_upload")
if upload is not None:
    if st.session_state.get("own_imported", (None,))[0] != upload.file_id:
        with ui.guard():
            report = import_zip(upload.getvalue(), title=upload.name.rsplit(".", 1)[0])
        st.session_state["own_imported"] = (upload.file_id, report)
        st.session_state["own_dataset"] = report.name
    show_report(st.session_state["own_imported"][1])

folders = [info.name for info in list_datasets() if info.name.startswith(FOLDER_PREFIX)]
if not folders:
    st.info("No folder dataset yet: upload a zip above.")
    st.stop()

st.header("2. The task")
ui.reset_if_invalid("own_dataset", folders.__contains__, folders[-1])
config = own_form(folders)
with ui.guard():
    info = dataset_info(config.dataset)
st.caption(f"{info.description} Native size {info.image_shape[1]}×{info.image_shape[0]}, "
           f"{'grayscale' if info.image_shape[2] == 1 else 'colour'}.")
show_task(list(info.class_names))

st.header("3. Train")
if config.image_size >= SLOW_SIZE:
    st.warning(f"{SLOW_SIZE}×{SLOW_SIZE} images have {(SLOW_SIZE / 64) ** 2:.0f}× the pixels of 64×64: on a laptop CPU each "
               "epoch can take minutes. Try 64 or 150 first.")
st.markdown(f"**{config.title}**: three convolution blocks (16, 32, 64 filters), Dense 128, then the head above. "
            "Bigger inputs keep more detail but give the network more numbers to look at.")
show_input_sizes(config, len(info.class_names))
entries = ui.training_panel({config.title: config}, key="own_train",
                            button_label=f"Train at {config.image_size}×{config.image_size}")
if entries:
    card = entries[config.title].card
    cols = st.columns(4)
    cols[0].metric("test accuracy", f"{card.test_accuracy:.1%}")
    cols[1].metric("parameters", f"{card.params.total:,}")
    cols[2].metric("training time", f"{card.timings.train_seconds:.1f} s")
    test_size = card.dataset.test_images
    cols[3].metric("test images", f"{test_size}")
    if test_size < 100:
        st.caption(f"Only {test_size} test images: one mistake moves the accuracy by {1 / test_size:.0%}. Add images "
                   "for a steadier measure.")
    ui.history_charts({config.title: entries[config.title].history})

st.header("4. What resolution costs and buys")
trained = [(size, ui.registry().find(dataclasses.replace(config, image_size=size))) for size in SIZES]
trained = [(size, found) for size, found in trained if found is not None]
if len(trained) < 2:
    st.info("Train the same dataset at a second input size (change the slider above) to compare them here.")
else:
    st.dataframe([{"input size": f"{size}×{size}", "test accuracy": f"{found.test_accuracy:.1%}",
                   "parameters": found.card.params.total, "training time (s)": found.card.timings.train_seconds,
                   "seconds per epoch": found.card.timings.seconds_per_epoch} for size, found in trained], hide_index=True)
    st.plotly_chart(charts.history_figure({f"{size} px": found.history for size, found in trained}, "accuracy",
                                          title="Accuracy per epoch at each input size"), width="stretch")
    st.markdown("More pixels mean bigger feature maps, so the Flatten layer — and the Dense layer after it — grow with the "
                "square of the size, and every epoch takes longer. It pays off only if the classes differ in details that "
                "a small image blurs away.")

ui.show_code(import_zip, label="Show the code: importing and checking a zip of class folders")
