"""Webcam classes, Teachable-Machine style: name 2 to 5 classes, take photos of each, turn them into a folder dataset.

`WebcamClasses` holds one student's shots (JPEG bytes, checked like any upload) until they become a dataset
with `folders.import_images`; it knows nothing of Streamlit, so a page keeps one in its session state. It also keeps
them on disk, in an album (`registry/tmp/webcam-<token>/`) rewritten at each change: a browser reload starts a new
session, and the page finds the shots again by the token in its address (`?webcam=<token>`).
"""

import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import DatasetError, ImageError
from core.folders import MAX_WEBCAM_CLASSES, MIN_WEBCAM_CLASSES, FolderImportReport, import_images
from core.imaging import is_blank, read_image
from core.paths import UPLOADS_FOLDER
from core.splits import TRAIN, images_needed

MAX_SHOTS_PER_CLASS = 60  # 5 x 60 webcam JPEGs in use (about 3 MB each way round), as many more set aside
ENOUGH_SHOTS_PER_CLASS = 20
BLANK_CHECK_SIDE = 64  # a shot is checked for one colour at about this size: enough to see anything in it
DEFAULT_NAMES = "thumbs up, thumbs down"  # the class names a page starts from
ALBUM_PARAMETER, ALBUM_PREFIX, ALBUM_FILE, LOCK_FILE = "webcam", "webcam-", "album.json", ".lock"
ALBUM_KEEP_DAYS = 7  # an album unchanged this long is removed (when a new one starts, and by `doctor`)
TOKEN, SHOT_FILE = re.compile(r"[0-9a-f]{32}"), re.compile(r"[0-9a-f]{32}\.shot")

logger = logging.getLogger(__name__)


def min_shots_per_class(class_count: int) -> int:
    """The fewest shots per class whose validation and test splits each hold every class (10 for 2 classes, 12 for 5):
    with fewer, a class missing from the test photos would let a model that never answers it score 100%."""
    import numpy as np

    return images_needed(np.full(2 * class_count, TRAIN), np.repeat(np.arange(class_count), 2), class_count) or 2


@dataclass
class WebcamClasses:
    """The classes a student named and the webcam shots taken for each, in order; and the classes taken out of the
    names with their shots, kept aside until the name is typed again.

    Two tabs on one album (a tab duplicated, the address opened twice) share it: each change is made to the album as it
    is on disk, under a lock (`_changing`), so that neither tab's photos drop out of the list, and `refresh` shows a
    tab what the other did."""

    shots: dict[str, list[bytes]] = field(default_factory=dict)
    set_aside: dict[str, list[bytes]] = field(default_factory=dict)
    renamed: dict[str, str] = field(default_factory=dict)  # by the last `rename`: {old name: new name}
    folder: Path | None = None  # the album, written once there is a shot; None: kept in memory only
    _files: set[str] = field(default_factory=set, repr=False)  # the shot files the album listed at `_version`
    _version: int = field(default=0, repr=False)  # the album's version this object last read or wrote; 0: none yet
    _photos: dict[str, bytes] = field(default_factory=dict, repr=False)  # shot file name -> its bytes, read once

    @classmethod
    def reopen(cls, root, token: str | None) -> "WebcamClasses":
        """The classes and shots kept in the album `token` of the registry at `root`, or a new album (a new token) when
        there is none or it cannot be read (logged)."""
        if token and TOKEN.fullmatch(token) and (album_dir(root, token) / ALBUM_FILE).is_file():
            try:
                classes = cls(folder=album_dir(root, token))
                classes._load(json.loads((classes.folder / ALBUM_FILE).read_text()))
                return classes
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
                logger.warning("webcam album %s could not be read, a new one starts: %s", token, error)
        remove_old_albums(root)
        return cls(folder=album_dir(root, secrets.token_hex(16)))

    def _load(self, about: dict):
        """Take the classes, shots and version listed in an album's `about` (its album.json)."""
        def photos(files: list[str]) -> list[bytes]:  # a shot file gone or misnamed is left out
            kept = []
            for file in files:
                if SHOT_FILE.fullmatch(file) and (file in self._photos or (self.folder / file).is_file()):
                    if file not in self._photos:
                        self._photos[file] = (self.folder / file).read_bytes()
                    kept.append(self._photos[file])
            return kept

        version = int(about.get("version", -1))  # -1: an album written before versions, read again each time
        shots = {str(name): photos(files) for name, files in about["shots"].items()}
        set_aside = {str(name): photos(files) for name, files in about["set_aside"].items()}
        listed = {file for part in ("shots", "set_aside") for files in about[part].values() for file in files
                  if SHOT_FILE.fullmatch(file)}  # a name that is not a shot's is never touched
        self.shots, self.set_aside, self._files, self._version = shots, set_aside, listed, version
        self._photos = {file: self._photos[file] for file in listed if file in self._photos}

    def refresh(self) -> bool:
        """Catch up with the album on disk when another tab changed it; True when it was read again (each time for an
        album written before versions). An album that has gone (forgotten in another tab, or removed after a week)
        takes its photos with it here too: the class names stay, and the next shot starts a new album. An album that
        cannot be read leaves this tab's copy as it is (logged)."""
        if self.folder is None or self._version == 0:
            return False
        if not (self.folder / ALBUM_FILE).exists():  # the album has gone
            self._start_new_album()
            return True
        try:  # gone between the two looks, or a shot file deleted meanwhile: the next step sees which
            about = json.loads((self.folder / ALBUM_FILE).read_text())
            if about.get("version", -1) == self._version != -1:
                return False
            self._load(about)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            logger.warning("webcam album %s could not be read again, this tab's copy is kept: %s", self.folder, error)
            return False
        return True

    @contextmanager
    def _locked(self):
        """The album's lock, held while its list is read and written (none when its folder is not there)."""
        try:
            lock = open(self.folder / LOCK_FILE, "a") if self.folder is not None and self.folder.is_dir() else None
        except OSError:  # forgotten meanwhile, or not writable: `refresh` and `_save` say which
            lock = None
        try:
            if lock is not None:
                fcntl.flock(lock, fcntl.LOCK_EX)
            yield
        finally:
            if lock is not None:
                lock.close()

    @contextmanager
    def _changing(self):
        """Change the album as it is on disk: under its lock, caught up first (`refresh`), saved after."""
        with self._locked():
            self.refresh()
            yield
            self._save()

    @property
    def token(self) -> str | None:
        """The album's name in the page's address, once it is on disk; None before the first shot."""
        return self.folder.name.removeprefix(ALBUM_PREFIX) if self.folder is not None and self.folder.is_dir() else None

    def _save(self):
        """Rewrite the album: each shot once (named by its content), the list with the next version, then the files of
        the shots this change took out (only those: another tab's new shot is listed before it is kept here). A folder
        that cannot be written leaves the shots in memory only (logged)."""
        if self.folder is None or not (self.folder.is_dir() or any(self.shots.values())):
            return
        if self._version != 0 and not self.folder.is_dir():  # forgotten since it was read: its photos stay gone
            self._start_new_album()
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            listed = {part: {name: [self._write_shot(photo) for photo in photos] for name, photos in kept.items()}
                      for part, kept in (("shots", self.shots), ("set_aside", self.set_aside))}
            version = max(self._version, 0) + 1
            temporary = self.folder / f".{ALBUM_FILE}.{secrets.token_hex(6)}.tmp"
            temporary.write_text(json.dumps({**listed, "version": version}))
            os.replace(temporary, self.folder / ALBUM_FILE)
            kept = {file for part in listed.values() for files in part.values() for file in files}
            for file in self._files - kept:
                (self.folder / file).unlink(missing_ok=True)
            self._files, self._version = kept, version
        except OSError as error:
            logger.warning("webcam shots are kept in this session only, not in %s: %s", self.folder, error)
            self.folder = None

    def _write_shot(self, photo: bytes) -> str:
        name = shot_id(photo) + ".shot"
        if not (self.folder / name).is_file():
            temporary = self.folder / f".{name}.{secrets.token_hex(6)}.tmp"
            temporary.write_bytes(photo)
            os.replace(temporary, self.folder / name)
        self._photos[name] = photo
        return name

    def forget(self):
        """Delete every photo, here and on the server (the album, so in another tab on it too); the class names stay,
        and the next shot starts a new album."""
        if self.folder is not None:
            with self._locked():  # a change under way in another tab ends first, and cannot write them back after
                shutil.rmtree(self.folder, ignore_errors=True)
        self._start_new_album()

    def _start_new_album(self):
        """No photos, the class names kept; the next shot is written to a new album (a new token)."""
        if self.folder is not None:
            self.folder = self.folder.with_name(ALBUM_PREFIX + secrets.token_hex(16))
        self.shots, self.set_aside, self._files, self._photos = {name: [] for name in self.shots}, {}, set(), {}
        self._version = 0

    @property
    def names(self) -> list[str]:
        return list(self.shots)

    def counts(self) -> dict[str, int]:
        return {name: len(photos) for name, photos in self.shots.items()}

    def rename_or_keep(self, text: str) -> tuple[list[str], DatasetError | None]:
        """`rename`, or, where it refuses the names (a slip while typing), the classes as they were (the default ones
        before any) and why: the page then says so under the field and keeps every photo in view."""
        try:
            return self.rename(text), None
        except DatasetError as error:
            return list(self.shots) or self.rename(DEFAULT_NAMES), error

    def rename(self, text: str) -> list[str]:
        """Set the classes from comma-separated names. Nothing is lost: a class that keeps its name keeps its shots; a
        name typed over another in the same place is that class renamed (a typo mended), shots and all; a class taken
        out of the names is set aside with its shots, and comes back with them when its name is typed again."""
        names = list(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
        if not MIN_WEBCAM_CLASSES <= len(names) <= MAX_WEBCAM_CLASSES:
            raise DatasetError(f"Name {MIN_WEBCAM_CLASSES} to {MAX_WEBCAM_CLASSES} different classes, separated by "
                               f"commas, e.g. 'thumbs up, thumbs down'. Received: {text!r}")
        if any(len(name) > 40 or "/" in name or "\\" in name or name.startswith(".") for name in names):
            raise DatasetError(f"A class name has at most 40 characters, no '/' or '\\', and does not start with '.'. "
                               f"Received: {names}")
        if names == list(self.shots):  # as they are (each run of the page asks): nothing to write
            self.renamed = {}
            return names
        with self._changing():
            self._rename_to(names)
        return names

    def _rename_to(self, names: list[str]):
        before, shots, renamed = list(self.shots), {}, {}
        for position, name in enumerate(names):
            replaced = before[position] if position < len(before) else None
            if name in self.shots:
                shots[name] = self.shots[name]
            elif name in self.set_aside:
                shots[name] = self.set_aside.pop(name)
            elif replaced is not None and replaced not in names:  # typed over: the same class, renamed
                shots[name] = self.shots[replaced]
                renamed[replaced] = name
            else:
                shots[name] = []
        for name in before:
            if name not in names and name not in renamed and self.shots[name]:
                self.set_aside[name] = self.shots[name]
        self.set_aside = dict(list(self.set_aside.items())[-MAX_WEBCAM_CLASSES:])  # bounded: the latest few
        self.shots, self.renamed = shots, renamed

    def add(self, name: str, data: bytes):
        """Keep one shot of class `name`; ImageError when it is not a readable photo or is all one colour (a camera
        still starting gives black frames), DatasetError when the class is full."""
        image = read_image(data, f"webcam photo of {name}")  # the same checks as any upload: size, format, pixel count
        if is_blank(image.reduce(max(1, min(image.size) // BLANK_CHECK_SIDE))):  # 6 of 34 shots were black frames
            raise ImageError(f"That photo is all one colour (the camera was still starting, or covered), so it was not "
                             f"added to '{name}'. Wait until you see yourself, then take it again.")
        with self._changing():
            if name not in self.shots:  # renamed in another tab since this page was drawn, for one
                raise DatasetError(f"There is no class {name!r} (the names may have been changed in another tab). "
                                   f"Expected one of {self.names}.")
            if len(self.shots[name]) >= MAX_SHOTS_PER_CLASS:
                raise DatasetError(f"'{name}' has {MAX_SHOTS_PER_CLASS} photos, the most one class may hold here. "
                                   "Delete some, or move on to the next class.")
            self.shots[name].append(bytes(data))

    def delete(self, name: str, shot: str):
        """Forget one shot of class `name`, named by `shot_id` (not by its place: another tab may have added or
        deleted one before it meanwhile); nothing when it is no longer there."""
        with self._changing():
            photos = self.shots.get(name, [])
            for index, photo in enumerate(photos):
                if shot_id(photo) == shot:
                    del photos[index]
                    break

    def problem(self) -> str | None:
        """Why these shots cannot become a dataset yet, or None."""
        least = min_shots_per_class(len(self.names))
        short = [name for name, count in self.counts().items() if count < least]
        if short:
            return (f"Take at least {least} photos of every class (better {ENOUGH_SHOTS_PER_CLASS} or "
                    f"more): {', '.join(short)} still need{'s' if len(short) == 1 else ''} some. With "
                    f"{len(self.names)} classes, {least} each is the fewest that leaves photos of every class for "
                    "checking during training and for the final test.")
        return None

    def set_aside_note(self) -> str | None:
        """The classes taken out of the names, with their photos, in a line; None when there are none."""
        if self.set_aside:
            listed = ", ".join(f"'{name}' ({len(photos)} photo{'s' if len(photos) != 1 else ''})"
                               for name, photos in self.set_aside.items())
            return f"Set aside: {listed}. Type a name again to bring its photos back."
        return None

    def to_dataset(self, root, title=None, on_progress=None) -> FolderImportReport:
        """Import the shots as a folder dataset in the registry at `root`."""
        problem = self.problem()
        if problem:
            raise DatasetError(problem)
        try:
            return import_images(root, self.shots, title=title or "Webcam: " + " vs ".join(self.names),
                                 on_progress=on_progress)
        except ImageError as error:  # cannot happen for shots that passed `add`; said plainly if it does
            raise DatasetError(str(error)) from error


def shot_id(photo: bytes) -> str:
    """A shot's name in its album, made from its content (the page's Delete buttons are keyed by it)."""
    return hashlib.sha256(photo).hexdigest()[:32]


def album_dir(root, token: str) -> Path:
    """Where the album `token` is kept in the registry at `root`."""
    return Path(root) / UPLOADS_FOLDER / f"{ALBUM_PREFIX}{token}"


def remove_old_albums(root, older_than_days: float = ALBUM_KEEP_DAYS) -> list[str]:
    """Remove the albums unchanged for `older_than_days`; returns their paths in the registry."""
    removed, folder = [], Path(root) / UPLOADS_FOLDER
    for album in sorted(folder.glob(f"{ALBUM_PREFIX}*")) if folder.is_dir() else []:
        try:
            if time.time() - album.stat().st_mtime >= older_than_days * 86400:
                shutil.rmtree(album)
                removed.append(f"{UPLOADS_FOLDER}/{album.name}")
        except OSError:  # read-only, or removed meanwhile
            continue
    return removed
