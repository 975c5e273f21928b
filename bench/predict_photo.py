"""Prediction for an uploaded 12-megapixel JPEG, the model already loaded.

A 4000x3000 photo-like JPEG (quality 92, grainy like a phone photo: about 5 MB) is made in memory. `core.prediction.predict_file`
(decode, EXIF, fit to 28x28, classify, Grad-CAM and its overlay: what the Predict page calls) is timed
on a CNN of the "fast CNN" preset's architecture that has been loaded and used once. Target <= 0.3 s.
The Predict page itself (AppTest: the upload, the call above and drawing the photo, the model's input,
the chart and the heat map) is timed too.

    python bench/predict_photo.py            # 10 predictions, 3 page runs
    python bench/predict_photo.py --quick    # 3 predictions, 1 page run
"""

import argparse
import dataclasses
import io
import statistics
import time

import numpy as np

from common import PROJECT, header, percentile, report, temporary_registry

TARGET_SECONDS = 0.3


def photo_jpeg(width=4000, height=3000) -> bytes:
    """A photo-like JPEG of a phone's size: a dark shoe-ish shape on a light, shaded, grainy table."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(0)
    shading = np.linspace(190, 235, height, dtype=np.float32)[:, None, None]
    grain = rng.normal(0, 18, (height, width, 3)).astype(np.float32)
    pixels = np.clip(shading * np.array([1.0, 0.97, 0.92], np.float32) + grain, 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels)
    draw = ImageDraw.Draw(image)
    draw.ellipse((900, 1300, 3100, 2300), fill=(40, 30, 28))
    draw.rectangle((900, 1800, 3100, 2250), fill=(25, 20, 20))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--page-runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    arguments = parser.parse_args()
    repeats, page_runs = (3, 1) if arguments.quick else (arguments.repeats, arguments.page_runs)

    root = temporary_registry("predict")
    from core.config import PRESETS
    from core.prediction import predict_file
    from core.engines import train_and_publish
    from core.registry import Registry

    header("prediction for an uploaded 12-megapixel JPEG (model loaded)")
    data = photo_jpeg()
    print(f"photo: 4000x3000 JPEG, {len(data) / 2**20:.1f} MiB", flush=True)
    config = dataclasses.replace(PRESETS["fast CNN"], train_subset=1000, epochs=1)
    registry = Registry(root)
    entry = train_and_publish(registry, config)
    model = registry.load_model(entry.key)
    predict_file(model, entry.card, data, "photo.jpg")  # the model's first use traces its functions

    seconds, without_saliency = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        prediction = predict_file(model, entry.card, data, "photo.jpg")
        seconds.append(time.perf_counter() - started)
        assert prediction.error is None and prediction.saliency_overlay is not None
        started = time.perf_counter()
        predict_file(model, entry.card, data, "photo.jpg", with_saliency=False)
        without_saliency.append(time.perf_counter() - started)
    report("predict_file with Grad-CAM overlay (median, p95)",
           f"{statistics.median(seconds):.3f} s, {percentile(seconds, 0.95):.3f} s", f"<= {TARGET_SECONDS} s",
           percentile(seconds, 0.95) <= TARGET_SECONDS)
    report("predict_file without saliency (median)", f"{statistics.median(without_saliency):.3f} s")
    print(f"(the overlay is {prediction.saliency_overlay.shape[1]}x{prediction.saliency_overlay.shape[0]}, "
          f"the photo shown {prediction.photo.shape[1]}x{prediction.photo.shape[0]}; top class {prediction.top_class})")

    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(PROJECT / "app.py"), default_timeout=300)
    at.switch_page("pages/10_Predict.py")
    at.run()
    at.selectbox(key="predict_model").set_value(entry.key).run()  # loads the model into the page's cache
    page_seconds = []
    for run in range(page_runs + 1):
        at.file_uploader(key="predict_upload").set_value((f"photo{run}.jpg", data, "image/jpeg"))
        started = time.perf_counter()
        at.run()
        if run:  # the first upload also traces the cached model's functions
            page_seconds.append(time.perf_counter() - started)
        assert not at.exception, at.exception
    report("Predict page run with the upload (AppTest, median)", f"{statistics.median(page_seconds):.3f} s")


if __name__ == "__main__":
    main()
