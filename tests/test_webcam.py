"""Webcam shots are kept on disk as they are taken: a browser reload (a new session) finds them by the album's token."""

import concurrent.futures
import json
import logging
import os
import threading
import time

import numpy as np
from photos import encode, photo

from core import cli
from core.doctor import check_registry
from core.registry import Registry
from core.webcam import (ALBUM_FILE, ALBUM_KEEP_DAYS, DEFAULT_NAMES, WebcamClasses, album_dir, min_shots_per_class,
                         remove_old_albums, shot_id)


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
    classes.delete("thumbs up", shot_id(ups[0]))  # a bad shot
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


def two_tabs(root, taken: list[bytes]) -> tuple[WebcamClasses, WebcamClasses]:
    """A first tab that took `taken` as "thumbs up" shots, then a second tab opened on its album (its address)."""
    first = WebcamClasses.reopen(root, None)
    first.rename(DEFAULT_NAMES)
    for data in taken:
        first.add("thumbs up", data)
    return first, WebcamClasses.reopen(root, first.token)


def test_two_tabs_on_one_album_keep_every_shot_and_see_each_others_changes(tmp_path):
    """A tab duplicated, or a link opened twice: each change is made to the album as it is on disk, so neither tab's
    shots drop out of it (before, the last tab to save wrote its own list over the other's), and `refresh` shows each
    tab what the other did; a delete names its photo, not its place."""
    root = tmp_path / "registry"
    taken = shots("round", 4, 8)
    first, second = two_tabs(root, taken[:2])
    first.add("thumbs up", taken[2])  # a shot the second tab has not seen yet
    assert second.counts() == {"thumbs up": 2, "thumbs down": 0}
    second.add("thumbs down", shots("angular", 1, 9)[0])  # its own shot, added to the album as it is now
    assert second.counts() == {"thumbs up": 3, "thumbs down": 1}
    assert first.refresh() and first.counts() == {"thumbs up": 3, "thumbs down": 1}
    assert not first.refresh()  # caught up: nothing new
    first.delete("thumbs up", shot_id(taken[0]))  # in the second tab, taken[1] is now where taken[0] was shown
    second.delete("thumbs up", shot_id(taken[0]))  # already gone: nothing else is deleted in its place
    assert WebcamClasses.reopen(root, first.token).shots["thumbs up"] == taken[1:3]
    assert len(list(first.folder.glob("*.shot"))) == 3  # taken[0]'s file went with it
    first.rename("thumbs up, thumbs sideways")  # a typo mended in one tab is the other's next view
    assert second.refresh() and second.names == ["thumbs up", "thumbs sideways"]
    second.add("thumbs sideways", taken[3])
    assert WebcamClasses.reopen(root, first.token).counts() == {"thumbs up": 2, "thumbs sideways": 2}


def test_shots_taken_at_once_in_two_tabs_are_all_kept(tmp_path):
    """Two tabs' shots saved at the same moment (two sessions of one server: two threads): every shot is listed."""
    root = tmp_path / "registry"
    first, second = two_tabs(root, shots("round", 1, 20))
    taken = {"thumbs up": shots("round", 12, 21), "thumbs down": shots("angular", 12, 22)}
    tabs = {"thumbs up": first, "thumbs down": second}
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda name: [tabs[name].add(name, data) for data in taken[name]], taken))
    assert WebcamClasses.reopen(root, first.token).counts() == {"thumbs up": 13, "thumbs down": 12}


def test_forgotten_in_one_tab_the_photos_are_gone_from_the_other_too(tmp_path):
    """"Forget these photos" deletes every photo from the server: the other tab on the album shows none after it, and
    its next shot starts a new album rather than writing the forgotten ones back."""
    root = tmp_path / "registry"
    taken = shots("round", 3, 8)
    first, second = two_tabs(root, taken[:2])
    folder = first.folder
    first.forget()
    assert not folder.exists() and first.token is None and first.counts() == {"thumbs up": 0, "thumbs down": 0}
    second.add("thumbs up", taken[2])
    assert not folder.exists() and second.folder != folder and second.counts() == {"thumbs up": 1, "thumbs down": 0}
    assert WebcamClasses.reopen(root, second.token).shots["thumbs up"] == [taken[2]]
    first.add("thumbs up", taken[0])
    assert first.token and first.folder not in (folder, second.folder) and len(list(first.folder.glob("*.shot"))) == 1


def test_forget_waits_for_a_change_under_way_in_another_tab_which_cannot_write_the_photos_back(tmp_path):
    root = tmp_path / "registry"
    taken = shots("round", 3, 30)
    first, second = two_tabs(root, taken[:1])
    folder = first.folder
    forgetting = threading.Thread(target=first.forget)
    with second._changing():  # the other tab's shot, being saved when "Forget these photos" is pressed
        forgetting.start()
        forgetting.join(timeout=0.5)
        assert forgetting.is_alive() and folder.exists()  # the forget waits for the change to end
        second.shots["thumbs up"].append(taken[1])
    forgetting.join()
    assert not folder.exists()
    second.add("thumbs up", taken[2])  # its next shot: a new album, the forgotten photos not written back
    assert not folder.exists() and second.shots == {"thumbs up": [taken[2]], "thumbs down": []}


def test_an_album_damaged_while_a_tab_has_it_open_keeps_that_tabs_copy(tmp_path, caplog):
    root = tmp_path / "registry"
    taken = shots("round", 2, 31)
    classes, other = two_tabs(root, taken[:1])
    for damaged in ('{"shots": {}, "set_aside": {}, "version": "oops"}', "[]", "not json"):
        (classes.folder / ALBUM_FILE).write_text(damaged)
        with caplog.at_level(logging.WARNING, logger="core.webcam"):
            assert not other.refresh()
        assert other.shots == {"thumbs up": [taken[0]], "thumbs down": []} and "could not be read again" in caplog.text
    other.add("thumbs up", taken[1])  # its next change writes its copy as the album again
    assert WebcamClasses.reopen(root, classes.token).shots["thumbs up"] == taken
