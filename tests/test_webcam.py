"""Webcam shots are kept on disk as they are taken: a browser reload (a new session) finds them by the album's token."""

import json
import logging
import os
import time

import numpy as np
from photos import encode, photo

from core import cli
from core.doctor import check_registry
from core.registry import Registry
from core.webcam import (ALBUM_FILE, ALBUM_KEEP_DAYS, DEFAULT_NAMES, WebcamClasses, album_dir, min_shots_per_class,
                         remove_old_albums)


def shots(kind: str, count: int, seed: int) -> list[bytes]:
    """`count` webcam-like JPEGs (Chromium's fake camera's frame size), each different."""
    rng = np.random.default_rng(seed)
    return [encode(photo(kind, rng, (704, 396)), "JPEG") for _ in range(count)]


def test_shots_come_back_after_a_reload_with_their_names_deletes_and_renames(tmp_path):
    root = tmp_path / "registry"
    classes = WebcamClasses.reopen(root, None)
    classes.rename(DEFAULT_NAMES)
    assert classes.token is None and not (root / "tmp").exists()  # a visit without a shot writes nothing
    least = min_shots_per_class(2)
    ups, downs = shots("round", least + 1, 1), shots("angular", least, 2)
    for name, taken in (("thumbs up", ups), ("thumbs down", downs)):
        for data in taken:
            classes.add(name, data)
    token = classes.token
    assert token and album_dir(root, token).is_dir()
    classes.delete("thumbs up", 0)  # a bad shot
    classes.rename("thumbs up, thumbs sideways")  # a typo mended: the same class, renamed
    classes.rename("thumbs up, thumbs sideways, peace")

    again = WebcamClasses.reopen(root, token)  # the reload: a new session, the token from the address
    assert again.token == token and again.names == ["thumbs up", "thumbs sideways", "peace"]
    assert again.shots == {"thumbs up": ups[1:], "thumbs sideways": downs, "peace": []}
    assert len(list(album_dir(root, token).glob("*.shot"))) == 2 * least  # the deleted shot's file went with it
    again.rename("thumbs up, peace")  # taken out of the names: set aside, and kept through the next reload too
    third = WebcamClasses.reopen(root, token)
    assert third.set_aside == {"thumbs sideways": downs} and third.problem() is not None
    third.rename("thumbs up, thumbs sideways")
    assert third.problem() is None
    report = third.to_dataset(root)
    assert report.counts == {"thumbs up": least, "thumbs sideways": least}


def test_a_token_that_names_no_album_or_a_damaged_one_starts_a_new_album(tmp_path, caplog):
    root = tmp_path / "registry"
    classes = WebcamClasses.reopen(root, None)
    classes.rename(DEFAULT_NAMES)
    classes.add("thumbs up", shots("round", 1, 3)[0])
    token = classes.token
    for asked in (None, "", "../../etc", "0" * 32, token.upper()):
        fresh = WebcamClasses.reopen(root, asked)
        assert fresh.names == [] and fresh.folder != album_dir(root, token)
    (album_dir(root, token) / ALBUM_FILE).write_text('{"shots": [1, 2]}')
    with caplog.at_level(logging.WARNING, logger="core.webcam"):
        fresh = WebcamClasses.reopen(root, token)
    assert fresh.names == [] and "could not be read" in caplog.text
    listed = {"shots": {"thumbs up": ["../../escaped.shot", "0" * 32 + ".shot"]}, "set_aside": {}}
    (album_dir(root, token) / ALBUM_FILE).write_text(json.dumps(listed))  # a name that is not a shot's is not read
    (root / "escaped.shot").write_bytes(b"not the album's")
    reopened = WebcamClasses.reopen(root, token)
    assert reopened.shots == {"thumbs up": []}
    reopened.add("thumbs up", shots("round", 1, 5)[0])  # a save deletes no file the list names outside the album
    assert (root / "escaped.shot").read_bytes() == b"not the album's"


def test_a_registry_that_cannot_be_written_keeps_the_shots_in_the_session(tmp_path, caplog):
    root = tmp_path / "registry"
    root.mkdir()
    (root / "tmp").write_text("a file where the uploads folder would be")
    classes = WebcamClasses.reopen(root, None)
    classes.rename(DEFAULT_NAMES)
    with caplog.at_level(logging.WARNING, logger="core.webcam"):
        for data in shots("round", 2, 4):
            classes.add("thumbs up", data)
    assert classes.counts()["thumbs up"] == 2 and classes.token is None
    assert "kept in this session only" in caplog.text


def test_albums_unchanged_for_a_week_are_removed_when_one_starts_and_by_doctor(tmp_path, capsys):
    root = tmp_path / "registry"
    Registry(root)
    albums = []
    for seed in range(3):
        classes = WebcamClasses.reopen(root, None)
        classes.rename(DEFAULT_NAMES)
        classes.add("thumbs up", shots("round", 1, seed)[0])
        albums.append(classes.folder)
    week = ALBUM_KEEP_DAYS * 86400
    os.utime(albums[0], (time.time() - week - 60,) * 2)
    WebcamClasses.reopen(root, None)
    assert not albums[0].exists() and albums[1].exists()
    os.utime(albums[1], (time.time() - week - 60,) * 2)
    checkup = check_registry(Registry(root))
    assert checkup.old_albums == [f"tmp/{albums[1].name}"] and checkup.removed == []
    assert albums[2].exists() and remove_old_albums(root) == []
    os.utime(albums[2], (time.time() - week - 60,) * 2)
    assert cli.main(["--root", str(root), "doctor"]) == 0
    assert f"removed webcam photos left unchanged for {ALBUM_KEEP_DAYS} days: tmp/{albums[2].name}" in capsys.readouterr().out


def test_two_tabs_on_one_album_delete_only_their_own_shots_and_forget_deletes_them_all(tmp_path):
    """A tab duplicated, or a link opened twice: each tab deletes only the shots it deleted itself, so the other's new
    shots stay on disk; "Forget these photos" removes the album and every photo, and the next shot starts a new one."""
    root = tmp_path / "registry"
    first = WebcamClasses.reopen(root, None)
    first.rename(DEFAULT_NAMES)
    taken = shots("round", 3, 8)
    first.add("thumbs up", taken[0])
    first.add("thumbs up", taken[1])
    second = WebcamClasses.reopen(root, first.token)
    first.add("thumbs up", taken[2])  # the first tab's new shot, which the second tab has never seen
    second.delete("thumbs up", 0)
    folder = first.folder
    assert len(list(folder.glob("*.shot"))) == 2  # taken[1] and the first tab's new shot; taken[0] deleted
    first.add("thumbs down", shots("angular", 1, 9)[0])  # the first tab's next save lists all of its own again
    assert WebcamClasses.reopen(root, first.token).counts() == {"thumbs up": 3, "thumbs down": 1}
    first.forget()
    assert not folder.exists() and first.token is None and first.counts() == {"thumbs up": 0, "thumbs down": 0}
    first.add("thumbs up", taken[0])
    assert first.token and first.folder != folder and len(list(first.folder.glob("*.shot"))) == 1
