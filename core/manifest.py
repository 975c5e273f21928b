"""A manifest: what an imported dataset holds (manifest.json beside its photos), typed.

Written once, when core.folders imports a zip, a folder or webcam shots; read through `Manifest.from_json` by
core.catalogue (`read_manifest`), core.datasets and core.folders, never as a bare dict. Reading checks every field's
type, so a damaged file is refused in one place with one message instead of failing later on a missing key.
"""

from dataclasses import dataclass

MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 2  # 1: images as [stored, class], no splits, no split counts or sources
# The splits a photo can belong to (core.splits reads which from a zip's folders)
TRAIN, VALIDATION, TEST = "train", "validation", "test"


@dataclass(frozen=True)
class StoredImage:
    """One photo as stored: its file (relative to the dataset's folder), its class and its split."""

    file: str
    class_name: str
    split: str = TRAIN


@dataclass(frozen=True)
class Manifest:
    """An imported dataset: its id and title, its classes, every stored photo, and what its import found."""

    id: str
    title: str
    class_names: tuple[str, ...]
    counts: dict[str, int]  # class -> photos, every split together
    images: tuple[StoredImage, ...]
    image_shape: tuple[int, int, int]  # (height, width, channels) it loads at by default
    image_sizes: dict[str, tuple[int, int]]  # "min", "max", "median" -> (width, height) of the photos as they came
    skipped: tuple[tuple[str, str], ...] = ()  # (file, reason)
    notes: tuple[str, ...] = ()  # the import report's notes, in plain words
    split_counts: dict[str, dict[str, int]] | None = None  # split -> class -> photos given for it (None: version 1)
    split_sources: dict[str, str] | None = None  # split -> where it comes from, in words (None: version 1)
    course: str | None = None  # the course dataset it is (core.course_datasets), if recognised
    created: str = ""
    format_version: int = MANIFEST_VERSION

    @property
    def splits(self) -> list[str]:
        """Each stored photo's split, in stored order."""
        return [image.split for image in self.images]

    @property
    def labels(self) -> list[int]:
        """Each stored photo's class number (its index in `class_names`), in stored order."""
        number = {name: index for index, name in enumerate(self.class_names)}
        return [number[image.class_name] for image in self.images]

    @property
    def is_binary(self) -> bool:
        return len(self.class_names) == 2

    def to_json(self) -> dict:
        """The manifest as manifest.json stores it (images as [file, class, split] lists)."""
        return {
            "format_version": self.format_version, "id": self.id, "title": self.title,
            "class_names": list(self.class_names), "counts": self.counts,
            "images": [[image.file, image.class_name, image.split] for image in self.images],
            "split_counts": self.split_counts, "split_sources": self.split_sources, "course": self.course,
            "skipped": [list(item) for item in self.skipped], "notes": list(self.notes),
            "image_sizes": {key: list(size) for key, size in self.image_sizes.items()},
            "image_shape": list(self.image_shape), "created": self.created,
        }

    @classmethod
    def from_json(cls, data) -> "Manifest":
        """The manifest that manifest.json holds (version 1 or 2); ValueError naming the first field that is wrong."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        images = tuple(StoredImage(*_strings(entry, "images", 2, 3)) for entry in _field(data, "images", list))
        class_names = _strings(_field(data, "class_names", list), "class_names")
        unknown = {image.class_name for image in images} - set(class_names)
        if unknown:
            raise ValueError(f"images of classes not in class_names: {sorted(unknown)}")
        if len(class_names) < 2 or not images:
            raise ValueError(f"{len(class_names)} classes and {len(images)} images; a dataset has at least 2 of each")
        sizes = _field(data, "image_sizes", dict)
        if set(sizes) != {"min", "max", "median"}:
            raise ValueError(f"'image_sizes' holds {sorted(sizes)}, not min, max and median")
        return cls(
            id=_field(data, "id", str), title=_field(data, "title", str), class_names=class_names,
            counts=_counts(_field(data, "counts", dict), "counts"), images=images,
            image_shape=_image_shape(_field(data, "image_shape", list)),
            image_sizes={key: _integers(size, "image_sizes", 2) for key, size in sizes.items()},
            skipped=tuple(_strings(item, "skipped", 2, 2) for item in _field(data, "skipped", list)),
            notes=_strings(_field(data, "notes", list), "notes"),
            split_counts={split: _counts(counts, "split_counts") for split, counts in
                          _field(data, "split_counts", dict, None).items()} if data.get("split_counts") else None,
            split_sources=_field(data, "split_sources", dict, None) or None,
            course=_field(data, "course", str, None), created=_field(data, "created", str, ""),
            format_version=_field(data, "format_version", int, 1),
        )


_REQUIRED = object()


def _field(data: dict, name: str, kind: type, default=_REQUIRED):
    """data[name], checked to be a `kind`; `default` where it is missing or null (required without one)."""
    value = data.get(name)
    if value is None and default is not _REQUIRED:
        return default
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"{name!r} is {'missing' if name not in data else type(value).__name__}, not "
                         f"{kind.__name__}")
    return value


def _strings(items, name: str, least: int = 0, most: int | None = None) -> tuple[str, ...]:
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items) or not \
            least <= len(items) <= (most if most is not None else len(items)):
        raise ValueError(f"{name!r} holds {items!r}")
    return tuple(items)


def _integers(items, name: str, length: int) -> tuple[int, ...]:
    if not isinstance(items, list) or len(items) != length or not all(type(item) is int for item in items):
        raise ValueError(f"{name!r} holds {items!r}")
    return tuple(items)


def _image_shape(items) -> tuple[int, int, int]:
    height, width, channels = _integers(items, "image_shape", 3)
    if height < 1 or width < 1 or channels not in (1, 3):
        raise ValueError(f"'image_shape' holds {items!r}: (height, width, 1 or 3 channels) expected")
    return height, width, channels


def _counts(counts, name: str) -> dict[str, int]:
    if not isinstance(counts, dict) or not all(type(count) is int for count in counts.values()):
        raise ValueError(f"{name!r} holds {counts!r}")
    return counts
