"""Models moving between servers: importing a .keras file, with what this app's own exports carry.

An export of this app (Registry.export) holds the model's card and history beside Keras' entries
(`model_files.ENTRY_NOTE`). Importing it keeps its class names, title, how photos are prepared and the dataset it
learned from. A trained model whose dataset is on this machine with the same images (the card's fingerprint) is
tested here again on that test split and becomes an entry like one trained here, under its own key: its curves,
Compare, Inside the network. Its test figures are always measured here, never read from the file. Any other
.keras file is imported as before: keyed by its bytes, with the class names given or "class 0", "class 1", ...
"""

import dataclasses
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from core.card import ModelCard, layer_summaries, model_warnings, parameter_counts
from core.catalogue import check_name
from core.errors import CoreError, DatasetError, RegistryError
from core.history import History, history_from_json
from core.model_files import load_model_file, model_file_key, read_entry_note
from core.registry import EVAL_FILE, MODEL_FILE, Entry, Registry

logger = logging.getLogger(__name__)

ALREADY_THERE, TESTED_HERE, IMPORTED = "already there", "tested here", "imported"


@dataclass(frozen=True)
class ModelImport:
    """What importing one file did: the entry, how it got there (ALREADY_THERE, TESTED_HERE or IMPORTED), in words."""

    entry: Entry
    outcome: str
    message: str


def import_model_file(registry: Registry, path, class_names: list[str] | None = None,
                      title: str | None = None) -> ModelImport:
    """Import the .keras file at `path`; `class_names` and `title`, when given, replace what its note says."""
    path = Path(path)
    key = model_file_key(path)  # the file's checks first, then its note
    note = read_entry_note(path)
    card = _card_of(note)
    relabelled = class_names is not None and (card is None or list(class_names) != card.class_names)
    trained = card is not None and card.config is not None and not relabelled and title is None
    if trained and registry.has(card.key):
        return _already_there(path, registry.get(card.key))
    if registry.has(key):  # the same file again: the same entry, or refused when other class names are given
        return _already_there(path, registry.import_model(path, class_names))
    why_untested, model = None, None
    if trained:
        model = load_model_file(path)
        tested = _tested_here(registry, path, model, card, note.get("history") or [])
        if isinstance(tested, ModelImport):
            return tested
        why_untested = tested
    entry = registry.import_model(path, class_names=class_names, title=title, about=card, model=model)
    named = ("its class names and title come from the file" if card is not None and not relabelled else
             "its classes named as given" if class_names else "its classes are called class 0, class 1, …: to name "
             "them, delete it and import it again with their names")
    return ModelImport(entry, IMPORTED, f"{entry.title} is in the registry now: {named}. It has no test accuracy here"
                                        + (f": {why_untested}." if why_untested else "."))


def _already_there(path: Path, entry: Entry) -> ModelImport:
    return ModelImport(entry, ALREADY_THERE, f"{path.name} is in the registry already: {entry.title}.")


def _card_of(note: dict | None) -> ModelCard | None:
    """The card an export carried, when it reads as one; a trained card must carry the key of its own config."""
    if note is None:
        return None
    try:
        card = ModelCard.from_dict(note["card"])
    except RegistryError as error:
        logger.info("import: the file's card is unreadable, imported without it: %s", error)
        return None
    try:
        check_name(card.dataset.name)
    except DatasetError:  # a name no dataset of this app has: the file's own business, not a folder to look in
        card = dataclasses.replace(card, config=None, dataset=dataclasses.replace(card.dataset, name=None))
    if card.config is not None and card.config.key != card.key:
        logger.info("import: the file's card names key %s for a config whose key is %s: read as untrained",
                    card.key, card.config.key)
        return dataclasses.replace(card, config=None)
    return card


def _tested_here(registry: Registry, path: Path, model, card: ModelCard, history: History) -> "ModelImport | str":
    """Publish a trained model (`model`, loaded from `path`) under its key, tested here on its dataset; else say in
    words why it cannot be."""
    from core.evaluation import evaluate
    from core.network_view import VIEW_FILE, save_first_view
    from core.training import evaluation_batch_size, first_view_of, load_dataset_for

    units = int(model.output_shape[-1])
    if tuple(model.input_shape[1:]) != tuple(card.input_shape) or units not in (len(card.class_names), 1):
        logger.info("import: %s's card describes another model (%s → %d classes); read as untrained", path.name,
                    card.input_shape, len(card.class_names))
        return "the card it carries describes another model"
    try:
        dataset = load_dataset_for(card.config, registry.root)
    except CoreError as error:
        logger.info("import: %s's dataset %s is not available here: %s", path.name, card.dataset.name, error)
        return f"the images it learned from ({card.dataset.title or card.dataset.name}) are not on this machine"
    if dataset.fingerprint != card.dataset.fingerprint:
        return f"{dataset.title} on this machine holds other images than the ones it learned from"
    evaluation = evaluate(model, dataset.x_test, dataset.y_test, dataset.class_names,
                          batch_size=evaluation_batch_size(dataset.input_shape))
    tested = dataclasses.replace(card, test_accuracy=evaluation.accuracy, test_loss=evaluation.loss,
                                 params=parameter_counts(model), layers=layer_summaries(model),
                                 warnings=model_warnings(model, card.class_names), source_file=path.name)
    first_view = first_view_of(model, dataset)  # Inside the network's, as for a model trained here

    def write_files(folder: Path):
        shutil.copyfile(path, folder / MODEL_FILE)
        evaluation.save(folder / EVAL_FILE)
        if first_view is not None:
            save_first_view(first_view, folder / VIEW_FILE)

    with registry.key_lock(card.key):
        entry = registry.publish(tested, history_from_json(history), write_files)
    return ModelImport(entry, TESTED_HERE, f"{entry.title} is in the registry now, tested here on its "
                                           f"{len(dataset.y_test):,} test images: {evaluation.accuracy:.1%}.")
