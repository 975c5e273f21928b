"""Transfer learning: reuse a network trained on many images for a new task with few, and measure the gain."""

import streamlit as st

from core import charts, ui
from core.config import APPLICATION_BASES
from core.catalogue import dataset_info, list_datasets
from core.transfer import (BASE_CNN, EXPERIMENT_NAMES, FEATURE_EXTRACTION, SCRATCH, base_architecture, experiment_rows,
                           imagenet_weights_message, transfer_experiment, transfer_verdict)

SUBSETS = [100, 200, 300, 500, 1000, 2000]

ui.page_setup("Transfer learning")
st.title("Transfer learning")
st.markdown(
    "A network trained on tens of thousands of images has learned filters for edges, corners, curves and textures that "
    "are useful for *other* pictures too. **Transfer learning** keeps those layers (the *base*) and puts a new head on "
    "top for your classes, so a few hundred images can be enough.\n\n"
    "- **Feature extraction**: the base is **frozen** (its weights never change); only the new head learns.\n"
    "- **Fine-tuning**: the top layers of the base are unfrozen too and adjusted gently to the new images.\n\n"
    "Below, both are measured against the same network trained **from scratch** on the same small data."
)


def experiment_form(conv_layers: int) -> dict:
    """The small target dataset and how much of the base to fine-tune."""
    names = [info.name for info in list_datasets(ui.registry().root) if info.available]
    left, middle, right = st.columns(3)
    dataset = left.selectbox("Small target dataset", names, index=names.index("shapes") if "shapes" in names else 0,
                             key="transfer_dataset")
    subset = middle.select_slider("Training images", SUBSETS, 500, key="transfer_subset")
    epochs = right.slider("Epochs", 5, 30, 20, key="transfer_epochs")
    ui.reset_if_invalid("transfer_fine_tune", lambda value: 1 <= value <= conv_layers, 1)
    fine_tune = st.slider("Base convolutions to fine-tune, counted from the top", 1, max(2, conv_layers), 1,
                          key="transfer_fine_tune", disabled=conv_layers < 2,
                          help="Unfreezing all of them keeps only the starting point: pretrained instead of random weights.")
    return {"dataset": dataset, "train_subset": subset, "epochs": epochs, "fine_tune_layers": fine_tune}


st.header("1. An ImageNet base")
st.markdown("The classic way is a base trained on ImageNet's 1.4 million photos, like MobileNetV2. Its weights are a "
            "download of 10–60 MB, made once and then cached in `~/.keras/models/`.")
left, right = st.columns([2, 1])
application = left.selectbox("ImageNet base", APPLICATION_BASES, key="transfer_application")
if right.button("Check for ImageNet weights", key="transfer_check_button"):
    with st.spinner("Looking for the weights…"), ui.guard():
        message = imagenet_weights_message(application)
    if message:
        st.warning(message)
    else:
        st.success(f"The ImageNet weights of {application} are available: pick it on the **Train** page (Transfer).")

st.header("2. The offline way: a CNN from the registry as the base")
registry = ui.registry()
ui.training_panel({"base CNN": BASE_CNN}, key="transfer_base",
                  button_label="Train a base CNN on all 54,000 Fashion-MNIST images (about 2 minutes)")
cards = registry.list_entries(family="cnn")
if not cards:
    st.info("There is no trained CNN to use as a base yet: press the button above, or train one on the **Train** page.")
    st.stop()
keys = [card.key for card in cards]
base_key = ui.model_picker("Base CNN", "transfer_base", cards, index=keys.index(BASE_CNN.key) if BASE_CNN.key in keys else 0)
with ui.guard():
    base_config, base_shape = base_architecture(base_key, registry)
    base_entry = registry.get(base_key)
trained_on = base_entry.card.dataset.train_images
st.caption(f"This base learned from {trained_on:,} {base_config.dataset} images of {base_shape[0]}×{base_shape[1]}×{base_shape[2]} "
           f"and scores {base_entry.test_accuracy:.1%} there. The target images are converted to that shape.")

st.header("3. The experiment: three networks, the same small data")
form = experiment_form(len(base_config.filters))
with ui.guard():
    configs = transfer_experiment(base_key, **form, registry=registry)
    info = dataset_info(form["dataset"], ui.registry().root)
st.caption("Measured when this lesson was written, with the Fashion-MNIST base, 500 shapes images (grayscale 28×28, like the "
           "base), 20 epochs, three seeds: from scratch about 43%, feature extraction about +2 points, fine-tuning about "
           "+6 points. Grayscale shapes on noisy backgrounds are hard at 28×28: even 3,900 images reach only about 73%.")
if form["dataset"] == base_config.dataset:
    st.warning(f"The target is the base's own dataset ({form['dataset']}): the base has already seen these classes, so "
               "transfer wins trivially. Pick a *different* dataset (e.g. shapes) for an honest test.")
ui.training_panel(configs, key="transfer_train",
                  button_label=f"Train the {sum(not registry.has(config.key) for config in configs.values())} missing network(s)")

rows = experiment_rows(configs, registry)
st.dataframe([{**row, "test accuracy": None if row["test accuracy"] is None else f"{row['test accuracy']:.1%}"}
              for row in rows], hide_index=True, column_order=["network", "trained", "test accuracy", "gain over scratch (points)",
                                                               "trainable parameters", "frozen parameters", "training time (s)"])
verdict = transfer_verdict(configs, registry)
if verdict is not None:
    done = {row["network"]: row for row in rows}
    scratch, frozen = done[SCRATCH], done[FEATURE_EXTRACTION]
    st.plotly_chart(charts.scores_figure(list(done), [row["test accuracy"] for row in done.values()],
                                         f"Test accuracy on {info.title} with {form['train_subset']} training images",
                                         "test accuracy (fraction correct)", baseline=1 / len(info.class_names)), width="stretch")
    histories = {name: registry.get(configs[name].key).history for name in EXPERIMENT_NAMES}
    st.plotly_chart(charts.history_figure(histories, "accuracy", title="Learning curves"), width="stretch")
    st.markdown(
        f"Best here: **{verdict.best}**"
        + (f", {verdict.gain_over_scratch:+.1f} points over scratch." if verdict.gain_over_scratch is not None else ".")
        + f" After {verdict.early_epoch} epochs the validation accuracy is "
        + ", ".join(f"{accuracy:.0%} ({name})" for name, accuracy in verdict.early_validation_accuracy.items())
        + (": a pretrained base also learns **faster**." if verdict.learns_faster else ".") + "\n\n"
        f"Feature extraction trains **{frozen['trainable parameters']:,}** parameters and keeps **{frozen['frozen parameters']:,}** "
        f"frozen; from scratch all **{scratch['trainable parameters']:,}** are learned from {form['train_subset']} images. In this "
        "small CNN most weights sit in the Dense layer after Flatten, so freezing the convolutions freezes only a few percent; "
        "MobileNetV2's base alone has 2.26 million weights, all frozen in feature extraction.\n\n"
        "Transfer helps most when data is scarce and the base's features fit the new images; with plenty of data, training "
        "from scratch catches up (try 2,000 images)."
    )

ui.show_code(transfer_experiment, label="Show the code: the three configurations of the experiment")
