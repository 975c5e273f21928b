"""The course's photo datasets: `datasets get` downloads with keras.utils.get_file from a loopback server, checks the
SHA-256, imports both zips as one dataset; offline it names the URLs and the import command. And `datasets import`
with `--validation` and `--root` through the real command line."""

import functools
import hashlib
import http.server
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from photos import photo_files, photo_zip

from core import cli, course_datasets
from core.catalogue import COURSE_DATASETS, CourseDataset, CourseFile, course_datasets as listed_courses
from core.errors import DatasetError, DatasetUnavailableError

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    home = tmp_path / "keras"
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home


@pytest.fixture(scope="module")
def course_zips(tmp_path_factory):
    """A horses-or-humans-like pair: rps.zip-style training zip (wrapped class folders) and a validation zip."""
    folder = tmp_path_factory.mktemp("course")
    train = photo_zip(folder / "horse-or-human.zip", photo_files({"train": 10}, split_folders=False, size=(150, 150)))
    validation = photo_zip(folder / "validation-horse-or-human.zip",
                           photo_files({"validation": 3}, split_folders=False, size=(150, 150), seed=9))
    return folder, train, validation


@pytest.fixture
def loopback(course_zips):
    """An HTTP server on 127.0.0.1 serving the course zips; yields its base URL and the paths it was asked for."""
    folder = course_zips[0]
    asked = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *arguments):
            asked.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", asked
    server.shutdown()
    server.server_close()


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def served_course(monkeypatch, base, train, validation, train_hash=None):
    course = CourseDataset("horses_or_humans", "Horses or humans (course)", "test copy",
                           CourseFile(base + train.name, train_hash or sha256(train), train.stat().st_size),
                           CourseFile(base + validation.name, sha256(validation), validation.stat().st_size))
    monkeypatch.setitem(COURSE_DATASETS, "horses_or_humans", course)
    return course


def test_get_downloads_checks_and_imports_both_zips_then_works_offline(tmp_path, keras_home, course_zips, loopback,
                                                                       monkeypatch):
    _, train, validation = course_zips
    base, asked = loopback
    served_course(monkeypatch, base, train, validation)
    root = tmp_path / "registry"
    report = course_datasets.get_course_dataset("horses_or_humans", root)
    assert sorted(asked) == ["/horse-or-human.zip", "/validation-horse-or-human.zip"]
    assert (keras_home / "datasets" / "horse-or-human.zip").read_bytes() == train.read_bytes()
    assert report.split_counts["validation"] == {"angular": 3, "round": 3} and report.title == "Horses or humans (course)"
    assert [course.imported_as for course in listed_courses(root)][0] == report.name
    asked.clear()
    served_course(monkeypatch, "http://127.0.0.1:9/", train, validation)  # the host is gone: the cached, checked zips serve
    again = course_datasets.get_course_dataset("horses_or_humans", root)
    assert again.name == report.name and asked == [] and "already imported" in again.notes[-1]


def test_a_download_whose_checksum_does_not_match_is_refused_and_removed(tmp_path, keras_home, course_zips, loopback,
                                                                         monkeypatch):
    _, train, validation = course_zips
    served_course(monkeypatch, loopback[0], train, validation, train_hash="0" * 64)
    with pytest.raises(DatasetUnavailableError, match="horse-or-human.zip .*the download failed.*hash"):
        course_datasets.get_course_dataset("horses_or_humans", tmp_path / "registry")
    assert not (keras_home / "datasets" / "horse-or-human.zip").exists()
    assert not (tmp_path / "registry" / "datasets").exists() or not any((tmp_path / "registry" / "datasets").iterdir())


def test_another_file_of_the_zips_name_in_the_cache_is_named_and_kept(tmp_path, keras_home, course_zips, loopback,
                                                                      monkeypatch):
    """A teacher's copy that is not the published zip was met with "cannot be downloaded now … a zip copied there is
    used as it is", and a failed download deleted it; now it is named and left as it is. A copy cut short (smaller
    than the published zip) is a download to finish: it is fetched again."""
    _, train, validation = course_zips
    served_course(monkeypatch, loopback[0], train, validation)
    (keras_home / "datasets").mkdir(parents=True)
    copied = keras_home / "datasets" / "horse-or-human.zip"
    copied.write_bytes(train.read_bytes()[::-1])  # as large as the published zip, another file
    with pytest.raises(DatasetError, match="is there, but it is not the published horse-or-human.zip"):
        course_datasets.get_course_dataset("horses_or_humans", tmp_path / "registry")
    assert copied.read_bytes() == train.read_bytes()[::-1]
    copied.write_bytes(train.read_bytes()[:5000])  # cut short
    report = course_datasets.get_course_dataset("horses_or_humans", tmp_path / "registry")
    assert copied.read_bytes() == train.read_bytes() and report.title == "Horses or humans (course)"


def test_offline_the_message_names_the_urls_and_the_import_command(tmp_path, keras_home, monkeypatch, capsys):
    def offline(url, timeout):
        raise OSError(f"cannot reach {url.split('/')[2]}: [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(course_datasets, "check_reachable", offline)  # this machine is offline; CI might not be
    assert cli.main(["--root", str(tmp_path / "registry"), "datasets", "get", "rock_paper_scissors"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("error: Rock, paper, scissors (course) cannot be downloaded now: "
                            "https://storage.googleapis.com/download.tensorflow.org/data/rps.zip")
    assert "python -m core datasets import rps.zip --validation rps-test-set.zip" in error
    assert str(keras_home / "datasets") in error and "Traceback" not in error
    assert "is used once it is checked to be the published file (by its SHA-256)" in error
    assert cli.main(["--root", str(tmp_path / "registry"), "datasets", "get", "cats_vs_dogs"]) == 1
    assert "is used as it is (this file has no published checksum to check it by)" in capsys.readouterr().err
    assert cli.main(["datasets", "get", "imagenet"]) == 1 and "Unknown course dataset" in capsys.readouterr().err


def run_cli(*arguments, environment_root):
    """`python -m core ...` in a fresh process, with $CNNCLASSROOM_REGISTRY pointing at another registry."""
    environment = {**os.environ, "CNNCLASSROOM_REGISTRY": str(environment_root)}
    return subprocess.run([sys.executable, "-m", "core", *arguments], cwd=PROJECT, env=environment, capture_output=True,
                          text=True, timeout=300)


def test_datasets_import_with_a_validation_zip_and_one_root_for_models_and_datasets(tmp_path, course_zips):
    _, train, validation = course_zips
    elsewhere, root = tmp_path / "A", tmp_path / "B"
    imported = run_cli("--root", str(root), "datasets", "import", str(train), "--validation", str(validation),
                       "--title", "Horses", environment_root=elsewhere)
    assert imported.returncode == 0, imported.stderr
    name = re.search(r"as (folder:[0-9a-f]{12}):", imported.stdout).group(1)
    assert "checked 26 of 26 images" in imported.stdout and "validation: the second zip (validation-horse-or-human)" in imported.stdout
    assert re.search(r"\nangular\s+10\s+3\s+3\n", imported.stdout)  # the split table: train, validation, test
    listing = run_cli("--root", str(root), "datasets", environment_root=elsewhere).stdout
    assert name in listing and "Horses" in listing
    assert "20 training and 6 validation images (its own validation photos)" in listing  # what it holds, by its id
    assert name not in run_cli("datasets", environment_root=elsewhere).stdout  # $CNNCLASSROOM_REGISTRY is another registry
    trained = run_cli("--root", str(root), "train", "--dataset", name, "--family", "dnn", "--hidden-units", "8",
                      "--image-size", "16", "--epochs", "1", environment_root=elsewhere)
    assert trained.returncode == 0, trained.stderr
    assert "test accuracy" in trained.stdout and not elsewhere.exists()
    assert len([entry for entry in (root / "models").iterdir() if not entry.name.startswith(".")]) == 1


def test_the_course_zip_imported_by_hand_offline_counts_as_the_course_dataset(tmp_path, course_zips, monkeypatch):
    """The offline way the message gives (`datasets import horse-or-human.zip --validation …`): the zip is recognised
    by its size and published SHA-256, so Home and Datasets count the course dataset as imported."""
    _, train, validation = course_zips
    served_course(monkeypatch, "http://127.0.0.1:9/", train, validation)
    root = tmp_path / "registry"
    code = cli.main(["--root", str(root), "datasets", "import", str(train), "--validation", str(validation)])
    imported = [course.imported_as for course in listed_courses(root)][0]
    assert code == 0 and imported is not None and imported.startswith("folder:")
    from core.catalogue import read_manifest

    assert read_manifest(root, imported).title == "Horses or humans (course)"  # named like `datasets get` names it
    other = photo_zip(tmp_path / "horse-or-human.zip", photo_files({"train": 10}, split_folders=False, size=(150, 150),
                                                                  seed=4))  # the same name, other photos
    from core.folders import import_zip

    report = import_zip(other, tmp_path / "second")
    assert report.title == "horse-or-human" and [c.imported_as for c in listed_courses(tmp_path / "second")][0] is None
