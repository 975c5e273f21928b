"""Real-looking photos made on the spot: a lit, noisy, textured background and an object, as PNG or JPEG files.

Two kinds of object tell the classes apart: "round" (a shaded disc, a ball on a table) and "angular" (a
triangle or box). Every photo differs in its light, colours, place, size and sensor noise, like frames of
the course's computer-generated horses and hands; `photo_zip` lays them out like the course's zips.
Used by the tests and by bench/folder_memory.py; fast enough to make a 120 MB zip in seconds.
"""

import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

KINDS = ("round", "angular", "ring")
_NOISE = {}  # (height, width, sigma) -> a few fields of sensor noise, shifted at random for each photo (fast)


def _noise(rng, height, width, sigma):
    key = (height, width, sigma)
    if key not in _NOISE:
        bank = np.random.default_rng(1234)
        _NOISE[key] = [np.clip(bank.normal(0, sigma, (height, width, 3)), -127, 127).astype(np.int16) for _ in range(4)]
    field = _NOISE[key][int(rng.integers(4))]
    return np.roll(field, (int(rng.integers(height)), int(rng.integers(width))), axis=(0, 1))


def photo(kind: str, rng: np.random.Generator, size=(300, 300), noise=14.0) -> Image.Image:
    """One RGB photo of a `kind` object (round, angular or ring) on a lit, textured background."""
    width, height = size
    top, bottom = rng.uniform(60, 230, 3), rng.uniform(30, 200, 3)
    rows = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    light = np.linspace(0.85, 1.15, width, dtype=np.float32)[None, :, None] if rng.random() < 0.5 else 1.0
    background = np.broadcast_to((top * (1 - rows) + bottom * rows) * light, (height, width, 3))
    image = Image.fromarray(np.clip(background, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    side = rng.uniform(0.35, 0.6) * min(width, height)
    x, y = rng.uniform(side / 2, width - side / 2), rng.uniform(side / 2, height - side / 2)
    colour = tuple(int(value) for value in rng.integers(0, 256, 3))
    shade = tuple(max(0, value - 70) for value in colour)
    if kind == "round":
        draw.ellipse((x - side / 2, y - side / 2, x + side / 2, y + side / 2), fill=shade)
        draw.ellipse((x - side / 2, y - side / 2, x + side / 3, y + side / 3), fill=colour)
    elif kind == "angular":
        points = [(x, y - side / 2), (x + side / 2, y + side / 2), (x - side / 2, y + side / 2)]
        if rng.random() < 0.5:
            points = [(x - side / 2, y - side / 3), (x + side / 2, y - side / 3), (x + side / 2, y + side / 3),
                      (x - side / 2, y + side / 3)]
        draw.polygon(points, fill=colour, outline=shade, width=max(2, int(side / 20)))
    else:
        draw.ellipse((x - side / 2, y - side / 2, x + side / 2, y + side / 2), outline=colour, width=max(3, int(side / 8)))
    pixels = np.asarray(image, np.int16) + _noise(rng, height, width, noise)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def encode(image: Image.Image, image_format="PNG", quality=90, compress_level=1) -> bytes:
    """The photo as PNG (fast compression; 0 for none, fastest) or JPEG bytes."""
    buffer = io.BytesIO()
    if image_format == "PNG":
        image.save(buffer, "PNG", compress_level=compress_level)
    else:
        image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def photo_files(per_split: dict[str, int], kinds=("round", "angular"), size=(300, 300), image_format="PNG",
                prefix="", seed=0, split_folders=True, compress_level=1) -> dict[str, bytes]:
    """{path in the zip: photo bytes}: `prefix` + (split/)kind/NNN.png, `per_split[split]` photos per class."""
    rng = np.random.default_rng(seed)
    files = {}
    extension = "png" if image_format == "PNG" else "jpg"
    for split, count in per_split.items():
        for kind in kinds:
            for index in range(count):
                folder = f"{prefix}{split}/{kind}" if split_folders else f"{prefix}{kind}"
                files[f"{folder}/{kind}-{split}-{index:04d}.{extension}"] = encode(photo(kind, rng, size), image_format,
                                                                                      compress_level=compress_level)
    return files


def photo_zip(path: Path, files: dict[str, bytes]) -> Path:
    """Write `files` as a zip (stored: photos do not compress) and return its path."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def zip_bytes(files: dict[str, bytes]) -> bytes:
    """`files` as the bytes of a zip."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def blurred(image: Image.Image, radius=1.0) -> Image.Image:
    """A softer copy, like a photo slightly out of focus."""
    return image.filter(ImageFilter.GaussianBlur(radius))
