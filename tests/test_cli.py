"""The command line, as a user would type it."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TINY_CNN, TINY_DNN

from core import cli

PROJECT = Path(__file__).resolve().parents[1]


# What TensorFlow prints on start-up and while tracing; the CLI keeps it out unless --verbose.
TENSORFLOW_NOISE = re.compile(r"absl::InitializeLog|oneDNN|cuda drivers|cuInit|cpu_feature_guard|retracing")


def run_cli(*arguments, registry_root, check=True):
    environment = {name: value for name, value in os.environ.items() if not name.startswith("TF_CPP")}
    environment["CNNCLASSROOM_REGISTRY"] = str(registry_root)
    result = subprocess.run([sys.executable, "-m", "core", *arguments], cwd=PROJECT, env=environment,
                            capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr
    return result


CNN_FLAGS = ["--family", "cnn", "--filters", "8,16", "--hidden-units", "32", "--train-subset", "500", "--epochs", "2",
             "--batch-size", "16", "--learning-rate", "0.003"]


def test_train_list_show_compare_export_delete(registry_root, trained_registry_root, tmp_path):
    """The DNN is trained here by the CLI; the CNN's flags are checked to describe TINY_CNN, whose entry the session's
    trained registry already holds (a second CLI training would only repeat the first's checks)."""
    assert cli.config_from_arguments(cli.build_parser().parse_args(["train", *CNN_FLAGS])).key == TINY_CNN.key
    shutil.copytree(trained_registry_root / "models" / TINY_CNN.key, registry_root / "models" / TINY_CNN.key)
    trained = run_cli("train", "--family", "dnn", "--hidden-units", "32", "--train-subset", "500", "--epochs", "2",
                      registry_root=registry_root)
    assert "epoch   2/2 [####################]" in trained.stdout
    # said before the first epoch's line (a teacher waited 30 s in silence and thought it hung)
    assert trained.stdout.index("training: a line follows at the end of each epoch (2)") < trained.stdout.index(
        "epoch   1/2")
    assert not [line for line in trained.stderr.splitlines() if TENSORFLOW_NOISE.search(line)], trained.stderr
    assert TINY_DNN.key in trained.stdout  # the flags describe exactly TINY_DNN
    again = run_cli("train", "--family", "dnn", "--hidden-units", "32", "--train-subset", "500", "--epochs", "2",
                    registry_root=registry_root)
    assert "Already trained" in again.stdout and "epoch   1/2" not in again.stdout

    listing = run_cli("list", registry_root=registry_root).stdout
    assert TINY_DNN.key in listing and TINY_CNN.key in listing
    assert '"test_accuracy"' in run_cli("list", "--json", registry_root=registry_root).stdout
    shown = run_cli("show", TINY_CNN.key, registry_root=registry_root).stdout
    assert shown.startswith(f"{TINY_CNN.key}  test accuracy ") and " on 10,000 test images  params " in shown.split("\n")[0]
    assert '"fingerprint"' in shown and "· rate 0.003" in shown and "\\u00b7" not in shown  # the title as it reads
    assert "per class, on 10,000 test images:" in shown and "Ankle boot" in shown and shown.count("  1,000") == 10
    comparison = run_cli("compare", TINY_CNN.key, TINY_DNN.key, registry_root=registry_root).stdout
    assert "McNemar exact p =" in comparison and "95% CI" in comparison
    exported = run_cli("export", TINY_CNN.key, "--format", "tflite", "--out", str(tmp_path), registry_root=registry_root)
    assert (tmp_path / f"{TINY_CNN.key}.tflite").stat().st_size > 1000, exported.stdout
    run_cli("export", TINY_CNN.key, "--out", str(tmp_path / "mine.keras"), registry_root=registry_root)
    assert (tmp_path / "mine.keras").is_file()  # a file named like one is that file, not a folder
    twice = run_cli("export", TINY_CNN.key, "--out", str(tmp_path / "mine.keras"), registry_root=registry_root, check=False)
    assert twice.returncode == 1 and "exists already and is kept" in twice.stderr
    moved = run_cli("import", str(tmp_path / "mine.keras"), registry_root=tmp_path / "elsewhere").stdout
    assert f"{TINY_CNN.key}: {TINY_CNN.title} is in the registry now, tested here on its 10,000 test images" in moved
    deleted = run_cli("delete", TINY_DNN.key, registry_root=registry_root).stdout
    assert "moved to the trash" in deleted and "python -m core restore" in deleted
    assert TINY_DNN.key not in run_cli("list", registry_root=registry_root).stdout
    assert f"restored {TINY_DNN.key}" in run_cli("restore", TINY_DNN.key[:6].upper(), registry_root=registry_root).stdout
    run_cli("delete", TINY_DNN.key, registry_root=registry_root)
    checked = run_cli("doctor", registry_root=registry_root).stdout  # a check keeps the trash: the slip stays undoable
    assert "1 deleted model in the trash, restorable for 7 days" in checked and "--empty-trash" in checked
    assert "emptied" not in checked
    assert "emptied from the trash: " + TINY_DNN.key in run_cli("doctor", "--empty-trash", registry_root=registry_root).stdout
    gone = run_cli("restore", TINY_DNN.key, registry_root=registry_root, check=False)
    assert gone.returncode == 1 and "No deleted model" in gone.stderr


def test_errors_are_one_clear_line_without_a_traceback(registry_root, monkeypatch):
    typo = run_cli("list", registry_root=registry_root, check=False)  # $CNNCLASSROOM_REGISTRY names no folder
    assert typo.returncode == 1 and "$CNNCLASSROOM_REGISTRY" in typo.stderr and not registry_root.exists()
    registry_root.mkdir()
    missing = run_cli("show", "0123456789abcdef", registry_root=registry_root, check=False)
    assert missing.returncode == 1 and "No model with key 0123456789abcdef" in missing.stderr
    assert "Traceback" not in missing.stderr
    bad_key = run_cli("delete", "../../etc", registry_root=registry_root, check=False)
    assert bad_key.returncode == 1 and "'../../etc' is not a model key: a key is 16 hexadecimal digits" in bad_key.stderr
    unknown = run_cli("train", "--dataset", "nope", registry_root=registry_root, check=False)
    assert unknown.returncode == 1 and "No dataset here is named or titled 'nope'" in unknown.stderr
    assert unknown.stdout == ""  # nothing "Training"
    typo = run_cli("--root", str(registry_root) + "-typo", "list", registry_root=registry_root, check=False)
    assert typo.returncode == 1 and "There is no registry at" in typo.stderr
    assert not Path(str(registry_root) + "-typo").exists()  # a typo creates no empty registry
    bad_value = run_cli("train", "--learning-rate", "50", registry_root=registry_root, check=False)
    assert bad_value.returncode == 1 and "learning_rate must be a number" in bad_value.stderr
    for proxy in ("https_proxy", "http_proxy"):  # offline, on a machine that is online too: downloads are refused
        monkeypatch.setenv(proxy, "http://127.0.0.1:9")  # by the discard port, as proxies urllib takes from the environment
    offline = run_cli("train", "--dataset", "cifar10", "--epochs", "1", registry_root=registry_root, check=False)
    assert offline.returncode == 1 and "cifar" in offline.stderr.lower() and "Traceback" not in offline.stderr


def test_datasets_says_what_is_here_and_how_to_get_the_rest(registry_root):
    output = run_cli("datasets", registry_root=registry_root).stdout
    assert "fashion_mnist" in output and "available" in output
    assert "mnist" in output and "unavailable" in output


def test_warmup_trains_then_is_a_pure_cache_hit(registry_root, trained_registry_root, monkeypatch, capsys):
    """The CNN is already there (copied from the session's trained registry); warmup trains only the DNN, then nothing."""
    monkeypatch.setattr(cli, "WARMUP_PRESETS", ("tiny dnn", "tiny cnn"))
    monkeypatch.setitem(cli.PRESETS, "tiny dnn", TINY_DNN)
    monkeypatch.setitem(cli.PRESETS, "tiny cnn", TINY_CNN)
    shutil.copytree(trained_registry_root / "models" / TINY_CNN.key, registry_root / "models" / TINY_CNN.key)
    assert cli.main(["warmup"]) == 0
    first = capsys.readouterr().out
    assert "tiny dnn: training" in first and "epoch   2/2" in first and "tiny cnn: already trained" in first
    assert cli.main(["warmup"]) == 0
    output = capsys.readouterr().out
    assert output.count("already trained") == 2 and "epoch   1/" not in output


def test_flags_override_a_preset():
    arguments = cli.build_parser().parse_args(["train", "--preset", "classic CNN", "--epochs", "2", "--rotation-range", "10"])
    config = cli.config_from_arguments(arguments)
    assert config.filters == (32, 64) and config.epochs == 2 and config.augmentation.rotation_range == 10


def test_tensorflow_start_up_noise_is_dropped_and_real_errors_are_kept(capfd):
    from core import logs

    with logs._filtered_stderr():
        for line in ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
                     "I0000 00:00:1795974604.594409    6366 port.cc:153] oneDNN custom operations are on.",
                     "E0000 00:00:1795974609.204218 6366 some_kernel.cc:52] Out of memory while allocating 4 GB"):
            os.write(2, (line + "\n").encode())
        print("the project's own warning", file=sys.stderr)
    assert sorted(capfd.readouterr().err.splitlines()) == [
        "E0000 00:00:1795974609.204218 6366 some_kernel.cc:52] Out of memory while allocating 4 GB",
        "the project's own warning",
    ]
    cuda_error = "E0000 00:00:1795974609.204218 6366 cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR (303)"
    assert logs.is_noise(cuda_error) is not logs.has_nvidia_driver()  # with a driver, a failed cuInit is a real error


def test_help_lists_the_commands_a_person_runs_and_hides_the_internal_worker():
    help_text = cli.build_parser().format_help()
    assert "{train,list,show,compare,export,import,delete,restore,pin,unpin,datasets,warmup,doctor}" in help_text
    assert "worker" not in help_text and "SUPPRESS" not in help_text


def test_a_reader_that_leaves_early_gets_no_traceback(tmp_path):
    """`python -m core datasets | head -1`: the pipe closes while the command still writes."""
    process = subprocess.Popen([sys.executable, "-c", "import sys; sys.argv = ['core', '--root', sys.argv[1], 'datasets'];"
                                " import runpy; runpy.run_module('core', run_name='__main__')", str(tmp_path)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=PROJECT, bufsize=0)
    process.stdout.close()  # before a byte is read: every write fails
    errors = process.stderr.read().decode()
    assert process.wait(timeout=120) == 1 and errors == "", errors  # nothing said: the reader left


def test_a_command_that_only_reads_refuses_a_root_that_is_no_registry(tmp_path, capsys):
    """`--root <a photo folder> list` wrote an index and folders into the photos and said "The registry is empty";
    a zip given as --root was called a folder that does not exist; `datasets restore` counted 0 in a missing one."""
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "cat.jpg").write_bytes(b"\xff\xd8 not read")
    assert cli.main(["--root", str(photos), "list"]) == 1
    assert f"{photos} is not a registry: it holds other files" in capsys.readouterr().err
    assert sorted(path.name for path in photos.iterdir()) == ["cat.jpg"]  # nothing written into it
    (tmp_path / "photos.zip").write_bytes(b"PK")
    assert cli.main(["--root", str(tmp_path / "photos.zip"), "show", "0123"]) == 1
    assert "There is no registry at" in capsys.readouterr().err.replace("\n", " ")
    assert cli.main(["--root", str(tmp_path / "photos.zip"), "doctor"]) == 1
    assert "it is a file, not a folder" in capsys.readouterr().err
    assert cli.main(["--root", str(tmp_path / "nowhere"), "datasets", "restore"]) == 1
    assert "the folder does not exist" in capsys.readouterr().err and not (tmp_path / "nowhere").exists()
    (tmp_path / "empty").mkdir()  # a folder made for a new registry: an empty one
    assert cli.main(["--root", str(tmp_path / "empty"), "list"]) == 0
    fresh = tmp_path / "fresh-clone-registry"  # the project's own registry/ in a fresh clone holds its README.md
    fresh.mkdir()
    (fresh / "README.md").write_text("models live here")
    assert cli.main(["--root", str(fresh), "list"]) == 0


def test_a_key_is_read_in_any_case_and_by_a_unique_beginning(trained_registry_root):
    """`show 722A986874990EA0` was told a key is "16 hexadecimal digits", which it is; a beginning was refused."""
    from core.errors import EntryNotFoundError
    from core.lookup import full_key
    from core.registry import Registry

    registry = Registry(trained_registry_root)
    assert full_key(registry, TINY_CNN.key.upper()) == TINY_CNN.key
    assert full_key(registry, TINY_CNN.key[:6]) == TINY_CNN.key
    unknown = next(digits for digits in ("0000", "ffff", "1234") if not any(
        key.startswith(digits) for key in (TINY_CNN.key, TINY_DNN.key)))
    with pytest.raises(EntryNotFoundError, match=f"No model's key starts with {unknown}"):
        full_key(registry, unknown)
    with pytest.raises(EntryNotFoundError, match="too short to name a model: type at least 4 digits"):
        full_key(registry, "abc")  # too short to be a beginning
    with pytest.raises(EntryNotFoundError, match="'Not a key' is not a model key: a key is 16 hexadecimal digits, or "
                                                 "its first 4 or more, as `python -m core list` shows beside each title"):
        full_key(registry, "Not a key")  # as typed, not lowered: a title, say


def test_root_after_the_command_and_names_in_any_case(trained_registry_root, tmp_path):
    """`list --root R` was "unrecognized arguments"; `--family CNN` and `--preset "Fast CNN"` were refused."""
    elsewhere = tmp_path / "not-a-registry"
    listed = run_cli("list", "--root", str(trained_registry_root), "--family", "CNN", registry_root=elsewhere).stdout
    assert TINY_CNN.key in listed and TINY_DNN.key not in listed and not elsewhere.exists()
    arguments = cli.build_parser().parse_args(["train", "--preset", "FAST cnn", "--family", "DNN", "--root", "r"])
    assert (arguments.preset, arguments.family, arguments.root) == ("fast CNN", "dnn", "r")
    assert cli.build_parser().parse_args(["--root", "r", "datasets", "delete", "x"]).root == "r"  # before it, as ever


@pytest.mark.parametrize("typed, says", [
    (["lst"], "python -m core: error: 'lst' is not a command; the commands are train, list, show, compare, export, "
              "import, delete, restore, pin, unpin, datasets, warmup, doctor. Did you mean 'list'?"),
    (["datasets", "gt", "rock_paper_scissors"], "python -m core datasets: error: 'gt' is not a command; the commands "
                                                "are import, get, delete, restore. Did you mean 'get'?"),
    (["train", "--famly", "cnn"], "python -m core train: error: unrecognized arguments: --famly cnn. Did you mean "
                                  "--family?"),  # the command's own --help lists --family, the first one does not
    (["datasets", "import", "a.zip", "--validaton", "b.zip"], "python -m core datasets import: error: unrecognized "
                                                             "arguments: --validaton b.zip. Did you mean --validation?"),
    (["list", "--family", "cnm"], "python -m core list: error: argument --family: invalid choice: 'cnm' (choose from "
                                  "'dnn', 'cnn', 'transfer', 'imported'). Did you mean 'cnn'?"),
    (["train", "--epochs", "ten"], "python -m core train: error: argument --epochs: invalid int value: 'ten'."),
])
def test_a_typo_gets_one_line_with_the_nearest_spelling_not_the_whole_usage(typed, says, capsys):
    """argparse printed `train`'s twenty lines of usage above the error, and offered the hidden `worker` command."""
    with pytest.raises(SystemExit) as exit:
        cli.main(typed)
    help_command = says.split(": error")[0]
    assert exit.value.code == 2
    assert capsys.readouterr().err == f"{says}\n`{help_command} --help` shows what it takes.\n"


def test_a_teacher_pins_a_lessons_model_at_the_command_line_and_unpins_it(registry_root, trained_registry_root, capsys):
    """Deleting a pinned model said "Unpin it first (Models page, teacher mode)": the command line had no way."""
    shutil.copytree(trained_registry_root / "models" / TINY_CNN.key, registry_root / "models" / TINY_CNN.key)
    assert cli.main(["pin", TINY_CNN.key[:6], TINY_CNN.key]) == 0  # one model named twice: pinned once
    assert capsys.readouterr().out == (f"pinned: {TINY_CNN.key}  {TINY_CNN.title}\n"
                                       "pinned models cannot be deleted until `python -m core unpin KEY`\n")
    assert cli.main(["pin", TINY_CNN.key]) == 0 and capsys.readouterr().out.startswith(f"already pinned: {TINY_CNN.key}")
    assert cli.main(["list"]) == 0 and capsys.readouterr().out.splitlines()[1].endswith(f"{TINY_CNN.title}  [pinned]")
    assert cli.main(["show", TINY_CNN.key]) == 0  # which models are pinned was found out only by a refused delete
    assert f"pinned: a lesson needs it, so it cannot be deleted until `python -m core unpin {TINY_CNN.key}`" in \
        capsys.readouterr().out
    assert cli.main(["delete", TINY_CNN.key]) == 1
    assert f"is pinned for a lesson, so it cannot be deleted. Unpin it first (`python -m core unpin {TINY_CNN.key}`" \
        in capsys.readouterr().err
    assert cli.main(["unpin", TINY_CNN.key, "0123456789abcdef"]) == 1  # a mistyped second key changes nothing
    assert "0123456789abcdef" in capsys.readouterr().err and (registry_root / "models" / TINY_CNN.key / "pinned").exists()
    assert cli.main(["unpin", TINY_CNN.key]) == 0 and capsys.readouterr().out.startswith(f"unpinned: {TINY_CNN.key}")
    assert cli.main(["delete", TINY_CNN.key]) == 0 and "moved to the trash" in capsys.readouterr().out


def test_train_takes_a_dataset_and_a_base_model_as_the_other_commands_name_them(registry_root, trained_registry_root,
                                                                                capsys):
    """`train --dataset Fashion-MNIST` and `--base-model registry:<4 digits>` were refused, though `list --dataset`
    takes a title and every other KEY its beginning; a flag the network does not use, or a base in the trash, was
    not said."""
    from core.registry import Registry

    root = registry_root
    for config in (TINY_DNN, TINY_CNN):
        shutil.copytree(trained_registry_root / "models" / config.key, root / "models" / config.key)
    dense_flags = ["--family", "dnn", "--hidden-units", "32", "--train-subset", "500", "--epochs", "2"]
    assert cli.main(["train", "--dataset", "FASHION-mnist", *dense_flags, "--padding", "same"]) == 0  # its title
    printed = capsys.readouterr()
    assert printed.out.startswith(f"Already trained: {TINY_DNN.key}")  # the very same model: nothing trained
    assert printed.err == "note: --padding does not apply to a dnn network: not used\n"
    assert cli.main(["train", "--dataset", "fashion_mnst", *dense_flags]) == 1
    assert capsys.readouterr().err == ("error: No dataset here is named or titled 'fashion_mnst'. Did you mean "
                                       "'fashion_mnist'? `python -m core datasets` lists each dataset's name and title.\n")
    Registry(root).delete(TINY_CNN.key)
    for typed in (TINY_CNN.key[:5], TINY_CNN.key):  # the base's beginning, or the whole key: in the trash, said so
        assert cli.main(["train", "--family", "transfer", "--base-model", f"registry:{typed}", "--epochs", "1"]) == 1
        printed = capsys.readouterr()
        assert printed.out == "" and f"The model {TINY_CNN.key} was deleted: it waits in the trash" in printed.err
        assert f"`python -m core restore {typed}` brings it back" in printed.err
    assert cli.main(["show", TINY_CNN.key[:5]]) == 1 and "was deleted: it waits in the trash" in capsys.readouterr().err


def test_more_training_images_than_the_dataset_has_is_said_and_flags_are_taken_after_the_command(capsys):
    from core.course import within_the_data

    arguments = cli.build_parser().parse_args(["train", "--dataset", "shapes", "--train-subset", "100000",
                                               "--fine-tune-layers", "2", "--verbose"])
    asked = cli.config_from_arguments(arguments)
    cli.print_unused_flags(arguments, asked, within_the_data(asked))
    assert capsys.readouterr().err == (
        "note: --fine-tune-layers does not apply to a cnn network: not used\n"
        "note: --train-subset 100,000 is more than this dataset's training images: it trains on all of them\n")
    assert arguments.verbose  # after the command, as before it (it was refused with "Did you mean --verbose?")


def test_a_mistyped_course_or_imported_dataset_gets_the_nearest_name():
    from core.course_datasets import get_course_dataset
    from core.errors import CoreError, DatasetError
    from core.lookup import imported_dataset_named

    with pytest.raises(DatasetError, match="Unknown course dataset. Did you mean 'horses_or_humans'?"):
        get_course_dataset("horse-or-human", root=None)
    with pytest.raises(CoreError, match="No imported dataset is named or titled 'horse-or-humans'. Did you mean "
                                        "'horse-or-human'?"):
        imported_dataset_named("horse-or-humans", {"folder:8539ddb22433": "horse-or-human"})
