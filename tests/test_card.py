"""The model card: one typed contract out of the registry, read by attributes everywhere."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TINY_CNN

from core.card import CARD_VERSION, ModelCard
from core.errors import RegistryError

PROJECT = Path(__file__).resolve().parents[1]


def test_a_trained_card_round_trips_through_json(trained_registry):
    card = trained_registry.get(TINY_CNN.key).card
    assert ModelCard.from_dict(json.loads(json.dumps(card.to_dict()))) == card
    assert card.to_dict()["card_version"] == CARD_VERSION
    assert card.config == TINY_CNN.canonical() and card.family == "cnn" and not card.imported
    assert card.dataset.test_images == 10_000 and card.dataset.num_classes == 10 and card.input_shape == (28, 28, 1)
    assert card.params.total == card.params.trainable + card.params.non_trainable
    assert sum(layer.parameters for layer in card.layers) == card.params.total
    assert card.epochs_run == card.epochs_planned == TINY_CNN.epochs


def test_a_version_1_card_is_still_read(trained_registry):
    """Cards written before the contract had no version field; the layout was the same."""
    version_2 = trained_registry.get(TINY_CNN.key).card.to_dict()
    version_1 = {name: value for name, value in version_2.items() if name not in ("card_version", "source_file")}
    card = ModelCard.from_dict(version_1)
    assert card.test_accuracy == version_2["test"]["accuracy"] and card.layers


def test_a_damaged_or_future_card_is_a_clear_error():
    with pytest.raises(RegistryError, match="damaged"):
        ModelCard.from_dict({"key": "0123456789abcdef", "dataset": {}})
    with pytest.raises(RegistryError, match="version 99"):
        ModelCard.from_dict({"card_version": 99})
    with pytest.raises(RegistryError, match="This is not a model card: it holds a list") as refused:
        ModelCard.from_dict([])  # a card.json of "[]" was said to have "version None": update CNN Classroom
    assert "Update CNN Classroom" not in str(refused.value)


def test_the_command_line_and_core_work_without_streamlit(tmp_path):
    """core/ui.py is the only module that imports Streamlit; nothing else in core imports it."""
    code = ("import sys; sys.modules['streamlit'] = None\n"
            "import core.cli, core.engines, core.workers, core.jobs, core.registry, core.card, core.catalogue, core.server\n"
            "from core import cli; sys.exit(cli.main(['--root', sys.argv[1], 'list']))")
    (tmp_path / "registry").mkdir()  # an empty folder: `list` refuses one that does not exist (a typo in --root)
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "registry")], cwd=PROJECT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "The registry is empty" in result.stdout, result.stderr


def test_a_models_time_reads_to_the_minute_in_utc(trained_registry):
    """The Models table showed the card's raw ISO time, 2026-12-02T04:59:14+00:00."""
    card = trained_registry.get(TINY_CNN.key).card
    assert card.created_in_utc == card.created[:16].replace("T", " ") and card.created.endswith("+00:00")
    elsewhere = dataclasses.replace(card, created="2026-12-02T06:59:14+02:00")  # a model made in another time zone
    assert elsewhere.created_in_utc == "2026-12-02 04:59"
    assert dataclasses.replace(card, created="").created_in_utc == dataclasses.replace(card, created="now").created_in_utc == ""
