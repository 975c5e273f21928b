"""Uploaded dataset zips: zip slip, links, bombs, floods and odd layouts, through core.folders.import_zip.

Every zip is built here from real Fashion-MNIST test images plus the hostile part. For each one the test
checks the outcome (refused with a clear message, or accepted with the right classes and skipped files)
and that nothing was written outside the registry's datasets folder: the whole temporary tree, which
holds the registry, a home folder and the working directory, is compared before and after. A refused
zip must leave the datasets folder exactly as it was (no staging folder either).
"""

import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from core import folders
from core.datasets import load_dataset
from core.errors import DatasetError
from core.folder_arrays import IMPORT_SIDES
from core.folders import import_folder, import_zip
from robustness.support import PROJECT, changed, encode, fashion_test_images, record, snapshot

CLASSES = {"tshirt": 0, "trouser": 1, "bag": 8}
STORED_NAME = re.compile(r"images/\d{3}/\d{5}\.(png|jpg|jpeg|bmp|gif|webp|tif|tiff)")
DECODED_NAME = re.compile(r"decoded/\d+x\d+x[13]-pad-[0-9a-f]{12}\.npy")  # prepared while importing (core.folder_arrays)


@dataclass
class ZipCase:
    """A zip to import and the outcome it must get."""

    kind: str
    data: bytes
    error: str | None = None  # regular expression of the refusal message; None: accepted
    memory_capped: bool = False  # imported in a child process allowed only MEMORY_CAP_MB more memory than at start
    counts: dict | None = None  # accepted: images per class
    skipped: set | None = None  # accepted: files listed as skipped
    note: str | None = None  # accepted: a note the report must carry


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A registry, a home and a working directory inside tmp_path, so any stray write shows up in a snapshot."""
    for name in ("registry/datasets", "home", "work"):  # an existing registry already has its datasets folder
        (tmp_path / name).mkdir(parents=True)
    monkeypatch.setenv("CNNCLASSROOM_REGISTRY", str(tmp_path / "registry"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path / "work")
    return tmp_path


@pytest.fixture(scope="module")
def photos():
    """{class folder: [PNG bytes]} of real Fashion-MNIST test images, 6 per class."""
    images, labels = fashion_test_images(300)
    return {folder: [encode(Image.fromarray(image), "PNG") for image in images[labels == label][:6]]
            for folder, label in CLASSES.items()}


def build_zip(entries, compression=zipfile.ZIP_DEFLATED) -> bytes:
    """A zip of (name or ZipInfo, bytes) pairs; names are stored exactly as given ('../', '/', '\\' included)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def class_entries(photos, prefix="", classes=CLASSES):
    return [(f"{prefix}{folder}/{index:02d}.png", data) for folder in classes for index, data in enumerate(photos[folder])]


def link_entry(name, target):
    """A zip entry that unzip would create as a symbolic link to target."""
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def bomb_entries(count, size):
    """count entries of size zero bytes each (deflate shrinks 1 MiB of zeros to about 1 KB)."""
    return [(f"bag/zeros{index:05d}.png", bytes(size)) for index in range(count)]


def lying_sizes_zip(photos):
    """A zip whose directory says a 250 MB entry is 1 KB: a bomb that fools checks of the declared sizes."""
    data = bytearray(build_zip(class_entries(photos) + [("bag/liar.png", bytes(250 * 2**20))]))
    start = data.find(b"PK\x01\x02")  # the first central directory record
    while start != -1:
        name_length = int.from_bytes(data[start + 28:start + 30], "little")
        name = bytes(data[start + 46:start + 46 + name_length])
        if name == b"bag/liar.png":
            data[start + 24:start + 28] = (1024).to_bytes(4, "little")  # uncompressed size in the directory
            local = int.from_bytes(data[start + 42:start + 46], "little")
            data[local + 22:local + 26] = (1024).to_bytes(4, "little")  # and in the local header
        start = data.find(b"PK\x01\x02", start + 4)
    return bytes(data)


def encrypted_flag_zip(photos):
    """A zip whose first entry is marked password-protected."""
    data = bytearray(build_zip(class_entries(photos)))
    data[6] |= 1  # local header general purpose flag
    central = data.index(b"PK\x01\x02")
    data[central + 8] |= 1  # central directory flag
    return bytes(data)


def refused_cases(photos, tmp_path) -> list[ZipCase]:
    good = class_entries(photos)
    outside = tmp_path / "escaped" / "evil.png"
    png = photos["bag"][0]
    return [
        ZipCase("zip slip: '../' entry", build_zip(good + [("../evil.png", png)]), "points outside the archive"),
        ZipCase("zip slip: deep '../' inside a class", build_zip(good + [("bag/../../../escaped/evil.png", png)]),
                "points outside the archive"),
        ZipCase("zip slip: absolute path", build_zip(good + [(str(outside), png)]), "points outside the archive"),
        ZipCase("zip slip: Windows '..\\' path", build_zip(good + [("bag\\..\\..\\evil.png", png)]),
                "points outside the archive"),
        ZipCase("zip slip: drive letter", build_zip(good + [("C:/Windows/evil.png", png)]), "points outside the archive"),
        ZipCase("symlink entry to /etc/passwd", build_zip(good + [link_entry("bag/passwd.png", "/etc/passwd")]),
                "is a symbolic link"),
        ZipCase("symlink entry to a folder outside", build_zip(good + [link_entry("trouser", str(tmp_path))]),
                "is a symbolic link"),
        ZipCase("zip bomb: one 200 MB entry of zeros", build_zip(good + bomb_entries(1, 200 * 2**20)),
                r"expands \d+x .*like a zip bomb", memory_capped=True),
        ZipCase("zip bomb: 1,100 entries of 1 MiB (each under the ratio check)", build_zip(good + bomb_entries(1100, 2**20)),
                r"expands to 1[,\d.]+ MiB; the limit is 1024.0 MiB", memory_capped=True),
        ZipCase("zip bomb: sizes in the directory lie (250 MB declared as 1 KB)", lying_sizes_zip(photos),
                "The zip is corrupt: 'bag/liar.png' cannot be read", memory_capped=True),
        ZipCase(f"more files than the limit ({folders.MAX_FILES + 1:,} entries)",
                build_zip(good + [(f"bag/{index:05d}.png", b"") for index in range(folders.MAX_FILES + 1 - len(good))],
                          zipfile.ZIP_STORED), rf"has {folders.MAX_FILES + 1:,} entries; the limit is {folders.MAX_FILES:,}"),
        ZipCase("password-protected entry", encrypted_flag_zip(photos), "password-protected"),
        ZipCase("one class only", build_zip(class_entries(photos, classes={"bag": 8})),
                r"at least 2 class folders with readable images; found 1 \(bag: 6\)"),
        ZipCase("one class plus empty class folders", build_zip(class_entries(photos, classes={"bag": 8})
                                                                 + [("shoes/", b""), ("shirts/", b"")]),
                r"found 1 \(bag: 6\).*folders=\['bag', 'shirts', 'shoes'\]"),
        ZipCase("only unreadable images", build_zip([("cats/a.png", b"not an image"), ("dogs/b.jpg", b"")]),
                r"found 0 \(none\).*Skipped 2 files"),
        ZipCase("not a zip (text renamed .zip)", b"Dear teacher, here are my photos.\n" * 10, "not a readable .zip file"),
        ZipCase("truncated zip", build_zip(good)[:3000], "not a readable .zip file"),
        ZipCase("empty file", b"", "not a readable .zip file"),
        ZipCase("an empty zip (no entries)", build_zip([]), "(This zip|upload.zip) is empty: it holds no files"),
        ZipCase("a zip of empty folders", build_zip([("cats/", b""), ("dogs/", b"")]),
                "(This zip|upload.zip) is empty: it holds only empty folders"),
    ]


def accepted_cases(photos) -> list[ZipCase]:
    counts = {folder: len(photos[folder]) for folder in sorted(CLASSES)}
    good = class_entries(photos)
    truncated = photos["bag"][0][:60]
    junk = [("__MACOSX/bag/._00.png", b"\x00\x05\x16\x07 AppleDouble"), ("bag/.DS_Store", b"\x00\x00\x00\x01Bud1"),
            (".hidden/x.png", photos["bag"][0]), ("trouser/.secret.png", photos["bag"][0]), ("__MACOSX/", b"")]
    broken = [("bag/notes.png", b"this is text"), ("bag/empty.png", b""), ("bag/cut.png", truncated),
              ("bag/bomb.png", _png_header_claiming(30000, 30000)), ("bag/drawing.png", b"<svg xmlns='x'></svg>")]
    return [
        ZipCase("__MACOSX, .DS_Store and hidden files", build_zip(good + junk), counts=counts, skipped=set()),
        ZipCase("a single top-level folder wrapping the classes", build_zip(class_entries(photos, prefix="clothes/")),
                counts=counts, skipped=set(), note="single top-level folder, which was unwrapped"),
        ZipCase("two nested wrapping folders", build_zip(class_entries(photos, prefix="Downloads/clothes/")),
                counts=counts, skipped=set(), note="unwrapped"),
        ZipCase("an empty class folder beside real ones", build_zip(good + [("shoes/", b"")]), counts=counts,
                skipped=set(), note="Class folder 'shoes' has no readable images and was left out"),
        ZipCase("unreadable images inside (text, empty, truncated, bomb header, SVG)", build_zip(good + broken),
                counts=counts, skipped={name for name, _ in broken}),
        ZipCase("files outside class folders and non-images", build_zip(good + [("README.txt", b"hi"),
                                                                               ("bag/labels.csv", b"a,b")]),
                counts=counts, skipped={"README.txt", "bag/labels.csv"}),
        ZipCase("hostile class and file names (markup, spaces, unicode, 200 characters)",
                build_zip([(f"{name}/{index:02d} <b>x</b> $(reboot).png", data)
                           for name, folder in (("<img src=x onerror=alert(1)>", "bag"), ("ünïcødé 👗", "trouser"), ("x" * 200, "tshirt"))
                           for index, data in enumerate(photos[folder])]),
                counts={"<img src=x onerror=alert(1)>": 6, "x" * 200: 6, "ünïcødé 👗": 6}, skipped=set()),
    ]


def _png_header_claiming(width, height):
    data = bytearray(encode(Image.new("L", (1, 1)), "PNG"))
    data[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    return bytes(data)


def datasets_folder(sandbox) -> Path:
    return sandbox / "registry" / "datasets"


def dataset_folders(sandbox) -> list[Path]:
    folder = datasets_folder(sandbox)
    return sorted(folder.iterdir()) if folder.exists() else []


CAPPED_IMPORT = """
import re, resource, sys
from core.errors import DatasetError
from core.folder_arrays import IMPORT_SIDES
from core.folders import import_zip
with open("/proc/self/status") as status:
    size_kb = int(re.search(r"VmSize:\\s+(\\d+)", status.read()).group(1))
limit = size_kb * 1024 + int(sys.argv[2]) * 2**20
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
try:
    import_zip(sys.argv[1], sys.argv[3])
    print("ACCEPTED")
except DatasetError as error:
    print("REFUSED", error)
"""
MEMORY_CAP_MB = 120


def import_with_capped_memory(path, sandbox) -> str:
    """import_zip in a child process that may use only MEMORY_CAP_MB more memory than after its imports."""
    result = subprocess.run([sys.executable, "-c", CAPPED_IMPORT, str(path), str(MEMORY_CAP_MB),
                             str(sandbox / "registry")], cwd=PROJECT,
                            capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": str(sandbox / "home")})
    assert result.returncode == 0 and result.stdout.startswith("REFUSED"), (
        f"the import crashed or was accepted with {MEMORY_CAP_MB} MB: {result.stdout} {result.stderr[-2000:]}")
    return result.stdout


def test_hostile_zips_are_refused_and_leave_no_trace(sandbox, photos):
    cases = refused_cases(photos, sandbox)
    for number, case in enumerate(cases):
        before = snapshot(sandbox)
        if case.memory_capped:
            path = _as_file(sandbox, case)
            message = import_with_capped_memory(path, sandbox)
            path.unlink()
        else:
            source = case.data if number % 2 else _as_file(sandbox, case)  # bytes (an upload) or a file
            with pytest.raises(DatasetError) as refusal:
                import_zip(source, sandbox / "registry")
            message = str(refusal.value)
            if not isinstance(source, bytes):
                Path(source).unlink()
        assert re.search(case.error, message), f"{case.kind}: {message}"
        assert changed(before, snapshot(sandbox)) == [], f"{case.kind} left a trace"
        assert dataset_folders(sandbox) == []
    assert not (sandbox / "escaped").exists() and not (sandbox.parent / "evil.png").exists()
    assert not Path("/evil.png").exists() and not Path("/tmp/evil.png").exists()
    for case in cases:
        capped = f" (in a process allowed {MEMORY_CAP_MB} MB)" if case.memory_capped else ""
        record("Dataset zips", case.kind, 1, f"refused with a clear message{capped}; nothing written anywhere")


def _as_file(sandbox, case):
    path = sandbox / "work" / "upload.zip"
    path.write_bytes(case.data)
    return path


def test_odd_but_valid_zips_are_accepted_and_write_only_into_their_dataset_folder(sandbox, photos):
    cases = accepted_cases(photos)
    for case in cases:
        before = snapshot(sandbox, skip=[datasets_folder(sandbox)])
        existing = set(dataset_folders(sandbox))
        report = import_zip(case.data, sandbox / "registry")
        assert changed(before, snapshot(sandbox, skip=[datasets_folder(sandbox)])) == [], f"{case.kind} wrote outside"
        new = set(dataset_folders(sandbox)) - existing
        assert len(new) == 1, f"{case.kind}: expected one new dataset folder, found {new}"
        folder = new.pop()
        assert report.counts == case.counts, case.kind
        assert {path for path, _ in report.skipped} == case.skipped, f"{case.kind}: {report.skipped}"
        assert all(reason for _, reason in report.skipped)
        if case.note:
            assert any(case.note in note for note in report.notes), f"{case.kind}: {report.notes}"
        manifest = json.loads((folder / "manifest.json").read_text())
        stored = {str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()}
        decoded = {path for path in stored if DECODED_NAME.fullmatch(path)}
        assert all(STORED_NAME.fullmatch(path) for path in stored - {"manifest.json"} - decoded), stored
        assert len(stored) == 1 + len(IMPORT_SIDES) + sum(case.counts.values()) == 1 + len(decoded) + len(manifest["images"])
        assert not [path for path in datasets_folder(sandbox).iterdir() if path.name.startswith(".import-")]
        if case is not cases[-1]:
            shutil.rmtree(folder)  # several cases hold the same images, which would be one dataset
    data = load_dataset(report.name, validation_fraction=0, root=sandbox / "registry")  # the last one, with hostile names, really loads
    assert sorted(data.class_names) == sorted(cases[-1].counts) and len(data.y_train) + len(data.y_test) == 18
    for case in cases:
        record("Dataset zips", case.kind, 1, "accepted; junk ignored, bad files listed as skipped; stored as images/NNN/NNNNN")


def test_a_folder_with_links_pointing_outside_copies_nothing_from_outside(sandbox, photos):
    secret = sandbox / "secret"
    secret.mkdir()
    (secret / "passwords.png").write_bytes(b"root:hunter2 " + photos["bag"][0])
    upload = sandbox / "work" / "photos"
    for name, data in class_entries(photos):
        (upload / name).parent.mkdir(parents=True, exist_ok=True)
        (upload / name).write_bytes(data)
    (upload / "bag" / "linked.png").symlink_to(secret / "passwords.png")
    (upload / "stolen").symlink_to(secret, target_is_directory=True)
    (upload / "trouser" / "loop").symlink_to(upload, target_is_directory=True)
    report = import_folder(upload, sandbox / "registry")
    assert report.counts == {folder: len(photos[folder]) for folder in sorted(CLASSES)}
    assert {path for path, _ in report.skipped} == {"bag/linked.png", "stolen", "trouser/loop"}
    secret_bytes = (secret / "passwords.png").read_bytes()
    stored = [path.read_bytes() for path in datasets_folder(sandbox).rglob("*") if path.is_file()]
    assert not any(b"hunter2" in data for data in stored) and secret_bytes not in stored
    record("Dataset zips", "folder import with symlinks to a secret file, a secret folder and a loop", 3,
           "links skipped and listed; no outside byte copied")
