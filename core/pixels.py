"""Decoded pixels to 8-bit grayscale or RGB, upright, in bounded memory.

A small file can hold a large image: a 78 KB 16-bit PNG of 40 megapixels decodes to 80 MB, a float TIFF of
the same size to 160 MB, and converting either with whole-image float64 copies used to cost a gigabyte.
Here every conversion that is not a no-op runs band by band (a few megapixels at a time, small dtypes),
and an image much larger than anything it will be shown or fed at is reduced by an integer factor in the
same pass (Pillow's `reduce`, the box filter its JPEG `draft` uses), so memory stays near the decoded
image itself. `core.imaging.read_image` calls `to_8_bit` and `upright`; the same steps run for a photo in
training and on Predict, so both still see the same array.
"""

import numpy as np
from PIL import Image

BAND_PIXELS = 4_000_000  # pixels converted at a time
HIGH_BIT_DEPTH_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
EXIF_ORIENTATION_TAG = 0x0112
TRANSPOSE_FOR_ORIENTATION = {  # EXIF orientation -> the transpose that makes the photo upright (as ImageOps.exif_transpose)
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def reduction_factor(size, draft_side) -> int:
    """The largest integer factor that keeps both sides of `size` at least draft_side (1: no reduction)."""
    width, height = size
    return max(1, min(width, height) // max(1, draft_side))


def to_8_bit(image: Image.Image, draft_side: int) -> tuple[Image.Image, list[str]]:
    """(an L or RGB image, notes): converted from any mode and reduced by reduction_factor, band by band.

    An L or RGB image that needs no reduction is returned as it is.
    """
    factor = reduction_factor(image.size, draft_side)
    plain = image.mode in ("L", "RGB") and "transparency" not in image.info
    if plain and factor == 1:
        return image, []
    scale, notes = _bit_depth_scale(image)
    width, height = image.size
    rows = max(factor, BAND_PIXELS // max(width, 1) // factor * factor)
    output = None
    for top in range(0, height, rows):
        band = image.crop((0, top, width, min(height, top + rows)))
        band, band_notes = to_rgb_or_gray(band, scale)
        if factor > 1:
            band = band.reduce(factor)
        if output is None:
            output = Image.new(band.mode, (-(-width // factor), -(-height // factor)))
            notes += band_notes
        output.paste(band, (0, top // factor))
    output.info.update({key: value for key, value in image.info.items() if key not in ("transparency", "exif")})
    return output, notes


def to_rgb_or_gray(image: Image.Image, scale: float | None = None) -> tuple[Image.Image, list[str]]:
    """Convert any Pillow mode to L or RGB: high bit depth scaled by `scale`, transparency filled with white.

    For a whole image `scale` may be left out: it is then measured from the image (see _bit_depth_scale);
    for a band of a larger image the caller measures it once and says so.
    """
    mode = image.mode
    if mode in ("L", "RGB") and "transparency" not in image.info:
        return image, []
    if mode == "1":
        return image.convert("L"), []
    if mode in HIGH_BIT_DEPTH_MODES:
        notes = []
        if scale is None:
            scale, notes = _bit_depth_scale(image)
        values = np.asarray(image).astype(np.float32)
        values *= np.float32(scale)
        array = np.clip(np.rint(values, out=values), 0, 255).astype(np.uint8)
        return Image.fromarray(array), notes
    if mode == "CMYK":
        return image.convert("RGB"), ["Converted from CMYK (print colours) to RGB."]
    has_alpha = mode in ("LA", "La", "PA", "RGBA", "RGBa") or "transparency" in image.info
    if not has_alpha:
        return image.convert("RGB"), []
    gray = mode in ("LA", "La") or (mode == "L" and "transparency" in image.info)
    rgba = image if mode == "RGBA" else image.convert("RGBA")
    background = Image.new("RGB", image.size, (255, 255, 255))
    background.paste(rgba, mask=rgba.getchannel("A"))
    filled = background.convert("L") if gray else background
    return filled, ["Transparent areas were filled with white."]


def _bit_depth_scale(image) -> tuple[float, list[str]]:
    """The factor that brings a high-bit-depth image to 0..255, and the note that says so (1.0 and none otherwise).

    16-bit images are scaled from 0..65535. Floating-point images whose values lie in 0..1 (scientific and
    HDR tools write them) are scaled from 0..1, not read as 0 or 1 out of 255 (which looks black); other
    32-bit images are taken as 0..255 unless they exceed it, then as 16-bit.
    """
    mode = image.mode
    if mode not in HIGH_BIT_DEPTH_MODES:
        return 1.0, []
    if mode.startswith("I;16"):
        return 255.0 / 65535.0, [f"Converted from high bit depth ({mode}, 0 to 65,535) to 8-bit grayscale."]
    low, high = image.getextrema()  # no copy of the pixels
    if mode == "F" and 0 <= low and high <= 1:
        return 255.0, ["Converted from floating-point values 0 to 1 to 8-bit grayscale (0 to 255)."]
    if high > 255:
        return 255.0 / 65535.0, [f"Converted from high bit depth ({mode}, values up to {high:,.0f}, read as 0 to "
                                 "65,535) to 8-bit grayscale."]
    return 1.0, [f"Converted from high bit depth ({mode}) to 8-bit grayscale."]


def exif_orientation(image: Image.Image):
    """The EXIF orientation tag of an image: None when absent, "unreadable" when the EXIF block is damaged."""
    try:
        return image.getexif().get(EXIF_ORIENTATION_TAG)
    except Exception:
        return "unreadable"


def upright(image: Image.Image, orientation) -> tuple[Image.Image, list[str]]:
    """Rotate or flip a photo as its EXIF orientation (read before any reduction) asks; a tag outside 1-8 is ignored."""
    if orientation in (None, 1):
        return image, []
    if orientation == "unreadable":
        return image, ["The photo's EXIF orientation could not be read; it is used as stored."]
    method = TRANSPOSE_FOR_ORIENTATION.get(orientation) if isinstance(orientation, int) else None
    if method is None:
        return image, [f"The photo's EXIF orientation tag holds {orientation!r}, which is not an orientation (1 to 8); "
                       "the photo is used as stored."]
    info = image.info
    upright_image = image.transpose(method)
    upright_image.info.update(info)
    return upright_image, ["Rotated upright using the photo's EXIF orientation tag."]
