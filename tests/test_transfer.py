"""The transfer-learning experiment: three configs from one registry base, trained for real on small slices."""


import pytest
from conftest import TINY_CNN, TINY_DNN, TRANSFER_SLICE

from core.errors import ConfigError
from core.registry import Registry
from core.transfer import (FEATURE_EXTRACTION, FINE_TUNING, SCRATCH, experiment_rows, experiment_table,
                           transfer_experiment, transfer_verdict)


def test_the_three_configs_share_data_and_head_and_match_the_base(trained_registry):
    configs = transfer_experiment(TINY_CNN.key, "shapes", train_subset=300, fine_tune_layers=1, epochs=4,
                                  registry=trained_registry)
    scratch, frozen, tuned = configs[SCRATCH], configs[FEATURE_EXTRACTION], configs[FINE_TUNING]
    for config in configs.values():  # the base saw 28x28 grayscale, so the shapes are converted to that
        assert (config.dataset, config.train_subset, config.image_size, config.color_mode) == ("shapes", 300, 28, "grayscale")
        assert (config.hidden_units, config.epochs, config.learning_rate, config.seed) == ((128,), 4, 0.001, 0)
    assert scratch.family == "cnn" and scratch.filters == TINY_CNN.filters and scratch.kernel_size == TINY_CNN.kernel_size
    assert frozen.family == tuned.family == "transfer"
    assert frozen.base_model == tuned.base_model == f"registry:{TINY_CNN.key}"
    assert (frozen.fine_tune_layers, tuned.fine_tune_layers) == (0, 1)
    assert len({config.key for config in configs.values()}) == 3


def test_a_dense_network_or_no_unfrozen_layer_is_refused(trained_registry):
    with pytest.raises(ConfigError, match="must be a CNN trained in this registry.*Received: base_key="):
        transfer_experiment(TINY_DNN.key, registry=trained_registry)
    with pytest.raises(ConfigError, match="at least one layer.*Received: fine_tune_layers=0"):
        transfer_experiment(TINY_CNN.key, fine_tune_layers=0, registry=trained_registry)


def test_the_three_networks_train_and_freeze_what_they_should(trained_registry, transfer_registry_root):
    """Before: the experiment is not in the trained registry. After: the session's transfer registry, where
    train_and_publish trained the same three configs."""
    configs = transfer_experiment(TINY_CNN.key, registry=trained_registry, **TRANSFER_SLICE)
    untrained = experiment_rows(configs, trained_registry)
    assert all(not row["trained"] for row in untrained)
    assert all(set(row.values()) == {row["network"], "not yet", "—"}  # no "None" cell before training
               for row in experiment_table(untrained))
    registry = Registry(transfer_registry_root)
    assert transfer_experiment(TINY_CNN.key, registry=registry, **TRANSFER_SLICE) == configs
    rows = {row["network"]: row for row in experiment_rows(configs, registry)}
    scratch, frozen, tuned = rows[SCRATCH], rows[FEATURE_EXTRACTION], rows[FINE_TUNING]
    assert frozen["trainable parameters"] < tuned["trainable parameters"] < scratch["trainable parameters"]
    assert scratch["frozen parameters"] == 0
    conv_1 = 3 * 3 * 1 * 8 + 8  # feature extraction freezes both convolutions, fine-tuning only conv_1
    conv_2 = 3 * 3 * 8 * 16 + 16
    assert frozen["frozen parameters"] == conv_1 + conv_2 and tuned["frozen parameters"] == conv_1
    assert frozen["total parameters"] == tuned["total parameters"] == scratch["total parameters"]
    assert all(0.2 < row["test accuracy"] <= 1 for row in rows.values())  # chance is 0.1
    assert scratch["gain over scratch (points)"] is None
    assert frozen["gain over scratch (points)"] == round(100 * (frozen["test accuracy"] - scratch["test accuracy"]), 2)
    shown = {row["network"]: row for row in experiment_table(list(rows.values()))}
    assert shown[FEATURE_EXTRACTION]["test accuracy"] == f"{frozen['test accuracy']:.1%}"
    assert shown[FEATURE_EXTRACTION]["gain over scratch (points)"] == f"{frozen['gain over scratch (points)']:+.1f}"
    assert shown[SCRATCH]["gain over scratch (points)"] == "—" and shown[SCRATCH]["trained"] == "yes"
    assert shown[FEATURE_EXTRACTION]["frozen parameters"] == f"{conv_1 + conv_2:,}"

    # Fine-tuning ran in two phases: the head alone, then the top layer at a tenth of the rate.
    tuned_entry = registry.get(configs[FINE_TUNING].key)
    head_epochs = configs[FINE_TUNING].head_epochs
    assert 0 < head_epochs < TRANSFER_SLICE["epochs"]
    assert [row["phase"] for row in tuned_entry.history] == [1] * head_epochs + [2] * (TRANSFER_SLICE["epochs"] - head_epochs)
    assert all("phase" not in row for row in registry.get(configs[SCRATCH].key).history)
    optimizer = registry.load_model(tuned_entry.key).optimizer
    assert float(optimizer.learning_rate) == pytest.approx(configs[FINE_TUNING].learning_rate / 10)

    verdict = transfer_verdict(configs, registry)
    for name in (FEATURE_EXTRACTION, FINE_TUNING):
        comparison = verdict.comparisons[name]
        assert comparison.accuracy_a == pytest.approx(rows[name]["test accuracy"])
        assert comparison.accuracy_b == pytest.approx(scratch["test accuracy"])
        assert comparison.ci_low <= comparison.difference <= comparison.ci_high and 0 <= comparison.p_value <= 1


def test_imagenet_weights_offline_say_how_to_get_them_in_a_students_words(monkeypatch, tmp_path):
    """What is missing and how to get it; not the command line's way round or its values (the page has its own)."""
    from core.pretrained import cached_weights_path, weights_status

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))

    def unreachable(url, timeout, stale_ok=False):
        raise OSError("[Errno -2] Name or service not known")

    monkeypatch.setattr("core.pretrained.check_reachable", unreachable)
    available, message = weights_status("mobilenet_v2", (96, 96, 3))
    assert not available and "MobileNetV2" in message and "~/.keras/models/" in message
    assert "registry:<key>" not in message and "Received:" not in message
    assert "could not be downloaded. Expected the file" in message and "Errno" not in message  # the cause: in the log
    cached_weights_path("mobilenet_v2", (96, 96, 3)).parent.mkdir(parents=True)
    cached_weights_path("mobilenet_v2", (96, 96, 3)).write_bytes(b"weights")  # copied in by hand, as it says
    assert weights_status("mobilenet_v2", (96, 96, 3))[0]

def test_the_headline_claims_only_what_mcnemars_test_against_scratch_supports():
    from core.evaluation import Comparison
    from core.transfer import TransferVerdict

    def against_scratch(difference, p_value):
        return Comparison(0.43 + difference, 0.43, difference, -0.02, 0.02, 400, 30, 29, 141, p_value, 600, "")

    def headline(extraction, fine_tuning):
        return TransferVerdict(5, {}, False, {FEATURE_EXTRACTION: extraction, FINE_TUNING: fine_tuning}).headline()

    both = headline(against_scratch(0.038, 0.001), against_scratch(0.035, 0.003))  # 37.2% and 36.9%: no "best"
    assert both == "Both pretrained networks beat training from scratch: feature extraction by 3.8 points, fine-tuning by 3.5 points."
    assert headline(against_scratch(0.06, 0.001), against_scratch(0.01, 0.4)) == (
        "**feature extraction** beats training from scratch by 6.0 points; fine-tuning does not clearly.")
    assert headline(against_scratch(-0.1, 0.001), against_scratch(-0.1, 0.001)).startswith("Training **from scratch** beats")
    assert headline(against_scratch(-0.004, 0.85), against_scratch(0.0, 1.0)).startswith("No clear winner here")
    # one clearly behind scratch: "No clear winner" sat above "from scratch is more accurate by 42.5 points, p < 0.001"
    assert headline(against_scratch(0.0, 1.0), against_scratch(-0.425, 0.0001)) == (
        "Training **from scratch** beats fine-tuning by 42.5 points; McNemar's test (below) cannot tell feature "
        "extraction from scratch.")
    assert headline(against_scratch(0.06, 0.001), against_scratch(-0.1, 0.001)) == (
        "**feature extraction** beats training from scratch by 6.0 points; **fine-tuning** does worse than scratch, by "
        "10.0 points.")


def test_a_transfer_model_is_titled_by_its_bases_title_not_its_key(trained_registry, transfer_registry_root):
    """Pickers named the three networks 'Transfer registry CNN 5c1e0f0b8c2d4a17 (frozen) / …'."""
    from core.guide import title_for

    registry = Registry(transfer_registry_root)
    configs = transfer_experiment(TINY_CNN.key, registry=registry, **TRANSFER_SLICE)
    frozen = registry.get(configs[FEATURE_EXTRACTION].key)
    base_title = trained_registry.get(TINY_CNN.key).title
    assert frozen.title.startswith(f"Transfer (frozen) from “{base_title}” / Dense")  # the mode first: tables cut titles
    assert frozen.card.base_title == base_title and TINY_CNN.key not in frozen.title
    assert title_for(configs[FEATURE_EXTRACTION], registry) == frozen.title  # the same before training, on Train
    assert registry.get(configs[SCRATCH].key).card.base_title is None


def test_learning_faster_is_claimed_only_beyond_the_validation_sets_luck():
    """32% against 30% after 5 epochs, on Shapes' 30 validation images, was called "learns faster"."""
    from core.transfer import clearly_ahead

    assert not clearly_ahead(0.32, 0.30, 30)  # one image in 30 is 3 points
    assert clearly_ahead(0.70, 0.30, 30) and not clearly_ahead(0.30, 0.70, 30)
    assert clearly_ahead(0.32, 0.30, 20_000) and not clearly_ahead(0.32, 0.30, 0)

