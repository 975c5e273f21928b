"""Server memory after 20 trainings against after 1 (the Streamlit side; training runs in the worker).

Everything the server does runs here, in one process, through AppTest: per training a new session opens
the Train page, sets a tiny DNN configuration (500 images, 1 epoch, a new seed each time), presses Train
(`JobRunner.submit`; the worker process trains it), reruns the page until the result is drawn, then a
second session opens the Predict page, picks the new model and classifies an upload. The resident memory
(RSS) of this process after the 1st and after the last round is compared. Target: ratio <= 1.2.

    python bench/server_memory.py            # 20 trainings
    python bench/server_memory.py --quick    # 4 trainings
"""

import argparse
import gc
import io
import time

from common import PROJECT, header, load_average, report, rss_megabytes, stop_workers, temporary_registry

TARGET_RATIO = 1.2


def texts(at) -> str:
    return "\n".join(str(element.value) for kind in ("success", "info", "warning", "error", "markdown")
                     for element in getattr(at, kind))


def small_jpeg() -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (640, 480), (225, 225, 220))
    ImageDraw.Draw(image).ellipse((160, 160, 480, 360), fill=(30, 30, 30))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def open_page(page: str):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(PROJECT / "app.py"), default_timeout=300)
    at.switch_page(page)
    return at.run()


def train_through_the_page(seed: int, timeout=600) -> float:
    """One session: set a tiny DNN on the Train page, press Train, rerun until it is drawn; seconds taken."""
    started = time.perf_counter()
    at = open_page("pages/8_Train.py")
    at.radio(key="train_family").set_value("dnn")
    at.select_slider(key="train_subset").set_value(500)
    at.select_slider(key="train_units").set_value(32)
    at.slider(key="train_epochs").set_value(1)
    at.number_input(key="train_seed").set_value(seed)
    at.run()
    at.button(key="train_start_button").click().run()
    deadline = time.monotonic() + timeout
    while "Trained before" not in texts(at):
        if at.exception or time.monotonic() > deadline:
            raise RuntimeError(f"training seed {seed} did not finish: {at.exception or texts(at)[:300]}")
        time.sleep(0.3)
        at.run()
    return time.perf_counter() - started


def predict_through_the_page(key: str, photo: bytes):
    """One session: pick model `key` on the Predict page and classify an upload."""
    at = open_page("pages/10_Predict.py")
    at.selectbox(key="predict_model").set_value(key).run()
    at.file_uploader(key="predict_upload").set_value(("photo.jpg", photo, "image/jpeg")).run()
    if at.exception:
        raise RuntimeError(f"Predict page failed: {at.exception}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trainings", type=int, default=20)
    parser.add_argument("--quick", action="store_true")
    arguments = parser.parse_args()
    trainings = 4 if arguments.quick else arguments.trainings

    root = temporary_registry("memory")
    from core.config import TrainConfig
    from core.registry import Registry

    header(f"server memory after {trainings} trainings vs after 1 (AppTest sessions in this process)")
    registry = Registry(root)
    photo = small_jpeg()
    sizes = []
    try:
        for index in range(trainings):
            seconds = train_through_the_page(seed=index)
            config = TrainConfig(family="dnn", hidden_units=(32,), train_subset=500, epochs=1, seed=index)
            predict_through_the_page(config.key, photo)
            gc.collect()
            sizes.append(rss_megabytes())
            print(f"training {index + 1}/{trainings}: drawn after {seconds:.1f} s; server RSS {sizes[-1]:.0f} MiB  "
                  f"[{load_average()}]", flush=True)
    finally:
        stop_workers(registry)
    ratio = sizes[-1] / sizes[0]
    report(f"server RSS after {trainings} trainings / after 1", f"{ratio:.3f} ({sizes[-1]:.0f} MiB / {sizes[0]:.0f} MiB, "
           f"peak {max(sizes):.0f} MiB)", f"<= {TARGET_RATIO}", ratio <= TARGET_RATIO)


if __name__ == "__main__":
    main()
