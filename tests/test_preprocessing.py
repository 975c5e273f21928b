"""One preprocessing for training and prediction: a photo becomes the same model input in a folder dataset as on Predict.

Wide, tall, tiny and EXIF-rotated photos go into a zip; a real model is trained on the imported dataset; then each
photo's training array (from the dataset) and its Predict input (predict_file, with the model's card) must be equal.
"""

import io

import numpy as np
import pytest
from photos import encode, photo, photo_files, zip_bytes
from PIL import Image

from core.card import ModelCard
from core.config import TrainConfig
from core.datasets import load_dataset
from core.engines import train_and_publish
from core.imaging import CROP, PAD, PREPROCESSING, STRETCH, drawing_to_image, photo_to_input, prepare_image
from core.prediction import Prediction, predict_drawing, predict_file
from core.registry import Registry


def exif_rotated_jpeg(rng) -> bytes:
    """A photo stored sideways (300x200) with EXIF orientation 6: upright it is 200x300."""
    image = photo("angular", rng, (300, 200))
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92, exif=exif)
    return buffer.getvalue()


def large_cutout(rng) -> Image.Image:
    """A 2,400 x 2,100 photo with a transparent border: large enough to be reduced before it is prepared."""
    image = photo("round", rng, (2400, 2100)).convert("RGBA")
    alpha = np.zeros((2100, 2400), np.uint8)
    alpha[150:-150, 200:-200] = 255
    image.putalpha(Image.fromarray(alpha))
    return image


@pytest.fixture(scope="module")
def odd_photos():
    """{path in the zip: bytes}: a wide PNG, a tall JPEG, a tiny PNG, an EXIF-rotated JPEG and a large see-through PNG,
    among ordinary photos."""
    rng = np.random.default_rng(11)
    odd = {
        "round/wide.png": encode(photo("round", rng, (400, 100))),
        "round/tiny.png": encode(photo("round", rng, (20, 15))),
        "angular/tall.jpg": encode(photo("angular", rng, (90, 360)), "JPEG"),
        "angular/sideways.jpg": exif_rotated_jpeg(rng),
        "round/large-cutout.png": encode(large_cutout(rng)),  # reduced 2x after decoding (core.pixels), band by band
    }
    return odd, photo_files({"train": 8}, size=(160, 120), image_format="JPEG", split_folders=False, seed=3)


def test_a_photo_prepared_for_training_and_on_predict_is_the_same_array(registry_root, odd_photos):
    odd, ordinary = odd_photos
    registry = Registry(registry_root)
    from core.folders import import_zip

    report = import_zip(zip_bytes(ordinary | odd), registry.root)
    config = TrainConfig(dataset=report.name, image_size=40, color_mode="rgb", family="cnn", filters=(4,), hidden_units=(8,),
                         epochs=1, batch_size=8)
    entry = train_and_publish(registry, config)
    assert entry.card.preprocessing == PREPROCESSING == PAD
    model = registry.load_model(entry.key)
    data = load_dataset(report.name, image_size=40, color_mode="rgb", root=registry.root)
    training_arrays = np.concatenate([data.x_train, data.x_val, data.x_test])
    for name, content in odd.items():
        predicted = predict_file(model, entry.card, content, name, with_saliency=False)
        assert predicted.error is None and predicted.model_input.shape == (40, 40, 3)
        matches = [index for index, array in enumerate(training_arrays) if np.array_equal(array, predicted.model_input)]
        assert matches, f"{name}: the Predict input is not among the training arrays"
    sideways, _ = photo_to_input(odd["angular/sideways.jpg"], "sideways.jpg", (40, 40, 3))
    assert any("EXIF" in note for note in sideways.notes)
    upright = np.asarray(Image.open(io.BytesIO(odd["angular/sideways.jpg"])).rotate(-90, expand=True))
    assert upright.shape[:2] == (300, 200)  # stored 300 wide, upright 200 wide: padded left and right, not top and bottom
    columns = sideways.array.std(axis=(0, 2))
    assert columns[:4].max() < columns[16:24].mean()


def test_pad_keeps_the_shape_stretch_squashes_it_and_crop_cuts_it():
    canvas = Image.new("RGB", (300, 100), (230, 230, 230))
    from PIL import ImageDraw

    ImageDraw.Draw(canvas).ellipse((100, 5, 190, 95), fill=(20, 20, 20))  # a circle 90 pixels across

    def dark_box(array):
        rows, columns = np.nonzero(array[..., 0] < 128)
        return rows.max() - rows.min() + 1, columns.max() - columns.min() + 1

    padded = prepare_image(canvas, (60, 60, 3), method=PAD).array
    stretched = prepare_image(canvas, (60, 60, 3), method=STRETCH).array
    cropped = prepare_image(canvas, (60, 60, 3), method=CROP).array
    height, width = dark_box(padded)
    assert abs(height - width) <= 1 and height == pytest.approx(18, abs=1)  # round, and 90/300 of 60 pixels across
    height, width = dark_box(stretched)
    assert height > 2.5 * width  # 3x taller than wide: the circle became an egg
    height, width = dark_box(cropped)
    assert abs(height - width) <= 2 and height == pytest.approx(54, abs=2)  # the centre square: round, and large
    with pytest.raises(Exception, match="method must be one of"):
        prepare_image(canvas, (60, 60, 3), method="squash")


def test_a_drawing_is_cropped_to_its_ink_centred_and_inverted_for_a_fashion_model(trained_registry):
    from conftest import TINY_CNN

    pad = np.zeros((280, 280, 4), np.uint8)  # transparent paper
    pad[60:240, 40:60] = (0, 0, 0, 255)  # a vertical black stroke near the left edge
    image = drawing_to_image(pad)
    assert image.mode == "L" and image.size[0] == image.size[1]  # square around the ink, with MNIST's margin
    entry = trained_registry.get(TINY_CNN.key)
    predicted = predict_drawing(trained_registry.load_model(entry.key), entry.card, pad)
    seen = predicted.model_input[..., 0]
    assert seen.shape == (28, 28) and any(note.startswith("inverted") for note in predicted.notes)
    assert seen[:, :3].max() == 0 and seen[:3].max() == 0  # dark margins: light ink on black, like Fashion-MNIST
    columns = seen.mean(axis=0)
    assert 11 <= int(np.argmax(columns)) <= 16  # the stroke drawn at the left is centred
    assert (seen[5:23, 13:15] > 200).all()  # tall: it fills MNIST's 20-pixel box
    assert np.isclose(predicted.probabilities.sum(), 1.0)


def test_older_cards_say_how_their_photos_were_prepared(trained_registry):
    from conftest import TINY_CNN

    card = trained_registry.get(TINY_CNN.key).card
    assert card.preprocessing == PAD and ModelCard.from_dict(card.to_dict()) == card
    old = card.to_dict() | {"card_version": 2}
    del old["preprocessing"]
    assert ModelCard.from_dict(old).preprocessing == PAD  # Fashion-MNIST: photos on Predict were always padded
    old["dataset"] = old["dataset"] | {"name": "folder:0123456789ab"}
    assert ModelCard.from_dict(old).preprocessing == STRETCH  # folder photos were stretched before version 3


def test_a_binary_model_names_both_probabilities():
    prediction = Prediction("photo.jpg", probabilities=np.array([0.25, 0.75]), class_names=["horses", "humans"],
                            sigmoid_output=0.75)
    text = prediction.binary_explanation
    assert "p = 0.750 is the probability of **humans**" in text and "**horses** (label 0) is 1 − p = 0.250" in text
    assert text.endswith("so the answer is **humans**.")
    assert Prediction("x", probabilities=np.array([0.2, 0.3, 0.5]), class_names=list("abc")).binary_explanation is None
