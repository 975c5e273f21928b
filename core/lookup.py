"""What a teacher types, as the registry's names: a model's key from any unique beginning of it, an imported dataset
from its id, the beginning of its id or its title, a dataset from its title. For the command line."""

from core.errors import CoreError


def dataset_named(given: str, root) -> str:
    """A dataset's name as typed: its name, or its title in any case (`Fashion-MNIST` for fashion_mnist)."""
    from core.catalogue import list_datasets

    titled = [info.name for info in list_datasets(root, ask_network=False) if info.title.lower() == given.lower()]
    return titled[0] if len(titled) == 1 and given not in titled else given


def full_key(registry, text: str, in_trash: bool = False) -> str:
    """A model key as typed: any case, and any unique beginning of at least 4 digits (like git's short hashes), among
    the registry's models, or the trash's with `in_trash`."""
    from core.config import validate_key
    from core.errors import EntryNotFoundError
    from core.trash import list_trash

    key = text.lower()
    if len(key) < 4 and all(digit in "0123456789abcdef" for digit in key):
        raise EntryNotFoundError(f"{text!r} is too short to name a model: type at least 4 digits of its key "
                                 f"(`python -m core {'restore' if in_trash else 'list'}` shows the keys).")
    if len(key) == 16 or not 4 <= len(key) < 16 or any(digit not in "0123456789abcdef" for digit in key):
        return validate_key(key)
    keys = {item.key for item in list_trash(registry.root)} if in_trash else {card.key for card in registry.list_entries()}
    matches = sorted(found for found in keys if found.startswith(key))
    listing = "python -m core restore" if in_trash else "python -m core list"
    if len(matches) != 1:
        raise EntryNotFoundError(f"No {'deleted ' if in_trash else ''}model's key starts with {key}: `{listing}` shows "
                                 "the keys." if not matches
                                 else f"{len(matches)} models' keys start with {key} ({', '.join(matches)}): type more "
                                      "digits.")
    return matches[0]


def imported_dataset_named(given: str, datasets: dict[str, str], deleted: bool = False) -> str:
    """`given` as an imported dataset's name: folder:<id>, its id or the beginning of its id (4 digits or more), or
    its title, among `datasets` ({name: title}: the imported ones, or the deleted ones with `deleted`)."""
    from core.catalogue import CATALOGUE, FOLDER_PREFIX

    if given in CATALOGUE:
        raise CoreError(f"{given} comes with CNN Classroom, so it cannot be deleted or restored: only imported "
                        "datasets (folder:…) can.")
    digits = given.removeprefix(FOLDER_PREFIX).lower()
    matches = [name for name, title in datasets.items() if title == given] or [
        name for name in datasets if len(digits) >= 4 and name.removeprefix(FOLDER_PREFIX).startswith(digits)]
    if len(matches) > 1:
        raise CoreError(f"{len(matches)} {'deleted' if deleted else 'imported'} datasets are named or titled {given!r}: "
                        f"name one by its id ({', '.join(matches)}); `python -m core datasets` shows what each holds.")
    if not matches:
        listing = "python -m core datasets restore" if deleted else "python -m core datasets"
        raise CoreError(f"No {'deleted' if deleted else 'imported'} dataset is named or titled {given!r}: `{listing}` "
                        "lists them with their ids and titles.")
    return matches[0]
