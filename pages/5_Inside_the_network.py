"""Inside the network: the filters (or first weights) a network learned, and what an image becomes on its way through
the layers, each layer read after its nonlinearity."""

import numpy as np
import streamlit as st

from core import charts, ui
from core.config import PRESETS
from core.guide import percent, percent_sure, pretrained_start_note, with_article
from core.network_view import SAMPLES
from core.preload import inside_default

CLEAR_LEAD = 0.25  # a channel "sets a class apart" when it fires this much more on it (0.0299 against 0.0295 did not)

ui.page_setup("Inside the network")
st.title("Inside the network")
st.markdown("A trained network is not a black box: pick one, and see what its first layer learned and what an image "
            "becomes on its way through its layers.")
INTRODUCTIONS = {  # by the picked network's family: a dense network has no filters and no maps
    "dense": "A dense network looks at every pixel at once: each unit of its first layer has one weight per input "
             "number, and the layers after it mix those signals until the last one picks the class. A pattern it "
             "learned in one place of the image means nothing to it in another place: finding a pattern wherever it "
             "is, with small filters, is what a convolutional network adds.",
    "convolutional": "A convolutional network's first layer is a set of small **filters** (grids of weights, 3×3 in "
                     "the course's networks) that it *learned* — nobody set them by hand. Each filter slides over the "
                     "image and makes a **feature map**; after the ReLU it is high where the image matches the "
                     "filter's pattern and exactly 0 where it does not. Pooling then halves each map, and the next "
                     "convolution looks for patterns *in the maps*. Layer by layer the image gets smaller and the "
                     "channels more numerous, until what is left is a short list of \"is there a heel? a sleeve? a "
                     "strap?\" signals.",
}

cards = [card for card in ui.registry().list_entries() if card.config is not None]  # every family trained here
if not cards:
    preview = PRESETS["fast preview"]
    st.info(f"There is no trained network yet. Train one on the **Train** page (the *fast preview* preset, a small CNN "
            f"on {preview.train_subset:,} images for {preview.epochs} epochs, is the quickest start), or run "
            "`python -m core warmup` in a terminal, then come back.")
    st.stop()


def inside_form(labels, class_names) -> tuple[int, str]:
    """The test image's index (a kind, then which one of that kind) and the choice in words ("Trouser 3 of 1,000")."""
    kind_column, number_column = st.columns(2)
    ui.reset_if_invalid("inside_kind", lambda value: 0 <= value < len(class_names), 0)
    kind = kind_column.selectbox("Show a test image of", range(len(class_names)), format_func=class_names.__getitem__,
                                 key="inside_kind", persist_state="session", bind="query-params")
    of_kind = np.flatnonzero(labels == kind)
    ui.reset_if_invalid("inside_number", lambda value: 1 <= value <= len(of_kind), 1)
    number = number_column.number_input(f"Which one (1 to {len(of_kind):,})", 1, len(of_kind), 1, key="inside_number",
                                        persist_state="session", bind="query-params")
    return int(of_kind[number - 1]), f"{class_names[kind]} {number:,} of {len(of_kind):,}"


best = cards.index(inside_default(cards, ui.registry().root))  # the model the server preloaded (core.preload)
key = ui.model_picker("A trained network (CNN, dense or transfer)", "inside_model", cards, index=best)
with ui.guard():
    entry = ui.registry().get(key)
    view = ui.network_view(key)  # its first view is published with it: drawn without waiting for TensorFlow
    first = view.first_layer()
    evaluation = ui.load_evaluation(key)
config, class_names = entry.config, list(entry.card.class_names)

convolutional = first.convolutional
narrow = ui.on_a_phone()  # its grids 4 panels a row, fitted to the phone's width
st.markdown(INTRODUCTIONS["convolutional" if convolutional else "dense"])
st.header("1. The filters it learned" if convolutional else "1. What its first layer learned")
if convolutional:
    size, _, channels_in, filter_count = first.weights.shape
    st.markdown(f"The first convolution has **{filter_count} filters of {size}×{size}** weights"
                + (f", each looking at all {channels_in} colour channels (shown averaged)" if channels_in > 1 else "")
                + ". Red weights brighten the output, blue ones darken it: a filter that is red on one side and blue on "
                  "the other is an **edge detector**, like the hand-made ones of the *Convolutions* lesson.")
    st.plotly_chart(charts.filters_figure(first.weights, narrow=narrow), width="stretch")
else:
    weights = first.weights
    st.markdown(f"A dense network has no filters: each of the {weights.shape[-1]} units of **{first.name}** has one weight "
                f"for every input number ({' × '.join(map(str, weights.shape[:3]))} = {int(np.prod(weights.shape[:3])):,}). "
                "Drawn as images, red pixels push a unit up and blue ones push it down: whole-image templates, not "
                "small reusable patterns.")
    shown = min(16, weights.shape[-1])
    st.plotly_chart(charts.filters_figure(weights, count=shown,
                                          title=f"{first.name}: the weights of the first {shown} units"
                                          if shown < weights.shape[-1] else f"{first.name}: the weights of its {shown} units",
                                          narrow=narrow),
                    width="stretch")
start = first.initial_range
if config.family == "transfer":
    st.caption(pretrained_start_note(config, cards))
elif start:
    limit, fan_in, fan_out = start
    learner = "filter" if convolutional else "unit"
    st.caption(f"Before training these weights were random: Keras' default, glorot_uniform, drew each one between "
               f"−{limit:.3f} and +{limit:.3f} (√(6 / (inputs + outputs)) = √(6 / ({fan_in} + {fan_out}))). Had they all "
               f"started equal, every {learner} would get the same gradient at every step and stay identical; random "
               "starts break that tie, so each one can learn a different pattern.")

data = ui.test_images_or_note(config, "Sections 2 and 3 follow this model's test images")  # the filters above need none
if data is None:
    st.stop()

st.header("2. The journey of an image")
index, picked = inside_form(data.y_test, class_names)
image = data.x_test[index]
true_class, predicted = class_names[data.y_test[index]], class_names[evaluation.predicted[index]]
confidence = float(evaluation.probabilities[index].max())
left, right = st.columns([1, 4])
left.image(ui.displayable(image), width=140,
           caption=f"{picked} (test image #{index}) · input {image.shape[0]}×{image.shape[1]}×{image.shape[2]}")
right.markdown(f"This is **{with_article(true_class)}**. The model says **{predicted}** ({percent_sure(confidence)} sure)"
               + (" — right." if predicted == true_class else " — wrong! The maps below may show why."))
with ui.guard():
    activations = view.activations(index, image)
maps = [(activation.name, activation.values) for activation in activations if activation.values.ndim == 3]
if maps:
    st.markdown("Each layer's output has a shape **height × width × channels**. Convolutions add channels and (without "
                "padding) trim a border; 2×2 pooling halves height and width. Every map is read **after the layer's "
                "nonlinearity**; the line under each name says which tensor it is.")
    count = st.columns([1, 3])[0].select_slider("Channels shown per layer", [4, 8, 16, 32, 64], 8, key="inside_channels",
                                                persist_state="session", bind="query-params")
else:  # a dense network: no maps, and no channels to choose (the slider did nothing here)
    st.markdown("A dense network has no maps: each layer's output is one row of numbers, one per unit, read **after "
                "the layer's nonlinearity**; the line under each name says which tensor it is.")
relu = next((activation for activation in activations if activation.nonlinearity == "relu"), None)
if relu is not None:
    st.caption(f"ReLU keeps positive numbers and turns negative ones into 0: relu(x) = max(0, x). For this image "
               f"{np.mean(relu.values == 0):.0%} of the numbers {relu.name} passes on are exactly 0 — the patterns it "
               "did not find.")
flatten = maps and any(layer.type == "Flatten" for layer in entry.card.layers)
for activation in activations:
    if flatten and activation.values.ndim == 1:  # between the last map and the first dense layer, where it happens
        st.markdown(f"After the last map, **Flatten** lays the {' × '.join(map(str, maps[-1][1].shape))} numbers out "
                    f"in one row of {int(np.prod(maps[-1][1].shape)):,} values, and the dense layers decide the class "
                    "from them.")
        flatten = False
    shape = " × ".join(map(str, activation.values.shape))
    st.markdown(f"**{activation.name}** · output shape **{shape}**")
    st.caption(f"Shown: {activation.tensor}.")
    if activation.values.ndim == 3:
        st.plotly_chart(charts.feature_maps_figure(activation.values, activation.name, count, narrow=narrow),
                        width="stretch")
    else:
        st.plotly_chart(charts.activation_vector_figure(activation.values, activation.name), width="stretch")

heading = st.empty()  # names the class once it is chosen below
heading.header("3. Why an image is recognised as its class")
if not maps:
    st.info("A dense network has no feature maps to follow across images: its hidden units (above) look at the whole "
            "image at once. Pick a CNN to follow one channel.")
    st.stop()
st.markdown("Follow **one channel** of one layer across several test images of the same class. If it lights up in the "
            "same place on all of them, and less on the other classes, it has learned a part that sets this class "
            "apart: something the dense layers after it can count on.")
left, middle, right = st.columns(3)
ui.reset_if_invalid("inside_class", class_names.__contains__, class_names[-1])
chosen_class = left.selectbox("Class", class_names, index=len(class_names) - 1, key="inside_class",
                              persist_state="session", bind="query-params")
heading.header(f"3. Why an image is recognised as “{chosen_class}”")
layer_names = [name for name, _ in maps]
ui.reset_if_invalid("inside_layer", layer_names.__contains__, layer_names[0])
layer = middle.selectbox("Layer", layer_names, key="inside_layer", persist_state="session", bind="query-params")
class_index = class_names.index(chosen_class)
if not np.any(data.y_test == class_index):
    st.info(f"The test set has no {chosen_class} images; pick another class.")
    st.stop()
with ui.guard():
    contrast = view.contrast(data.x_test, data.y_test, class_index, layer)
indices, specific = contrast.indices, contrast.most_specific
ui.reset_if_invalid("inside_channel", lambda value: 0 <= value < len(contrast.class_mean), specific)
if st.session_state.get("inside_channel_for") != (key, class_index, layer):  # another model, class or layer: its own
    st.session_state["inside_channel"], st.session_state["inside_channel_for"] = specific, (key, class_index, layer)
channel = right.slider("Channel", 0, len(contrast.class_mean) - 1, specific, key="inside_channel",
                       persist_state="session")
st.image([ui.displayable(data.x_test[i]) for i in indices], width=110,
         caption=[f"#{i}: predicted {class_names[evaluation.predicted[i]]}" for i in indices])
st.plotly_chart(charts.heatmap_grid_figure([sample[..., channel] for sample in contrast.maps], [f"#{i}" for i in indices],
                                           f"{layer}, channel {channel} on {len(indices)} {chosen_class} images",
                                           columns=SAMPLES, narrow=narrow), width="stretch")
nonlinearity = next(activation.nonlinearity for activation in activations if activation.name == layer)
if contrast.class_mean[channel] == 0 and nonlinearity == "relu":
    st.caption(f"Channel {channel} stays at zero for these images: its filter never fires on them (a *dead* channel).")
lead = contrast.class_mean[specific] - contrast.other_mean[specific]
means = (f"{contrast.class_mean[specific]:#.3g} on these {len(indices)} {chosen_class} images against "
         f"{contrast.other_mean[specific]:#.3g} on {contrast.other_count} images of the other classes ({SAMPLES} of each)")
st.caption(f"In {layer}, channel {specific} sets {chosen_class} apart most: its mean activation is {means}."
           if lead > CLEAR_LEAD * contrast.other_mean[specific] else
           f"In {layer}, no channel clearly sets {chosen_class} apart: the most specific one, channel {specific}, "
           f"averages {means}, less than {CLEAR_LEAD:.0%} more. On so few images that is no pattern to trust."
           if lead > 0 else
           f"No channel of {layer} fires more on these {chosen_class} images than on the other classes' "
           f"({contrast.other_count} images, {SAMPLES} of each): this layer's patterns are shared by all of them.")
found, of_class = int(evaluation.confusion[class_index, class_index]), int(evaluation.confusion[class_index].sum())
st.caption(f"On the whole test set the model finds {found:,} of the {of_class:,} {chosen_class} images "
           f"({percent(found / of_class)}).")

ui.show_code("core.inspection:first_layer_filters", "core.activations:layer_activations", label="Show the code: reading filters and activations out of a Keras model")
