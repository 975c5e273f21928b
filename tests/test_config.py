"""TrainConfig: validation, canonical JSON and stable keys."""

import dataclasses
import subprocess
import sys

import pytest

from core.config import PRESETS, Augmentation, TrainConfig, validate_key
from core.errors import ConfigError


def test_same_config_same_key_and_json_roundtrip():
    config = TrainConfig(family="cnn", filters=[32, 64], augmentation={"rotation_range": 20})
    again = TrainConfig.from_json(config.to_json())
    assert again == config
    assert again.key == config.key
    assert len(config.key) == 16 and validate_key(config.key) == config.key


def test_every_field_that_matters_changes_the_key():
    base = TrainConfig()
    changed = [
        dataclasses.replace(base, learning_rate=0.01),
        dataclasses.replace(base, seed=1),
        dataclasses.replace(base, filters=(16, 32)),
        dataclasses.replace(base, train_subset=5000),
        dataclasses.replace(base, augmentation=Augmentation(horizontal_flip=True)),
    ]
    assert len({config.key for config in changed} | {base.key}) == len(changed) + 1


def test_fields_unused_by_the_family_do_not_change_the_key():
    dnn = TrainConfig(family="dnn")
    assert dataclasses.replace(dnn, filters=(8,), kernel_size=5).key == dnn.key
    assert TrainConfig(family="cnn", fine_tune_layers=3).key == TrainConfig(family="cnn").key


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"family": "rnn"}, "family must be one of"),
        ({"optimizer": "adamw"}, "optimizer must be one of"),
        ({"learning_rate": 0}, "learning_rate must be a number"),
        ({"epochs": 0}, "epochs must be a number"),
        ({"dropout_rate": 1.5}, "dropout_rate"),
        ({"family": "cnn", "filters": ()}, "at least one convolution block"),
        ({"family": "transfer", "base_model": "resnet9000"}, "base_model must be one of"),
        ({"augmentation": {"fill_mode": "mirror"}}, "fill_mode must be one of"),
    ],
)
def test_bad_values_raise_config_error_naming_the_field(changes, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**changes)


def test_unknown_fields_are_refused():
    with pytest.raises(ConfigError, match="Unknown TrainConfig fields"):
        TrainConfig.from_dict({"epochs": 3, "lr": 0.1})


@pytest.mark.parametrize("key", ["../../etc", "ABCDEF0123456789", "123", "", None, "0123456789abcdef/"])
def test_keys_are_validated_before_paths_are_built(key):
    with pytest.raises(ConfigError, match="16 hexadecimal digits"):
        validate_key(key)


def test_presets_are_valid_and_distinct():
    assert len({config.key for config in PRESETS.values()}) == len(PRESETS)


def test_importing_config_does_not_import_tensorflow():
    code = "import core.config, core.registry, core.jobs, sys; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
