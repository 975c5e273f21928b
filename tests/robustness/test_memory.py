"""Small files that hold huge images or entries: none may raise a process's peak memory by more than 300 MB.

Every file is generated here (gradients, shapes and noise, saved as real PNG, TIFF and zip files) and handed to
the code a page or command runs on it: Predict's photo path (`photo_to_input`, then the picture the page
shows), a dataset zip import, a folder import, a model import. Each runs in a fresh process that measures its own peak
resident set (tests/robustness/peak_memory.py). Before issue 14's second round, six of them cost 0.38 to 1.55 GB;
the 600 MB entry and file were already skipped, unread, on their declared sizes.
"""

import io
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from robustness.peak_memory import measure
from robustness.support import encode, record

MEMORY_BOUND_MB = 300
WIDTH, HEIGHT = 7_740, 5_160  # 39.9 megapixels: just under the 40 MP limit
BIG_ENTRY_BYTES = 600 * 2**20


@dataclass
class MemoryCase:
    """One small, hostile file, the operation it goes through, and what must come out."""

    kind: str
    operation: str  # see peak_memory.OPERATIONS
    make: Callable[[Path], Path]  # folder -> the file (or folder) it made there
    outcome: str  # "accepted" or "refused"
    says: str | None  # a phrase the notes, the skipped files or the refusal must hold; None: nothing skipped


def _gradient(width=WIDTH, height=HEIGHT, top=65_535, dtype=np.uint16):
    """A horizontal gradient with a darker square in the middle: a real picture that compresses to almost nothing."""
    row = np.linspace(0, top, width, dtype=np.float32).astype(dtype)
    image = np.broadcast_to(row, (height, width)).copy()
    image[height // 4: 3 * height // 4, width // 4: 3 * width // 4] //= 4
    return image


def sixteen_bit_png(folder: Path) -> Path:
    path = folder / "scan-16bit.png"
    Image.fromarray(_gradient()).save(path, compress_level=1)
    return path


def see_through_png(folder: Path) -> Path:
    """A 40 MP RGBA cut-out: a red disc on a fully transparent background."""
    image = Image.new("RGBA", (WIDTH, HEIGHT), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse((WIDTH // 4, HEIGHT // 4, 3 * WIDTH // 4, 3 * HEIGHT // 4), fill=(200, 30, 30, 255))
    path = folder / "cut-out.png"
    image.save(path, compress_level=1)
    return path


def palette_png(folder: Path) -> Path:
    """A 40 MP palette PNG with a transparent colour (Pillow's reduce cannot average palette indices)."""
    image = Image.new("P", (WIDTH, HEIGHT), 0)
    image.putpalette([255, 255, 255, 20, 120, 200] + [0] * 762)
    ImageDraw.Draw(image).rectangle((WIDTH // 3, HEIGHT // 3, 2 * WIDTH // 3, 2 * HEIGHT // 3), fill=1)
    path = folder / "palette.png"
    image.save(path, transparency=0, compress_level=1)
    return path


def long_strip_png(folder: Path) -> Path:
    """40,000 x 1,000 pixels with transparency: too thin to reduce, so it is converted band by band."""
    image = Image.new("LA", (40_000, 1_000), (0, 0))
    ImageDraw.Draw(image).rectangle((1_000, 200, 39_000, 800), fill=(90, 255))
    path = folder / "strip.png"
    image.save(path, compress_level=1)
    return path


def _class_photos(count=4):
    """(name, PNG bytes) of small real-looking photos for two classes: noisy discs and squares."""
    rng = np.random.default_rng(0)
    entries = []
    for folder, shape in (("discs", "ellipse"), ("squares", "rectangle")):
        for index in range(count):
            image = Image.new("RGB", (96, 96), tuple(int(v) for v in rng.integers(150, 256, 3)))
            getattr(ImageDraw.Draw(image), shape)((20, 20, 76, 76), fill=tuple(int(v) for v in rng.integers(0, 120, 3)))
            noisy = np.clip(np.asarray(image) + rng.integers(-15, 16, (96, 96, 3)), 0, 255).astype(np.uint8)
            entries.append((f"{folder}/{index:02d}.png", encode(Image.fromarray(noisy), "PNG")))
    return entries


def float_tiff_zip(folder: Path) -> Path:
    """A small zip: two small classes and one 40 MP float32 TIFF with values 0-1 in flat bands (deflated inside the TIFF)."""
    tiff = io.BytesIO()
    steps = np.minimum(np.arange(WIDTH, dtype=np.float32) * 16 // WIDTH, 15) / np.float32(15)  # 16 flat bands
    values = np.broadcast_to(steps, (HEIGHT, WIDTH)).copy()
    values[HEIGHT // 3: 2 * HEIGHT // 3, WIDTH // 3: 2 * WIDTH // 3] = 0.5
    Image.fromarray(values).save(tiff, "TIFF", compression="tiff_adobe_deflate")
    path = folder / "float-tiff.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in _class_photos():
            archive.writestr(name, data)
        archive.writestr("discs/microscope.tif", tiff.getvalue())
    return path


def big_entry_zip(folder: Path) -> Path:
    """Two small classes and one 600 MB entry compressed about 95x, just under the ratio check.

    The entry is one 1 MiB block deflated once with a full flush (which leaves no state behind), repeated 600
    times and closed by an empty final block: a valid deflate stream of 600 MB, written in a second, not
    compressed for six.
    """
    rng = np.random.default_rng(1)
    block = np.zeros(2**20, np.uint8)
    spots = rng.choice(block.size, block.size // 760, replace=False)
    block[spots] = rng.integers(0, 256, spots.size)
    compressor = zlib.compressobj(1, zlib.DEFLATED, -15)
    chunk = compressor.compress(block.tobytes()) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeats, crc = BIG_ENTRY_BYTES // block.size, 0
    for _ in range(repeats):
        crc = zlib.crc32(block.data, crc)
    entries = [(name, [zlib.compress(data, 6, -15)], zlib.crc32(data), len(data)) for name, data in _class_photos()]
    entries.append(("squares/huge.png", [chunk] * repeats + [b"\x03\x00"], crc, BIG_ENTRY_BYTES))
    path = folder / "big-entry.zip"
    _write_deflated_zip(path, entries)
    with zipfile.ZipFile(path) as archive, archive.open("squares/huge.png") as entry:
        info = archive.getinfo("squares/huge.png")
        assert entry.read(2 * block.size) == block.tobytes() * 2  # a real stream (read whole once, CRC checked: fine)
    assert 80 < info.file_size / info.compress_size < 100, "the entry must pass the zip's 100x ratio check"
    return path


def _write_deflated_zip(path: Path, entries):
    """A zip of (name, deflated chunks, CRC-32, size) entries, written field by field (APPNOTE.TXT 4.3)."""
    directory = []
    with open(path, "wb") as file:
        for name, chunks, crc, size in entries:
            offset, encoded, compressed = file.tell(), name.encode(), sum(len(chunk) for chunk in chunks)
            file.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, compressed, size, len(encoded), 0))
            file.write(encoded)
            for chunk in chunks:
                file.write(chunk)
            directory.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x21, crc, compressed, size,
                                         len(encoded), 0, 0, 0, 0, 0, offset) + encoded)
        start = file.tell()
        file.write(b"".join(directory))
        file.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(directory), len(directory), file.tell() - start, start, 0))


def folder_with_a_huge_file(folder: Path) -> Path:
    """A folder of two classes and a 600 MB file named .png (sparse: no disk space used)."""
    root = folder / "photos"
    for name, data in _class_photos():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    with open(root / "squares" / "huge.png", "wb") as huge:
        huge.truncate(BIG_ENTRY_BYTES)
    return root


def photo_for_a_wide_model(folder: Path) -> Path:
    """A square 1,024-pixel photo, for a model whose input is 1 x 512 pixels."""
    path = folder / "square.png"
    Image.fromarray(_gradient(1024, 1024, top=255, dtype=np.uint8)).convert("RGB").save(path)
    return path


def huge_layer_model(folder: Path) -> Path:
    """An 11 KB .keras whose config declares Dense(2,000,000) after a 784-pixel Flatten (6 GB of weights)."""
    from robustness.test_model_files import huge_dense_file, small_image_classifier

    good = folder / "good.keras"
    small_image_classifier().save(good)
    return huge_dense_file(folder, good)


CASES = [
    MemoryCase("16-bit grayscale PNG, 40 MP", "photo", sixteen_bit_png, "accepted", "0 to 65,535"),
    MemoryCase("zip holding a 40 MP float TIFF (values 0-1)", "zip", float_tiff_zip, "accepted", None),
    MemoryCase("zip with a 600 MB entry compressed 95x", "zip", big_entry_zip, "accepted", "huge.png: 600.0 MB"),
    MemoryCase("see-through (RGBA) PNG, 40 MP", "photo", see_through_png, "accepted", "Transparent areas"),
    MemoryCase("1,024-pixel photo on a model with a 1 x 512 input (Predict's picture)", "wide_model_photo",
               photo_for_a_wide_model, "accepted", "Padded to the model's shape"),
    MemoryCase("folder holding a 600 MB file named .png", "folder", folder_with_a_huge_file, "accepted",
               "huge.png: 600.0 MB"),
    MemoryCase("palette PNG with a transparent colour, 40 MP", "photo", palette_png, "accepted", "Transparent areas"),
    MemoryCase("40,000 x 1,000 see-through grayscale PNG", "photo", long_strip_png, "accepted", "Transparent areas"),
    MemoryCase(".keras declaring Dense(2,000,000): a model import", "model", huge_layer_model, "refused",
               "declares layers far larger than the weights it holds"),
]


@pytest.mark.parametrize("case", CASES, ids=[case.kind for case in CASES])
def test_a_small_file_never_costs_more_than_300_mb(case, tmp_path):
    path = case.make(tmp_path)
    size = sum(file.stat().st_blocks * 512 for file in path.rglob("*")) if path.is_dir() else path.stat().st_size
    measured = measure(case.operation, path, tmp_path / "registry")
    assert measured.outcome == case.outcome, measured
    assert case.says in measured.message if case.says is not None else measured.message == "", measured
    assert measured.peak_mb < MEMORY_BOUND_MB, f"{case.kind}: peak memory rose by {measured.peak_mb} MB"
    record("Memory", f"{case.kind} ({size / 1000:,.0f} KB on disk)", 1,
           f"{case.outcome}; peak memory +{measured.peak_mb:.0f} MB (bound {MEMORY_BOUND_MB} MB)")
