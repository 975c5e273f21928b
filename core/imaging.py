"""Image intake: read an uploaded file safely and prepare it exactly as a model expects.

`read_image` turns untrusted bytes into an upright RGB or grayscale PIL image, refusing anything
that is empty, not an image, damaged, too large, or in a format we do not decode. Only the
formats in SUPPORTED_FORMATS are ever handed to a decoder, and the pixel count is checked from
the header before a single pixel is decoded.

`prepare_image` is the one function that turns a photo into a model's input, for training, evaluation,
Predict, the webcam and the drawing pad alike (`photo_to_input` does it from a file's bytes). It fits the
image into the model's input by one of METHODS (the model's card records which), matches the channel
count and, for models trained on light objects on a dark background (Fashion-MNIST, MNIST), inverts
photos of dark objects on a light background. Keras's `image_dataset_from_directory` *stretches* every
photo to the target size by default (`crop_to_aspect_ratio=False, pad_to_aspect_ratio=False`): a 4:3
phone photo or a 16:9 webcam frame is squashed, so round things turn oval. This app *pads* instead
(PREPROCESSING): the whole photo is kept, undistorted, and the bars take the colour of its border.
Centre-cropping (Teachable Machine's choice) keeps the shapes too but can cut off the object.

Notes about what was done (first frame of an animation, transparency filled, inverted...) travel
with the image in `image.info[NOTES_KEY]` and end up in `PreparedImage.notes`.

`resize_images` resizes a batch of uint8 arrays, for datasets loaded at another image_size.

Converting decoded pixels to 8 bits in bounded memory, and turning them upright, is core.pixels.

Under 450 lines, because it holds every refusal of an untrusted file, each with its own
message, beside the one preprocessing function and its three methods: splitting them would put the
checks of a photo and its preparation in two places that must agree.
"""

import io
import logging
import re
import warnings
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageOps

from core.errors import CoreError, ImageError
from core.pixels import exif_orientation, to_8_bit, to_rgb_or_gray, upright

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 40_000_000  # a 12 MP phone photo passes; a 30000x30000 "bomb" (900 MP) does not.
SUPPORTED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")
SUPPORTED_TEXT = "PNG, JPEG, GIF, BMP or WebP"
DISPLAY_SIDE = 1024  # large JPEGs are decoded at 1/2, 1/4 or 1/8 scale, never below this size.
NOTES_KEY = "cnnclassroom.notes"
FILE_SIZE_KEY = "cnnclassroom.file_size"  # (width, height) of the photo in its file, upright: a large JPEG decodes smaller
INVERT_MODES = ("auto", True, False)
INVERT_MARGIN = 8  # grey levels the border must be brighter than the centre by, to invert.
SMALL_SHARE = 0.3  # a padded photo filling less of the input than this gets a note (a panorama)
BLANK_SPREAD = 3.0  # grey levels: an input whose pixels spread less than this is blank
PAD, STRETCH, CROP = "pad", "stretch", "crop"
METHODS = (PAD, STRETCH, CROP)
PREPROCESSING = PAD  # how every photo becomes a model input in this app (see the module docstring)
METHOD_TEXT = {
    PAD: "fitted inside the model's input with its aspect ratio kept, the rest padded with the photo's border colour",
    STRETCH: "stretched to the model's input size, aspect ratio not kept (Keras's image_dataset_from_directory default)",
    CROP: "the largest centred region with the model's aspect ratio cut out, then resized",
}
DRAWING_MARGIN = 4 / 28  # MNIST's digits sit in a 20x20 box centred in 28x28: a margin of 4 pixels

HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"heif", b"mif1", b"msf1"}
AVIF_BRANDS = {b"avif", b"avis"}


@dataclass
class PreparedImage:
    """An image exactly as the model sees it, and what was done to get there."""

    array: np.ndarray  # (H, W, C) uint8, raw 0..255 pixels
    notes: list[str] = field(default_factory=list)
    inverted: bool = False


def read_image(data: bytes, filename: str, formats=SUPPORTED_FORMATS, draft_side=DISPLAY_SIDE) -> Image.Image:
    """Decode an uploaded file into an upright RGB or L image, or raise ImageError.

    A large JPEG is decoded at a reduced scale that is still at least draft_side pixels per side; any other
    large image is reduced after decoding by the integer factor that keeps it so (core.pixels).
    """
    name = repr(str(filename)[:120])
    _check_size_in_bytes(data, name)
    _refuse_unsupported_formats(bytes(data[:1024]), name)
    image = _open_header(data, name, formats)
    width, height = image.size  # before a large JPEG is decoded smaller
    if image.format == "JPEG":  # at 1/2, 1/4 or 1/8 scale: a 48-megapixel phone photo decodes at 12 or fewer
        image.draft(image.mode, (draft_side, draft_side))
    _check_pixel_count(image, name)  # what is decoded (Pillow refused far larger headers already)
    notes = []
    if getattr(image, "n_frames", 1) > 1:
        notes.append(
            f"The file is animated ({image.n_frames} frames); only the first frame is used."
        )
    _decode_pixels(image, name)
    orientation = exif_orientation(image)
    image, mode_notes = to_8_bit(image, draft_side)  # band by band: a small file with a huge image stays small
    image, orientation_notes = upright(image, orientation)
    image.info[NOTES_KEY] = notes + orientation_notes + mode_notes
    image.info[FILE_SIZE_KEY] = (height, width) if orientation in (5, 6, 7, 8) else (width, height)  # turned upright
    return image


def photo_to_input(data, filename, input_shape, method=PREPROCESSING, invert="auto", light_on_dark=None,
                   formats=SUPPORTED_FORMATS) -> tuple[PreparedImage, Image.Image]:
    """(the model input, the upright photo) of a file's bytes: how training, evaluation and Predict read every photo.

    A large JPEG is decoded at a reduced scale that still covers DISPLAY_SIDE and the model's input (Pillow's
    draft), the same scale wherever the photo comes from, so a photo gives the same array in training and on
    Predict, and Predict shows the photo it decoded once.
    """
    height, width, _ = _check_input_shape(input_shape)
    image = read_image(data, filename, formats=formats, draft_side=max(DISPLAY_SIDE, height, width))
    return prepare_image(image, input_shape, method=method, invert=invert, light_on_dark=light_on_dark), image


def prepare_image(image, input_shape, invert="auto", light_on_dark=None, method=PREPROCESSING) -> PreparedImage:
    """Fit an image into a model's (H, W, C) input by `method` (pad: keep the aspect ratio; stretch; crop).

    invert="auto" inverts when the model expects light objects on a dark background and the
    image shows a dark object on a light background: the mean of its border is at least 128
    (a light background) and exceeds the mean of its central half by INVERT_MARGIN grey levels.
    light_on_dark says what the model was trained on; None assumes it for 1-channel models
    (Fashion-MNIST, MNIST) and not for colour models.
    """
    height, width, channels = _check_input_shape(input_shape)
    if invert not in INVERT_MODES:
        raise CoreError(
            f"invert must be 'auto', True or False. Received: invert={invert!r}"
        )
    if method not in METHODS:
        raise CoreError(f"method must be one of {METHODS}. Received: method={method!r}")
    if light_on_dark is None:
        light_on_dark = channels == 1
    if isinstance(image, np.ndarray):
        image = _image_from_array(image)
    carried_notes = image.info.get(NOTES_KEY)
    notes = list(carried_notes) if isinstance(carried_notes, list) else []
    image.draft(None, (max(height, width), max(height, width)))  # no-op unless an unread JPEG
    image, mode_notes = to_rgb_or_gray(image)
    notes += mode_notes
    image, channel_note = _match_channels(image, channels)
    notes += channel_note
    if method == CROP:
        image = _crop_to_aspect(image, height, width, notes)
    if method == PAD:
        fitted = _fit_inside(image, height, width, notes)
        share = fitted.width * fitted.height / (width * height)
        if share < SMALL_SHARE:  # a panorama in a square input: the object is a few pixels high
            notes.append(f"kept in shape, this {image.width}x{image.height} photo fills only {share:.0%} of the "
                         "model's input, so what it shows is a few pixels across: crop it around the object")
    else:
        fitted = _resize_to(image, height, width, notes)
    background, border_mean, centre_mean = _measure_background(np.asarray(fitted))
    canvas = _pad_to_size(fitted, height, width, background, notes)
    array = np.asarray(canvas, dtype=np.uint8)
    if invert == "auto":
        looks_dark_on_light = border_mean >= 128 and border_mean - centre_mean > INVERT_MARGIN
        should_invert = light_on_dark and looks_dark_on_light
        reason = (
            "inverted: dark object on a light background, while the model expects a light "
            "object on a dark background (like Fashion-MNIST)"
        )
    else:
        should_invert = bool(invert)
        reason = "inverted, as requested"
    if should_invert:
        array = 255 - array
        notes.append(reason)
    if array.ndim == 2:
        array = array[:, :, np.newaxis]
    if is_blank(array):
        notes.append("the picture is almost one colour, so there is nothing in it to recognise: the model must still "
                     "answer one of its classes, and here that answer means nothing")
    return PreparedImage(array=np.ascontiguousarray(array), notes=notes, inverted=should_invert)


def is_blank(array) -> bool:
    """True when an image (H, W) or (H, W, channels) is almost one colour: each channel spreads less than BLANK_SPREAD
    grey levels (a webcam's black frame while it starts, a lens covered)."""
    array = np.asarray(array)
    channels = array.shape[-1] if array.ndim == 3 else 1
    return float(array.reshape(-1, channels).std(axis=0).max()) < BLANK_SPREAD


def drawing_to_image(rgba, margin=DRAWING_MARGIN) -> Image.Image:
    """A drawing pad's RGBA pixels as a grayscale image of the ink, cropped to it with a margin, on white.

    Transparent pixels are paper (white). The crop centres the drawing the way MNIST centres its digits
    (a 20x20 box in 28x28, `margin` of the side on each side); `prepare_image` then fits it to the model.
    """
    array = np.asarray(rgba)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] not in (3, 4) or array.size > MAX_PIXELS * 4:
        raise CoreError(f"Expected an (H, W, 4) uint8 RGBA drawing. Received: array of dtype {array.dtype} and shape "
                        f"{array.shape}")
    image = Image.fromarray(np.ascontiguousarray(array), "RGBA" if array.shape[2] == 4 else "RGB")
    gray, _ = to_rgb_or_gray(image)
    gray = gray.convert("L")
    ink = ImageOps.invert(gray).getbbox()  # dark strokes on white paper
    if ink is None:
        gray.info[NOTES_KEY] = ["The pad is empty: draw something first."]
        return gray
    left, top, right, bottom = ink
    side = max(right - left, bottom - top)
    pad = round(side * margin / (1 - 2 * margin))
    centre_x, centre_y = (left + right) / 2, (top + bottom) / 2
    half = side / 2 + pad
    box = tuple(round(value) for value in (centre_x - half, centre_y - half, centre_x + half, centre_y + half))
    canvas = Image.new("L", (box[2] - box[0], box[3] - box[1]), 255)
    canvas.paste(gray.crop((max(box[0], 0), max(box[1], 0), min(box[2], gray.width), min(box[3], gray.height))),
                 (max(-box[0], 0), max(-box[1], 0)))
    canvas.info[NOTES_KEY] = [f"Cropped to the drawing ({right - left}x{bottom - top} pixels of ink) with a margin, "
                              "centred like MNIST's digits."]
    return canvas


def resize_images(images, height, width):
    """Resize (N, H, W, C) images with cv2: INTER_AREA to shrink, INTER_LINEAR to enlarge."""
    import cv2  # here, not at the top: reading one upload must not wait for OpenCV

    count, old_height, old_width, channels = images.shape
    interpolation = cv2.INTER_AREA if height * width < old_height * old_width else cv2.INTER_LINEAR
    resized = np.empty((count, height, width, channels), np.uint8)
    for index, image in enumerate(images):  # cv2.resize takes at most 4 channels, so one image per call
        resized[index] = cv2.resize(image, (width, height), interpolation=interpolation).reshape(height, width, channels)
    return resized


def _check_size_in_bytes(data, name):
    """Refuse non-bytes, empty and oversized uploads."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ImageError(
            f"Expected the file's content as bytes. Received: data of type {type(data).__name__}"
        )
    size = len(data)
    if size == 0:
        raise ImageError(
            f"The file {name} is empty (0 bytes). Upload the image file again; if it was "
            f"copied from a phone or a cloud folder, make sure it finished downloading."
        )
    if size > MAX_UPLOAD_BYTES:
        raise ImageError(
            f"The file {name} is {size / 2**20:.1f} MB; the limit is "
            f"{MAX_UPLOAD_BYTES / 2**20:.0f} MB. Resize or compress the photo (any "
            f"phone or image editor can export a smaller JPEG) and upload it again."
        )


def _refuse_unsupported_formats(head, name):
    """Recognise SVG, HEIC/HEIF, AVIF and PDF by their signatures and explain."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<") and b"<svg" in text:
        found = "SVG (a vector drawing)"
    elif head[4:8] == b"ftyp" and head[8:12] in HEIF_BRANDS:
        found = "HEIC/HEIF (the iPhone photo format)"
    elif head[4:8] == b"ftyp" and head[8:12] in AVIF_BRANDS:
        found = "AVIF"
    elif head.startswith(b"%PDF"):
        found = "PDF"
    else:
        return
    raise ImageError(
        f"The file {name} is {found}, which is not supported. Supported formats: "
        f"{SUPPORTED_TEXT}. Export or screenshot it as PNG or JPEG and upload that. "
        f"Received: filename={name}"
    )


def _open_header(data, name, formats):
    """Open the file with a supported decoder, reading only its header."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data), formats=formats)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:  # Pillow's own, larger limit
        found = re.search(r"\((\d+) pixels\)", str(error))
        raise _too_many_pixels(name, f"{int(found.group(1)):,} pixels" if found else "far too many") from None
    except Exception:
        raise ImageError(
            f"Could not read {name} as an image: it is not a {SUPPORTED_TEXT} file, or it is "
            f"damaged (for example a text file renamed to .png). Open it in an image viewer, "
            f"save it as PNG or JPEG and upload it again. Received: filename={name}"
        ) from None


def _check_pixel_count(image, name):
    """Refuse images whose header promises more than MAX_PIXELS pixels."""
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise _too_many_pixels(name, f"{width}x{height} = {width * height:,} pixels")


def _too_many_pixels(name, detail):
    """The error for images that are too large to decode safely."""
    return ImageError(
        f"The image {name} has too many pixels to decode safely ({detail}); the limit is "
        f"{MAX_PIXELS:,} pixels (about {MAX_PIXELS // 1_000_000} megapixels). Resize it to a "
        f"few thousand pixels per side and upload it again."
    )


def _decode_pixels(image, name):
    """Decode the first frame, turning decoder failures into ImageError."""
    try:
        image.load()
    except Exception as error:
        logging.getLogger(__name__).info("could not decode %s: %s", name, error)
        raise ImageError(
            f"The image {name} is truncated or damaged and could not be decoded. "
            f"It may not have finished uploading or downloading: get the file again and "
            f"re-upload it, or re-save it as PNG or JPEG. Received: filename={name}"
        ) from None


def _check_input_shape(input_shape):
    """Validate a model input shape (H, W, C) with C of 1 or 3."""
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if (
        shape is None
        or len(shape) != 3
        or not all(isinstance(size, (int, np.integer)) and size > 0 for size in shape)
        or shape[2] not in (1, 3)
    ):
        raise CoreError(
            "input_shape must be (height, width, channels) with 1 or 3 channels, e.g. "
            f"(28, 28, 1). Received: input_shape={input_shape!r}"
        )
    return int(shape[0]), int(shape[1]), int(shape[2])


def _image_from_array(array):
    """Wrap a uint8 (H, W), (H, W, 1) or (H, W, 3) array as a PIL image."""
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or (
        array.ndim == 3 and array.shape[2] not in (1, 3)
    ):
        raise CoreError(
            "Expected a PIL image or a uint8 array of shape (H, W), (H, W, 1) or (H, W, 3). "
            f"Received: array of dtype {array.dtype} and shape {array.shape}"
        )
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    return Image.fromarray(np.ascontiguousarray(array))


def _match_channels(image, channels):
    """Convert to grayscale for 1-channel models and to RGB for 3-channel ones."""
    if channels == 1 and image.mode == "RGB":
        return image.convert("L"), ["Converted to grayscale: the model expects 1 channel."]
    if channels == 3 and image.mode == "L":
        return image.convert("RGB"), [
            "Copied the gray values into 3 colour channels: the model expects colour."
        ]
    return image, []


def _fit_inside(image, height, width, notes):
    """Resize so the image fits inside height x width without changing its aspect ratio."""
    scale = min(width / image.width, height / image.height)
    new_size = (
        min(width, max(1, round(image.width * scale))),
        min(height, max(1, round(image.height * scale))),
    )
    if new_size == image.size:
        return image
    if scale > 1:
        notes.append(
            f"Enlarged from {image.width}x{image.height} to {new_size[0]}x{new_size[1]} "
            f"pixels; a small image carries little detail."
        )
        return image.resize(new_size, Image.Resampling.BICUBIC)
    return image.resize(new_size, Image.Resampling.BOX, reducing_gap=3.0)


def _resize_to(image, height, width, notes):
    """Resize to exactly height x width, whatever the aspect ratio (stretch; or after a centre crop)."""
    if image.size == (width, height):
        return image
    if image.width < width or image.height < height:
        notes.append(f"Enlarged from {image.width}x{image.height} to {width}x{height} pixels; a small image carries "
                     "little detail.")
        return image.resize((width, height), Image.Resampling.BICUBIC)
    return image.resize((width, height), Image.Resampling.BOX, reducing_gap=3.0)


def _crop_to_aspect(image, height, width, notes):
    """The largest centred region of the image with the aspect ratio width : height."""
    crop_width = min(image.width, round(image.height * width / height))
    crop_height = min(image.height, round(image.width * height / width))
    if (crop_width, crop_height) == image.size:
        return image
    left, top = (image.width - crop_width) // 2, (image.height - crop_height) // 2
    notes.append(f"Centre-cropped from {image.width}x{image.height} to {crop_width}x{crop_height} pixels to match "
                 "the model's shape.")
    return image.crop((left, top, left + crop_width, top + crop_height))


def _measure_background(array):
    """Background colour (border median), border mean and centre mean of an image.

    Read from the uint8 pixels (means accumulate in float64): a float64 copy of the whole photo took a third of the
    time of preparing one 300x300 photo for training."""
    height, width = array.shape[:2]
    band = max(1, min(height, width) // 8)
    pixels = array.reshape(height, width, -1)
    channels = pixels.shape[2]
    border = np.concatenate(
        [
            pixels[:band].reshape(-1, channels),
            pixels[-band:].reshape(-1, channels),
            pixels[:, :band].reshape(-1, channels),
            pixels[:, -band:].reshape(-1, channels),
        ]
    )
    centre = pixels[height // 4 : height - height // 4, width // 4 : width - width // 4]
    background = tuple(int(value) for value in np.median(border, axis=0).round())
    return background, float(border.mean(dtype=np.float64)), float(centre.mean(dtype=np.float64))


def _pad_to_size(image, height, width, background, notes):
    """Centre the image on a height x width canvas filled with the background colour."""
    if image.size == (width, height):
        return image
    colour = background[0] if image.mode == "L" else background
    canvas = Image.new(image.mode, (width, height), colour)
    canvas.paste(image, ((width - image.width) // 2, (height - image.height) // 2))
    notes.append(
        "Padded to the model's shape with the background colour, keeping the aspect ratio."
    )
    return canvas
