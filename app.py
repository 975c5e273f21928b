"""CNN Classroom home page: what it teaches, what is in the registry, which data is here.

Run with `streamlit run app.py`. This page never imports TensorFlow, so it opens in a blink.
"""

import streamlit as st

from core import ui
from core.catalogue import course_datasets, list_datasets

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

models_column, data_column = st.columns(2)
with models_column:
    st.subheader("Model registry")
    trained_count = sum(1 for card in cards if not card.imported)
    st.metric("models ready", len(cards), help=f"{trained_count} trained here, {len(cards) - trained_count} imported")
    if active_jobs:
        st.caption(f"{len(active_jobs)} training job(s) running or queued right now.")
    best = [card for card in cards if card.test_accuracy is not None][:5]
    if best:
        st.markdown(ui.markdown_table(
            [{"test accuracy": f"{card.test_accuracy:.2%}", "model": card.title, "parameters": f"{card.params.total:,}",
              "key": f"`{card.key}`"} for card in best]))
    else:
        st.info("No models yet. Start on **Compare** (one click trains the classic DNN and CNN) "
                "or run `python -m core warmup` before class.")

with data_column:
    st.subheader("Datasets on this machine")
    datasets = list_datasets(ui.registry().root)
    st.markdown(ui.markdown_table(
        [{"dataset": info.title, "here": "✅" if info.available else "❌", "classes": len(info.class_names),
          "name": f"`{info.name}`"} for info in datasets]))
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
        [{"dataset": course.title, "here": "✅" if course.imported_as else "❌",
          "name": f"`{course.imported_as or course.name}`"} for course in courses]))
    missing = [course for course in courses if not course.imported_as]
    if missing:
        with st.expander("How to get the course datasets"):
            for course in missing:
                st.markdown(f"**{course.title}**: {course.how_to_get}")

st.subheader("Where to start")
learn_column, experiment_column = st.columns(2)
with learn_column:
    st.markdown("**Learn** — short interactive lessons")
    for path, label, caption in ui.LESSONS:
        st.page_link(path, label=f"{label} — {caption}")
with experiment_column:
    st.markdown("**Experiment** and **Models**")
    for path, label, caption in ui.EXPERIMENTS:
        st.page_link(path, label=f"{label} — {caption}")
ui.preload_in_background()  # what the heavier pages need, loaded while the student reads this page
