"""AppTest: the Your-own-images page imports a zip of real Fashion-MNIST images, refuses bad zips, compares sizes."""

import io
import zipfile
from pathlib import Path

from helpers_fmnist import load_fashion_mnist
from PIL import Image
from apptest import open_page
from streamlit.testing.v1 import AppTest

PAGE = Path(__file__).resolve().parents[2] / "pages/6_Your_own_images.py"
PER_CLASS = 40


def png(image) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image[..., 0]).save(buffer, "PNG")
    return buffer.getvalue()


def sneakers_and_bags_zip() -> bytes:
    """sneakers/ and bags/ folders of real Fashion-MNIST test images, one broken image and a stray text file."""
    images, labels = load_fashion_mnist("test", 2 * PER_CLASS, classes=[7, 8])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for index, (image, label) in enumerate(zip(images, labels)):
            archive.writestr(f"shoes_and_bags/{['sneakers', 'bags'][label]}/{index:03d}.png", png(image))
        archive.writestr("shoes_and_bags/bags/broken.png", b"\x89PNG\r\n\x1a\n not really")
        archive.writestr("shoes_and_bags/README.txt", "sneakers vs bags")
    return buffer.getvalue()


def escaping_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("cats/ok.png", png(load_fashion_mnist("test", 1)[0][0]))
        archive.writestr("../../evil.png", b"payload")
    return buffer.getvalue()


def bomb_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a/zeros.png", bytes(8 * 2**20))  # 8 MiB of zeros squeeze into a few KiB
        archive.writestr("b/zeros.png", b"\0")
    return buffer.getvalue()


def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.get("file_uploader")[0].set_value((name, data, "application/zip"))
    return at.run()


def text(at: AppTest) -> str:
    return "\n".join(str(element.value) for kind in ("markdown", "info", "warning", "success", "error", "caption")
                     for element in getattr(at, kind))


def test_empty_registry_asks_for_a_zip(registry_root):
    at = open_page(PAGE).run()
    assert not at.exception
    assert "upload a zip" in text(at)


def test_uploading_a_zip_of_class_folders_reports_what_was_found(registry_root):
    at = open_page(PAGE).run()
    upload(at, "shoes_and_bags.zip", sneakers_and_bags_zip())
    assert not at.exception
    shown = text(at)
    assert "Imported **shoes_and_bags**" in shown
    _, labels = load_fashion_mnist("test", 2 * PER_CLASS, classes=[7, 8])
    counts = {metric.label: metric.value for metric in at.metric}
    assert counts == {"class: bags": f"{(labels == 1).sum()} images", "class: sneakers": f"{(labels == 0).sum()} images"}
    skipped = at.dataframe[0].value
    assert set(skipped["file"]) == {"shoes_and_bags/bags/broken.png", "shoes_and_bags/README.txt"}
    assert "median 28×28" in shown
    assert "binary task" in shown and "Dense(1, activation='sigmoid')" in shown and "binary_crossentropy" in shown
    assert at.selectbox(key="own_dataset").value.startswith("folder:")
    assert at.button(key="own_train_button").label == "Train at 64×64"
    at.select_slider(key="own_size").set_value(300).run()
    assert any("can take minutes" in warning.value for warning in at.warning)


def test_hostile_and_broken_zips_are_refused_without_a_traceback(registry_root):
    at = open_page(PAGE).run()
    upload(at, "evil.zip", escaping_zip())
    assert not at.exception
    assert "outside the archive" in at.error[0].value
    assert not (registry_root / "datasets").exists() or not list((registry_root / "datasets").glob("*/manifest.json"))
    upload(at, "bomb.zip", bomb_zip())
    assert not at.exception
    assert "zip bomb" in at.error[0].value
    upload(at, "not_a_zip.zip", b"PK\x03\x04 this is not really a zip file")
    assert not at.exception
    assert "not a readable .zip" in at.error[0].value


def test_two_trained_sizes_are_compared(registry_root):
    import dataclasses

    from core.config import TrainConfig
    from core.engines import train_and_publish
    from core.folders import import_zip
    from core.registry import Registry

    report = import_zip(sneakers_and_bags_zip(), title="shoes_and_bags")
    small = TrainConfig(dataset=report.name, image_size=32, color_mode="rgb", family="cnn", filters=(16, 32, 64),
                        hidden_units=(128,), epochs=3, batch_size=32)
    registry = Registry(registry_root)
    trained = {size: train_and_publish(registry, dataclasses.replace(small, image_size=size)) for size in (32, 64)}

    at = open_page(PAGE).run()
    at.slider(key="own_epochs").set_value(3)
    at.select_slider(key="own_size").set_value(32).run()
    assert not at.exception
    assert at.metric[0].value == f"{trained[32].test_accuracy:.1%}"
    table = at.dataframe[-1].value
    assert list(table["input size"]) == ["32×32", "64×64"]
    params = list(table["parameters"])
    assert params == [trained[32].card.params.total, trained[64].card.params.total]
    assert params[1] > params[0]  # the Flatten layer grows with the square of the size
    # The table shown before training computes the same sizes, and the 300-pixel row without building anything.
    size_table = next(block.value for block in at.markdown if block.value.startswith("| input |"))
    rows = {line.split("|")[1].strip(): line.split("|")[4].strip() for line in size_table.splitlines()[2:]}
    assert rows["32×32×3"] == f"{trained[32].card.params.total:,}" and rows["64×64×3"] == f"{trained[64].card.params.total:,}"
    from core.models import build_cnn

    assert rows["300×300×3"] == f"{build_cnn((300, 300, 3), 2, filters=(16, 32, 64), hidden_units=(128,)).count_params():,}"
