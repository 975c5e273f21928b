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
    with pytest.raises(ConfigError, match="16 lowercase hexadecimal digits"):
        validate_key(key)


def test_presets_are_valid_and_distinct():
    assert len({config.key for config in PRESETS.values()}) == len(PRESETS)


def test_importing_config_does_not_import_tensorflow():
    code = "import core.config, core.registry, core.jobs, sys; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# Keys computed before two-phase fine-tuning existed: every model trained then must still be found.
KEYS_BEFORE_FINE_TUNE_PHASES = {"fast DNN": "e2a0555cc87ae639", "fast CNN": "5d073ee32aa15474",
                                "classic DNN": "543e3957bd7e17cf", "classic CNN": "e1630efe7c9062eb",
                                "fast preview": "094e155df201bae3"}
# Presets whose recipe changed since (a new recipe is a new model, so a new key).
PRESETS_BEFORE_2026_11_30 = {"fast CNN": dataclasses.replace(PRESETS["fast CNN"], hidden_units=(128,), epochs=3)}
ONE_PHASE_FINE_TUNING_KEY = "9cf22beaf2055d4f"  # transfer from registry:0123456789abcdef, fine_tune_layers=2, 4 epochs


def test_two_phase_fine_tuning_changed_only_the_keys_of_fine_tuning():
    for name, key in KEYS_BEFORE_FINE_TUNE_PHASES.items():
        assert PRESETS_BEFORE_2026_11_30.get(name, PRESETS[name]).key == key, name
    fine_tuning = TrainConfig(family="transfer", base_model="registry:0123456789abcdef", fine_tune_layers=2, epochs=4)
    assert fine_tuning.fine_tune_phases == 2 and fine_tuning.fine_tunes_in_two_phases and fine_tuning.head_epochs == 2
    assert fine_tuning.key != ONE_PHASE_FINE_TUNING_KEY  # trained differently now, so a new key
    old_way = dataclasses.replace(fine_tuning, fine_tune_phases=1)
    assert old_way.key == ONE_PHASE_FINE_TUNING_KEY and "fine_tune_phases" not in old_way.to_json()
    # A card or queued job written before the field existed has no fine_tune_phases: it was one phase.
    written_before = {name: value for name, value in fine_tuning.to_dict().items() if name != "fine_tune_phases"}
    assert TrainConfig.from_dict(written_before) == old_way
    assert TrainConfig.from_json(fine_tuning.to_json()) == fine_tuning
    frozen = dataclasses.replace(fine_tuning, fine_tune_layers=0)  # feature extraction has no phases
    assert frozen.key == dataclasses.replace(frozen, fine_tune_phases=1).key
    with pytest.raises(ConfigError, match="at least 2 epochs.*Received: epochs=1"):
        dataclasses.replace(fine_tuning, epochs=1)


def test_titles_are_unique_for_different_configs_and_name_what_differs():
    import itertools

    from core.config import Augmentation

    base = PRESETS["classic CNN"]
    variants = [base, dataclasses.replace(base, augmentation=Augmentation(rotation_range=15)),
                dataclasses.replace(base, augmentation=Augmentation(rotation_range=20)),
                dataclasses.replace(base, image_size=32), dataclasses.replace(base, lr_schedule="one_cycle"),
                dataclasses.replace(base, seed=1), dataclasses.replace(base, learning_rate=0.0011),
                dataclasses.replace(base, stop_at_accuracy=0.905), dataclasses.replace(base, stop_at_accuracy=0.9),
                dataclasses.replace(base, color_mode="rgb"), dataclasses.replace(base, dataset="shapes"),
                dataclasses.replace(base, family="transfer", base_model="registry:0123456789abcdef")]
    variants += [dataclasses.replace(config, epochs=1) for config in variants]
    assert len({config.key for config in variants}) == len(variants)
    assert len({config.title for config in variants}) == len(variants)
    assert "augmented (rotation 15°)" in variants[1].title and "32×32 px" in variants[3].title
    assert "seed 1" in variants[5].title and "on Fashion-MNIST" in base.title and base.title.endswith("5 epochs")
    assert variants[-1].title.endswith(", 1 epoch")
    assert base.describe("Horses or humans") == base.title.replace("Fashion-MNIST", "Horses or humans")
    for first, second in itertools.combinations(PRESETS.values(), 2):
        assert first.title != second.title
