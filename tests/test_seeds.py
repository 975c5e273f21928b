"""core.seeds: repeats of one configuration, and what they rule out."""

import pytest
from conftest import TINY_CNN

from core.seeds import SeedSummary, seed_variants, seed_verdict


def test_seed_variants_change_only_the_seed():
    variants = seed_variants(TINY_CNN, 3)
    assert variants[0] == TINY_CNN and [config.seed for config in variants] == [0, 1, 2]
    assert len({config.key for config in variants}) == 3
    assert {config.to_json().replace(f'"seed":{config.seed}', "") for config in variants} == {
        TINY_CNN.to_json().replace('"seed":0', "")}


def test_the_verdict_says_which_kind_of_noise_is_ruled_out():
    cnn = SeedSummary((0, 1, 2), (0.90, 0.91, 0.905))
    dnn = SeedSummary((0, 1, 2), (0.87, 0.88, 0.875))
    assert cnn.mean == pytest.approx(0.905) and cnn.spread == pytest.approx(0.005)
    separate = seed_verdict("A", cnn, "B", dnn, p_value=0.0001)
    assert "every run of A beat every run of B" in separate and "not the luck of one random start" in separate
    assert "makes **which test images were drawn** an unlikely cause (test-set noise) too." in separate
    overlapping = seed_verdict("A", SeedSummary((0, 1, 2), (0.88, 0.86, 0.87)), "B", dnn, p_value=0.001)
    assert "too." not in overlapping and "of those two models' difference; the other seeds' runs overlap." in overlapping
    close = seed_verdict("A", SeedSummary((0, 1, 2), (0.88, 0.86, 0.87)), "B", dnn, p_value=0.2)
    assert "B 0.0% " not in close and "the runs overlap" in close and "could be the luck of the random start" in close
    assert "does not rule out **which test images were drawn**" in close
    assert "test images" not in seed_verdict("A", cnn, "B", dnn)  # no McNemar given, nothing said about the test set
