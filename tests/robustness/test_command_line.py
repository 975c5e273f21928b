"""Hostile command lines: every one ends in a defined outcome, a clear line and an exit status, never a traceback."""

from conftest import TINY_CNN, copy_registry

from robustness.support import core_command, record

# (flags after `train`, what stderr must say, exit status)
TRAIN_REFUSALS = [
    (["--seed", "-1"], "seed must be a whole number from 0 to 4,294,967,295", 1),
    (["--hidden-units", "1000000000"], "at most 8 layers of at most 8,192", 1),
    (["--family", "cnn", "--filters", "4096,4096"], "at most 8 layers of at most 1,024", 1),
    (["--family", "cnn", "--filters", "512,512", "--hidden-units", "4096"], "54.8 million weights; the limit is 50 million", 1),
    (["--hidden-units", "many"], "expected comma-separated whole numbers", 2),
    (["--epochs", "0"], "epochs must be a number from 1 to 500", 1),
    (["--family", "cnn", "--filters", "8,8,8,8,8"], "Convolution block 4 has nothing left to look at", 1),
    (["--dataset", "folder:0123456789ab"], "No imported dataset has this name", 1),
    (["--no-such-flag"], "unrecognized arguments", 2),
]


def run(*arguments, root):
    process = core_command(*arguments, root=root)
    stdout, stderr = process.communicate(timeout=300)
    return process.returncode, stdout, stderr


def test_hostile_train_flags_are_refused_in_one_line(registry_root):
    processes = [core_command("train", *flags, root=registry_root) for flags, _, _ in TRAIN_REFUSALS]  # all at once
    for (flags, message, status), process in zip(TRAIN_REFUSALS, processes):
        _, stderr = process.communicate(timeout=300)
        returncode = process.returncode
        assert returncode == status and message in stderr, (flags, returncode, stderr[-600:])
        assert "Traceback" not in stderr and stderr.count(message) == 1, flags
    assert not list((registry_root / "models").glob("*")) if (registry_root / "models").exists() else True
    record("Command line", "hostile `train` flags: a negative seed, 10⁹ hidden units, 4096×4096 filters, a 54.8-million-"
           "weight network, words for numbers, 0 epochs, 5 blocks for a 28-pixel image, a missing folder dataset, an "
           "unknown flag",
           len(TRAIN_REFUSALS), "refused in one line naming the limit, exit status 1 (2 for argparse); no traceback; "
           "nothing trained")


def test_export_into_a_file_and_a_warning_the_train_page_would_show(trained_registry_root, tmp_path):
    root = copy_registry(trained_registry_root, tmp_path / "registry")
    existing = tmp_path / "notes.txt"
    existing.write_text("a file where the export folder should be")
    returncode, _, stderr = run("export", TINY_CNN.key, "--out", existing, root=root)
    assert returncode == 1 and "is another file" in stderr and "Traceback" not in stderr, stderr[-600:]
    assert existing.read_text() == "a file where the export folder should be"

    returncode, stdout, stderr = run("train", "--family", "dnn", "--optimizer", "sgd", "--learning-rate", "10",
                                     "--train-subset", "100", "--epochs", "1", root=root)
    assert returncode == 0 and "Traceback" not in stderr, stderr[-600:]
    assert "warning: learning_rate=10 is far above the usual range for sgd" in stderr
    record("Command line", "`export --out` an existing file; `train` with SGD at learning rate 10", 2,
           "the export is refused in one line and the file is untouched; the training runs and first prints the "
           "Train page's warning")
