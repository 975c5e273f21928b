"""Tests for core.imaging: hostile uploads are refused clearly, real photos are prepared right."""

import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from core.errors import CoreError, ImageError
from core.imaging import (
    MAX_PIXELS,
    MAX_UPLOAD_BYTES,
    NOTES_KEY,
    PreparedImage,
    prepare_image,
    read_image,
)

SUPPORTED = "PNG, JPEG, GIF, BMP or WebP"


def encode(image, image_format, **options):
    """Encode a PIL image to bytes."""
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def photo_like(width, height, noise=0):
    """An RGB test picture (gradients and a disc), with optional sensor-like noise."""
    rows = np.linspace(0, 255, height, dtype=np.float32)[:, np.newaxis]
    columns = np.linspace(0, 255, width, dtype=np.float32)[np.newaxis, :]
    disc = ((np.arange(height)[:, None] - height / 2) ** 2 + (np.arange(width)[None, :] - width / 2) ** 2) < (
        min(width, height) / 4
    ) ** 2
    red = np.broadcast_to(rows, (height, width))
    green = np.broadcast_to(columns, (height, width))
    blue = np.where(disc, 255, 40).astype(np.float32)
    pixels = np.stack([red, green, blue], axis=-1)
    if noise:
        grain = np.random.default_rng(0).integers(-noise, noise + 1, size=(height, width, 1), dtype=np.int16)
        pixels = np.clip(pixels + grain, 0, 255)
    return Image.fromarray(pixels.astype(np.uint8))


def png_with_header_size(width, height):
    """A tiny valid PNG whose IHDR chunk is patched to claim width x height pixels."""
    data = bytearray(encode(Image.new("L", (1, 1)), "PNG"))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def dark_object_on_light(width, height, background=220, foreground=30):
    """A light gray picture with a dark rectangle in the middle, taller than wide."""
    array = np.full((height, width), background, dtype=np.uint8)
    array[height // 6 : height - height // 6, width * 5 // 12 : width * 7 // 12] = foreground
    return Image.fromarray(array)


# --- Hostile or broken uploads -------------------------------------------------------------


def test_empty_file_is_refused():
    with pytest.raises(ImageError, match=r"empty \(0 bytes\)\. Upload the image file again"):
        read_image(b"", "photo.png")


def test_text_renamed_to_png_is_refused():
    with pytest.raises(ImageError, match=r"not a PNG, JPEG.*damaged.*'notes.png'"):
        read_image(b"Dear teacher, here is my homework.\n" * 20, "notes.png")


@pytest.mark.parametrize("image_format", ["PNG", "JPEG"])
def test_truncated_file_is_refused(image_format):
    data = encode(photo_like(64, 48), image_format)
    with pytest.raises(ImageError, match=r"truncated or damaged and could not be decoded\. It may not.*re-upload"):
        read_image(data[: len(data) * 2 // 3], f"cut.{image_format.lower()}")  # the decoder's words go to the log


def test_file_cut_inside_its_header_is_refused():
    data = encode(photo_like(64, 48), "PNG")
    with pytest.raises(ImageError, match="damaged"):
        read_image(data[:20], "cut.png")


@pytest.mark.parametrize(
    "width, height",
    [
        (30000, 30000),  # 900 MP: Pillow's DecompressionBombError
        (10000, 10000),  # 100 MP: Pillow's DecompressionBombWarning
        (7000, 7000),  # 49 MP: our own, lower limit
    ],
)
def test_decompression_bomb_is_refused_before_decoding(width, height):
    data = png_with_header_size(width, height)
    assert len(data) < 100  # nothing to decode: only the header could have been read
    with pytest.raises(ImageError, match=r"too many pixels.*limit is 40,000,000") as refused:
        read_image(data, "bomb.png")
    assert f"{width * height:,} pixels)" in str(refused.value) and "DOS" not in str(refused.value)


def test_a_48_megapixel_phone_jpeg_is_read_at_a_quarter_of_its_size_not_refused():
    """An 8000×6000 JPEG was refused as "too many pixels to decode safely": a JPEG decodes at 1/2, 1/4 or 1/8 scale,
    so what is decoded is 2000×1500, and the photo is named by its own size."""
    from core.imaging import FILE_SIZE_KEY

    pattern = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    photo = encode(Image.fromarray(pattern).resize((8000, 6000)), "JPEG", quality=70)
    image = read_image(photo, "phone.jpg")
    assert image.size == (2000, 1500) and image.info[FILE_SIZE_KEY] == (8000, 6000)
    with pytest.raises(ImageError, match=r"too many pixels"):  # a 49-megapixel PNG decodes whole: still refused
        read_image(png_with_header_size(7000, 7000), "big.png")


def test_file_over_the_upload_limit_is_refused():
    data = encode(Image.new("L", (8, 8)), "PNG")
    data += b"\0" * (MAX_UPLOAD_BYTES + 1 - len(data))
    with pytest.raises(ImageError, match=r"20\.0 MB; the limit is 20 MB.*compress"):
        read_image(data, "huge.png")


def test_svg_is_refused_naming_supported_formats():
    svg = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'
    with pytest.raises(ImageError, match=f"SVG.*not supported. Supported formats: {SUPPORTED}"):
        read_image(svg, "drawing.svg")


def test_png_whose_metadata_mentions_svg_is_still_a_png():
    from PIL.PngImagePlugin import PngInfo

    metadata = PngInfo()
    metadata.add_text("Comment", '<svg xmlns="http://www.w3.org/2000/svg"/>')
    image = read_image(encode(Image.new("L", (4, 4), 77), "PNG", pnginfo=metadata), "export.png")
    assert np.asarray(image)[0, 0] == 77


def test_heic_is_refused_naming_supported_formats():
    heic = struct.pack(">I", 24) + b"ftypheic" + b"\0\0\0\0mif1heic" + b"\0" * 200
    with pytest.raises(ImageError, match=f"HEIC.*Supported formats: {SUPPORTED}.*PNG or JPEG"):
        read_image(heic, "IMG_0001.HEIC")


def test_format_outside_the_supported_list_is_refused():
    tiff = encode(Image.new("RGB", (8, 8), "red"), "TIFF")
    with pytest.raises(ImageError, match="not a PNG, JPEG, GIF, BMP or WebP file"):
        read_image(tiff, "scan.tif")


def test_non_bytes_input_is_refused():
    with pytest.raises(ImageError, match="Received: data of type str"):
        read_image("photo.png", "photo.png")


# --- Unusual but valid images --------------------------------------------------------------


def test_one_pixel_image_is_accepted_and_enlarged():
    image = read_image(encode(Image.new("RGB", (1, 1), (10, 20, 30)), "PNG"), "dot.png")
    prepared = prepare_image(image, (28, 28, 3))
    assert prepared.array.shape == (28, 28, 3)
    assert prepared.array.dtype == np.uint8
    assert np.all(prepared.array == (10, 20, 30))
    assert any("Enlarged from 1x1 to 28x28" in note for note in prepared.notes)


def test_sixteen_bit_png_is_scaled_to_eight_bits():
    values = np.array([[0, 256, 32896, 65535]], dtype=np.uint16)
    data = encode(Image.fromarray(values), "PNG")
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    image = read_image(data, "depth.png")
    assert image.mode == "L"
    assert np.asarray(image).tolist() == [[0, 1, 128, 255]]
    assert any("8-bit" in note for note in image.info[NOTES_KEY])


def test_cmyk_jpeg_becomes_rgb():
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # pure red in print colours
    image = read_image(encode(cmyk, "JPEG", quality=95), "print.jpg")
    assert image.mode == "RGB"
    red, green, blue = np.asarray(image)[8, 8].astype(int)
    assert red > 230 and green < 30 and blue < 30
    assert any("CMYK" in note for note in image.info[NOTES_KEY])


def test_palette_png_with_transparency_is_composited_on_white():
    palette_image = Image.new("P", (4, 4), 0)
    palette_image.putpalette([0, 0, 0, 255, 0, 0] + [0, 0, 0] * 254)
    palette_image.putpixel((1, 1), 1)
    image = read_image(encode(palette_image, "PNG", transparency=0), "sticker.png")
    assert image.mode == "RGB"
    pixels = np.asarray(image)
    assert pixels[0, 0].tolist() == [255, 255, 255]  # transparent -> white
    assert pixels[1, 1].tolist() == [255, 0, 0]  # opaque red stays red
    assert any("Transparent areas were filled with white" in note for note in image.info[NOTES_KEY])


def test_gray_png_with_alpha_stays_gray():
    gray_alpha = Image.new("LA", (4, 4), (0, 0))
    gray_alpha.putpixel((2, 2), (50, 255))
    image = read_image(encode(gray_alpha, "PNG"), "gray.png")
    assert image.mode == "L"
    assert np.asarray(image)[0, 0] == 255 and np.asarray(image)[2, 2] == 50


def test_animated_gif_uses_the_first_frame_and_says_so():
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    frames = [Image.new("RGB", (8, 8), colour) for colour in colours]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    image = read_image(data, "spin.gif")
    assert np.asarray(image)[4, 4].tolist() == [255, 0, 0]
    assert any("animated (3 frames)" in note and "first frame" in note for note in image.info[NOTES_KEY])
    prepared = prepare_image(image, (8, 8, 3))
    assert any("first frame" in note for note in prepared.notes)


def test_exif_rotated_jpeg_is_turned_upright():
    stored = np.zeros((20, 40), dtype=np.uint8)  # 40 wide, 20 tall, as the camera stored it
    stored[:8, :8] = 255  # a white block in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    data = encode(Image.fromarray(stored), "JPEG", exif=exif, quality=95)
    image = read_image(data, "portrait.jpg")
    pixels = np.asarray(image)
    assert image.size == (20, 40)  # now portrait
    assert pixels[3, 16] > 200  # the block is in the displayed top-right corner
    assert pixels[3, 3] < 50 and pixels[36, 3] < 50 and pixels[36, 16] < 50
    assert any("EXIF orientation" in note for note in image.info[NOTES_KEY])


# --- prepare_image ---------------------------------------------------------------------------


def test_fashion_mnist_like_image_passes_through_unchanged():
    rng = np.random.default_rng(0)
    array = np.zeros((28, 28, 1), dtype=np.uint8)
    array[6:22, 8:20] = rng.integers(120, 255, size=(16, 12, 1))
    prepared = prepare_image(array, (28, 28, 1))
    assert isinstance(prepared, PreparedImage)
    assert np.array_equal(prepared.array, array)
    assert prepared.inverted is False and prepared.notes == []


def test_dark_object_on_light_background_is_inverted_and_keeps_aspect():
    prepared = prepare_image(dark_object_on_light(120, 60), (28, 28, 1))
    assert prepared.inverted is True
    assert prepared.array.shape == (28, 28, 1)
    pixels = prepared.array[:, :, 0]
    assert np.all(pixels[:7] == 255 - 220) and np.all(pixels[-7:] == 255 - 220)  # padded rows
    rows, columns = np.nonzero(pixels > 128)
    object_height = rows.max() - rows.min() + 1
    object_width = columns.max() - columns.min() + 1
    assert 1.5 <= object_height / object_width <= 2.6  # 40x20 object: still 2:1, not stretched to 4:1
    assert any("inverted: dark object on a light background" in note for note in prepared.notes)
    assert any("Padded" in note for note in prepared.notes)


def test_invert_false_and_true_are_obeyed():
    not_inverted = prepare_image(dark_object_on_light(56, 56), (28, 28, 1), invert=False)
    assert not not_inverted.inverted and not_inverted.array[0, 0, 0] == 220
    light_on_dark = dark_object_on_light(56, 56, background=10, foreground=240)
    forced = prepare_image(light_on_dark, (28, 28, 1), invert=True)
    assert forced.inverted and forced.array[0, 0, 0] == 245
    assert "inverted, as requested" in forced.notes


def test_colour_model_is_not_inverted_automatically():
    photo = dark_object_on_light(64, 64).convert("RGB")
    prepared = prepare_image(photo, (32, 32, 3))
    assert prepared.inverted is False and prepared.array.shape == (32, 32, 3)
    assert prepared.array[0, 0].tolist() == [220, 220, 220]
    assert prepare_image(photo, (32, 32, 3), light_on_dark=True).inverted is True


def test_padding_uses_the_border_colour():
    photo = Image.new("RGB", (80, 40), (0, 90, 200))
    photo.paste((250, 250, 0), (30, 10, 50, 30))
    prepared = prepare_image(photo, (32, 32, 3))
    assert prepared.array[0, 0].tolist() == [0, 90, 200]  # padded area matches the background
    assert prepared.array[16, 16].tolist() == [250, 250, 0]


def test_channels_are_converted_for_the_model():
    gray = prepare_image(photo_like(40, 40), (40, 40, 1))
    assert gray.array.shape == (40, 40, 1)
    assert any("grayscale" in note for note in gray.notes)
    colour = prepare_image(Image.new("L", (40, 40), 100), (40, 40, 3))
    assert colour.array.shape == (40, 40, 3) and np.all(colour.array == 100)
    assert any("3 colour channels" in note for note in colour.notes)


def test_bad_arguments_are_refused():
    image = Image.new("L", (10, 10))
    with pytest.raises(CoreError, match=r"Received: input_shape=\(28, 28\)"):
        prepare_image(image, (28, 28))
    with pytest.raises(CoreError, match=r"Received: input_shape=\(28, 28, 2\)"):
        prepare_image(image, (28, 28, 2))
    with pytest.raises(CoreError, match="Received: invert='yes'"):
        prepare_image(image, (28, 28, 1), invert="yes")
    with pytest.raises(CoreError, match="dtype float64"):
        prepare_image(np.zeros((10, 10)), (28, 28, 1))


def test_twelve_megapixel_jpeg_prepares_fast():
    data = encode(photo_like(4000, 3000, noise=12), "JPEG", quality=90)
    assert 4000 * 3000 <= MAX_PIXELS
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        image = read_image(data, "phone.jpg")
        prepared = prepare_image(image, (28, 28, 1))
        timings.append(time.perf_counter() - start)
    print(f"\n12 MP JPEG ({len(data) / 2**20:.1f} MB): read + prepare took "
          f"{min(timings) * 1000:.0f} ms (best of 3; all: {[round(t * 1000) for t in timings]} ms); "
          f"decoded at {image.size[0]}x{image.size[1]}")
    assert prepared.array.shape == (28, 28, 1)
    assert max(image.size) >= 1024  # reduced on decode, still big enough to show


def test_a_blank_picture_and_a_panorama_say_how_little_the_model_gets():
    """A plain green square got "Bag (98.6%)" with no word that there was nothing to see; a 6000x1000 panorama kept in
    shape fills a sixth of a square input. Both now carry a note; a photo of something does not."""
    green = np.zeros((20, 20, 3), np.uint8) + np.array([40, 160, 60], np.uint8)
    assert any("almost one colour" in note for note in prepare_image(green, (28, 28, 1)).notes)
    assert any("almost one colour" in note for note in prepare_image(green, (32, 32, 3)).notes)  # a colour model too
    rng = np.random.default_rng(0)
    panorama = np.repeat(np.linspace(0, 255, 600, dtype=np.uint8)[None, :, None], 100, axis=0).repeat(3, axis=2)
    notes = prepare_image(panorama, (28, 28, 1)).notes  # a sunset's gradient: 28x5 of the 28x28 input
    assert any("this 600x100 photo fills only 18% of the model's input" in note for note in notes)
    assert not any("almost one colour" in note for note in notes)
    photo = rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)  # 4:3, a phone's photo
    assert not any("fills only" in note or "one colour" in note for note in prepare_image(photo, (64, 64, 3)).notes)
