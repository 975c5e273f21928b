"""Uploaded images: every hostile file gets a clear per-file message or a correct prediction, in one batch.

The files are generated here from real Fashion-MNIST test images (the model's own domain, so "correct"
means the true label) and from hand-made hostile bytes. They go through the public entry point
core.prediction.predict_file, then all together through the Predict page (AppTest), where the page must
not crash and the good files among the bad must still be classified.
"""

import io
import re
import struct
import sys
import zlib
from dataclasses import dataclass

import numpy as np
import pytest
from conftest import TINY_CNN
from PIL import Image

from core.imaging import MAX_UPLOAD_BYTES
from core.prediction import predict_file
from robustness.support import PROJECT, encode, fashion_test_images, record

sys.path.insert(0, str(PROJECT / "tests" / "pages"))
from apptest import open_page  # noqa: E402




@dataclass
class Upload:
    """One uploaded file and the outcome it must get."""

    name: str
    data: bytes
    kind: str  # what was tried, for the table
    error: str | None = None  # a regular expression the per-file message must match, or None: a prediction
    label: int | None = None  # the true class a prediction must name (None: any class is fine, e.g. a 1x1 image)
    reference: str | None = None  # a file whose model input this one must reproduce (same pixels, other encoding)


def png_header_claiming(width, height):
    """A valid 1x1 PNG whose IHDR chunk (with a correct CRC) claims width x height pixels."""
    data = bytearray(encode(Image.new("L", (1, 1)), "PNG"))
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def real_png_bomb(width, height):
    """A complete 1-bit PNG of width x height black pixels: a few hundred KB that decode to width*height pixels."""
    row = b"\x00" + bytes((width + 7) // 8)  # filter byte, then the packed bits of one row
    compressor, parts = zlib.compressobj(9), []
    rows_per_chunk = 2000
    for start in range(0, height, rows_per_chunk):
        parts.append(compressor.compress(row * min(rows_per_chunk, height - start)))
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # bit depth 1, grayscale
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", b"".join(parts)) + png_chunk(b"IEND", b"")


def jpeg_claiming(width, height):
    """A small real JPEG whose start-of-frame header is patched to claim width x height pixels."""
    data = bytearray(encode(Image.new("L", (8, 8), 128), "JPEG"))
    start = data.index(b"\xff\xc0")
    data[start + 5:start + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def png_with_text_bomb():
    """A valid 28x28 PNG carrying a compressed text chunk that inflates to 50 MB."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "A" * 50_000_000, zip=True)
    return encode(Image.new("L", (28, 28)), "PNG", pnginfo=info)


def exif_rotated_jpeg(upright: Image.Image) -> bytes:
    """A JPEG whose pixels are stored turned 90 degrees, with EXIF orientation 6 asking viewers to turn it back."""
    stored = upright.rotate(90, expand=True)  # counter-clockwise; orientation 6 means "rotate 90 CW to display"
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(stored, "JPEG", quality=95, exif=exif.tobytes())


def hostile_uploads(images, labels) -> list[Upload]:
    """The whole batch: for each real image a set of awkward encodings, plus the files that must be refused."""
    uploads = []
    for index, (pixels, label) in enumerate(zip(images, labels)):
        label = int(label)
        gray = Image.fromarray(pixels)
        photo = gray.resize((280, 280), Image.Resampling.BICUBIC)  # a screenshot-sized version
        product = Image.fromarray(255 - pixels)  # a dark garment on white, as in a shop photo
        cutout = product.convert("P")  # a palette of the 256 grays, so no pixel changes
        transparent_index = cutout.getpixel((0, 0))  # the white background
        other = Image.fromarray(images[(index + 1) % len(images)])
        sixteen_bit = Image.fromarray(pixels.astype(np.uint16) * 257)
        uploads += [
            Upload(f"item{index}.png", encode(gray, "PNG"), "plain PNG (reference)", label=label),
            Upload(f"item{index}_photo.jpg", encode(photo.convert("RGB"), "JPEG", quality=95), "JPEG photo", label=label),
            Upload(f"item{index}_16bit.png", encode(sixteen_bit, "PNG"), "16-bit PNG", label=label,
                   reference=f"item{index}.png"),
            Upload(f"item{index}_cmyk.jpg", encode(photo.convert("RGB").convert("CMYK"), "JPEG", quality=95), "CMYK JPEG",
                   label=label, reference=f"item{index}_photo.jpg"),
            Upload(f"item{index}_cutout.png", encode(cutout, "PNG", transparency=transparent_index),
                   "palette PNG with transparency", label=label),
            Upload(f"item{index}_animated.gif", encode(gray, "GIF", save_all=True, append_images=[other], duration=200),
                   "animated GIF", label=label, reference=f"item{index}.png"),
            Upload(f"item{index}_exif.jpg", exif_rotated_jpeg(photo.convert("RGB")), "EXIF-rotated JPEG", label=label,
                   reference=f"item{index}_photo.jpg"),
            Upload(f"item{index}.webp", encode(gray, "WEBP", lossless=True), "lossless WebP", label=label,
                   reference=f"item{index}.png"),
            Upload(f"item{index}.bmp", encode(gray, "BMP"), "BMP", label=label, reference=f"item{index}.png"),
        ]
    jpeg = encode(Image.fromarray(images[0]).resize((280, 280)).convert("RGB"), "JPEG", quality=95)
    png = encode(Image.fromarray(images[0]), "PNG")
    svg = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="28" height="28"><circle r="9"/></svg>'
    heic = struct.pack(">I", 24) + b"ftypheic" + b"\x00\x00\x00\x00" + b"mif1heic" + bytes(4000)
    over_limit = jpeg + bytes(MAX_UPLOAD_BYTES + 1 - len(jpeg))  # a real JPEG padded past 20 MB
    return uploads + [
        Upload("dot.png", encode(Image.new("L", (1, 1), 255), "PNG"), "1x1 image"),
        Upload("empty.png", b"", "zero-byte file", error=r"is empty \(0 bytes\)"),
        Upload("notes.png", b"Shopping list: milk, eggs, flour\n" * 20, "text renamed .png",
               error=r"Could not read 'notes.png' as an image"),
        Upload("half.png", png[: len(png) // 2], "truncated PNG", error=r"'half.png' is truncated or damaged"),
        Upload("half.jpg", jpeg[: len(jpeg) // 2], "truncated JPEG", error=r"'half.jpg' is truncated or damaged"),
        Upload("header_only.jpg", jpeg[:100], "JPEG cut inside its header", error=r"Could not read 'header_only.jpg'"),
        Upload("bomb_header.png", png_header_claiming(30000, 30000), "decompression bomb: PNG header 30000x30000",
               error=r"'bomb_header.png' has too many pixels to decode safely"),
        Upload("bomb_full.png", real_png_bomb(30000, 30000), "decompression bomb: complete 30000x30000 PNG",
               error=r"too many pixels to decode safely"),
        Upload("bomb.jpg", jpeg_claiming(30000, 30000), "decompression bomb: JPEG header 30000x30000",
               error=r"too many pixels to decode safely"),
        Upload("text_bomb.png", png_with_text_bomb(), "PNG with a 50 MB compressed text chunk",
               error=r"Could not read 'text_bomb.png'"),
        Upload("drawing.svg", svg, "SVG", error=r"'drawing.svg' is SVG .*not supported.*PNG, JPEG"),
        Upload("drawing.png", svg, "SVG renamed .png", error=r"'drawing.png' is SVG .*not supported"),
        Upload("IMG_0001.HEIC", heic, "HEIC", error=r"'IMG_0001.HEIC' is HEIC/HEIF .*not supported.*PNG, JPEG"),
        Upload("scan.pdf", b"%PDF-1.7\n" + bytes(500), "PDF", error=r"'scan.pdf' is PDF, which is not supported"),
        Upload("scan.tif", encode(Image.fromarray(images[0]), "TIFF"), "TIFF (not an upload format)",
               error=r"Could not read 'scan.tif'.*PNG, JPEG, GIF, BMP or WebP"),
        Upload("huge.jpg", over_limit, "file over the 20 MB upload limit", error=r"'huge.jpg' is 20.0 MB; the limit is 20 MB"),
    ]


@pytest.fixture(scope="module")
def predict_setup(trained_registry_root):
    """The tiny CNN, its card, and three test images it classifies correctly with a clear margin."""
    from core.prediction import class_probabilities
    from core.registry import Registry

    registry = Registry(trained_registry_root)
    model, card = registry.load_model(TINY_CNN.key), registry.get(TINY_CNN.key).card
    images, labels = fashion_test_images(200)
    chosen = []
    for image, label in zip(images, labels):
        probabilities, _ = class_probabilities(model, image[..., None])
        if np.argmax(probabilities) == label and probabilities.max() > 0.7 and label not in {int(c[1]) for c in chosen}:
            chosen.append((image, int(label)))
        if len(chosen) == 3:
            break
    assert len(chosen) == 3, "the tiny CNN should classify at least three of 200 test images confidently"
    images, labels = np.stack([image for image, _ in chosen]), [label for _, label in chosen]
    return model, card, hostile_uploads(images, labels)


def test_every_upload_gets_a_clear_message_or_a_correct_prediction(predict_setup):
    model, card, uploads = predict_setup
    results = {upload.name: predict_file(model, card, upload.data, upload.name) for upload in uploads}  # one batch
    for upload in uploads:
        result = results[upload.name]
        if upload.error:
            assert result.error, f"{upload.name} ({upload.kind}) was accepted; it must be refused"
            assert re.search(upload.error, result.error), f"{upload.name}: unclear message: {result.error}"
            assert result.probabilities is None
            continue
        assert result.error is None, f"{upload.name} ({upload.kind}) was refused: {result.error}"
        assert np.isclose(result.probabilities.sum(), 1, atol=1e-4) and result.model_input.shape == (28, 28, 1)
        if upload.label is not None:
            assert result.class_names.index(result.top_class) == upload.label, (
                f"{upload.name} ({upload.kind}) was classified as {result.top_class}, "
                f"expected {result.class_names[upload.label]}")
        if upload.reference:
            difference = np.abs(result.model_input.astype(int) - results[upload.reference].model_input.astype(int))
            assert difference.mean() < 3, f"{upload.name} differs from {upload.reference} by {difference.mean():.1f} levels"

    notes = {name: " ".join(result.notes) for name, result in results.items()}
    assert "animated (2 frames); only the first frame is used" in notes["item0_animated.gif"]
    assert "Rotated upright using the photo's EXIF orientation tag" in notes["item0_exif.jpg"]
    assert "Transparent areas were filled with white" in notes["item0_cutout.png"]
    assert "inverted" in notes["item0_cutout.png"]  # a dark garment on white is turned into Fashion-MNIST's look
    assert "high bit depth" in notes["item0_16bit.png"] and "CMYK" in notes["item0_cmyk.jpg"]
    assert "Enlarged from 1x1" in notes["dot.png"]
    exif_photo = results["item0_exif.jpg"].photo
    assert exif_photo.shape[:2] == (280, 280)
    stored = {upload.name: upload.data for upload in uploads}["item0_exif.jpg"]
    stored_sideways = np.asarray(Image.open(io.BytesIO(stored)).convert("RGB"))
    upright = results["item0_photo.jpg"].photo
    assert np.abs(exif_photo.astype(int) - upright.astype(int)).mean() < 3  # upright, like the original
    assert np.abs(stored_sideways.astype(int) - upright.astype(int)).mean() > 20  # and the stored pixels were not

    refused = [upload for upload in uploads if upload.error]
    predicted = [upload for upload in uploads if not upload.error]
    kinds = sorted({upload.kind for upload in refused})
    record("Uploads", f"refused: {', '.join(kinds)}", len(refused), "a clear per-file message naming the file")
    kinds = sorted({upload.kind for upload in predicted})
    record("Uploads", f"accepted: {', '.join(kinds)}", len(predicted),
           "prediction = true label (1x1: any class); same model input as the plain file")


def test_the_predict_page_survives_the_whole_batch_and_still_classifies_the_good_files(predict_setup, trained_registry):
    _, _, uploads = predict_setup
    # The uploader takes any file name, so an iPhone's .HEIC or an .svg gets the app's own explanation.
    at = open_page("pages/10_Predict.py").run()
    at.selectbox(key="predict_model").set_value(TINY_CNN.key).run()
    mime = {"png": "image/png", "jpg": "image/jpeg", "gif": "image/gif", "webp": "image/webp", "bmp": "image/bmp"}
    files = [(upload.name, upload.data, mime.get(upload.name.rsplit(".", 1)[-1].lower(), "application/octet-stream"))
             for upload in uploads]
    at.file_uploader(key="predict_upload").set_value(files).run()
    assert not at.exception
    refused = [upload for upload in uploads if upload.error]
    errors = [element.value for element in at.error]
    assert len(errors) == len(refused)
    for upload, message in zip(refused, errors):
        assert re.search(upload.error, message), f"{upload.name}: {message}"
    successes = [element.value for element in at.success]
    assert len(successes) == len(uploads) - len(refused)
    headings = [element.value for element in at.markdown if element.value.startswith("#### ")]
    assert headings == [f"#### {upload.name}" for upload in uploads]  # every file has its own section, in order
    at.run()  # the session keeps working after the batch
    assert not at.exception
    record("Uploads", "the whole batch at once on the Predict page (AppTest)", len(uploads),
           f"page did not crash; {len(refused)} messages, {len(successes)} predictions")
