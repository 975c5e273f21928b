"""The dataset catalogue: which datasets exist, where their files are, and how to get the missing ones.

All of it is known without reading an image, and this module imports neither numpy nor TensorFlow, so
the home page that lists the datasets opens fast. `core.datasets` loads them, with core.dataset_files,
core.shapes_dataset and core.folders; those import from here, never the other way round.

Imported folder datasets live in the registry (`<root>/datasets/<id>/`). The registry root is a value
the caller passes (`Registry.root`, `--root`), never read here from the environment, so that one
command or server uses one registry for its models and its datasets alike. Under 450 lines: the catalogue's
datasets, the course's photo zips and the imported ones are listed and described side by side.
"""

import functools
import json
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from core.config import CHANNELS_BY_COLOR_MODE, TrainConfig
from core.errors import DatasetError
from core.manifest import MANIFEST_FILE, TEST, TRAIN, VALIDATION, Manifest
from core.network import ask_unanswered, check_reachable
from core.paths import DATA_DIR_ENV, data_dir, keras_home

CATALOGUE = {
    "fashion_mnist": ("Fashion-MNIST", "70,000 grayscale 28x28 photos of clothes, shoes and bags in 10 classes (Zalando)."),
    "mnist": ("MNIST", "70,000 grayscale 28x28 handwritten digits, 0 to 9."),
    "cifar10": ("CIFAR-10", "60,000 colour 32x32 photos in 10 classes: planes, cars, birds, cats and more."),
    "shapes": ("Shapes", "6,000 generated 64x64 colour images of circles, squares, triangles, stars and crosses."),
}
CLASS_NAMES = {
    "fashion_mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    "mnist": tuple("0123456789"),
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    "shapes": ("circle", "square", "triangle", "star", "cross"),
}
IMAGE_SHAPES = {"fashion_mnist": (28, 28, 1), "mnist": (28, 28, 1), "cifar10": (32, 32, 3), "shapes": (64, 64, 3)}
TRAINING_IMAGES = {"fashion_mnist": 60_000, "mnist": 60_000, "cifar10": 50_000, "shapes": 4_800}
DATA_SEED = 1337  # fixes every split and the shapes; independent of the training seed
TEST_FRACTION = 0.2  # shapes and folder datasets; the others keep their original test set
DATASET_ID_PATTERN = re.compile(r"[0-9a-f]{12}")  # an imported dataset's id: its folder under registry/datasets/
NAME_PATTERN = re.compile(rf"[a-z][a-z0-9_]{{0,31}}|folder:{DATASET_ID_PATTERN.pattern}")
FOLDER_PREFIX = "folder:"
DATASETS_FOLDER = "datasets"
DECODED_FOLDER = "decoded"  # inside an imported dataset's folder: its photos prepared per input size (core.folder_arrays)
KERAS_DATASETS_FOLDER = "datasets"  # inside the Keras home

# Where catalogue files are looked for, in this order after $CNNCLASSROOM_DATA_DIR (keras file names).
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
DATA_DIR_PATHS = {"fashion_mnist": ("fashion-mnist", "."), "mnist": ("mnist.npz",), "cifar10": ("cifar-10-batches-py",)}
KERAS_CACHE_PATHS = {  # inside ~/.keras/datasets; keras 3 extracts CIFAR-10 one level deeper than keras 2
    "fashion_mnist": ("fashion-mnist",),
    "mnist": ("mnist.npz",),
    "cifar10": ("cifar-10-batches-py", "cifar-10-batches-py-target/cifar-10-batches-py"),
}
DOWNLOAD_URLS = {
    "fashion_mnist": "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
    "mnist": "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz",
    "cifar10": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
}
REACHABILITY_TIMEOUT = 1.5  # seconds to wait for a download host before calling it offline


@dataclass(frozen=True)
class CourseFile:
    """One published zip of a course dataset: where it is, its SHA-256 (None where none is published) and size."""

    url: str
    sha256: str | None
    size: int

    @property
    def file_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class CourseDataset:
    """A photo dataset of the classic TensorFlow course: its training zip and, where it ships apart, its validation zip."""

    name: str
    title: str
    description: str
    train: CourseFile
    validation: CourseFile | None


# The course's photo datasets. URLs and checksums as TensorFlow Datasets publishes them (url_checksums/); Google's
# cats_and_dogs_filtered.zip, the course's cats-vs-dogs, has no published checksum. The full Kaggle cats-vs-dogs
# zip (825 MB, 25,000 photos) is over this app's import limits and is not listed.
TF_DATA = "https://storage.googleapis.com/download.tensorflow.org/data/"
COURSE_DATASETS = {
    "horses_or_humans": CourseDataset(
        "horses_or_humans", "Horses or humans (course)",
        "1,027 computer-generated 300x300 photos of horses and humans, and 256 validation photos (Laurence Moroney, "
        "CC BY 2.0). A binary task.",
        CourseFile(TF_DATA + "horse-or-human.zip", "e2e6f70d3d549c5dd10a57165e55af253ee66ad750403f95c0fb76bb943633a9",
                   149_574_867),
        CourseFile(TF_DATA + "validation-horse-or-human.zip",
                   "ae5fff2f4f5554791f05358108e2e05d9801b191f1896ea101402f0e7f6c32c0", 11_480_187)),
    "rock_paper_scissors": CourseDataset(
        "rock_paper_scissors", "Rock, paper, scissors (course)",
        "2,520 computer-generated 300x300 photos of hands, and 372 test photos (Laurence Moroney, CC BY 2.0). "
        "Three classes: a categorical task.",
        CourseFile(TF_DATA + "rps.zip", "c2403444395842ad04c53612bad54b574443eae17a0723117a2ff87b9d72194f", 200_682_221),
        CourseFile(TF_DATA + "rps-test-set.zip", "c27ab9fa43ce40b2e453de711365b477f4424586edf0388116674fd320f07503",
                   29_516_758)),
    "cats_vs_dogs": CourseDataset(
        "cats_vs_dogs", "Cats vs dogs, filtered (course)",
        "2,000 photos of cats and dogs of every size, and 1,000 validation photos, in train/ and validation/ folders of "
        "one zip (Google's filtered copy of the Kaggle set). Real photos: the hardest of the three.",
        CourseFile("https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip", None, 68_606_236),
        None),
}


@dataclass(frozen=True)
class DatasetInfo:
    """What the home page shows about a dataset, known without loading it."""

    name: str
    title: str
    description: str
    available: bool
    source: str | None
    message: str | None
    class_names: tuple[str, ...]
    image_shape: tuple[int, int, int]
    training_images: int  # train + validation images, before any subset (the test split is apart)
    validation_folder_images: int = 0  # an imported dataset's validation photos given by a folder or a second zip
    on_this_machine: bool = True  # False for a catalogue dataset whose files are not here (Keras downloads them)

    def training_and_validation(self, validation_fraction: float) -> tuple[int, int]:
        """The images a config trains and validates on: a validation folder's photos, else a fraction carved."""
        validation = self.validation_folder_images or round(validation_fraction * self.training_images)
        return self.training_images - validation, validation


def list_datasets(root, ask_network: bool = True) -> list[DatasetInfo]:
    """Every catalogue dataset, then every folder dataset imported into the registry at `root`, by title.

    The download hosts never asked are asked first, together (where a firewall drops the connection, that waits
    REACHABILITY_TIMEOUT once per server). With `ask_network=False` nothing waits for them: a catalogue dataset not on
    this machine then counts as unavailable. For the home page.
    """
    here = {name: local_source(name) for name in CATALOGUE}
    if ask_network:
        ask_download_hosts(here)
    imported = []
    for name, manifest in imported_manifests(root).items():
        if isinstance(manifest, Manifest):  # a damaged or stray folder does not hide the others
            imported.append(dataset_info(name, root))
    return ([_catalogue_info(name, here[name], ask_network) for name in CATALOGUE]
            + sorted(imported, key=lambda info: info.title.lower()))


def dataset_titles(datasets: list[DatasetInfo]) -> dict[str, str]:
    """Picker labels by dataset name: the title, with the image count (then a copy number) where titles repeat, and
    whether a dataset that is not on this machine downloads first or cannot be used now."""
    labels = {}
    for info in datasets:
        same_title = [other for other in datasets if other.title == info.title]
        train, validation = info.training_and_validation(TrainConfig().validation_fraction)
        label = info.title if len(same_title) == 1 else f"{info.title} ({train:,} training, {validation:,} validation images)"
        copies = sum(1 for existing in labels.values() if existing == label or existing.startswith(label + ", copy "))
        labels[info.name] = label if copies == 0 else f"{label}, copy {copies + 1}"
    for info in datasets:
        if not info.on_this_machine:
            labels[info.name] += " (downloads first)" if info.available else " (not on this machine)"
    return labels


def dataset_info(name, root=None, ask_network: bool = True) -> DatasetInfo:
    """Title, availability, source and classes of one dataset; an imported one is looked up in the registry at `root`.
    A catalogue dataset not on this machine is available when its download host answers (not asked without
    `ask_network`)."""
    check_name(name)
    if name.startswith(FOLDER_PREFIX):
        manifest = read_manifest(root, name)
        description = (f"{sum(manifest.counts.values()):,} images in {len(manifest.class_names)} classes: "
                       f"{', '.join(manifest.class_names)}.")
        return DatasetInfo(name, manifest.title, description, True, folder_source(root, name), None,
                           manifest.class_names, manifest.image_shape, training_images(manifest),
                           manifest.splits.count(VALIDATION))
    return _catalogue_info(name, local_source(name), ask_network)


def _catalogue_info(name, here: str | None, ask_network: bool) -> DatasetInfo:
    """`dataset_info` of a catalogue dataset whose `local_source` is `here` (None: not on this machine)."""
    source, message = (here, None) if here else download_source(name, ask_network)
    return DatasetInfo(name, *CATALOGUE[name], source is not None, source, message, CLASS_NAMES[name], IMAGE_SHAPES[name],
                       TRAINING_IMAGES[name], on_this_machine=here is not None)


def training_images(manifest: Manifest) -> int:
    """Train and validation photos of an imported dataset before any subset; the test photos are apart."""
    splits = manifest.splits
    train, validation, test = (splits.count(split) for split in (TRAIN, VALIDATION, TEST))
    if validation or test:
        return train + validation
    return train - round(TEST_FRACTION * train)


def input_shape_for(info, image_size=None, color_mode=None, root=None) -> tuple[int, int, int]:
    """The (H, W, C) a model sees for a dataset (DatasetInfo or name) at these load options."""
    height, width, channels = (info if isinstance(info, DatasetInfo) else dataset_info(info, root)).image_shape
    if image_size:
        height = width = image_size
    return height, width, CHANNELS_BY_COLOR_MODE.get(color_mode, channels)


def check_name(name):
    """Raise DatasetError unless `name` is a catalogue name or a well-formed imported 'folder:<id>'."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise DatasetError("A dataset name is a catalogue name such as 'fashion_mnist', or 'folder:' and 12 hexadecimal "
                           f"digits for an imported dataset. Received: name={name!r}")
    if not name.startswith(FOLDER_PREFIX) and name not in CATALOGUE:
        raise DatasetError(f"Unknown dataset. Expected one of {list(CATALOGUE)} or an imported 'folder:<id>'. "
                           f"Received: name={name!r}")


def catalogue_source(name, ask_network: bool = True):
    """(source, None) when a catalogue dataset can be loaded now, else (None, how to get it)."""
    here = local_source(name)
    return (here, None) if here else download_source(name, ask_network)


def local_source(name) -> str | None:
    """Where a catalogue dataset's files are on this machine (Shapes: generated here), else None. Asks no host."""
    if name == "shapes":
        return f"generated with OpenCV (seed {DATA_SEED})"
    found = locate(name)
    return found[0] if found else None


def download_source(name, ask_network: bool = True):
    """For a catalogue dataset not on this machine: (how Keras downloads it, None) when its host answers, else (None,
    how to get it). Without `ask_network` the host is not asked and the dataset counts as not loadable now."""
    if not ask_network:
        return None, how_to_get(name, None)
    if can_download(name, stale_ok=True):
        return f"keras.datasets.{name}.load_data() downloads it into {keras_datasets_dir()}", None
    return None, how_to_get(name, f"{download_host(name)} cannot be reached")


def ask_download_hosts(here: dict[str, str | None] | None = None):
    """Ask the hosts of the catalogue datasets not on this machine that were never asked, all at once, so that the
    pages find answers kept (behind a firewall that drops connections: REACHABILITY_TIMEOUT in all, not once per host).
    `here`: each catalogue dataset's `local_source`, where the caller has looked them up already."""
    here = here if here is not None else {name: local_source(name) for name in CATALOGUE}
    ask_unanswered([DOWNLOAD_URLS[name] for name in CATALOGUE if here[name] is None], REACHABILITY_TIMEOUT)


# ---------------------------------------------------------------------------------------------
# Catalogue files: $CNNCLASSROOM_DATA_DIR, the Debian package, the Keras cache, then a download


def locate(name):
    """(description, path) of the first local copy of a catalogue dataset, or None."""
    candidates = [(f"${DATA_DIR_ENV}", data_dir() / path) for path in DATA_DIR_PATHS[name] if data_dir()]
    if name == "fashion_mnist":
        candidates.append(("Debian package dataset-fashion-mnist", DEBIAN_FASHION_DIR))
    candidates += [("Keras cache", keras_datasets_dir() / path) for path in KERAS_CACHE_PATHS[name]]
    for label, path in candidates:
        if _has_files(name, path):
            return f"{label} ({path.resolve()})", path.resolve()
    return None


def _has_files(name, path):
    if name == "mnist":
        return path.is_file()
    needed = FASHION_FILES if name == "fashion_mnist" else ("data_batch_1", "test_batch")
    return all((path / file).is_file() for file in needed)


def keras_datasets_dir():
    """The folder where keras.datasets keeps its downloads."""
    return keras_home() / KERAS_DATASETS_FOLDER


def can_download(name, stale_ok=False):
    """Whether keras can download the dataset now: its host answers within REACHABILITY_TIMEOUT, or a proxy is set up.
    `stale_ok`: an answer of a few minutes ago will do while the host is asked again (core.network.check_reachable)."""
    try:
        check_reachable(DOWNLOAD_URLS[name], REACHABILITY_TIMEOUT, stale_ok=stale_ok)
    except OSError:
        return False
    return True


def download_host(name):
    return urllib.parse.urlsplit(DOWNLOAD_URLS[name]).hostname


def how_to_get(name, reason: str | None):
    """What happened (why it cannot be downloaded now, where `reason` is given) and the exact steps that make a
    catalogue dataset available."""
    url, cache = DOWNLOAD_URLS[name], keras_datasets_dir()
    folder = f"${DATA_DIR_ENV} ({data_dir()})" if data_dir() else f"a folder you name in ${DATA_DIR_ENV} (not set now)"
    steps = {
        "fashion_mnist": f"run `sudo apt-get install dataset-fashion-mnist` (it puts the files in {DEBIAN_FASHION_DIR}); "
                         f"or copy {', '.join(FASHION_FILES)} from {url} into {folder} or {cache / 'fashion-mnist'}",
        "mnist": f"copy mnist.npz from {url} into {folder} or {cache}",
        "cifar10": f"download {url}, extract it (`tar xzf cifar-10-python.tar.gz`) and put its folder "
                   f"cifar-10-batches-py into {folder} or {cache}",
    }[name]
    state = "is not on this machine" + (f" and cannot be downloaded now ({reason})" if reason else "")
    return (f"{CATALOGUE[name][0]} {state}. To use it, connect "
            f"to the internet (keras.datasets.{name}.load_data() downloads it on first use), or {steps}. "
            f"Received: name={name!r}")


# ---------------------------------------------------------------------------------------------
# The course's photo datasets: downloaded by core.course_datasets, imported as folder datasets


@dataclass(frozen=True)
class CourseDatasetInfo:
    """A course dataset as the home page lists it: imported here (as which folder dataset), or how to get it."""

    name: str
    title: str
    description: str
    imported_as: str | None  # "folder:<id>" once imported into this registry
    how_to_get: str


def course_datasets(root) -> list[CourseDatasetInfo]:
    """The course's photo datasets, each with the folder dataset it was imported as in the registry at `root`."""
    imported = {manifest.course: name for name, manifest in imported_manifests(root).items()
                if isinstance(manifest, Manifest) and manifest.course in COURSE_DATASETS}
    return [CourseDatasetInfo(name, course.title, course.description, imported.get(name), how_to_get_course(name))
            for name, course in COURSE_DATASETS.items()]


def how_to_get_course(name) -> str:
    """The command that downloads and imports a course dataset, and the manual way."""
    course = COURSE_DATASETS[name]
    files = [course.train] + ([course.validation] if course.validation else [])
    sizes = " and ".join(f"{file.url} ({file.size / 1e6:.0f} MB)" for file in files)
    manual = f"python -m core datasets import {course.train.file_name}" + (
        f" --validation {course.validation.file_name}" if course.validation else "")
    them = "them" if len(files) > 1 else "it"
    return (f"Run `python -m core datasets get {name}` on a machine with internet access (it downloads {sizes} "
            f"with keras.utils.get_file and imports {them}). Offline: download the zip{'s' if len(files) > 1 else ''} "
            f"elsewhere and run `{manual}`, or upload {them} on the Your own images page.")


# ---------------------------------------------------------------------------------------------
# Imported folder datasets: registry/datasets/<id>/manifest.json


def datasets_dir(root) -> Path:
    """The folder of imported datasets in the registry at `root`."""
    if root is None:
        raise DatasetError("Imported datasets live in a registry, and no registry folder was given. Pass the registry's "
                           "root (Registry.root), e.g. load_dataset(name, root=registry.root). Received: root=None")
    return Path(root) / DATASETS_FOLDER


def folder_path(root, name) -> Path:
    check_name(name)
    return datasets_dir(root) / name.removeprefix(FOLDER_PREFIX)


def folder_source(root, name):
    return f"imported folder dataset ({folder_path(root, name)})"


def imported_manifests(root) -> dict[str, Manifest | DatasetError]:
    """{folder:<id>: its manifest, or the DatasetError that says why it cannot be read} of every dataset imported into
    the registry at `root`, by id (an import under way, in a hidden folder, is not one yet)."""
    found = {}
    folder = datasets_dir(root)
    for manifest_path in sorted(folder.glob(f"[!.]*/{MANIFEST_FILE}")) if folder.is_dir() else []:
        name = FOLDER_PREFIX + manifest_path.parent.name
        try:
            found[name] = read_manifest(root, name)
        except DatasetError as error:
            found[name] = error
    return found


def imported_titles(root) -> dict[str, str]:
    """{folder:<id>: title} of every imported dataset; a damaged one by its id, so that it can still be deleted."""
    return {name: manifest.title if isinstance(manifest, Manifest) else name.removeprefix(FOLDER_PREFIX)
            for name, manifest in imported_manifests(root).items()}


def read_manifest(root, name) -> Manifest:
    """The manifest of an imported dataset; DatasetError when it is missing, unreadable or damaged."""
    path = folder_path(root, name) / MANIFEST_FILE
    try:
        found = path.stat()
        return _manifest_at(str(path), found.st_mtime_ns, found.st_size)
    except FileNotFoundError:
        from core.trash import deleted_dataset_message  # the trash reads this module's id pattern

        raise DatasetError(deleted_dataset_message(root, name) or (
            f"No imported dataset has this name in {datasets_dir(root)}. Import it with `python -m core datasets import` "
            f"or on the Your own images page, or pick one from `python -m core datasets`. Received: name={name!r}")
        ) from None
    except OSError as error:
        raise DatasetError(f"The manifest of this dataset cannot be read ({error.strerror or error}): check the "
                           f"permissions of {path.parent}. Received: name={name!r}") from error
    except ValueError as error:
        raise DatasetError(f"The manifest of this dataset is damaged ({error}). `python -m core datasets delete {name}` "
                           f"moves it to the trash; then import the zip again. Received: name={name!r}") from error


@functools.lru_cache(maxsize=64)
def _manifest_at(path: str, modified_ns: int, size: int) -> Manifest:
    """The manifest file at `path`, read once per version of it (a page run reads each manifest several times)."""
    return Manifest.from_json(json.loads(Path(path).read_text()))
