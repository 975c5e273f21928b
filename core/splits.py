"""Split folders: where in a zip or folder the class folders are, and which photos are train, validation or test.

A downloadable image dataset is laid out one of two ways: class folders (`horses/`, `humans/`), perhaps
inside a wrapping folder; or split folders that each hold the same class folders (`train/horses/`,
`validation/horses/`, at any depth, spelt train/training, validation/valid/val, test/testing). This
module reads only paths, never an image; numpy is imported only by the functions that pick indices.

The rules, in one place (`split_indices`): a split with its own folder is that folder; without any split
folder the test split is a stratified TEST_FRACTION of the photos and validation a stratified part of the
rest, seeded, as for every dataset here; with a validation folder but no test folder the validation photos
are the test photos too (as in the course: a model is never trained on them, so its figure is honest,
unlike a random part of training photos that hold near-duplicate frames); with a test folder but no
validation folder, validation is carved from train.
"""

import unicodedata
from dataclasses import dataclass, replace
from pathlib import PurePosixPath

from core.catalogue import DATA_SEED, TEST_FRACTION
from core.config import TrainConfig
from core.errors import DatasetError
from core.manifest import TEST, TRAIN, VALIDATION

SPLITS = (TRAIN, VALIDATION, TEST)
SPLIT_FOLDER_NAMES = {"train": TRAIN, "training": TRAIN, "validation": VALIDATION, "valid": VALIDATION,
                      "val": VALIDATION, "test": TEST, "testing": TEST}


@dataclass(frozen=True)
class Placement:
    """Where one image file belongs: its class and split, and its path below the layout's top (for the dataset id)."""

    class_name: str
    split: str
    relative: str


@dataclass(frozen=True)
class Layout:
    """What the paths of one zip or folder say about its layout."""

    placements: dict[str, Placement]  # image path -> where it belongs
    outside: list[str]  # image paths that are in no class folder (or outside the split folders)
    class_names: list[str]  # every class folder, also those that turn out to hold no readable image
    split_folders: dict[str, str]  # split -> the folder it came from, e.g. {"train": "rps/train", ...}; {} without splits
    wrapper: str | None  # the single top folder that wrapped the class (or split) folders, if any
    merged: tuple[str, ...] = ()  # class names written in two Unicode forms (NFC and NFD "café"), now one class


def read_layout(image_paths, folder_paths, split=TRAIN) -> Layout:
    """Find the split folders (if any) and the class folders among the paths of a zip or folder.

    `image_paths` are the files with an image extension, `folder_paths` every folder (empty class folders
    count as classes). Without split folders every image goes to `split`. Class folders that differ between
    splits are an error naming them. Names are compared in Unicode NFC form: "café" typed on a Mac (NFD, e + an
    accent) and on Windows (NFC, é) look the same and are one class.
    """
    images = [PurePosixPath(unicodedata.normalize("NFC", path)).parts for path in image_paths]
    folders = [PurePosixPath(unicodedata.normalize("NFC", path)).parts for path in folder_paths]
    found = _split_parent(images)
    if found is None:
        layout = _class_layout(image_paths, images, folders, split)
    else:
        layout = _split_layout(image_paths, images, folders, found)
    spellings = {}
    for path in [*image_paths, *folder_paths]:
        for part in PurePosixPath(path).parts:
            spellings.setdefault(unicodedata.normalize("NFC", part), set()).add(part)
    merged = tuple(name for name in layout.class_names if len(spellings.get(name, ())) > 1)
    return replace(layout, merged=merged) if merged else layout


def _split_parent(images):
    """The folder (a tuple of parts) whose sub-folders are split folders holding most images, or None."""
    counts = {}
    for parts in images:
        for index, part in enumerate(parts[:-2]):  # a split folder holds a class folder, which holds the file
            if part.lower() in SPLIT_FOLDER_NAMES:
                counts[parts[:index]] = counts.get(parts[:index], 0) + 1
                break
    if not counts:
        return None
    parent, held = max(counts.items(), key=lambda item: (item[1], -len(item[0])))
    return parent if held * 2 > len(images) else None  # split folders must hold most of the images


def _class_layout(image_paths, images, folders, split):
    """Class folders, perhaps inside single wrapping folders: every image goes to `split`."""
    depth = 0  # how many single top-level folders wrap the class folders
    while images and all(len(parts) > depth + 2 for parts in images) and len({parts[depth] for parts in images}) == 1:
        depth += 1
    placements, outside = {}, []
    for path, parts in zip(image_paths, images):
        if len(parts) - depth < 2:
            outside.append(path)
        else:
            placements[path] = Placement(parts[depth], split, "/".join(parts[depth:]))
    classes = {placement.class_name for placement in placements.values()}
    classes |= {parts[depth] for parts in folders if len(parts) > depth and parts[:depth] == (images[0][:depth] if images else ())}
    wrapper = "/".join(images[0][:depth]) if depth else None
    return Layout(placements, outside, sorted(classes), {}, wrapper)


def _split_layout(image_paths, images, folders, parent):
    """Split folders below `parent`: train/validation/test, each holding the same class folders."""
    depth = len(parent)
    placements, outside, classes_by_split, folder_of = {}, [], {}, {}
    for path, parts in zip(image_paths, images):
        split = SPLIT_FOLDER_NAMES.get(parts[depth].lower()) if parts[:depth] == parent and len(parts) > depth + 2 else None
        if split is None:
            outside.append(path)
            continue
        folder = "/".join(parts[: depth + 1])
        if folder_of.setdefault(split, folder) != folder:
            raise DatasetError(f"Two folders are the same split: {folder_of[split]!r} and {folder!r}. Keep one "
                               f"train, one validation and one test folder. Received: {path!r}")
        placements[path] = Placement(parts[depth + 1], split, "/".join(parts[depth:]))
        classes_by_split.setdefault(split, set()).add(parts[depth + 1])
    for parts in folders:  # empty class folders inside a split folder still count
        if len(parts) > depth + 1 and parts[:depth] == parent and SPLIT_FOLDER_NAMES.get(parts[depth].lower()) in folder_of:
            classes_by_split[SPLIT_FOLDER_NAMES[parts[depth].lower()]].add(parts[depth + 1])
    if TRAIN not in folder_of:
        found = ", ".join(f"{folder}/" for folder in folder_of.values())
        raise DatasetError(f"Found split folders ({found}) but no training folder. Expected a folder named train (or "
                           "training) beside them, holding one sub-folder per class.")
    check_same_classes({folder_of[split] + "/": classes for split, classes in classes_by_split.items()})
    return Layout(placements, outside, sorted(classes_by_split[TRAIN]), folder_of, "/".join(parent) or None)


def check_same_classes(classes_by_folder: dict[str, set[str]]):
    """Raise DatasetError naming the class folders that are not in every split folder."""
    every = set.union(*classes_by_folder.values())
    missing = {folder: sorted(every - classes) for folder, classes in classes_by_folder.items() if every - classes}
    if not missing:
        return
    described = "; ".join(f"{folder} {'have' if folder.endswith('photos') else 'has'} no "
                          f"{', '.join(repr(name) for name in names)}" for folder, names in missing.items())
    listing = "; ".join(f"{folder}: {', '.join(sorted(classes))}" for folder, classes in classes_by_folder.items())
    raise DatasetError(f"The splits hold different class folders: {described}. Each split needs the same class folders "
                       f"(same names, same spelling); rename or remove the odd ones and zip again. Received: {listing}")


def split_indices(splits, labels, validation_fraction, train_subset=None, seed=DATA_SEED):
    """(train, validation, test) index arrays for images whose folder splits are `splits` (see the module docstring).

    The test indices are the validation indices when there is a validation folder but no test folder.
    """
    import numpy as np

    splits, labels = np.asarray(splits), np.asarray(labels)
    train, validation, test = (np.flatnonzero(splits == split) for split in SPLITS)
    if not len(test) and not len(validation):
        picked, rest = stratified_split(labels[train], round(TEST_FRACTION * len(train)), seed)
        test, train = train[picked], train[rest]
    if not len(test):
        test = validation
    if not len(validation):
        picked, rest = stratified_split(labels[train], round(validation_fraction * len(train)), seed)
        validation, train = train[picked], train[rest]
    if train_subset is not None and train_subset < len(train):
        train = train[stratified_split(labels[train], train_subset, seed)[0]]
    return train, validation, test


def check_enough_images(splits, labels, class_names, validation_fraction, title):
    """Refuse, before any training, a dataset whose training, validation or test part would lack a class.

    The message names the class and the part, and how many images per class the same layout needs: the fewest for
    which the rules of `split_indices` give every part every class.
    """
    import numpy as np

    gaps = folder_gaps(splits, labels, class_names)
    if gaps:
        raise DatasetError(f"{title!r} cannot be tested fairly: {'; '.join(gaps)}. A class missing from the test photos "
                           "would let a model that never answers it score 100%. Add photos of every class to each "
                           "folder and import them again.")
    needed = images_needed(splits, labels, len(class_names), validation_fraction)
    if needed is None:
        return
    splits, labels = np.asarray(splits), np.asarray(labels)
    counts = np.bincount(labels, minlength=len(class_names))
    parts = dict(zip(SPLITS, split_indices(splits, labels, validation_fraction)))
    part, missing = next((part, index) for part in (TEST, VALIDATION, TRAIN) for index in range(len(class_names))
                         if index not in set(labels[parts[part]].tolist()))  # the test photos first: their score
    name, photos = class_names[missing], int(counts[missing])
    raise DatasetError(f"{title!r} has too few photos to train and test a model fairly: its class '{name}' has {photos} "
                       f"photo{'s' if photos != 1 else ''}, and none of them is left for the {part} photos"
                       + (" (a model that never answers it would score 100% there)" if part != TRAIN else "")
                       + f". Add at least {needed} images per class and import the photos again. "
                       f"Received: images per class={dict(zip(class_names, counts.tolist()))}")


def folder_gaps(splits, labels, class_names) -> list[str]:
    """'the validation folder has no 'pears' photos', for each class that a validation or test folder lacks: adding
    training photos cannot fill those."""
    import numpy as np

    splits, labels = np.asarray(splits), np.asarray(labels)
    gaps = []
    for split in (VALIDATION, TEST):
        present = set(labels[splits == split].tolist())
        if present:
            gaps += [f"the {split} folder has no '{name}' photos" for index, name in enumerate(class_names)
                     if index not in present]
    return gaps


def images_needed(splits, labels, num_classes, validation_fraction=0.1) -> int | None:
    """None when the splits are usable; otherwise the fewest training images per class that would make them so (see
    `folder_gaps` for what more training images cannot mend)."""
    import numpy as np

    splits, labels = np.asarray(splits), np.asarray(labels)
    if _splits_are_usable(splits, labels, num_classes, validation_fraction):
        return None
    given = splits != TRAIN
    return next((count for count in range(2, 1001) if _splits_are_usable(
        np.concatenate([splits[given], np.full(count * num_classes, TRAIN)]),
        np.concatenate([labels[given], np.repeat(np.arange(num_classes), count)]),
        num_classes, validation_fraction)), 1000)


def _splits_are_usable(splits, labels, num_classes, validation_fraction):
    """Whether split_indices gives every class to the train, validation and test parts: a class missing from the test
    photos would leave a model that never answers it scoring 100%."""
    import numpy as np

    return all(len(np.unique(labels[part])) == num_classes
               for part in split_indices(splits, labels, validation_fraction))


def stratified_split(labels, count, seed):
    """Pick `count` indices with every class in proportion; returns (picked, rest), each shuffled."""
    import numpy as np

    rng = np.random.default_rng(seed)
    classes, sizes = np.unique(labels, return_counts=True)
    exact = sizes * count / max(len(labels), 1)
    quotas = np.floor(exact).astype(int)
    quotas[np.argsort(quotas - exact, kind="stable")[: count - quotas.sum()]] += 1  # largest remainders
    picked, rest = [np.empty(0, np.int64)], [np.empty(0, np.int64)]
    for label, quota in zip(classes, quotas):
        members = rng.permutation(np.flatnonzero(labels == label))
        picked.append(members[:quota])
        rest.append(members[quota:])
    return rng.permutation(np.concatenate(picked)), rng.permutation(np.concatenate(rest))


def describe_splits(split_counts: dict, split_folders: dict, validation_source: str | None = None) -> dict[str, str]:
    """Where each split comes from, in words, for the import report and the Datasets page."""
    has = {split: sum(split_counts.get(split, {}).values()) > 0 for split in SPLITS}
    given = {split: (f"the second zip ({validation_source})" if split == VALIDATION and validation_source
                     else f"the folder {split_folders[split]}/" if split in split_folders else "the class folders")
             for split in SPLITS if has[split]}
    if not has[TEST] and not has[VALIDATION]:
        given[TEST] = f"carved from the photos: a stratified {TEST_FRACTION:.0%}, the same for every model (seed {DATA_SEED})"
    elif not has[TEST]:
        given[TEST] = ("the validation photos, as there is no test folder (as in the course): no model is trained on "
                       "them, but training watches them (and early stopping picks its epoch by them), so the test "
                       "figure can be a little optimistic; add a test folder for a third, untouched set")
    if not has[VALIDATION]:
        given[VALIDATION] = ("carved from the training photos at training time: the validation fraction "
                             f"({TrainConfig().validation_fraction:.0%} by default), stratified, seed {DATA_SEED}")
    return {split: given[split] for split in SPLITS}
