"""CNN Classroom home page: the path through the course, what is ready to use, then the registry and the data.

Run with `streamlit run app.py`. This page never imports TensorFlow, so it opens in a blink.
"""

import streamlit as st

from core import ui
from core.catalogue import course_datasets, list_datasets
from core.guide import best_by_dataset

ui.page_setup("Home")
st.title("🧠 CNN Classroom")
st.markdown(
    "Learn image classification by doing: train real Keras networks on real images, watch them learn, "
    "look inside them, and test them on your own photos. Every model you train is kept, so coming back to "
    "a setting is instant and any two models can be compared."
)

with ui.guard():
    cards = ui.registry().list_entries(order_by="test_accuracy")
    active_jobs = ui.runner().active_jobs()
datasets = list_datasets(ui.registry().root)

path_column, ready_column = st.columns([3, 2])
with path_column:
    st.subheader("Your path through the course")
    st.caption("The lessons in order; each takes a few minutes. Then experiment on your own.")
    for number, (path, label, caption) in enumerate(ui.LESSONS + ui.EXPERIMENTS[:3], start=1):
        minutes = ui.LESSON_MINUTES.get(path)
        st.page_link(path, label=f"{number}. {label} — {caption}" + (f" (about {minutes} min)" if minutes else ""))
with ready_column:
    st.subheader("Ready to use")
    here = [info.title for info in datasets if info.available]
    trained_count = sum(1 for card in cards if not card.imported)
    st.metric("models ready", len(cards), help=f"{trained_count} trained here, {len(cards) - trained_count} imported")
    st.markdown(f"**{len(here)} datasets** on this machine: {', '.join(here)}.")
    if active_jobs:
        st.caption(f"{len(active_jobs)} training job(s) running or queued right now.")
    if not cards:
        st.info("No models yet. Start on **Compare** (one click trains the classic DNN and CNN) "
                "or run `python -m core warmup` before class.")
    st.page_link("pages/11_Models.py", label="Models — the registry: browse, download, import, delete")

best = best_by_dataset(cards)
if best:
    st.subheader("Best models, dataset by dataset")
    st.caption("Accuracies are only comparable on the same test images: each dataset is ranked on its own, and the "
               "number of test images says how far one accuracy can be trusted (one mistake in 40 moves it 2.5 points).")
    for title, ranked in best.items():
        st.markdown(f"**{title}**")
        st.markdown(ui.markdown_table(
            [{"test accuracy": f"{card.test_accuracy:.2%}", "test images": f"{card.dataset.test_images or 0:,}",
              "model": card.title, "parameters": f"{card.params.total:,}"} for card in ranked]))

st.subheader("Datasets on this machine")
st.markdown(ui.markdown_table(
    [{"dataset": info.title, "here": "✅" if info.available else "❌", "classes": len(info.class_names),
      "images": f"{info.training_images:,} for training"} for info in datasets]))
for info in datasets:
    if info.available:
        st.caption(f"{info.title}: {info.source}")
for info in datasets:
    if not info.available:
        with st.expander(f"How to get {info.title}"):
            st.write(info.message)
st.markdown("**Course datasets** — the classic course's photo zips")
courses = course_datasets(ui.registry().root)
st.markdown(ui.markdown_table(
    [{"dataset": course.title, "here": "✅ imported" if course.imported_as else "❌"} for course in courses]))
missing = [course for course in courses if not course.imported_as]
if missing:
    with st.expander("How to get the course datasets"):
        for course in missing:
            st.markdown(f"**{course.title}**: {course.how_to_get}")
ui.preload_in_background()  # what the heavier pages need, loaded while the student reads this page
ui.load_element_scripts_early(ui.CHART_SCRIPT, ui.CODE_SCRIPT, ui.TABLE_SCRIPT)  # charts', code's, tables' scripts
