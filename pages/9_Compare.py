"""Compare: the classic DNN against the classic CNN in one click, or any registered models side by side."""

import dataclasses

import streamlit as st

from core import charts, ui
from core.config import PRESETS
from core.course import within_the_data
from core.catalogue import list_datasets
from core.errors import CoreError, student_message
from core.evaluation import VERDICT_TERMS, compare_with_first, comparison_details, disagreements
from core.guide import (cnn_not_ahead_note, default_compare_keys, entry_label, guessing_note, percent_sure,
                        training_sizes_note)
from core.seeds import REPEATS, seed_variants, seed_verdict, summarise
from core.tables import markdown_table, one_column_each

ui.page_setup("Compare")
st.title("Compare models")
st.caption("Is the convolutional network really better than the dense one, or is the difference chance? Two kinds of "
           "chance move a test accuracy: which test images were drawn (both models are tested on the same images, so "
           "McNemar's test can tell) and the random start of training (only training again with other seeds can tell).")


def classic_pair(dataset: str, train_subset: int | None):
    """The course's DNN and CNN, on the same data."""
    return [within_the_data(dataclasses.replace(PRESETS[name], dataset=dataset, train_subset=train_subset), ui.registry().root)
            for name in ("classic DNN", "classic CNN")]


def seed_repeats(entries, letters, names, p_values):
    """Train every chosen model (trained here) REPEATS times; mean ± spread per model and which noise it rules out."""
    st.subheader("Is it the seed?")
    st.caption("Each model above was trained once, with one seed: its random starting weights and batch order. "
               f"Train each {REPEATS} times to see how much the accuracy moves from seed to seed.")
    repeated = {letter: seed_variants(entry.config) for letter, entry in zip(letters, entries) if entry.config is not None}
    if len(repeated) < 2 or not st.toggle(f"Train each {REPEATS} times", key="compare_repeats",
                                          persist_state="session"):
        return
    done = ui.training_panel({f"{letter}, seed {config.seed}": config for letter, configs in repeated.items()
                              for config in configs}, key="compare_seeds", button_label="Train the missing seed runs")
    if not done:
        return
    summaries = {letter: summarise([done[f"{letter}, seed {config.seed}"].card for config in configs])
                 for letter, configs in repeated.items()}
    st.dataframe([{"model": names[letters.index(letter)], "seeds": ", ".join(map(str, summary.seeds)),
                   "test accuracies": ", ".join(f"{value:.2%}" for value in summary.accuracies),
                   "mean ± spread": f"{summary.mean:.2%} ± {summary.spread:.2%}"} for letter, summary in summaries.items()],
                 hide_index=True)
    (first, reference), *others = summaries.items()
    for letter, summary in others:
        p_value = p_values.get(letter) if first == letters[0] else None
        st.markdown(f"**{first} vs {letter}** — " + seed_verdict(first, reference, letter, summary, p_value))
    st.caption("Spread: the standard deviation of the runs. Each run is tested on the same test images.")


st.subheader("DNN vs CNN in one click")
left, right = st.columns(2)
infos = {info.name: info for info in list_datasets(ui.registry().root) if info.available and not info.name.startswith("folder:")}
dataset = left.selectbox("Dataset", list(infos), key="compare_dataset",
                         persist_state="session", format_func=lambda name: infos[name].title)
subset = right.select_slider("Training images", [2000, 5000, 10000, 20000, "all"], "all", key="compare_subset",
                             persist_state="session")
pair = classic_pair(dataset, None if subset == "all" else subset)
pair_keys = [config.key for config in pair]
if ui.training_panel({config.title: config for config in pair}, key="compare_train", button_label="Train both"):
    if st.session_state.get("compare_shown_pair") != pair_keys:  # the one-click controls choose what is compared
        st.session_state["compare_models"] = st.session_state["compare_shown_pair"] = pair_keys
    st.caption("Both are trained: Side by side below compares them. Another dataset or number of training images "
               "gives another pair.")  # no button: a student did not know what to click
else:
    st.caption("Side by side below shows this pair as soon as both are trained.")

st.subheader("Side by side")
evaluated = [card for card in ui.registry().list_entries() if card.test_accuracy is not None]
labels = {card.key: entry_label(card) for card in evaluated}
default = default_compare_keys(evaluated, pair_keys)
ui.reset_if_invalid("compare_models", lambda keys: all(key in labels for key in keys), default)  # one was deleted
chosen = st.multiselect("Models to compare (A, the first, is the reference)", list(labels), default=default,
                        format_func=labels.get, key="compare_models", persist_state="session")
if len(chosen) < 2:
    st.info("Pick at least two models with a test evaluation.")
    st.stop()

with ui.guard():
    entries = [ui.registry().get(key) for key in chosen]
    evaluations = [ui.load_evaluation(key) for key in chosen]
letters = [chr(ord("A") + index) for index in range(len(entries))]
names = [f"{letter}: {entry.title}" for letter, entry in zip(letters, entries)]

st.markdown(markdown_table(one_column_each(letters, [  # one model per column: a row per model was 589 px wide on a phone
    {"model": entry.title, "test accuracy": f"{entry.test_accuracy:.2%}", "test images": f"{entry.card.dataset.test_images or 0:,}",
     "training images": f"{entry.card.dataset.train_images or 0:,}", "parameters": f"{entry.card.params.total:,}",
     "training time": "—" if entry.card.timings.train_seconds is None else f"{entry.card.timings.train_seconds:.1f} s",
     "epochs": entry.card.epochs_run} for entry in entries])))
if note := training_sizes_note(letters, [entry.card for entry in entries]):
    st.caption(note)
for letter, entry in zip(letters, entries):
    if guessing := guessing_note(entry.card):
        st.warning(f"**{letter}:** {guessing}")

p_values = {}  # McNemar's p of each model against the first, by letter, for the seed-repeats verdict
paired = [0]  # the models tested on A's test images: the only ones its per-class chart may hold
for index, result in enumerate(compare_with_first(evaluations, letters), start=1):
    if isinstance(result, CoreError):
        st.warning(f"**{letters[index]}** cannot be compared with **{letters[0]}**: {student_message(result)}")
        continue
    paired.append(index)
    p_values[letters[index]] = result.p_value
    st.markdown(f"**{letters[0]} vs {letters[index]}** — {result.statement}")
    st.caption(comparison_details(result, letters[0], letters[index]))
    if chosen == pair_keys and (note := cnn_not_ahead_note(*entries, result)):  # the one-click pair: dense, CNN
        st.info(note, icon="🔎")
if p_values:
    with st.expander("What do the 95% CI and McNemar's p mean?", expanded=True):
        st.markdown("\n".join(f"- {line}" for line in VERDICT_TERMS))


seed_repeats(entries, letters, names, p_values)

histories = {letter: entry.history for letter, entry in zip(letters, entries) if entry.history}
if histories:
    ui.history_charts(histories)
class_names = evaluations[0].class_names
recalls = {letters[index]: evaluations[index].recall for index in paired}  # per class only on the same test images
st.plotly_chart(charts.per_class_figure(recalls, list(class_names)))
for start in range(0, len(entries), 2):  # two a row: three side by side were 300 px, half their class names missing
    for column, letter, name, evaluation in zip(st.columns(2), letters[start:], names[start:], evaluations[start:]):
        column.plotly_chart(charts.confusion_figure(evaluation.confusion, list(evaluation.class_names),
                                                    title=f"{letter}: confusion matrix"))
        column.caption(name)

st.subheader("A model's mistakes")
mistaken = st.selectbox("Model", names, key="compare_mistakes_model", persist_state="session")
if len(mistaken) > ui.PICKER_CHARACTERS_ON_A_PHONE:  # as every model picker: a phone cuts the rest
    ui.on_a_phone_only("compare_mistakes_model").caption(mistaken)
mistaken_index = names.index(mistaken)
chosen_entry, chosen_evaluation = entries[mistaken_index], evaluations[mistaken_index]
chosen_data = (ui.test_images_or_note(chosen_entry.config, "The gallery shows this model's test images")
               if chosen_entry.config else None)
if chosen_data is not None:
    images = chosen_data.x_test
    worst = chosen_evaluation.confident_mistakes()
    st.markdown(f"{letters[mistaken_index]} gets **{len(worst):,} of {len(chosen_evaluation.y_true):,}** test images wrong. "
                "The most confident mistakes first: where it was surest, and wrong.")
    names_of = chosen_evaluation.class_names
    ui.image_grid([images[i] for i in worst[:12]],
                  [f"true {names_of[chosen_evaluation.y_true[i]]} · said {names_of[chosen_evaluation.predicted[i]]} "
                   f"({percent_sure(chosen_evaluation.confidence(i))})" for i in worst[:12]])

st.subheader("Where they disagree")
config = entries[0].config
first, second = evaluations[0], evaluations[1]
split = disagreements(first, second)
if config is None or split is None:
    st.info("The gallery needs two models trained here on the same dataset.")
    st.stop()
data = ui.test_images_or_note(config, "The galleries show the two models' test images")
if data is None:
    st.stop()
for title, indices, wrong_model in ((f"{letters[0]} right, {letters[1]} wrong", split[0], second),
                                    (f"{letters[1]} right, {letters[0]} wrong", split[1], first)):
    st.markdown(f"**{title}**: {len(indices):,} test images")
    shown = indices[:12]
    if len(shown):
        ui.image_grid([data.x_test[i] for i in shown],
                      [f"{class_names[first.y_true[i]]} (wrong: {class_names[wrong_model.predicted[i]]})" for i in shown])
