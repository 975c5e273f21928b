"""What a teacher types, as the registry's names: a model's key from any unique beginning of it, an imported dataset
from its id, the beginning of its id or its title, a dataset from its title. For the command line."""

import difflib

from core.errors import CoreError, DatasetError


def dataset_named(given: str, root, must_exist: bool = False) -> str:
    """A dataset's name as typed: its name, its title in any case (`Fashion-MNIST` for fashion_mnist), or an imported
    one's id or the beginning of its id (4 digits or more, `folder:` or not), a deleted one's too (its models stay). With
    `must_exist`, what names no dataset here is refused with the nearest spelling; else it is returned as typed."""
    from core.catalogue import DATASET_ID_PATTERN, FOLDER_PREFIX, list_datasets
    from core.trash import list_dataset_trash

    datasets = {info.name: info.title for info in list_datasets(root, ask_network=False)}
    if given in datasets:
        return given
    digits = given.removeprefix(FOLDER_PREFIX).lower()
    matches = _matching(given, datasets, any_case=True)
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise DatasetError(f"{len(matches)} datasets are named or titled {given!r}: name one by its id "
                           f"({', '.join(matches)}); `python -m core datasets` shows what each holds.")
    if DATASET_ID_PATTERN.fullmatch(digits):
        return FOLDER_PREFIX + digits  # a whole id: where it is not here, its own message says why (in the trash, say)
    deleted = _matching(given, {FOLDER_PREFIX + item.key: item.title for item in list_dataset_trash(root)}, any_case=True)
    if len(deleted) == 1:  # its models stay listed under it, and training on it says how to restore it
        return deleted[0]
    if len(deleted) > 1:
        raise DatasetError(f"{len(deleted)} deleted datasets are named or titled {given!r}: name one by its id "
                           f"({', '.join(deleted)}); `python -m core datasets restore` lists them.")
    if not must_exist:
        return given
    close = difflib.get_close_matches(given, [*datasets, *datasets.values()], n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise DatasetError(f"No dataset here is named or titled {given!r}.{hint} `python -m core datasets` lists each "
                       "dataset's name and title.")


def _matching(given: str, datasets: dict[str, str], any_case: bool = False) -> list[str]:
    """The names among `datasets` ({name: title}) that `given` names: by title (in any case with `any_case`), else as
    an imported dataset's id or the beginning of its id (4 digits or more, `folder:` or not)."""
    from core.catalogue import FOLDER_PREFIX

    digits = given.removeprefix(FOLDER_PREFIX).lower()
    titled = [name for name, title in datasets.items() if (title.lower() == given.lower() if any_case else title == given)]
    return titled or [name for name in datasets if name.startswith(FOLDER_PREFIX) and len(digits) >= 4
                      and name.removeprefix(FOLDER_PREFIX).startswith(digits)]


def full_key(registry, text: str, in_trash: bool = False) -> str:
    """A model key as typed: any case, and any unique beginning of at least 4 digits (like git's short hashes), among
    the registry's models, or the trash's with `in_trash`."""
    from core.config import validate_key
    from core.errors import EntryNotFoundError
    from core.trash import list_trash, trashed_keys

    key, listing = text.lower(), "python -m core restore" if in_trash else "python -m core list"
    if len(key) > 16 or any(digit not in "0123456789abcdef" for digit in key):
        raise EntryNotFoundError(f"{text!r} is not a model key: a key is 16 hexadecimal digits, or its first 4 or more, "
                                 f"as `{listing}` shows beside each title.")
    if len(key) < 4:
        raise EntryNotFoundError(f"{text!r} is too short to name a model: type at least 4 digits of its key "
                                 f"(`{listing}` shows the keys).")
    if len(key) == 16:
        return validate_key(key)
    keys = {item.key for item in list_trash(registry.root)} if in_trash else {card.key for card in registry.list_entries()}
    matches = sorted(found for found in keys if found.startswith(key))
    deleted = [] if in_trash or matches else sorted(found for found in trashed_keys(registry.root) if found.startswith(key))
    if deleted:
        raise EntryNotFoundError(f"The model {deleted[0]} was deleted: it waits in the trash; `python -m core restore "
                                 f"{key}` brings it back." if len(deleted) == 1 else
                                 f"No model's key starts with {key}, but {len(deleted)} deleted ones' do: `python -m "
                                 "core restore` lists the trash.")
    if len(matches) != 1:
        raise EntryNotFoundError(f"No {'deleted ' if in_trash else ''}model's key starts with {key}: `{listing}` shows "
                                 "the keys." if not matches
                                 else f"{len(matches)} models' keys start with {key} ({', '.join(matches)}): type more "
                                      "digits.")
    return matches[0]


def imported_dataset_named(given: str, datasets: dict[str, str], deleted: bool = False) -> str:
    """`given` as an imported dataset's name: folder:<id>, its id or the beginning of its id (4 digits or more), or
    its title, among `datasets` ({name: title}: the imported ones, or the deleted ones with `deleted`)."""
    from core.catalogue import CATALOGUE

    if given in CATALOGUE:
        raise CoreError(f"{given} comes with CNN Classroom, so it cannot be deleted or restored: only imported "
                        "datasets (folder:…) can.")
    matches = _matching(given, datasets)
    if len(matches) > 1:
        raise CoreError(f"{len(matches)} {'deleted' if deleted else 'imported'} datasets are named or titled {given!r}: "
                        f"name one by its id ({', '.join(matches)}); `python -m core datasets` shows what each holds.")
    if not matches:
        listing = "python -m core datasets restore" if deleted else "python -m core datasets"
        close = difflib.get_close_matches(given, [*datasets.values(), *datasets], n=1)
        raise CoreError(f"No {'deleted' if deleted else 'imported'} dataset is named or titled {given!r}."
                        f"{f' Did you mean {close[0]!r}?' if close else ''} `{listing}` lists them with their ids and "
                        "titles.")
    return matches[0]
