"""Helpers shared by the robustness tests: the results table, file-tree snapshots, processes, images."""

import ctypes
import hashlib
import io
import os
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

PROJECT = Path(__file__).resolve().parents[2]
TF_NOISE = ("I0000", "E0000", "W0000", "WARNING: All log messages", "To enable the following", "oneDNN")


@dataclass
class Row:
    """One line of the robustness table in docs/robustness.md."""

    area: str
    tried: str
    count: int
    outcome: str
    lost: int = 0


ROWS: list[Row] = []


def record(area: str, tried: str, count: int, outcome: str, lost: int = 0):
    """Add a row to the table printed at the end of the run; call it after the test's assertions passed."""
    ROWS.append(Row(area, tried, count, outcome, lost))
    print(f"[robustness] {area} | {tried} | {count} | {outcome} | lost {lost}")


AREAS = ["Uploads", "Memory", "Dataset zips", "Model files", "Registry faults", "Command line", "Train page", "Load", "Exposure"]


def table_markdown(rows=None) -> str:
    """The rows as the markdown table of docs/robustness.md, grouped by area."""
    rows = sorted(ROWS if rows is None else rows, key=lambda row: AREAS.index(row.area) if row.area in AREAS else 99)
    lines = ["| area | what was tried | how many | outcome | lost |", "|---|---|---|---|---|"]
    lines += [f"| {row.area} | {row.tried} | {row.count} | {row.outcome} | {row.lost or 'nothing'} |" for row in rows]
    return "\n".join(lines)


def snapshot(root: Path, skip: list[Path] | tuple[Path, ...] = ()) -> dict[str, str]:
    """Every file and folder under root (except under the folders in skip) with a hash of its content."""
    found = {}
    for directory, folders, files in os.walk(root):
        here = Path(directory)
        if any(here == folder or folder in here.parents for folder in skip):
            folders[:] = []
            continue
        for name in folders:
            found[str((here / name).relative_to(root)) + "/"] = "folder"
        for name in files:
            path = here / name
            if path.is_symlink():
                found[str(path.relative_to(root))] = f"link to {os.readlink(path)}"
            elif not path.is_file():  # another test's named pipe or socket: opening it would wait for a writer
                found[str(path.relative_to(root))] = f"special file {stat.S_IFMT(path.lstat().st_mode):o}"
            else:
                found[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def registries_under(root: Path) -> list[Path]:
    """The registries (folders holding an index.sqlite) under root: other tests' workers may write in them."""
    return [index.parent for index in root.glob("**/index.sqlite")]


def changed(before: dict, after: dict) -> list[str]:
    """Paths added, removed or modified between two snapshots."""
    return sorted(path for path in set(before) | set(after) if before.get(path) != after.get(path))


def quiet(text: str) -> str:
    """Output without TensorFlow's start-up chatter."""
    return "\n".join(line for line in text.splitlines() if not line.startswith(TF_NOISE) and "cpu_feature" not in line)


def core_command(*arguments, root, preexec_fn=None, env=None, **popen):
    """Start `python -m core --root ROOT ...` (the real CLI) from the project folder."""
    return subprocess.Popen(
        [sys.executable, "-m", "core", "--root", str(root), *map(str, arguments)], cwd=PROJECT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        preexec_fn=preexec_fn, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}, **popen,
    )


def without_file_permission_override():
    """preexec_fn: as root, drop the capabilities that ignore file permissions, so chmod'ed folders are read-only.

    Dropping them from the bounding set before exec removes them from the new program's permitted set.
    """
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2, 3):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def encode(image: Image.Image, image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def fashion_test_images(count: int, offset: int = 0):
    """(images (N, 28, 28) uint8, labels) from the real Fashion-MNIST test set."""
    from core.datasets import load_dataset

    dataset = load_dataset("fashion_mnist", validation_fraction=0)
    return dataset.x_test[offset:offset + count, :, :, 0], dataset.y_test[offset:offset + count]
