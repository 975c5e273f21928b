"""Inside the network: the filters a CNN learned, and what an image becomes on its way through the layers."""

import numpy as np
import streamlit as st

from core import charts, ui

SAMPLES = 6

ui.page_setup("Inside the network")
st.title("Inside the network")
st.markdown(
    "A convolutional network is not a black box. Its first layer is a set of small **filters** (3×3 grids of "
    "weights) that it *learned* — nobody set them by hand. Each filter slides over the image and makes a "
    "**feature map**: bright where the image matches the filter's pattern. Pooling then halves each map, and the "
    "next convolution looks for patterns *in the maps*. Layer by layer the image gets smaller and the channels "
    "more numerous, until what is left is a short list of \"is there a heel? a sleeve? a strap?\" signals."
)

cards = ui.registry().list_entries(family="cnn")
if not cards:
    st.info("There is no trained CNN yet. Train one on the **Train** page (choose *Convolutional (CNN)*, the "
            "*fast preview* preset takes under a minute), or run `python -m core warmup` in a terminal, then come back.")
    st.stop()


def inside_form(test_size: int) -> dict:
    """The image, the channel count, and the class / layer / channel to follow."""
    left, right = st.columns([3, 1])
    ui.reset_if_invalid("inside_index", lambda value: 0 <= value < test_size, 0)
    index = left.slider("Test image (index in the test set)", 0, test_size - 1, 0, key="inside_index")
    count = right.select_slider("Channels shown per layer", [4, 8, 16, 32, 64], 8, key="inside_channels")
    return {"index": index, "count": count}


best = max(range(len(cards)), key=lambda index: cards[index].test_accuracy or 0)
key = ui.model_picker("A trained CNN", "inside_model", cards, index=best)
with ui.guard():
    from core.inspection import feature_maps, first_layer_filters, layer_maps_for_images

    entry = ui.registry().get(key)
    config = entry.config
    model = ui.load_model(key)
    data = ui.load_dataset(config.dataset, image_size=config.image_size, color_mode=config.color_mode)
    evaluation = ui.load_evaluation(key)
class_names = list(data.class_names)

st.header("1. The filters it learned")
with ui.guard():
    filters = first_layer_filters(model)
size, _, channels_in, filter_count = filters.shape
st.markdown(f"The first convolution has **{filter_count} filters of {size}×{size}** weights"
            + (f", each looking at all {channels_in} colour channels (shown averaged)" if channels_in > 1 else "")
            + ". Red weights brighten the output, blue ones darken it: a filter that is red on one side and blue on "
              "the other is an **edge detector**, like the hand-made ones of the *Convolutions* lesson.")
st.plotly_chart(charts.filters_figure(filters), width="stretch")

st.header("2. The journey of an image")
form = inside_form(len(data.x_test))
image = data.x_test[form["index"]]
true_class, predicted = class_names[data.y_test[form["index"]]], class_names[evaluation.predicted[form["index"]]]
confidence = float(evaluation.probabilities[form["index"]].max())
left, right = st.columns([1, 4])
left.image(ui.displayable(image), caption=f"input {image.shape[0]}×{image.shape[1]}×{image.shape[2]}", width=140)
right.markdown(f"This is a **{true_class}**. The model says **{predicted}** ({confidence:.0%} sure)"
               + (" — right." if predicted == true_class else " — wrong! The maps below may show why."))
with ui.guard():
    maps = feature_maps(model, image)
st.markdown("Each layer's output has a shape **height × width × channels**. Convolutions add channels and (without "
            "padding) trim a border; 2×2 pooling halves height and width.")
for layer_name, layer_maps in maps:
    height, width, channels = layer_maps.shape
    st.markdown(f"**{layer_name}** · output shape **{height} × {width} × {channels}**")
    st.plotly_chart(charts.feature_maps_figure(layer_maps, layer_name, form["count"]), width="stretch")
flatten = next((layer for layer in entry.card.layers if layer.type == "Flatten"), None)
if flatten and maps:
    st.markdown(f"After the last layer, **Flatten** lays the {' × '.join(map(str, maps[-1][1].shape))} numbers out in one "
                f"row of {int(np.prod(maps[-1][1].shape)):,} values, and the dense layers decide the class from them.")

st.header("3. Why a shoe is recognised as a shoe")
st.markdown("Follow **one channel** of one layer across several test images of the same class. If the channel lights up "
            "in the same place on all of them, it has learned a part that class always has — and the dense layers "
            "learned to count on it.")
left, middle, right = st.columns(3)
ui.reset_if_invalid("inside_class", class_names.__contains__, class_names[-1])
chosen_class = left.selectbox("Class", class_names, index=len(class_names) - 1, key="inside_class")
layer_names = [name for name, _ in maps]
ui.reset_if_invalid("inside_layer", layer_names.__contains__, layer_names[0])
layer = middle.selectbox("Layer", layer_names, key="inside_layer")
class_index = class_names.index(chosen_class)
indices = np.flatnonzero(data.y_test == class_index)[:SAMPLES]
if not len(indices):
    st.info(f"The test set has no {chosen_class} images; pick another class.")
    st.stop()
with ui.guard():
    sample_maps, strength = layer_maps_for_images(model, data.x_test[indices], layer)
strongest = int(strength.argmax())
ui.reset_if_invalid("inside_channel", lambda value: 0 <= value < len(strength), strongest)
channel = right.slider("Channel", 0, len(strength) - 1, strongest, key="inside_channel")
st.image([ui.displayable(data.x_test[i]) for i in indices], width=110,
         caption=[f"#{i}: predicted {class_names[evaluation.predicted[i]]}" for i in indices])
st.plotly_chart(charts.heatmap_grid_figure([sample[..., channel] for sample in sample_maps], [f"#{i}" for i in indices],
                                           f"{layer}, channel {channel} on {len(indices)} {chosen_class} images",
                                           columns=SAMPLES), width="stretch")
if strength[channel] == 0:
    st.caption(f"Channel {channel} stays at zero for these images: its filter never fires on them (a *dead* channel).")
st.caption(f"In {layer}, channel {strongest} responds most strongly to {chosen_class} images on average.")
recall = float(evaluation.recall[class_index])
st.caption(f"On the whole test set the model finds {recall:.0%} of the {chosen_class} images.")

ui.show_code(first_layer_filters, feature_maps, label="Show the code: reading filters and feature maps out of a Keras model")
