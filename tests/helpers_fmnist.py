"""Test helpers: Fashion-MNIST slices read from the Debian IDX files, and tiny Keras models."""

import gzip
from pathlib import Path

import numpy as np
import pytest

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
CLASS_NAMES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]


def read_idx(path, count):
    """Read the first `count` items of a gzipped IDX file (big-endian header, uint8 data)."""
    with gzip.open(path, "rb") as file:
        magic = file.read(4)
        assert magic[:3] == b"\x00\x00\x08", f"not an unsigned-byte IDX file: {path}"
        dimensions = [int.from_bytes(file.read(4), "big") for _ in range(magic[3])]
        count = min(count, dimensions[0])
        item_size = int(np.prod(dimensions[1:], dtype=np.int64))
        data = np.frombuffer(file.read(count * item_size), dtype=np.uint8)
    return data.reshape([count] + dimensions[1:])


def load_fashion_mnist(split, count, classes=None):
    """First `count` images (N, 28, 28, 1) uint8 and int64 labels, optionally of some classes only.

    With `classes`, labels are renumbered 0..len(classes)-1 in the order given.
    """
    image_file, label_file = (FASHION_MNIST_DIR / name for name in FILES[split])
    if not image_file.exists():
        pytest.skip(f"Fashion-MNIST not found in {FASHION_MNIST_DIR}: apt-get install dataset-fashion-mnist")
    read_count = count if classes is None else count * 10 // len(classes) + 500
    images = read_idx(image_file, read_count)[..., np.newaxis]
    labels = read_idx(label_file, read_count).astype(np.int64)
    if classes is not None:
        new_label = np.full(10, -1, dtype=np.int64)
        new_label[list(classes)] = np.arange(len(classes))
        keep = new_label[labels] >= 0
        images, labels = images[keep], new_label[labels[keep]]
    return images[:count], labels[:count].astype(np.int64)


def small_cnn(input_shape=(28, 28, 1), num_classes=10):
    """Rescaling -> conv_1 -> pool_1 -> conv_2 -> pool_2 -> Flatten -> Dense head, like the project's CNNs."""
    from tensorflow import keras
    from tensorflow.keras import layers

    inputs = keras.Input(shape=input_shape)
    x = layers.Rescaling(1 / 255, name="rescale")(inputs)
    x = layers.Conv2D(8, 3, activation="relu", name="conv_1")(x)
    x = layers.MaxPooling2D(name="pool_1")(x)
    x = layers.Conv2D(16, 3, activation="relu", name="conv_2")(x)
    x = layers.MaxPooling2D(name="pool_2")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = _head(x, num_classes)
    return keras.Model(inputs, outputs, name="small_cnn")


def small_dnn(input_shape=(28, 28, 1), num_classes=10):
    """Rescaling -> Flatten -> Dense(32) -> Dense head: a model without convolutions."""
    from tensorflow import keras
    from tensorflow.keras import layers

    inputs = keras.Input(shape=input_shape)
    x = layers.Rescaling(1 / 255, name="rescale")(inputs)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(32, activation="relu", name="dense_1")(x)
    outputs = _head(x, num_classes)
    return keras.Model(inputs, outputs, name="small_dnn")


def fit_briefly(model, x_train, y_train, epochs=2, seed=0):
    """Compile with the loss that matches the head and fit for a couple of epochs."""
    from tensorflow import keras

    keras.utils.set_random_seed(seed)
    binary = model.output_shape[-1] == 1
    model.compile(
        optimizer=keras.optimizers.Adam(0.003),
        loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(x_train.astype("float32"), y_train, epochs=epochs, batch_size=32, verbose=0)
    return model


def _head(x, num_classes):
    """Dense(1, sigmoid) for two classes, Dense(n, softmax) for more."""
    from tensorflow.keras import layers

    if num_classes == 2:
        return layers.Dense(1, activation="sigmoid", name="output")(x)
    return layers.Dense(num_classes, activation="softmax", name="output")(x)
