"""Your own images: a zip of class folders (the course's zips too) or webcam shots become a dataset; train on it."""

import dataclasses

import streamlit as st

from core import charts, ui
from core.catalogue import FOLDER_PREFIX, dataset_info, dataset_titles, imported_manifests, list_datasets
from core.config import TrainConfig
from core.datasets import split_table
from core.errors import CoreError, plain_words, student_message
from core.folders import DEFAULT_FOLDER_IMAGE_SIZE, add_validation, import_report, import_zip, sizes_text
from core.guide import title_for
from core.recipes import PRETRAINED, SCRATCH, recipe, starting_point
from core.tables import markdown_table

SIZES = [32, 64, 96, 150, 300]
SLOW_SIZE = 300
DEFAULT_SIZE = DEFAULT_FOLDER_IMAGE_SIZE  # 64: a size the import prepares, as the Train page's photos load
MAX_ZIP_MB = 250  # the server's maxUploadSize (.streamlit/config.toml): the course's largest zip is 201 MB

ui.page_setup("Your own images")
st.title("Your own images")
st.markdown(
    "A network can learn *your* classes too: horses vs humans, rock/paper/scissors, your cat vs your dog. Put the "
    "pictures of each class in its own folder, zip the folders together and upload the zip. **The folder names become "
    "the class names** — that is all the labelling there is. Keep a few dozen images per class at least. Or take the "
    "photos with your webcam, as in Teachable Machine."
)
st.code("my_dataset.zip\n├── horses/  horse01.jpg, …\n└── humans/  human01.jpg, …\n\n"  # one above the other: a phone
        "course_layout.zip\n├── train/       horses/, humans/\n└── validation/  horses/, humans/\n"  # showed the first only
        "    (or valid/, val/; and test/)", language="text")
with st.expander("The course's datasets: horses or humans, rock paper scissors, cats vs dogs"):
    ui.course_datasets_list()


def show_report(report, name):
    """What the import found: classes, the split table and where each split comes from, skipped files, notes."""
    if report.already_imported:  # the same photos again: nothing new was imported
        st.info(f"These photos were imported before, as **{report.title}**: that dataset is used, nothing was added.")
    else:
        st.success(f"Imported **{report.title}**: it is in the dataset pickers now, under that name.")
    if problem := ui.untrainable(TrainConfig(family="cnn", dataset=name)):  # said now, not at Train ("Imported" only)
        st.warning(student_message(problem))
    table = split_table(ui.registry().root, name)
    # With a validation folder and no test folder, the test photos are the validation photos: 26 / 6 / 6 read as 38
    shared = report.split_counts.get("validation") and not report.split_counts.get("test")
    headers = {split: f"{split} images" for split in table} | ({"test": "test images (the validation ones)"} if shared else {})
    st.markdown(markdown_table([{"class": class_name, **{headers[split]: table[split][class_name] for split in table}}
                                for class_name in report.class_names]))
    st.markdown("\n".join(f"- **{split}**: {source}" for split, source in report.split_sources.items()))
    st.caption(f"Photo sizes: {sizes_text(report.image_sizes)}.")
    st.info("\n\n".join(report.notes))
    if report.skipped:
        st.warning(f"{len(report.skipped)} file(s) were skipped and are not part of the dataset:")
        st.dataframe([{"file": file, "reason": reason} for file, reason in report.skipped], hide_index=True)


def zip_uploader(label, key_prefix, importer, text):
    """A zip uploader whose file is copied to disk, imported with a progress bar (`importer(path, progress, name)`) and
    let go; the report (or the error) is remembered for the next run, which starts with an empty uploader."""
    upload = st.file_uploader(label, type=["zip"], key=ui.widget_key(key_prefix), max_upload_size=MAX_ZIP_MB)
    if upload is not None:
        ui.forget_upload(key_prefix)
        try:
            with ui.saved_upload(upload) as path:
                report = importer(path, ui.progress_callback(text), upload.name.rsplit(".", 1)[0])
            st.session_state["own_report"], st.session_state["own_chosen"] = report, report.name
        except CoreError as error:
            st.session_state[f"{key_prefix}_error"] = student_message(error)
            st.session_state.pop("own_report", None)  # the last import's report would read as this file's
        st.rerun()
    ui.show_pending_error(f"{key_prefix}_error")


def own_form(names: list[str], newest: str) -> tuple[str, int, int]:
    """Pick a folder dataset (the newest first), the input size and the epochs."""
    labels = dataset_titles([dataset_info(name, ui.registry().root) for name in names])
    dataset = st.selectbox("Dataset", names, names.index(newest), format_func=labels.get, key="own_dataset",
                           persist_state="session")
    left, right = st.columns(2)
    size = left.select_slider("Input size (pixels per side)", SIZES, DEFAULT_SIZE, key="own_size", persist_state="session",
                              help="Every photo is fitted into size × size, keeping its shape, before training.")
    epochs = right.slider("Epochs", 3, 20, 8, key="own_epochs", persist_state="session")
    return dataset, size, epochs


def show_task(class_names):
    """Binary or categorical, and what that means for the last layer and the loss."""
    from core.models import head

    units, _, loss = head(len(class_names))
    st.markdown((f"**Two classes → a binary task.** The network ends in **one** neuron, `Dense(1, activation='sigmoid')`, "
                 f"whose output is the probability of class *{class_names[1]}* (so 1 − that is the "
                 f"probability of class *{class_names[0]}*)." if units == 1 else f"**{units} classes → a categorical task.** The network ends "
                 f"in `Dense({units}, activation='softmax')`: one probability per class, adding up to 1. The labels are "
                 f"class numbers 0…{units - 1}.") + f" The loss is **`{loss}`**.")


def show_input_sizes(config: TrainConfig, num_classes: int):
    """Before training: how the network below grows with the input size (computed, nothing is built)."""
    from core.course import input_size_rows

    with st.expander("What each input size costs, before you train", expanded=config.image_size >= SLOW_SIZE):
        st.markdown(markdown_table(input_size_rows(config, num_classes, SIZES)))
        st.caption("The convolutions' weights do not depend on the image size, but the map they leave does: Flatten "
                   "turns it into one long row, and the first Dense layer has a weight for every number in that row and "
                   "every unit. Memory is for 4-byte numbers; training keeps a batch's feature maps for the backward pass.")


st.header("1. Your photos")
zip_tab, webcam_tab = st.tabs(["A zip of folders", "Webcam"])
with zip_tab:
    zip_uploader("A .zip of class folders, or of train/ and validation/ folders", "own_zip", lambda path, progress, name:
                 import_zip(path, ui.registry().root, title=name, on_progress=progress), "Checking photos")
with webcam_tab:
    if webcam_report := ui.webcam_classes("own"):
        st.session_state["own_report"], st.session_state["own_chosen"] = webcam_report, webcam_report.name
        st.rerun()
if report := st.session_state.get("own_report"):
    show_report(report, report.name)

folders = [info.name for info in list_datasets(ui.registry().root) if info.name.startswith(FOLDER_PREFIX)]
if not folders:
    st.info("No folder dataset yet: upload a zip above, or take webcam photos.")
    st.stop()

st.header("2. The task")
if chosen_dataset := st.session_state.pop("own_chosen", None):  # just imported: select it
    st.session_state["own_dataset"] = chosen_dataset
manifests = imported_manifests(ui.registry().root)  # a fresh session starts on the last import, not the first id
newest = max(folders, key=lambda name: getattr(manifests.get(name), "created", ""))
ui.reset_if_invalid("own_dataset", folders.__contains__, newest)
dataset, size, epochs = own_form(folders, newest)
with ui.guard():
    info = dataset_info(dataset, ui.registry().root)
st.caption(f"{info.description} Photos {sizes_text(import_report(ui.registry().root, dataset).image_sizes)}, "
           f"{'grayscale' if info.image_shape[2] == 1 else 'colour'}: each is fitted into the input size chosen above, keeping its shape.")
show_task(list(info.class_names))
zip_uploader("Add a second zip as this dataset's validation photos (same class folders)", "own_validation",
             lambda path, progress, name: add_validation(ui.registry().root, dataset, path, on_progress=progress,
                                                         validation_title=name), "Checking validation photos")

st.header("3. Train")
start = starting_point(info.training_images, size)
choices = [PRETRAINED, SCRATCH] if start.pretrained_available else [SCRATCH]
if len(choices) > 1:
    chosen = st.radio("Start from", choices, index=choices.index(start.default), horizontal=True,
                      key=f"own_start_{dataset.removeprefix(FOLDER_PREFIX)}", persist_state="session",
                      format_func=lambda choice: f"{choice} (recommended)" if choice == start.default else choice)
else:  # no choice to make: the reason below says why
    chosen = choices[0]
(st.info if start.pretrained_available else st.warning)(plain_words(start.reason))
if start.teacher_fix:  # the file and the server's folder: what the teacher needs, in words no student has to read
    with st.expander("For the teacher: adding the pretrained weights without internet"):
        st.markdown(start.teacher_fix)
config = recipe(chosen, dataset, size, epochs)
if size >= SLOW_SIZE:
    st.warning(f"{size}×{size} images have {(size / DEFAULT_SIZE) ** 2:.0f}× the pixels of {DEFAULT_SIZE}×{DEFAULT_SIZE}: "
               f"an epoch can take minutes. Try {DEFAULT_SIZE} first.")
if chosen == SCRATCH:
    show_input_sizes(config, len(info.class_names))
title = title_for(config, ui.registry())  # the dataset by its title, as the trained model is named, not its id
entries = ui.training_panel({title: config}, key="own_train", button_label=f"Train {chosen} at {size}×{size}")
both = {choice: ui.registry().find(recipe(choice, dataset, size, epochs)) for choice in (PRETRAINED, SCRATCH)}
if all(both.values()):
    st.subheader("The same photos, both ways")
    for choice, column in zip(both, st.columns(2)):
        column.markdown(f"**{choice}**")
        ui.trained_model(both[choice], column, wide=False)
elif entries:
    ui.trained_model(entries[title], wide=False)

st.header("4. What resolution costs and buys")
trained = [(side, found) for side in SIZES if (found := ui.registry().find(dataclasses.replace(config, image_size=side)))]
if len(trained) < 2:
    st.info("Train the same network at a second input size (change the slider above) to compare them here.")
else:
    st.dataframe([{"input size": f"{side}×{side}", "test accuracy": f"{found.test_accuracy:.1%}",
                   "parameters": found.card.params.total, "training time (s)": found.card.timings.train_seconds,
                   "seconds per epoch": found.card.timings.seconds_per_epoch} for side, found in trained], hide_index=True,
                 column_config=ui.THOUSANDS_COLUMNS)  # 319,011 parameters, as every table writes them
    st.plotly_chart(charts.history_figure({f"{side} px": found.history for side, found in trained}, "accuracy",
                                          title="Accuracy per epoch at each input size"), width="stretch")
    st.caption("More pixels cost more weights and time (see the table above); they pay off only if the classes differ in "
               "details that a small image blurs away.")

ui.show_code(import_zip, recipe, label="Show the code: importing a zip, and the two networks")
