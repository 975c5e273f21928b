"""Models: every registered model in a sortable table; details, downloads, import and delete."""

import hashlib
import tempfile
from pathlib import Path

import streamlit as st

from core import teacher, ui
from core.exchange import ALREADY_THERE
from core.guide import dataset_title, no_better_than_guessing, safe_file_name
from core.config import FAMILIES

ui.page_setup("Models")
st.title("Model registry")
st.caption("Every model trained here is kept, keyed by its full configuration. Tick the box at a row's left for its "
           "details.")

is_teacher = ui.is_teacher()
if not is_teacher:
    st.info("Students can browse and download models here; deleting, importing and pinning are for the teacher "
            "(teacher mode, in the sidebar).")
else:
    with st.expander("Import a .keras model"):
        st.write("Models are loaded in Keras **safe mode**: a file that carries custom code (a Lambda layer, custom "
                 "objects) is refused, so opening a stranger's file never runs their code.")
        upload = st.file_uploader("A .keras file", type=["keras"], key="models_import_upload", max_upload_size=20)  # MB
        names = st.text_input("Class names, in output order, comma-separated (optional)", key="models_import_names",
                              persist_state="session")
        if upload is not None and st.button("Import", key="models_import_button"):
            with ui.guard(), tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / safe_file_name(Path(upload.name).stem, ".keras")  # letters, digits, hyphens
                path.write_bytes(upload.getvalue())
                class_names = [name.strip() for name in names.split(",") if name.strip()] or None
                result = teacher.import_model(ui.registry(), ui.gate(), ui.teacher_pass(), path, class_names=class_names)
            (st.info if result.outcome == ALREADY_THERE else st.success)(result.message)
    if not ui.gate().is_open:
        ui.budget_form()

with ui.guard():
    cards = ui.registry().list_entries()
if is_teacher:
    ui.delete_and_restore(cards)
    ui.delete_and_restore_datasets(cards)
if not cards:
    st.info("The registry is empty. Train a model on **Train** or **Compare**, or run `python -m core warmup`.")
    st.stop()

left, right = st.columns(2)
titles = {str(card.dataset.name): dataset_title(card) for card in cards}
dataset = left.selectbox("Dataset", ["all", *sorted(titles, key=titles.get)], key="models_dataset",
                         persist_state="session",
                         format_func=lambda name: titles.get(name, name))
family = right.selectbox("Family", ["all", *FAMILIES, "imported"], key="models_family", persist_state="session")
cards = [card for card in cards if dataset in ("all", str(card.dataset.name)) and family in ("all", card.family)]
pinned = ui.registry().pinned_keys()
table = [{"test accuracy": None if card.test_accuracy is None else 100 * card.test_accuracy,  # in %: see below
          "beats guessing": None if card.test_accuracy is None else not no_better_than_guessing(card),
          "title": card.title, "dataset": dataset_title(card), "family": card.family,
          "test images": card.dataset.test_images, "parameters": card.params.total,
          "training time (s)": card.timings.train_seconds, "created (UTC)": card.created_in_utc, "pinned": card.key in pinned,
          "key": card.key} for card in cards]
# A row is selected by its place in the table, so the table's key names the models it lists: after a delete, a filter
# or another student's new model, no row stays selected (the model after a deleted one was shown as if picked).
listed = hashlib.sha256(",".join(card.key for card in cards).encode()).hexdigest()[:16]
# The title tells models apart: the longest one's width (about 7 pixels a character), from 400 to 700 pixels ("large"
# cut "…30 epochs · b…" short on a 1,400-pixel screen).
title_width = min(700, max(400, 7 * max((len(card.title) for card in cards), default=0)))
# On a phone the title comes first and stays while the row is swiped sideways: its first 25 characters and the whole
# accuracy in view (the accuracy first, 200 pixels wide, left "CNN 32" of each title).
phone = ui.on_a_phone()
selection = st.dataframe(table, hide_index=True, on_select="rerun", selection_mode="single-row",
                         key=f"models_table_{listed}",
                         placeholder="—",  # an imported model has no test figures or training time here
                         column_config={"test accuracy": st.column_config.ProgressColumn(  # first after the title
                                            # two decimals each, as elsewhere: "percent" wrote 38% beside 38.33%
                                            format="%.2f%%", min_value=0, max_value=100,
                                            width=140 if phone else "medium"),
                                        "beats guessing": st.column_config.CheckboxColumn(  # beside it, in view
                                            width="small", help="Whether its test accuracy can be told apart from "
                                            "guessing a class at random (the lower end of its 95% interval is above "
                                            "chance). Untested: empty."),
                                        "title": st.column_config.TextColumn(width=175 if phone else title_width,
                                                                             pinned=phone),
                                        **ui.THOUSANDS_COLUMNS})
selected = selection.selection.rows
if not selected:
    st.stop()

with ui.guard():
    entry = ui.registry().get(cards[selected[0]].key)
st.subheader(entry.title)
ui.show_model_warnings(entry.key)
ui.trained_model(entry)
with st.expander("Card (config, dataset fingerprint, versions, timings)"):
    st.json(entry.card.to_dict())

st.markdown("**Download**")
columns = st.columns(3)
prepared = st.session_state.setdefault("models_prepared", set())  # (key, format): each stays ready once prepared
for column, fmt, label in zip(columns, ("keras", "savedmodel", "tflite"), (".keras", "SavedModel (zip)", "TFLite")):
    if column.button(f"Prepare {label}", key=f"models_prepare_{fmt}_button"):
        prepared.add((entry.key, fmt))
    if (entry.key, fmt) in prepared:
        with ui.guard():
            file_name, data = ui.exported_bytes(entry.key, fmt)  # cached: a rerun exports nothing again
        column.download_button(f"Download {label}", data, file_name=file_name, on_click="ignore",
                               key=f"models_download_{fmt}_button")
        column.caption(file_name)  # a long title's name is cut on the button: the format leads, the name follows

if not is_teacher:
    st.stop()
if st.button("Unpin (allow deleting)" if entry.key in pinned else "Pin for a lesson (cannot be deleted)", key="models_pin_button"):
    with ui.guard():
        teacher.pin_model(ui.registry(), ui.gate(), ui.teacher_pass(), entry.key, entry.key not in pinned)
    st.rerun()
