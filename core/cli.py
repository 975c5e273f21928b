"""The command line: `python -m core train|list|show|compare|export|import|delete|restore|pin|unpin|datasets|warmup|doctor`.

Under 650 lines: one parser and one short handler per command, which read best side by side in one file.
"""

import argparse
import dataclasses
import errno
import json
import os
import sys
import time
from pathlib import Path

from core.arguments import ArgumentParser, chosen_parser
from core.config import (FAMILIES, FILL_MODES, OPTIMIZERS, PADDINGS, PRESETS, REGISTRY_BASE_PREFIX, SCHEDULES,
                         Augmentation, TrainConfig)
from core.errors import CoreError, without_received
from core.guide import counted
from core.lookup import dataset_named, full_key, imported_dataset_named

WARMUP_PRESETS = ("fast DNN", "fast CNN", "classic DNN", "classic CNN")  # the defaults, then the ones Compare trains


STORAGE_ERRORS = {errno.ENOSPC, errno.EACCES, errno.EPERM, errno.EROFS, errno.EDQUOT, errno.EFBIG}
READING_COMMANDS = ("list", "show", "compare", "export", "delete", "restore", "pin", "unpin", "doctor")  # never create a registry


def main(argv: list[str] | None = None) -> int:
    """Run one command; a CoreError prints its message (no traceback) and exits with status 1."""
    parser = build_parser()
    arguments, unknown = parser.parse_known_args(argv)
    if unknown:  # said by the command's own parser, so that its --help is the one named
        chosen_parser(parser, arguments).error(f"unrecognized arguments: {' '.join(unknown)}")
    if not getattr(arguments, "command", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        check_registry_given(arguments)
        code = arguments.handler(arguments) or 0
        sys.stdout.flush()  # a reader that left (`| head`) is noticed here, not at exit
        return code
    except CoreError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: nothing half-done is kept; run the command again to finish it", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `python -m core datasets | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's own flush at exit then succeeds
        return 1
    except OSError as error:  # a file the command could not read or write, a host it could not reach
        where = f" ({error.filename})" if error.filename else ""
        advice = " Check that the folder is writable and the disk has room." if error.errno in STORAGE_ERRORS else ""
        print(f"error: {error.strerror or error}{where}.{advice}", file=sys.stderr)
        return 1


def check_registry_given(arguments):
    """A command that only reads refuses a --root or $CNNCLASSROOM_REGISTRY that names no registry (core.paths)."""
    from core.paths import REGISTRY_ENV, check_registry_folder

    given, named_by = (arguments.root, "--root") if arguments.root else (os.environ.get(REGISTRY_ENV), f"${REGISTRY_ENV}")
    reading = arguments.command in READING_COMMANDS or getattr(arguments, "datasets_command", "") in ("delete", "restore")
    if given and reading:
        check_registry_folder(Path(given), named_by)


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m core", description="CNN Classroom: train, keep and compare Keras models.")
    parser.add_argument("--root", help="registry folder (default: $CNNCLASSROOM_REGISTRY, or registry/ beside app.py)")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's own start-up and tracing messages")
    commands = parser.add_subparsers(dest="command")

    train = commands.add_parser("train", help="train a model (or fetch it from the registry if already trained)")
    add_config_arguments(train)
    train.set_defaults(handler=command_train)

    listing = commands.add_parser("list", help="list registered models")
    listing.add_argument("--dataset")
    listing.add_argument("--family", choices=FAMILIES + ("imported",), type=str.lower)
    listing.add_argument("--sort", default="created", choices=["created", "test_accuracy", "params", "train_seconds"])
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(handler=command_list)

    show = commands.add_parser("show", help="show one model's card, history and evaluation")
    show.add_argument("key")
    show.set_defaults(handler=command_show)

    compare = commands.add_parser("compare", help="compare two models on the same test set (McNemar's test)")
    compare.add_argument("key_a")
    compare.add_argument("key_b")
    compare.set_defaults(handler=command_compare)

    export = commands.add_parser("export", help="export a model as .keras, a SavedModel zip or TFLite")
    export.add_argument("key")
    export.add_argument("--format", default="keras", choices=["keras", "savedmodel", "tflite"])
    export.add_argument("--out", default=".", help="a folder to write into (default: the current folder), or a file name such as "
                        "mine.keras (never overwritten)")
    export.set_defaults(handler=command_export)

    importing = commands.add_parser("import", help="import a .keras file (safe mode: custom code is refused)")
    importing.add_argument("file")
    importing.add_argument("--class-names", help="comma-separated class names, in output order")
    importing.add_argument("--title", help="the model's title (default: \"Imported <file name>\")")
    importing.set_defaults(handler=command_import)

    delete = commands.add_parser("delete", help="move models to the registry's trash (restorable for a week)")
    delete.add_argument("keys", nargs="+", metavar="key")
    delete.set_defaults(handler=command_delete)
    restore = commands.add_parser("restore", help="bring a deleted model back from the trash; without a key, list the trash")
    restore.add_argument("key", nargs="?")
    restore.set_defaults(handler=command_restore)
    for name, pinned, help_text in (("pin", True, "keep models a lesson needs from being deleted (by anyone, here or on "
                                                  "the Models page)"), ("unpin", False, "let pinned models be deleted again")):
        pinning = commands.add_parser(name, help=help_text)
        pinning.add_argument("keys", nargs="+", metavar="key")
        pinning.set_defaults(handler=command_pin, pinned=pinned)

    datasets = commands.add_parser("datasets", help="which datasets are here and from where; import or get photo datasets")
    datasets.set_defaults(handler=command_datasets)
    dataset_commands = datasets.add_subparsers(dest="datasets_command")
    importing_data = dataset_commands.add_parser(
        "import", help="import a .zip or folder of class folders (or of train/validation/test folders)")
    importing_data.add_argument("path", help="a .zip file or a folder")
    importing_data.add_argument("--validation", help="a second .zip or folder of the same class folders: the validation photos")
    importing_data.add_argument("--title", help="the dataset's title (default: the zip's or folder's name)")
    importing_data.set_defaults(handler=command_datasets_import)
    getting = dataset_commands.add_parser("get", help="download (once) and import one of the course's photo datasets")
    getting.add_argument("name", help="horses_or_humans, rock_paper_scissors or cats_vs_dogs")
    getting.set_defaults(handler=command_datasets_get)
    deleting_data = dataset_commands.add_parser(
        "delete", help="move imported datasets to the registry's trash (restorable for a week; their models stay)")
    deleting_data.add_argument("names", nargs="+", metavar="name",
                               help="folder:<id> as `python -m core datasets` lists, or the dataset's title")
    deleting_data.set_defaults(handler=command_datasets_delete)
    restoring_data = dataset_commands.add_parser(
        "restore", help="bring a deleted dataset back from the trash; without a name, list the deleted datasets")
    restoring_data.add_argument("name", nargs="?", help="folder:<id> or the title, as the list without a name shows")
    restoring_data.set_defaults(handler=command_datasets_restore)

    warmup = commands.add_parser("warmup", help="train the fast and classic DNN and CNN on Fashion-MNIST so a class "
                                 "starts ready (a few minutes on 2 cores; one trained already is skipped)")
    warmup.set_defaults(handler=command_warmup)

    doctor = commands.add_parser("doctor", help="check the registry: heal the index, remove leftovers of killed runs, "
                                 "say what waits in the trash")
    doctor.add_argument("--empty-trash", action="store_true",
                        help="also delete for good every model and dataset in the trash (they cannot be restored after)")
    doctor.set_defaults(handler=command_doctor)

    worker = commands.add_parser("worker")  # internal (started by the job queue): no help, so not listed
    worker.add_argument("--idle-exit", type=float, default=None)
    worker.set_defaults(handler=command_worker)
    commands.metavar = "{" + ",".join(name for name in commands.choices if name != "worker") + "}"
    add_root_everywhere(parser)
    return parser


def add_root_everywhere(parser: argparse.ArgumentParser):
    """Accept --root and --verbose after a command too (`python -m core list --root R`), as well as before it."""
    for action in parser._subparsers._group_actions if parser._subparsers else []:
        for command in set(action.choices.values()):
            command.add_argument("--root", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
            command.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
            add_root_everywhere(command)


def add_config_arguments(parser: argparse.ArgumentParser):
    """One flag per TrainConfig field; defaults come from a preset or TrainConfig itself."""
    defaults = TrainConfig()
    parser.add_argument("--preset", choices=sorted(PRESETS), type=preset_named,
                        help="start from a preset; other flags override it")
    parser.add_argument("--dataset")
    parser.add_argument("--train-subset", type=int, help="train on a stratified subset of this many images")
    parser.add_argument("--image-size", type=int, help="resize images to SIZE x SIZE")
    parser.add_argument("--color-mode", choices=["grayscale", "rgb"])
    parser.add_argument("--validation-fraction", type=float)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--family", choices=FAMILIES, type=str.lower)
    parser.add_argument("--hidden-units", type=_int_list, help=f"dense layer sizes, e.g. 128 or 256,128 (default {_ints(defaults.hidden_units)})")
    parser.add_argument("--activation")
    parser.add_argument("--dropout-rate", type=float)
    parser.add_argument("--filters", type=_int_list, help=f"filters per conv block, e.g. 32,64 (default {_ints(defaults.filters)})")
    parser.add_argument("--kernel-size", type=int)
    parser.add_argument("--conv-strides", type=int)
    parser.add_argument("--padding", choices=PADDINGS)
    parser.add_argument("--batch-norm", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--base-model", help="transfer base: mobilenet_v2, vgg16, inception_v3 or registry:<key>")
    parser.add_argument("--fine-tune-layers", type=int)
    parser.add_argument("--fine-tune-phases", type=int, choices=[1, 2],
                        help="2 (default): train the head with the base frozen, then fine-tune at learning rate / 10; "
                             "1: both at once (the old way)")
    parser.add_argument("--optimizer", choices=OPTIMIZERS)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--lr-schedule", choices=SCHEDULES)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--stop-at-accuracy", type=float, help="stop once training accuracy reaches this, e.g. 0.9")
    parser.add_argument("--early-stopping-patience", type=int)
    for name in ("rotation_range", "width_shift_range", "height_shift_range", "shear_range", "zoom_range"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=float)
    parser.add_argument("--horizontal-flip", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--fill-mode", choices=FILL_MODES)


def preset_named(text: str) -> str:
    """A preset's name in any case ("Fast CNN", "fast cnn"); argparse refuses what matches none."""
    return next((name for name in PRESETS if name.lower() == text.lower()), text)


def config_from_arguments(arguments) -> TrainConfig:
    """Apply the flags that were given on top of the preset (or the defaults)."""
    base = PRESETS[arguments.preset] if arguments.preset else TrainConfig()
    values = vars(arguments)
    changes = {f.name: values[f.name] for f in dataclasses.fields(TrainConfig) if values.get(f.name) is not None}
    augmentation_changes = {
        f.name: values[f.name] for f in dataclasses.fields(Augmentation) if values.get(f.name) is not None
    }
    if augmentation_changes:
        changes["augmentation"] = dataclasses.replace(base.augmentation, **augmentation_changes)
    return dataclasses.replace(base, **changes)


def command_train(arguments):
    from core.catalogue import dataset_info
    from core.course import within_the_data
    from core.guide import title_for
    from core.datasets import check_trainable
    from core.engines import train_and_publish
    from core.registry import Registry

    registry = Registry(arguments.root)
    if arguments.dataset:  # its title or an imported one's id, as `list --dataset` and `datasets delete` take
        arguments.dataset = dataset_named(arguments.dataset, registry.root, must_exist=True)
    if (arguments.base_model or "").startswith(REGISTRY_BASE_PREFIX):  # a base's key by its beginning, as every KEY
        arguments.base_model = REGISTRY_BASE_PREFIX + registry.get(full_key(registry, arguments.base_model.removeprefix(
            REGISTRY_BASE_PREFIX))).key  # one in the trash: refused before anything is printed
    asked = config_from_arguments(arguments)
    config = within_the_data(asked, registry.root)  # 500 of 36 photos: all 36
    print_unused_flags(arguments, asked, config)
    dataset_info(config.dataset, registry.root)  # an unknown dataset is refused before anything is printed
    title = title_for(config, registry)  # an imported dataset and a registry base by their titles, as the entry
    if registry.has(config.key):
        print(f"Already trained: {config.key} ({title}); no training needed.")
    else:
        check_feature_maps(config, registry.root)  # a network too deep for its images: before anything is printed
        print(f"Training {title}\nkey {config.key}")
        check_trainable(registry.root, config.dataset, config.validation_fraction)  # too few photos: no TensorFlow
        load_tensorflow(arguments)
        print_warnings(config, registry.root)
        with registry.key_lock(config.key, blocking=False) as free:  # if not, train_and_publish waits, then finds it
            early = " at most" if config.early_stopping_patience or config.stop_at_accuracy else ""  # not a hang:
            print(f"training: a line follows at the end of each epoch ({config.epochs}{early})" if free else "Another "
                  "process is training these very settings: waiting for it, then its model is this one.", flush=True)
    entry = train_and_publish(registry, config, on_epoch=print_progress)
    print_entry_line(entry.card)


def check_feature_maps(config: TrainConfig, root):
    """Refuse a CNN whose feature maps vanish before its last block (the Train page warns of it as it is chosen)."""
    from core.catalogue import input_shape_for
    from core.errors import ConfigError
    from core.shapes import feature_map_problem

    if config.family == "cnn":
        shape = input_shape_for(config.dataset, config.image_size, config.color_mode, root)
        if problem := feature_map_problem(shape, config.filters, config.kernel_size, config.conv_strides, config.padding):
            raise ConfigError(problem)


def print_unused_flags(arguments, asked: TrainConfig, config: TrainConfig):
    """A note for each flag given that the model will not use: a setting of another family (--fine-tune-layers for a
    CNN), or more training images than the dataset has."""
    given, used = vars(arguments), config.canonical()  # what the model is built from: the key's fields
    for name in (field.name for field in dataclasses.fields(TrainConfig) if field.name != "train_subset"):
        if given.get(name) not in (None, getattr(used, name)):
            print(f"note: --{name.replace('_', '-')} does not apply to a {config.family} network: not used", file=sys.stderr)
    if asked.train_subset and config.train_subset != asked.train_subset:
        print(f"note: --train-subset {asked.train_subset:,} is more than this dataset's training images: it trains on "
              "all of them", file=sys.stderr)


def load_tensorflow(arguments):
    """Import TensorFlow before a command trains or loads a model: without its start-up noise, unless --verbose."""
    if not arguments.verbose:
        from core.logs import import_tensorflow_quietly

        import_tensorflow_quietly()


def print_warnings(config: TrainConfig, root):
    """The Train page's warnings about a configuration, one line each, before it trains (an imported dataset is
    looked up in the registry at `root`)."""
    from core.lint import preflight

    for warning in preflight(config, root):
        print(f"warning: {warning}", file=sys.stderr)


def print_progress(progress):
    """One line per epoch with a bar, the metrics and the time left."""
    width = 20
    done = round(width * progress.epoch / progress.epochs)
    print(f"epoch {progress.epoch:>3}/{progress.epochs} [{'#' * done}{'.' * (width - done)}] "
          f"loss {progress.loss:.4f} acc {progress.accuracy:.4f} val_loss {progress.val_loss:.4f} "
          f"val_acc {progress.val_accuracy:.4f} {progress.seconds:5.1f}s ETA {progress.eta_seconds:4.0f}s", flush=True)


def print_entry_line(card, pinned: bool = False):
    from core.guide import guessing_note

    accuracy = f"{card.test_accuracy:.2%}" if card.test_accuracy is not None else "n/a"
    if card.test_accuracy is not None and card.dataset.test_images:  # 100% on 5 photos is not 91.7% on 10,000
        accuracy += f" on {card.dataset.test_images:,} test images"
    seconds = card.timings.train_seconds
    print(f"{card.key}  test accuracy {accuracy}  params {card.params.total:,}  "
          f"trained in {seconds if seconds is not None else 'n/a'}s  {card.title}")
    if note := guessing_note(card):
        print(f"note: {note}")
    if pinned:
        print(f"pinned: a lesson needs it, so it cannot be deleted until `python -m core unpin {card.key}`")


def command_list(arguments):
    from core.guide import no_better_than_guessing
    from core.registry import Registry

    registry = Registry(arguments.root)
    dataset = dataset_named(arguments.dataset, registry.root) if arguments.dataset else None
    cards = registry.list_entries(dataset=dataset, family=arguments.family, order_by=arguments.sort)
    if arguments.json:
        print(json.dumps([card.listing_row() for card in cards], indent=2))
        return
    if not cards and (dataset or arguments.family):
        asked = " and ".join(f"--{flag} {value}" for flag, value in (("dataset", dataset), ("family", arguments.family))
                             if value)
        print(f"No model matches {asked}; `python -m core list` shows every one.")
        return
    if not cards:
        print("The registry is empty. Train something: python -m core warmup")
        return
    dataset_of = {card.key: card.dataset.name or "-" for card in cards}  # an imported model may name none
    width, pinned = max(len("dataset"), *map(len, dataset_of.values())), registry.pinned_keys()  # folder:<id>: 19
    print(f"{'key':<16}  {'dataset':<{width}} {'family':<8} {'accuracy':>8} {'tested on':>9} {'params':>10} "
          f"{'seconds':>8}  title")
    for card in cards:  # an accuracy beside the test images it was measured on: 100% of 20 is not 92% of 10,000
        accuracy = f"{card.test_accuracy:.2%}" if card.test_accuracy is not None else "n/a"
        tested = f"{card.dataset.test_images:,}" if card.test_accuracy is not None and card.dataset.test_images else "-"
        seconds = f"{card.timings.train_seconds:.1f}" if card.timings.train_seconds is not None else "n/a"
        marks = (("pinned", card.key in pinned), ("no better than guessing", no_better_than_guessing(card)))
        print(f"{card.key:<16}  {dataset_of[card.key]:<{width}} {card.family:<8} {accuracy:>8} {tested:>9} "
              f"{card.params.total:>10,} {seconds:>8}  {card.title}" + "".join(f"  [{mark}]" for mark, on in marks if on))


def command_show(arguments):
    from core.registry import Registry

    registry = Registry(arguments.root)
    entry = registry.get(full_key(registry, arguments.key))
    evaluation = registry.load_evaluation(entry.key) if entry.test_accuracy is not None else None  # refused first
    print_entry_line(entry.card, registry.is_pinned(entry.key))  # what a teacher looks for first, then the whole card
    print(json.dumps(entry.card.to_dict(), indent=2, ensure_ascii=False))
    for epoch in entry.history:
        print(f"epoch {epoch['epoch']}: loss {epoch['loss']:.4f} acc {epoch['accuracy']:.4f} "
              f"val_loss {epoch['val_loss']:.4f} val_acc {epoch['val_accuracy']:.4f}")
    if evaluation is None:
        print("no test figures: this model was imported without a test here")
        return
    width = max(len(name) for name in evaluation.class_names)
    print(f"per class, on {len(evaluation.y_true):,} test images:\n{'class':<{width}}  precision  recall  images")
    for index, name in enumerate(evaluation.class_names):
        print(f"{name:<{width}}  {evaluation.precision[index]:9.4f}  {evaluation.recall[index]:6.4f}  "
              f"{int(evaluation.confusion[index].sum()):6,}")


def command_compare(arguments):
    from core.evaluation import compare
    from core.registry import Registry

    registry = Registry(arguments.root)
    entry_a, entry_b = (registry.get(full_key(registry, key)) for key in (arguments.key_a, arguments.key_b))
    comparison = compare(
        registry.load_evaluation(entry_a.key), registry.load_evaluation(entry_b.key), name_a=entry_a.title, name_b=entry_b.title
    )
    print(f"A {entry_a.key}: {comparison.accuracy_a:.2%}  {entry_a.title}")
    print(f"B {entry_b.key}: {comparison.accuracy_b:.2%}  {entry_b.title}")
    print(f"difference A-B: {comparison.difference * 100:+.2f} points (95% CI {comparison.ci_low * 100:+.2f} to {comparison.ci_high * 100:+.2f})")
    print(f"only A right: {comparison.only_a_right}, only B right: {comparison.only_b_right}, "
          f"McNemar exact p = {comparison.p_value:.3g} on {comparison.n} test images")
    print(comparison.statement)


def command_export(arguments):
    from core.registry import Registry

    if arguments.format != "keras":  # a .keras export is a file copy; the others load the model
        load_tensorflow(arguments)
    registry = Registry(arguments.root)
    path = registry.export(full_key(registry, arguments.key), arguments.format, arguments.out)
    print(f"wrote {path} ({path.stat().st_size:,} bytes)")


def command_import(arguments):
    from core.exchange import import_model_file
    from core.model_files import check_model_file
    from core.registry import Registry

    class_names = [name.strip() for name in arguments.class_names.split(",")] if arguments.class_names else None
    check_model_file(Path(arguments.file))  # a missing or wrong file is told before TensorFlow starts
    load_tensorflow(arguments)
    registry = Registry(arguments.root)
    result = import_model_file(registry, arguments.file, class_names=class_names, title=arguments.title)
    entry = result.entry
    print(f"{entry.key}: {result.message}")
    warnings = entry.card.warnings
    if warnings is None:  # imported before warnings were kept in the card
        warnings = entry.card.checked_warnings(registry.load_model(entry.key))
    for warning in warnings:  # the model lint's findings, like the Train page's warnings before a training
        print(f"warning: {warning}", file=sys.stderr)


def command_delete(arguments):
    from core.registry import Registry
    from core.trash import KEEP_DAYS

    registry = Registry(arguments.root)
    keys = list(dict.fromkeys(full_key(registry, key) for key in arguments.keys))  # one model named twice: once
    for key in keys:  # every one checked before any moves: a mistyped second key deletes nothing
        registry.deletable_title(key)
    for key in keys:
        item = registry.delete(key)
        print(f"moved to the trash: {key}  {item.title}")
    print(f"restore with `python -m core restore KEY` within {KEEP_DAYS} days; `python -m core doctor --empty-trash` empties the trash")


def command_pin(arguments):
    from core.registry import Registry

    registry = Registry(arguments.root)
    keys = list(dict.fromkeys(full_key(registry, key) for key in arguments.keys))
    titles = {key: registry.get(key).title for key in keys}  # every one checked before any changes
    for key, title in titles.items():
        already = registry.is_pinned(key) == arguments.pinned
        registry.pin(key, arguments.pinned)
        print(f"{'already ' if already else ''}{'pinned' if arguments.pinned else 'unpinned'}: {key}  {title}")
    if arguments.pinned:
        print("pinned models cannot be deleted until `python -m core unpin KEY`")


def command_restore(arguments):
    from core.registry import Registry
    from core.trash import list_trash

    registry = Registry(arguments.root)
    if arguments.key:
        key = full_key(registry, arguments.key, in_trash=True)
        print(f"restored {key}  {registry.restore(key).title}")
        return
    items = list_trash(registry.root)
    for item in items:
        print(f"{item.key}  deleted {item.deleted_at:%Y-%m-%d %H:%M} UTC, restorable until "
              f"{item.restorable_until:%Y-%m-%d %H:%M}  {item.title}")
    print(f"{len(items)} deleted model(s) in the trash")


def command_datasets_delete(arguments):
    from core.catalogue import imported_titles
    from core.folders import delete_dataset
    from core.trash import KEEP_DAYS

    root = registry_root_of(arguments)
    imported = imported_titles(root)
    names = list(dict.fromkeys(imported_dataset_named(given, imported) for given in arguments.names))  # found first
    for name in names:
        item = delete_dataset(root, name)
        print(f"moved to the trash: {name}  {item.title}")
    print(f"restore with `python -m core datasets restore NAME` within {KEEP_DAYS} days; models trained on a deleted "
          "dataset stay")


def command_datasets_restore(arguments):
    from core.catalogue import FOLDER_PREFIX
    from core.folders import restore_dataset
    from core.trash import list_dataset_trash

    root = registry_root_of(arguments)
    items = list_dataset_trash(root)
    if arguments.name:
        name = imported_dataset_named(arguments.name, {FOLDER_PREFIX + item.key: item.title for item in items},
                                      deleted=True)
        print(f"restored {name}  {restore_dataset(root, name).title}")
        return
    for item in items:
        print(f"{FOLDER_PREFIX}{item.key}  deleted {item.deleted_at:%Y-%m-%d %H:%M} UTC, restorable until "
              f"{item.restorable_until:%Y-%m-%d %H:%M}  {item.title}")
    print(f"{len(items)} deleted dataset(s) in the trash")


def command_datasets(arguments):
    from core.catalogue import FOLDER_PREFIX, course_datasets, list_datasets

    root = registry_root_of(arguments)
    for info in list_datasets(root):
        state = "available" if info.available else "unavailable"
        print(f"{info.name:<20} {state:<12} {len(info.class_names):>3} classes  {info.title}")
        print(f"{'':<20} {info.source if info.available else without_received(info.message)}")
        if info.name.startswith(FOLDER_PREFIX):  # which is which, where titles repeat
            fraction = TrainConfig().validation_fraction
            train, validation = info.training_and_validation(fraction)
            given = "its own validation photos" if info.validation_folder_images else f"{fraction:.0%} carved"
            print(f"{'':<20} {info.description} {train:,} training and {validation:,} validation images ({given})")
    print("\ncourse datasets (the classic course's photo zips):")
    for course in course_datasets(root):
        state = f"imported as {course.imported_as}" if course.imported_as else "not here"
        print(f"{course.name:<20} {state:<32} {course.title}")
        if not course.imported_as:
            print(f"{'':<20} {course.how_to_get}")


def command_datasets_import(arguments):
    from core.folders import import_zip

    root, validation = registry_root_of(arguments), Path(arguments.validation) if arguments.validation else None
    print_import_report(import_zip(Path(arguments.path), root, title=arguments.title, validation=validation,
                                   on_progress=progress_line()), root)


def command_datasets_get(arguments):
    from core.course_datasets import get_course_dataset

    root = registry_root_of(arguments)
    load_tensorflow(arguments)  # keras.utils.get_file, if a zip must be downloaded
    print_import_report(get_course_dataset(arguments.name, root, on_progress=progress_line()), root)


def progress_line():
    """An on_progress(done, total) that prints "checked N of M images" each time another tenth is done."""
    def on_progress(done, total):
        if 10 * done // total != 10 * (done - 1) // total:
            print(f"checked {done:,} of {total:,} images", flush=True)
    return on_progress


def print_import_report(report, root):
    """The import report: name, classes, the split table and where each split comes from, notes, skipped files."""
    from core.datasets import split_table

    print(f"{'already imported' if report.already_imported else 'imported'} {report.title!r} as {report.name}: "
          f"{len(report.class_names)} classes, {sum(report.counts.values()):,} images")
    table = split_table(root, report.name)
    print(f"{'class':<24}" + "".join(f"{split:>12}" for split in table))
    for name in report.class_names:
        print(f"{name[:23]:<24}" + "".join(f"{table[split][name]:>12}" for split in table))
    print("\n".join([f"{split}: {source}" for split, source in report.split_sources.items()] +
                    [f"note: {note}" for note in report.notes]))
    for file, reason in report.skipped[:20]:
        print(f"skipped {file}: {reason}")
    if len(report.skipped) > 20:
        print(f"... and {len(report.skipped) - 20} more skipped files")


def registry_root_of(arguments) -> Path:
    """The registry folder this command works on: --root, else $CNNCLASSROOM_REGISTRY, else ./registry."""
    from core.paths import registry_root

    return Path(arguments.root) if arguments.root else registry_root()


def command_warmup(arguments):
    from core.engines import train_and_publish
    from core.registry import Registry

    registry = Registry(arguments.root)
    started = time.perf_counter()
    for name in WARMUP_PRESETS:
        config = PRESETS[name]
        if registry.has(config.key):
            print(f"{name}: already trained")
        else:
            print(f"{name}: training {config.title}")
            load_tensorflow(arguments)
        print_entry_line(train_and_publish(registry, config, on_epoch=print_progress).card)
    print(f"warmup done in {time.perf_counter() - started:.1f}s")


def command_doctor(arguments):
    """Heal the registry, say what was done and found in plain words; status 1 while a problem is left to fix."""
    from core.catalogue import FOLDER_PREFIX
    from core.doctor import check_registry
    from core.registry import Registry
    from core.trash import DATASETS_TRASH_DIR, KEEP_DAYS, empty_trash, list_dataset_trash, list_trash
    from core.webcam import ALBUM_KEEP_DAYS
    from core.workers import pool_plan

    registry = Registry(arguments.root)
    checkup = check_registry(registry)
    if checkup.damaged_index:
        print(f"the index was damaged: set aside as {checkup.damaged_index.name} and rebuilt from the entry folders")
    for name in checkup.removed:
        print(f"removed leftover of an interrupted run: {name}")
    for name in checkup.old_albums:
        print(f"removed webcam photos left unchanged for {ALBUM_KEEP_DAYS} days: {name}")
    for key in checkup.indexed:
        print(f"added to the index: {key} (its folder was there, its row was not)")
    for key in checkup.unindexed:
        print(f"removed from the index: {key} (its folder is gone)")
    if arguments.empty_trash:
        for item in empty_trash(registry.root):
            dataset = item.path.parent.name == DATASETS_TRASH_DIR
            print(f"emptied from the trash: {FOLDER_PREFIX if dataset else ''}{item.key}  {item.title}")
        if left := len(list_trash(registry.root)) + len(list_dataset_trash(registry.root)):
            checkup.problems.append(f"{counted(left, 'item')} could not be deleted from the trash: check that the "
                                    f"registry folder {registry.root} is writable.")
    else:  # a slip stays undoable: the trash empties itself after a week, or when asked
        models, datasets = len(list_trash(registry.root)), len(list_dataset_trash(registry.root))
        if models or datasets:
            waiting = " and ".join(counted(number, f"deleted {noun}") for number, noun in
                                   ((models, "model"), (datasets, "dataset")) if number)
            print(f"{waiting} in the trash, restorable for {KEEP_DAYS} days (`python -m core restore`, "
                  "`python -m core datasets restore`); `python -m core doctor --empty-trash` deletes them for good")
    for problem in checkup.problems:
        print(f"problem: {problem}")
    print(f"{counted(checkup.ready, 'entry', 'entries')} ready; {counted(len(checkup.problems), 'problem')}; "
          f"{counted(len(checkup.removed), 'leftover')} removed")
    plan = pool_plan()
    lone = f", and a lone worker of {plan.lone_threads} for a job that trains alone" if plan.lone_threads else ""
    print(f"worker pool: {plan.workers} worker(s) of {plan.threads_per_worker} TensorFlow thread(s){lone} ({plan.reason})")
    return 1 if checkup.problems else 0


def command_worker(arguments):
    from core.registry import Registry
    from core.workers import IDLE_EXIT_SECONDS, WORKER_NICENESS, run_worker

    os.nice(WORKER_NICENESS)  # students' clicks on the server come before training
    idle_exit = arguments.idle_exit if arguments.idle_exit is not None else IDLE_EXIT_SECONDS
    count = run_worker(Registry(arguments.root), idle_exit_seconds=idle_exit)
    print(f"worker exiting after {count} jobs", flush=True)


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers like 32,64; received {text!r}")


def _ints(values) -> str:
    return ",".join(map(str, values))
