"""Compare: the classic DNN against the classic CNN in one click, or any registered models side by side."""

import dataclasses

import streamlit as st

from core import charts, ui
from core.config import PRESETS
from core.catalogue import list_datasets
from core.errors import CoreError
from core.evaluation import compare, disagreements

ui.page_setup("Compare")
st.title("Compare models")
st.caption("Is the convolutional network really better than the dense one, or is the difference noise? "
           "Both models are tested on exactly the same test images, so we can tell.")


def classic_pair(dataset: str, train_subset: int | None):
    """The course's DNN and CNN, on the same data."""
    return [dataclasses.replace(PRESETS[name], dataset=dataset, train_subset=train_subset) for name in ("classic DNN", "classic CNN")]


st.subheader("DNN vs CNN in one click")
left, right = st.columns(2)
datasets = [info.name for info in list_datasets(ui.registry().root) if info.available and not info.name.startswith("folder:")]
dataset = left.selectbox("Dataset", datasets, key="compare_dataset")
subset = right.select_slider("Training images", [2000, 5000, 10000, 20000, "all"], "all", key="compare_subset")
pair = classic_pair(dataset, None if subset == "all" else subset)
ui.training_panel({config.title: config for config in pair}, key="compare_train", button_label="Train both")

st.subheader("Side by side")
evaluated = [card for card in ui.registry().list_entries() if card.test_accuracy is not None]
default = [config.key for config in pair if ui.registry().has(config.key)] or [card.key for card in evaluated[:2]]
labels = {card.key: ui.entry_label(card) for card in evaluated}
chosen = st.multiselect("Models to compare (the first is the reference)", list(labels), default=default,
                        format_func=labels.get, key="compare_models")
if len(chosen) < 2:
    st.info("Pick at least two models with a test evaluation.")
    st.stop()

with ui.guard():
    entries = [ui.registry().get(key) for key in chosen]
    evaluations = [ui.load_evaluation(key) for key in chosen]
names = [f"{chr(65 + index)}: {entry.title}" for index, entry in enumerate(entries)]

st.dataframe([{"model": name, "test accuracy": f"{entry.test_accuracy:.2%}", "parameters": entry.card.params.total,
               "training time (s)": entry.card.timings.train_seconds, "epochs": entry.card.epochs_run}
              for name, entry in zip(names, entries)], hide_index=True)

for name, evaluation in zip(names[1:], evaluations[1:]):
    try:
        result = compare(evaluations[0], evaluation, name_a=names[0][:1], name_b=name[:1])
    except CoreError as error:
        st.warning(f"{name} cannot be compared with {names[0]}: {error}")
        continue
    st.markdown(f"**{names[0][:1]} vs {name[:1]}** — {result.statement}")
    st.caption(f"Difference {result.difference * 100:+.2f} points (95% CI {result.ci_low * 100:+.2f} to {result.ci_high * 100:+.2f}). "
               f"Only {names[0][:1]} right on {result.only_a_right} images, only {name[:1]} right on {result.only_b_right}, "
               f"of {result.n}; McNemar exact p = {result.p_value:.3g}.")

histories = {name[:1]: entry.history for name, entry in zip(names, entries) if entry.history}
if histories:
    ui.history_charts(histories)
class_names = evaluations[0].class_names
st.plotly_chart(charts.per_class_figure({name[:1]: e.recall for name, e in zip(names, evaluations)}, list(class_names)),
                )
for column, name, evaluation in zip(st.columns(len(entries)), names, evaluations):
    column.plotly_chart(charts.confusion_figure(evaluation.confusion, list(evaluation.class_names), title=name[:40]),
                        )

st.subheader("Where they disagree")
config = entries[0].config
first, second = evaluations[0], evaluations[1]
split = disagreements(first, second)
if config is None or split is None:
    st.info("The gallery needs two models trained here on the same dataset.")
    st.stop()
data = ui.load_dataset(config.dataset, image_size=config.image_size, color_mode=config.color_mode,
                       validation_fraction=config.validation_fraction)
for title, indices, wrong_model in ((f"{names[0][:1]} right, {names[1][:1]} wrong", split[0], second),
                                    (f"{names[1][:1]} right, {names[0][:1]} wrong", split[1], first)):
    st.markdown(f"**{title}**: {len(indices)} test images")
    shown = indices[:12]
    if len(shown):
        st.image([ui.displayable(data.x_test[i]) for i in shown], width=84,
                 caption=[f"{class_names[first.y_true[i]]} (wrong: {class_names[wrong_model.predicted[i]]})" for i in shown])
