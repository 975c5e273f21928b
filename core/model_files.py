"""Model files: the checks a .keras file made elsewhere passes before it is registered, loading it in safe mode, and
the note this app's own .keras exports carry.

An export holds, beside Keras' entries, `cnnclassroom/entry.json`: the model's card and training history, so that
importing it elsewhere keeps its class names, title and how photos are prepared (core.exchange). Keras reads a .keras
file by entry name and ignores the note. Nothing here writes to the registry; `Registry.import_model` calls these,
then publishes.
"""

import contextlib
import hashlib
import json
import math
import os
import shutil
import tempfile
import threading
import uuid
import zipfile
from pathlib import Path

from core.archives import check_zip_entries
from core.errors import ModelFileError

MAX_IMPORT_BYTES = 500 * 1024 * 1024
MAX_COMPRESSION_RATIO = 100  # a .keras entry expanding more than this is a zip bomb (weights barely compress)
RATIO_CHECK_MIN_BYTES = 2**20  # smaller entries cannot do harm
MIN_INPUT_SIDE = 8  # pixels: a smaller input holds nothing of a photo
MAX_INPUT_ASPECT = 8  # a longer side more than 8 times the shorter one: a photo would be a line of pixels
WEIGHTS_ENTRY = "model.weights.h5"
VARIABLE_MARGIN_BYTES = 2**20  # variables a file need not hold (a seed generator's state, ...)
MAX_LAYER_OUTPUT_BYTES = 64 * 2**20  # one layer's output for one photo; VGG16's largest is 12 MB
MAX_ALL_OUTPUTS_BYTES = 512 * 2**20  # every layer's output for one photo (Inside the network shows them); ResNet50: 142 MB

ENTRY_NOTE = "cnnclassroom/entry.json"  # {"card": card.json's content, "history": [...]}
MAX_NOTE_BYTES = 4 * 2**20  # a card and a few hundred epochs take a few kilobytes
EXPORT_SUFFIXES = {"keras": ".keras", "savedmodel": ".zip", "tflite": ".tflite"}

_budget = threading.local()  # the variable bytes the file being loaded on this thread may still create


def load_model_file(path: Path):
    """A .keras file as a Keras model, in safe mode (no custom code runs), checked to be an image classifier."""
    from core.backend import keras

    with _variable_budget(path.name, stored_weight_bytes(path)) as refusal:
        try:
            model = keras.saving.load_model(path, safe_mode=True, compile=False)
        except Exception as error:  # Keras wraps errors raised while it builds layers: the refusal is kept aside
            raise ModelFileError(refusal.get("message") or _import_failure_message(path, error)) from error
    check_image_classifier(path, model)
    check_output_sizes(path, model)
    return model


def stored_weight_bytes(path: Path) -> int:
    """The bytes of weights a .keras file holds, read from its weights file's headers (no weight is read)."""
    import h5py

    with tempfile.TemporaryDirectory(prefix="cnnclassroom-weights-") as folder:
        try:
            with zipfile.ZipFile(path) as archive:
                if WEIGHTS_ENTRY not in archive.namelist():
                    return 0
                with archive.open(WEIGHTS_ENTRY) as source, open(Path(folder) / WEIGHTS_ENTRY, "wb") as target:
                    shutil.copyfileobj(source, target, 2**20)
            sizes = []
            with h5py.File(Path(folder) / WEIGHTS_ENTRY, "r") as weights:
                # The bytes each weight really stores (a header can declare a huge weight that holds nothing).
                weights.visititems(lambda name, item: sizes.append(min(item.size * item.dtype.itemsize,
                                                                       item.id.get_storage_size()))
                                   if isinstance(item, h5py.Dataset) else None)
        except (OSError, ValueError, zipfile.BadZipFile) as error:
            raise ModelFileError(f"{path.name} is not a valid .keras file: its weights cannot be read ({error}). "
                                 f"Save the model again.") from error
    return sum(sizes)


@contextlib.contextmanager
def _variable_budget(file_name: str, stored_bytes: int):
    """Refuse, before allocating it, any variable that would take this thread's load past the weights it holds.

    A small file's config can declare huge layers (Dense(2,000,000) after a 784-pixel Flatten is 6 GB): Keras
    creates every variable before it reads a weight, so the file is refused the moment its variables outgrow
    the weights it holds.
    """
    _install_variable_check()
    _budget.file_name, _budget.stored = file_name, stored_bytes
    _budget.left, _budget.refusal = stored_bytes + VARIABLE_MARGIN_BYTES, {}
    try:
        yield _budget.refusal
    finally:
        del _budget.file_name, _budget.stored, _budget.left, _budget.refusal


def _install_variable_check():
    """Wrap the backend's variable creation once, so a loading thread's budget is checked first."""
    from core.backend import keras
    backend = keras.src.backend

    variable_class = backend.Variable
    if getattr(variable_class, "_cnnclassroom_budget_checked", False):
        return
    if not hasattr(variable_class, "_initialize_with_initializer"):  # another Keras: tests/robustness/test_memory.py fails
        return
    create = variable_class._initialize_with_initializer

    def checked_create(variable, initializer):
        left = getattr(_budget, "left", None)
        if left is not None:
            size = math.prod(variable._shape) * _dtype_bytes(variable._dtype)
            if size > left:
                _budget.refusal["message"] = (
                    f"{_budget.file_name} declares layers far larger than the weights it holds: its weights file holds "
                    f"{_size_text(_budget.stored)}, but its layer weight '{variable.path}' of shape "
                    f"{tuple(variable._shape)} needs {_size_text(size)}. It is not a saved model, and was refused "
                    f"before using that memory. Save the model again with `model.save('model.keras')`.")
                raise ModelFileError(_budget.refusal["message"])
            _budget.left = left - size
        return create(variable, initializer)

    variable_class._initialize_with_initializer = checked_create
    variable_class._cnnclassroom_budget_checked = True


def _size_text(size: int) -> str:
    return f"{size / 2**20:,.1f} MB" if size >= 2**20 else f"{size / 1024:,.1f} KB"


def _dtype_bytes(dtype) -> int:
    import numpy as np

    try:
        return np.dtype(dtype).itemsize
    except TypeError:
        return 4  # bfloat16 and other non-numpy types: at most a float32


def check_output_sizes(path: Path, model):
    """Refuse models whose layer outputs for one photo would not fit in memory (a tiny 1x1 Conv2D(4096) can)."""
    sizes = [(layer.name, math.prod(output.shape[1:]) * 4) for layer in _all_layers(model)
             for output in _outputs(layer) if all(isinstance(side, int) for side in output.shape[1:])]
    largest_name, largest = max(sizes, key=lambda pair: pair[1], default=("", 0))
    total = sum(size for _, size in sizes)
    if largest > MAX_LAYER_OUTPUT_BYTES or total > MAX_ALL_OUTPUTS_BYTES:
        raise ModelFileError(
            f"{path.name} would need too much memory for each photo: its layer '{largest_name}' alone outputs "
            f"{largest / 2**20:,.0f} MB and all its layers {total / 2**20:,.0f} MB (this app's limits are "
            f"{MAX_LAYER_OUTPUT_BYTES // 2**20} MB and {MAX_ALL_OUTPUTS_BYTES // 2**20} MB per photo). Use a smaller input "
            f"size or fewer filters.")


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def _outputs(layer):
    try:
        output = layer.output
    except (AttributeError, ValueError):  # a layer used more than once has no single output
        return []
    return list(output) if isinstance(output, (list, tuple)) else [output]


def model_file_key(path: Path) -> str:
    """The registry key of a .keras file made elsewhere, 16 hex digits of its SHA-256, once it passes
    `check_model_file`."""
    check_model_file(path)
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def check_model_file(path: Path):
    """Refuse the obvious non-starters among candidate .keras files with a clear message (only the zip's directory is
    read)."""
    if path.suffix.lower() in (".h5", ".hdf5"):
        raise ModelFileError(
            f"{path.name} is a legacy HDF5 (.h5) file. Only the Keras 3 `.keras` format is imported, because "
            f"it can be loaded in safe mode. Re-save it with `model.save('model.keras')` and import that."
        )
    if path.suffix.lower() != ".keras":
        raise ModelFileError(f"Only `.keras` model files can be imported. Received: {path.name}")
    if not path.is_file():
        raise ModelFileError(f"{path} is a folder, not a .keras file: name the model file itself." if path.is_dir()
                             else f"No such file: {path}")
    if path.stat().st_size > MAX_IMPORT_BYTES:
        raise ModelFileError(f"{path.name} is larger than {MAX_IMPORT_BYTES // 2**20} MB; that is not a classroom model.")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(
            f"{path.name} is not a valid .keras file (a .keras file is a zip archive; this one is not, or it is truncated)."
        )
    _refuse_zip_bomb(path)


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
    if "config.json" in text:
        return (f"{path.name} is a zip, but not a model saved by Keras (it holds no config.json). Save the model with "
                "model.save('name.keras'), or download it from the Models page (or `python -m core export`).")
    return (f"{path.name} could not be loaded as a Keras model ({type(error).__name__}: {text[:300]}). Save it again "
            "with model.save('name.keras') and import that file.")


def class_names_for(units: int, class_names: list[str] | None) -> list[str]:
    """The class names of an imported model: as given, or 'class 0', 'class 1', ... (two for one output unit).

    One output unit with more than two names is accepted: that is the classic Dense(1, activation='softmax')
    mistake, which the card's warnings then explain instead of the import hiding it.
    """
    if class_names is None:
        return [f"class {index}" for index in range(2 if units == 1 else units)]
    class_names = list(class_names)
    blank = [number for number, name in enumerate(class_names, start=1) if not str(name).strip()]
    if blank:  # a name is shown under every prediction, and an import cannot be renamed later
        raise ModelFileError(f"Class names cannot be blank: name {', '.join(map(str, blank))} of {len(class_names)} "
                             f"is empty. Give each output a name, in output order. Received: class_names={class_names}")
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


def export_target(destination, file_stem: str, fmt: str) -> Path:
    """Where an export in format `fmt` goes: `destination` itself when it is named like such a file, else
    `<destination>/<file_stem><suffix>` (the folder created if missing). A file already there is never overwritten."""
    from core.errors import RegistryError

    destination, suffix = Path(destination), EXPORT_SUFFIXES[fmt]
    if destination.suffix.lower() in set(EXPORT_SUFFIXES.values()) and not destination.is_dir():
        if destination.suffix.lower() != suffix:
            raise RegistryError(f"A {fmt} export is a {suffix} file; {destination.name} names another kind. Name the file "
                                f"…{suffix}, or a folder. Received: destination={str(destination)!r}")
        folder, target = destination.parent, destination
    elif destination.exists() and not destination.is_dir():
        raise RegistryError(f"The export goes into a folder or a …{suffix} file, but {destination} is another file. Name "
                            f"a folder (it is created if missing). Received: destination={str(destination)!r}")
    else:
        folder, target = destination, destination / f"{file_stem}{suffix}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RegistryError(f"Cannot create the folder {folder} ({error.strerror or error}). Name a folder you can write "
                            f"to. Received: destination={str(destination)!r}") from error
    if target.exists():
        raise RegistryError(f"{target} exists already and is kept: name another file, or move that one away first. "
                            f"Received: destination={str(destination)!r}")
    return target


def write_converted(model, fmt: str, target: Path):
    """Write `model` as a SavedModel zip ("savedmodel") or a .tflite file at `target`, by way of a SavedModel in the
    system's temporary folder (a read-only registry can still export)."""
    with tempfile.TemporaryDirectory(prefix="cnnclassroom-export-") as work_dir:
        saved_model_dir = Path(work_dir) / "saved_model"
        model.export(str(saved_model_dir), format="tf_saved_model", verbose=False)
        if fmt == "savedmodel":
            zip_folder(saved_model_dir, target)
            return
        from core.backend import tf

        target.write_bytes(tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir)).convert())


@contextlib.contextmanager
def written_whole(target: Path):
    """A temporary name beside `target` to write to; once written whole the file becomes `target` (never replacing
    one already there: FileExistsError), and on any error it is removed: a full disk leaves no half file under the
    name. The writer creates the file, so it gets the permissions of any file the user saves."""
    part = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.part")
    try:
        yield part
        try:
            os.link(part, target)  # fails if `target` appeared meanwhile
        except FileExistsError:
            raise
        except OSError:  # a file system without hard links (a FAT memory stick)
            if target.exists():
                raise FileExistsError(target) from None
            os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)


def write_keras_export(source: Path, target: Path, note: dict):
    """Copy the .keras file `source` to `target` with `note` (the entry's card and history) added as ENTRY_NOTE."""
    with zipfile.ZipFile(source) as model_file, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as export:
        for info in model_file.infolist():
            if info.filename != ENTRY_NOTE:
                with model_file.open(info) as entry, export.open(info, "w") as copy:
                    shutil.copyfileobj(entry, copy, 2**20)
        export.writestr(ENTRY_NOTE, json.dumps(note, indent=1))


def read_entry_note(path: Path) -> dict | None:
    """The note of a .keras file this app exported, {"card": ..., "history": [...]}; None when it has none or an
    unreadable one (the file is then imported as any other)."""
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo(ENTRY_NOTE)
            if info.file_size > MAX_NOTE_BYTES:
                return None
            note = json.loads(archive.read(info))
    except (KeyError, ValueError, OSError, zipfile.BadZipFile, RuntimeError):
        return None
    if not (isinstance(note, dict) and isinstance(note.get("card"), dict) and isinstance(note.get("history", []), list)):
        return None
    return note
