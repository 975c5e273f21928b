"""Train: move sliders, press Train, watch the curves. Trained settings come back instantly from the registry."""

import dataclasses

import streamlit as st

from core import ui
from core.config import APPLICATION_BASES, FINE_TUNE_RATE_DIVISOR, PRESETS, REGISTRY_BASE_PREFIX, Augmentation, TrainConfig
from core.catalogue import dataset_titles, list_datasets
from core.course import (CLASSIC_CODE_NOTES, DROPOUT, PRESET_LESSONS, config_training_images, preset_rows,
                         steps_per_epoch, within_the_data)
from core.estimates import AUTO_TRAIN_IMAGE_EPOCHS, estimated_images_seen
from core.guide import counted, no_better_than_guessing, title_for
from core.tables import markdown_table

SUBSETS = [500, 1000, 2000, 5000, 10000, 20000, "all"]
RATES = [0.0001, 0.0003, 0.001, 0.003, 0.005, 0.01, 0.03, 0.1]

ui.page_setup("Train")
st.title("Train a network")
st.caption("Pick settings in the sidebar (on a phone, the **»** at the top left opens it) and press **Train**. "
           "Training runs in the background: move sliders, switch pages and come back — nothing is lost. Settings that "
           "were trained before show their result at once.")


def apply_preset():
    """Set every sidebar widget to the chosen preset's value."""
    if st.session_state.train_preset is None:
        return
    preset = PRESETS[st.session_state.train_preset]
    st.session_state.update({
        "train_family": preset.family, "train_subset": preset.train_subset or "all", "train_epochs": preset.epochs,
        "train_batch_size": preset.batch_size, "train_units": preset.hidden_units[0], "train_dense_layers": len(preset.hidden_units),
        "train_conv_blocks": len(preset.filters), "train_first_filters": preset.filters[0], "train_kernel_size": preset.kernel_size,
        "train_filter_growth": "same" if len(preset.filters) > 1 and len(set(preset.filters)) == 1 else "double",
        "train_padding": preset.padding, "train_batch_norm": preset.batch_norm, "train_dropout": preset.dropout_rate,
        "train_learning_rate": preset.learning_rate, "train_optimizer": preset.optimizer, "train_schedule": preset.lr_schedule,
        "train_augment": False, "train_stop_toggle": False, "train_early_toggle": False, "train_seed": preset.seed,
    })


def train_form() -> TrainConfig:
    """The sidebar's widgets, read into one TrainConfig: the data, the network, the training, the rare ones folded."""
    sidebar = st.sidebar
    preset = sidebar.selectbox("Preset", list(PRESETS), index=None, placeholder="Choose a preset…", key="train_preset",
                               persist_state="session",
                               on_change=apply_preset, help="Sets every slider below to a course network or a fast "
                               "recipe; the table under *Presets* says which lesson each one reproduces.")
    preset_note = sidebar.empty()  # the preset's lesson, or that the settings have left it
    sidebar.markdown("#### The data")
    available = [info for info in list_datasets(ui.registry().root) if info.available]
    datasets, titles = [info.name for info in available], dataset_titles(available)
    dataset = sidebar.selectbox("Dataset", datasets, key="train_dataset",
                                persist_state="session", format_func=titles.get)
    subset = sidebar.select_slider("Training images", SUBSETS, value="all", key="train_subset", persist_state="session",
                                   help="A stratified subset trains faster; the test set is always the full one.")
    subset_note = sidebar.empty()  # says so when the dataset holds fewer images than chosen
    fields = {"dataset": dataset, "train_subset": None if subset == "all" else subset}
    with sidebar.expander("Augmentation"):
        if st.toggle("Augmentation", key="train_augment", persist_state="session"):
            fields["augmentation"] = Augmentation(
                rotation_range=st.slider("Rotation (degrees)", 0, 45, 15, key="train_rotation",
                                         persist_state="session"),
                width_shift_range=st.slider("Shift (fraction)", 0.0, 0.3, 0.1, key="train_shift",
                                            persist_state="session"),
                height_shift_range=st.session_state.get("train_shift", 0.1),
                zoom_range=st.slider("Zoom (fraction)", 0.0, 0.3, 0.1, key="train_zoom", persist_state="session"),
                horizontal_flip=st.checkbox("Horizontal flip", True, key="train_flip", persist_state="session"),
            )
    sidebar.markdown("#### The network")
    family = fields["family"] = sidebar.radio("Network", ["dnn", "cnn", "transfer"], index=1, horizontal=True, key="train_family",
                                              persist_state="session",
                                              format_func={"dnn": "Dense (DNN)", "cnn": "Convolutional (CNN)",
                                                           "transfer": "Transfer"}.get)
    if family == "cnn":
        blocks = sidebar.slider("Convolution blocks (conv + 2×2 pool)", 1, 4, 2, key="train_conv_blocks",
                                persist_state="session")
        first = sidebar.select_slider("Filters in the first block", [8, 16, 32, 64], 32, key="train_first_filters",
                                      persist_state="session")
    if family == "transfer":
        trained_bases = {f"{REGISTRY_BASE_PREFIX}{card.key}": f"{card.title} (trained here"
                         + (", no better than guessing)" if no_better_than_guessing(card) else ")")  # listed last
                         for card in sorted(ui.registry().list_entries(family="cnn"), key=no_better_than_guessing)}
        fields["base_model"] = sidebar.selectbox("Pretrained base", [*APPLICATION_BASES, *trained_bases], key="train_base_model",
                                                 persist_state="session",
                                                 format_func=lambda base: trained_bases.get(base, base),
                                                 help="ImageNet bases need their weights (online once); registry CNNs work offline.")
        fields["fine_tune_layers"] = sidebar.slider(
            "Layers to fine-tune (0 = feature extraction)", 0, 20, 0, key="train_fine_tune", persist_state="session",
            help="0 keeps the whole base frozen. Above 0, training runs in two phases: the first half of the epochs trains "
                 "the new head with the base frozen, the rest also train this many top layers of the base, at the "
                 f"learning rate ÷ {FINE_TUNE_RATE_DIVISOR}.")
    units = sidebar.select_slider("Units per dense layer", [16, 32, 64, 128, 256, 512], 128, key="train_units",
                                  persist_state="session")
    with sidebar.expander("More network settings"):
        if family == "cnn":
            growth = st.radio("Filters in later blocks", ["double", "same"], horizontal=True, key="train_filter_growth",
                              persist_state="session",
                              format_func={"double": "double each block", "same": "same in every block"}.get)
            fields["filters"] = tuple(first * (2**block if growth == "double" else 1) for block in range(blocks))
            fields["kernel_size"] = st.select_slider("Kernel size", [3, 5], 3, key="train_kernel_size",
                                                     persist_state="session")
            fields["padding"] = st.radio("Padding", ["valid", "same"], horizontal=True, key="train_padding",
                                         persist_state="session")
            fields["batch_norm"] = st.checkbox("Batch normalisation", key="train_batch_norm", persist_state="session")
        fields["hidden_units"] = tuple([units] * st.slider("Dense hidden layers", 1, 3, 1, key="train_dense_layers",
                                                           persist_state="session"))
        fields["dropout_rate"] = st.slider("Dropout", 0.0, 0.7, 0.0, 0.05, key="train_dropout",
                                           persist_state="session", help=DROPOUT)
        if fields["dropout_rate"]:
            st.caption(CLASSIC_CODE_NOTES["dense before dropout"])
    sidebar.markdown("#### The training")
    fields["epochs"] = sidebar.slider("Epochs", 1, 30, 5, key="train_epochs", persist_state="session")
    fields["learning_rate"] = sidebar.select_slider("Learning rate", RATES, 0.001, key="train_learning_rate",
                                                    persist_state="session")
    with sidebar.expander("More training settings"):
        fields["optimizer"] = st.selectbox("Optimizer", ["adam", "sgd", "rmsprop"], key="train_optimizer",
                                           persist_state="session")
        fields["lr_schedule"] = st.radio("Learning-rate schedule", ["constant", "one_cycle"], horizontal=True,
                                         key="train_schedule",
                                         persist_state="session",
                                         help="one_cycle warms the rate up to the value above, then anneals it to almost "
                                              "0: often the same accuracy in fewer epochs.")
        fields["batch_size"] = st.select_slider("Batch size", [16, 32, 64, 128, 256], 32, key="train_batch_size",
                                                persist_state="session")
        if st.toggle("Stop at a target accuracy", key="train_stop_toggle", persist_state="session"):
            fields["stop_at_accuracy"] = st.slider("Target training accuracy", 0.80, 0.99, 0.90, 0.01, key="train_stop_at",
                                                   persist_state="session")
            st.caption(CLASSIC_CODE_NOTES["callback"])
        if st.toggle("Early stopping on validation loss", key="train_early_toggle", persist_state="session"):
            fields["early_stopping_patience"] = st.slider("Patience (epochs)", 1, 5, 2, key="train_patience",
                                                          persist_state="session")
        fields["seed"] = int(st.number_input("Seed", 0, 9999, 0, key="train_seed", persist_state="session"))
    config = within_the_data(TrainConfig(**fields), ui.registry().root)
    if preset:
        as_preset = within_the_data(dataclasses.replace(PRESETS[preset], dataset=dataset), ui.registry().root)
        preset_note.caption(PRESET_LESSONS[preset] if as_preset.key == config.key else
                            f"Changed since choosing *{preset}*: these settings are your own network now.")
    if config.train_subset != fields["train_subset"]:
        subset_note.caption(f"This dataset has {config_training_images(config, ui.registry().root):,} training images: "
                            "all of them are used.")
    return config


def auto_train_form(config: TrainConfig, info) -> bool:
    """The auto-train toggle; True when this small configuration should start without a click."""
    small = estimated_images_seen(config, info) <= AUTO_TRAIN_IMAGE_EPOCHS and config.family != "transfer"
    auto = st.toggle("Auto-train small configurations when I change a slider", key="train_auto",
                     persist_state="session",
                     help=f"Only when training images × epochs ≤ {AUTO_TRAIN_IMAGE_EPOCHS:,} (a few seconds).")
    st.write("This configuration has not been trained yet.")
    return auto and small


config = train_form()
with ui.guard():
    from core.catalogue import dataset_info, input_shape_for  # noqa: E402  (dataset checks need no TensorFlow)
    from core.lint import in_page_words, preflight

    info = dataset_info(config.dataset, ui.registry().root)
    title = title_for(config, ui.registry())  # a registry base and an imported dataset by their own titles
    st.subheader(title)
    for warning in preflight(config, ui.registry().root):
        st.warning(in_page_words(warning))


images = config_training_images(config, ui.registry().root)
steps = steps_per_epoch(images, config.batch_size)
st.caption(f"One epoch shows the network each of its {images:,} training images once, in batches of {config.batch_size}: "
           f"⌈{images:,} ÷ {config.batch_size}⌉ = {counted(steps, 'step')} per epoch, each one weight update, so "
           + (f"{config.epochs} epochs make" if config.epochs != 1 else "1 epoch makes")
           + f" {counted(steps * config.epochs, 'update')}.")

entries = ui.training_panel({title: config}, key="train_start", beside_button=lambda: auto_train_form(config, info))
ui.trainings_under_way([config.key])
if entries:
    entry = entries[title]
    st.success("Trained just now." if ui.trained_here(entry.key) else
               f"Trained before ({entry.card.created[:16].replace('T', ' ')} UTC): shown from the registry, no training needed.")
    ui.trained_model(entry)
with st.expander("Presets: which lesson's network each one reproduces"):
    shape = input_shape_for(info, config.image_size, config.color_mode)
    st.caption(f"Parameters computed for {config.dataset} images of {' × '.join(map(str, shape))} and "
               f"{len(info.class_names)} classes.")
    st.markdown(markdown_table([{**row, "parameters": "n/a" if row["parameters"] is None else f"{row['parameters']:,}"}
                                for row in preset_rows(shape, len(info.class_names))]))
ui.show_code(f"core.models:build_{config.family}", "core.training:train", TrainConfig,  # read, not imported
             label="Show the code: this network, its training, and the configuration that becomes the registry key")
