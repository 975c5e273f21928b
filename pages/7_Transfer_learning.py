"""Transfer learning: reuse a network trained on many images for a new task with few, and measure the gain."""

import streamlit as st

from core import charts, ui
from core.config import APPLICATION_BASES
from core.catalogue import dataset_info, dataset_titles, list_datasets
from core.config import FINE_TUNE_RATE_DIVISOR
from core.course import config_training_images
from core.guide import dataset_title, default_base_key, experiment_guessing_note, percent
from core.pretrained import cached_weights_path, weights_status
from core.seeds import REPEATS
from core.transfer import (BASE_CNN, EXPERIMENT_NAMES, FEATURE_EXTRACTION, SCRATCH, TABLE_COLUMNS, base_architecture,
                           experiment_rows, experiment_table, imagenet_base, preprocessing_note,
                           transfer_experiment, transfer_verdict)

SUBSETS = [100, 200, 300, 500, 1000, 2000]
IMAGENET_CHECK_SHAPE = (96, 96, 3)  # the smallest input an ImageNet base takes here (MobileNetV2's smallest weights)

ui.page_setup("Transfer learning")
st.title("Transfer learning")
st.markdown(
    "A network trained on tens of thousands of images has learned filters for edges, corners, curves and textures that "
    "are useful for *other* pictures too. **Transfer learning** keeps those layers (the *base*) and puts a new head on "
    "top for your classes, so a few hundred images can be enough.\n\n"
    "- **Feature extraction**: the base is **frozen** (its weights never change); only the new head learns.\n"
    "- **Fine-tuning**, in two phases: first the new head learns with the base frozen, as above (a random head's large "
    "early errors would otherwise flow into the pretrained layers and wreck them); then the top layers of the base are "
    f"unfrozen and training continues at a {FINE_TUNE_RATE_DIVISOR}× lower learning rate, so they adjust gently. The "
    "learning curves mark where the second phase starts.\n\n"
    "Below, both are measured against the same network trained **from scratch** on the same small data."
)


@st.cache_data(max_entries=3, show_spinner="Building the base (random weights, nothing is downloaded)…")
def cached_imagenet_base(base_model: str):
    return imagenet_base(base_model)


def experiment_form(conv_layers: int) -> dict:
    """The small target dataset and how much of the base to fine-tune."""
    titles = dataset_titles([info for info in list_datasets(ui.registry().root) if info.available])
    names = list(titles)
    left, middle, right = st.columns(3)
    dataset = left.selectbox("Small target dataset", names, index=names.index("shapes") if "shapes" in names else 0,
                             key="transfer_dataset", persist_state="session", bind="query-params",
                             format_func=titles.get)
    subset = middle.select_slider("Training images", SUBSETS, 300, key="transfer_subset", persist_state="session",
                                  bind="query-params")
    epochs = right.slider("Epochs", 5, 30, 20, key="transfer_epochs", persist_state="session", bind="query-params")
    ui.reset_if_invalid("transfer_fine_tune", lambda value: 1 <= value <= conv_layers, 1)
    fine_tune = st.slider("Base convolutions to fine-tune, counted from the top", 1, max(2, conv_layers), 1,
                          key="transfer_fine_tune", persist_state="session", bind="query-params",
                          disabled=conv_layers < 2,
                          help="Unfreezing all of them keeps only the starting point: pretrained instead of random weights.")
    return {"dataset": dataset, "train_subset": subset, "epochs": epochs, "fine_tune_layers": fine_tune}


st.header("1. An ImageNet base")
application = st.selectbox("ImageNet base", APPLICATION_BASES, key="transfer_application", persist_state="session",
                           bind="query-params")
with ui.guard():
    base_facts = cached_imagenet_base(application)
st.markdown(f"The classic way is a base trained on ImageNet's photos, like {base_facts.title}. Without its top it has "
            f"**{base_facts.parameters:,} weights**: at 4 bytes each, a download of about **{base_facts.megabytes:.0f} MB** "
            f"(`{base_facts.file_name}`), made once and then cached in `~/.keras/models/`.")
st.caption(preprocessing_note(application))
available, where = weights_status(application, IMAGENET_CHECK_SHAPE)  # a file's presence, or a host's answer
if available:
    here = cached_weights_path(application, IMAGENET_CHECK_SHAPE).is_file()
    st.success(f"The ImageNet weights of {base_facts.title} are {'on this machine' if here else 'downloadable now'}: "
               "pick it on the **Train** page (Transfer).")
else:
    st.warning(f"The ImageNet weights for {base_facts.title} are not on this server and cannot be downloaded now. "
               "Without internet, use a CNN you trained here as the base instead: section 2 below.")
    with st.expander("For the teacher: adding the pretrained weights without internet"):
        st.markdown(where)

st.header("2. The offline way: a CNN from the registry as the base")
registry = ui.registry()
cards = registry.list_entries(family="cnn")
full_data = config_training_images(BASE_CNN)
base_panel = st.container()
if BASE_CNN.key not in {card.key for card in cards} and any(  # a CNN on all the images is here: the button waits
        card.dataset.name == BASE_CNN.dataset and (card.dataset.train_images or 0) >= full_data for card in cards):
    base_panel = st.expander("Or train the lesson's own base CNN")
with base_panel:
    ui.training_panel({"base CNN": BASE_CNN}, key="transfer_base",
                      button_label=f"Train a base CNN on all {full_data:,} Fashion-MNIST training images")
if not cards:
    st.info("There is no trained CNN to use as a base yet: press the button above, or train one on the **Train** page.")
    st.stop()
keys = [card.key for card in cards]
if BASE_CNN.key in keys and not st.session_state.get("transfer_named_base_chosen"):  # just trained: the lesson's base
    st.session_state["transfer_named_base_chosen"] = True
    st.session_state["transfer_base"] = BASE_CNN.key
base_key = ui.model_picker("Base CNN", "transfer_base", cards, index=keys.index(default_base_key(cards, BASE_CNN)),
                           help="Chosen first: the CNN above if it is trained, else the one trained on the most images.")
with ui.guard():
    base_config, base_shape = base_architecture(base_key, registry)
    base_entry = registry.get(base_key)
trained_on = base_entry.card.dataset.train_images
st.caption(f"This base learned from {trained_on:,} {dataset_title(base_entry.card)} images of {base_shape[0]}×{base_shape[1]}×{base_shape[2]} "
           f"and scores {base_entry.test_accuracy:.1%} there. The target images are converted to that shape.")

st.header("3. The experiment: three networks, the same small data")
form = experiment_form(len(base_config.filters))
with ui.guard():
    configs = transfer_experiment(base_key, **form, registry=registry)
    info = dataset_info(form["dataset"], ui.registry().root)
    available_images = info.training_and_validation(configs[SCRATCH].validation_fraction)[0]  # the whole training part
if available_images < form["train_subset"]:  # the slider read 300 above a dataset of 120 training photos
    st.caption(f"{info.title} has {available_images:,} training images, fewer than the {form['train_subset']:,} asked for: "
               "the three networks learn from all of them.")
if form["dataset"] == base_config.dataset:
    st.warning(f"The target is the base's own dataset ({dataset_title(base_entry.card)}): the base has already seen "
               "these classes, so transfer wins trivially. Pick a *different* dataset for an honest test.")
ui.training_panel(configs, key="transfer_train",
                  button_label=f"Train the {sum(not registry.has(config.key) for config in configs.values())} missing network(s)")

rows = experiment_rows(configs, registry)
st.dataframe(experiment_table(rows), hide_index=True,
             column_config={column: st.column_config.TextColumn(alignment="right") for column in TABLE_COLUMNS[2:]})
verdict = transfer_verdict(configs, registry)
if verdict is not None:
    done = {row["network"]: row for row in rows}
    scratch, frozen = done[SCRATCH], done[FEATURE_EXTRACTION]
    images = registry.get(configs[SCRATCH].key).card.dataset.train_images
    st.plotly_chart(charts.scores_figure(list(done), [row["test accuracy"] for row in done.values()],
                                         f"Test accuracy on {info.title} with {images:,} training images",
                                         "test accuracy (fraction correct)", baseline=1 / len(info.class_names)), width="stretch")
    best = max(row["test accuracy"] for row in done.values())
    if best < 0.8:
        shape = registry.get(configs[SCRATCH].key).card.input_shape
        st.caption(f"All three stay far from 100% (the best {percent(best)}; answering at random scores "
                   f"{percent(1 / len(info.class_names))}): {images:,} images of {shape[0]}×{shape[1]} pixels"
                   f"{' in grayscale' if shape[2] == 1 else ''} are little to learn from, which is when transfer learning "
                   "can help. The lesson is in the differences between the three, not in their level.")
    histories = {name: registry.get(configs[name].key).history for name in EXPERIMENT_NAMES}
    st.plotly_chart(charts.history_figure(histories, "accuracy", title="Learning curves"), width="stretch")
    if guessing := experiment_guessing_note({name: registry.get(configs[name].key).card for name in EXPERIMENT_NAMES}):
        st.warning(guessing)  # from scratch at chance, the others just above it: "beat" needs that said
    frozen_share = frozen["frozen parameters"] / frozen["total parameters"]
    st.markdown(
        verdict.headline()
        + f" After {verdict.early_epoch} epochs the validation accuracy is "
        + ", ".join(f"{percent(accuracy)} ({name})" for name, accuracy in verdict.early_validation_accuracy.items())
        + (": a pretrained base also learns **faster**." if verdict.learns_faster else
           f" (on {verdict.validation_images:,} validation images): a pretrained base does not clearly learn faster here.")
    )
    for name, comparison in verdict.comparisons.items():
        st.markdown(f"**{name} vs {SCRATCH}**: {comparison.statement}")
    st.caption("Each network was trained once, with one seed. The interval and McNemar's test cover which test images "
               "happened to be drawn, not the luck of the random start and batch order: for that, train each network "
               f"with other seeds (Compare, *train each {REPEATS} times*).")
    st.markdown(
        f"Feature extraction trains **{frozen['trainable parameters']:,}** parameters and keeps **{frozen['frozen parameters']:,}** "
        f"frozen; from scratch all **{scratch['trainable parameters']:,}** are learned from {images:,} images"
        + (f" (its other {scratch['frozen parameters']:,} numbers are batch norm's running averages: counted with the "
           "weights, never learned by gradient descent)" if scratch["frozen parameters"] else "")
        + ". In this "
        f"CNN the frozen convolutions hold {frozen_share:.0%} of the weights"
        + (": most sit in the Dense layers after Flatten. " if frozen_share < 0.5 else ". ")
        + f"{base_facts.title}'s base alone has {base_facts.parameters:,} weights, "
        "all frozen in feature extraction.\n\n"
        "Transfer helps most when data is scarce and the base's features fit the new images; with plenty of data, training "
        "from scratch catches up (try more training images)."
        + ("" if verdict.against_scratch() else
           f" Here the base did not clearly help: what it learned from {dataset_title(base_entry.card)} may not fit "
           f"{info.title} at {base_shape[0]}×{base_shape[1]}×{base_shape[2]}.")
    )

ui.show_code(transfer_experiment, label="Show the code: the three configurations of the experiment")
