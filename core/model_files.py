"""Model files made elsewhere: the checks a .keras file passes before it is registered, and loading it in safe mode.

Nothing here writes to the registry; `Registry.import_model` calls these, then publishes.
"""

import zipfile
from pathlib import Path

from core.archives import check_zip_entries
from core.errors import ModelFileError

MAX_IMPORT_BYTES = 500 * 1024 * 1024
MAX_COMPRESSION_RATIO = 100  # a .keras entry expanding more than this is a zip bomb (weights barely compress)
RATIO_CHECK_MIN_BYTES = 2**20  # smaller entries cannot do harm
MIN_INPUT_SIDE = 8  # pixels: a smaller input holds nothing of a photo
MAX_INPUT_ASPECT = 8  # a longer side more than 8 times the shorter one: a photo would be a line of pixels


def load_model_file(path: Path):
    """A .keras file as a Keras model, in safe mode (no custom code runs), checked to be an image classifier."""
    import keras

    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as error:
        raise ModelFileError(_import_failure_message(path, error)) from error
    check_image_classifier(path, model)
    return model


def read_model_file(path: Path) -> bytes:
    """The bytes of a candidate .keras file, refusing the obvious non-starters with a clear message."""
    if path.suffix.lower() in (".h5", ".hdf5"):
        raise ModelFileError(
            f"{path.name} is a legacy HDF5 (.h5) file. Only the Keras 3 `.keras` format is imported, because "
            f"it can be loaded in safe mode. Re-save it with `model.save('model.keras')` and import that."
        )
    if path.suffix.lower() != ".keras":
        raise ModelFileError(f"Only `.keras` model files can be imported. Received: {path.name}")
    if not path.is_file():
        raise ModelFileError(f"No such file: {path}")
    if path.stat().st_size > MAX_IMPORT_BYTES:
        raise ModelFileError(f"{path.name} is larger than {MAX_IMPORT_BYTES // 2**20} MB; that is not a classroom model.")
    data = path.read_bytes()
    if not zipfile.is_zipfile(path):
        raise ModelFileError(
            f"{path.name} is not a valid .keras file (a .keras file is a zip archive; this one is not, or it is truncated)."
        )
    _refuse_zip_bomb(path)
    return data


def _refuse_zip_bomb(path: Path):
    """Refuse a .keras archive whose entries would expand far beyond the file itself, before Keras reads them."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise ModelFileError(f"{path.name} is not a valid .keras file ({error}). Save the model again.") from error
    # Only the size limits: Keras reads a .keras file by entry name and skips unsafe paths whenever it unpacks one,
    # so extra entries named '../x' or '/x' are harmless (tests/robustness/test_model_files.py imports such a file).
    check_zip_entries(
        entries, ModelFileError, archive_name=path.name, contents="model weights", max_expanded_bytes=MAX_IMPORT_BYTES,
        max_compression_ratio=MAX_COMPRESSION_RATIO, ratio_check_min_bytes=RATIO_CHECK_MIN_BYTES,
    )


def check_image_classifier(path: Path, model):
    """Refuse models the pages cannot use: one (height, width, 1 or 3) image input a photo can fill, and class scores."""
    input_shape, output_shape = model.input_shape, model.output_shape
    image_input = (
        isinstance(input_shape, tuple) and len(input_shape) == 4 and input_shape[3] in (1, 3)
        and all(isinstance(size, int) and size > 0 for size in input_shape[1:3])
    )
    class_output = isinstance(output_shape, tuple) and len(output_shape) == 2 and isinstance(output_shape[1], int)
    if not (image_input and class_output):
        raise ModelFileError(
            f"{path.name} is not an image classifier this app can use: expected one input of shape (height, width, "
            f"1 or 3 channels) and one output of class scores. Received: input_shape={input_shape}, "
            f"output_shape={output_shape}"
        )
    height, width = input_shape[1:3]
    if min(height, width) < MIN_INPUT_SIDE or max(height, width) > MAX_INPUT_ASPECT * min(height, width):
        raise ModelFileError(
            f"{path.name} expects {height}x{width}-pixel images, which no photo can sensibly fill: this app takes models "
            f"whose input is at least {MIN_INPUT_SIDE} pixels a side and at most {MAX_INPUT_ASPECT}:1 between its "
            f"sides (28x28, 150x150, 224x224, ...). Received: input_shape={input_shape}"
        )


def _import_failure_message(path: Path, error: Exception) -> str:
    text = " ".join(str(error).split())  # Keras' messages span many lines; one line reads better on a page or a CLI
    if "safe_mode" in text or "Lambda" in text or "custom" in text.lower() or "Could not locate" in text:
        return (
            f"{path.name} was refused: it contains custom code (a Lambda layer or custom objects), which could run "
            f"arbitrary Python when loaded. Only models built from standard Keras layers can be imported. "
            f"Details: {text[:300]}"
        )
    return f"{path.name} could not be loaded as a Keras model ({type(error).__name__}: {text[:300]})."


def class_names_for(units: int, class_names: list[str] | None) -> list[str]:
    """The class names of an imported model: as given, or 'class 0', 'class 1', ... (two for one output unit).

    One output unit with more than two names is accepted: that is the classic Dense(1, activation='softmax')
    mistake, which the card's warnings then explain instead of the import hiding it.
    """
    if class_names is None:
        return [f"class {index}" for index in range(2 if units == 1 else units)]
    class_names = list(class_names)
    if (units == 1 and len(class_names) < 2) or (units > 1 and len(class_names) != units):
        expected = "at least 2 (one output unit)" if units == 1 else str(units)
        raise ModelFileError(
            f"The model has {units} output unit{'s' if units > 1 else ''}, so it needs {expected} class names, in output "
            f"order; {len(class_names)} were given. Received: class_names={class_names}"
        )
    return class_names


def zip_folder(folder: Path, target: Path):
    """Zip `folder` (its name kept as the top folder inside) into `target`."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, file.relative_to(folder.parent))
