"""AppTest: a lesson's settings travel in its address (bind="query-params"): a link sets them, and one whose values do
not fit (typed by hand, made for another model, cut short) opens the lesson as it starts, without an error."""

import ast
from pathlib import Path

import pytest
from apptest import open_page

PROJECT = Path(__file__).resolve().parents[2]
LESSONS = ["1_Hello_neuron.py", "2_Datasets.py", "3_Convolutions.py", "4_Augmentation.py", "5_Inside_the_network.py",
           "7_Transfer_learning.py"]


def bound_keys(page: str) -> list[str]:
    """The keys of the widgets of `page` kept in its address."""
    keys = []
    for node in ast.walk(ast.parse((PROJECT / "pages" / page).read_text())):
        if isinstance(node, ast.Call):
            keywords = {keyword.arg: keyword.value for keyword in node.keywords}
            if isinstance(keywords.get("bind"), ast.Constant) and keywords["bind"].value == "query-params":
                keys.append(keywords["key"].value)
    return keys


def test_a_link_sets_a_lessons_controls(trained_registry):
    at = open_page(PROJECT / "pages" / "4_Augmentation.py")
    at.query_params.update(augment_fill_mode="reflect", augment_rotation="40", augment_flip="false")
    at.run()
    assert not at.exception
    assert at.selectbox(key="augment_fill_mode").value == "reflect" and at.slider(key="augment_rotation").value == 40
    assert at.checkbox(key="augment_flip").value is False
    [code] = [block.value for block in at.code if "data_augmentation = keras.Sequential" in block.value]
    assert 'RandomRotation(40 / 360, fill_mode="reflect")' in code and "RandomFlip" not in code  # the code shown


@pytest.mark.parametrize("page", LESSONS)
def test_a_link_whose_values_do_not_fit_opens_the_lesson_as_it_starts(trained_registry, page):
    keys = bound_keys(page)
    assert keys
    plain = open_page(PROJECT / "pages" / page).run()
    for value in ("not a value", "99999999999", "-1", ""):
        at = open_page(PROJECT / "pages" / page)
        at.query_params.update({key: value for key in keys})
        at.run()
        assert not at.exception, (page, value)
        shown = [key for key in keys if key in plain.session_state]  # a colour channel only for a colour dataset
        assert {key: at.session_state[key] for key in shown} == {key: plain.session_state[key] for key in shown}, value


@pytest.mark.parametrize("page, key", [("5_Inside_the_network.py", "inside_model"), ("10_Predict.py", "predict_model")])
def test_the_model_a_page_shows_is_in_its_address_by_its_registry_key(trained_registry, page, key):
    """Another model than the page's own is kept in the address by its registry key: a reload keeps it, a teacher's
    link opens the page on it, Back and Forward follow it, coming back through the sidebar keeps it, and a link to a
    model not in the registry opens the page's own, saying so."""
    from conftest import TINY_CNN, TINY_DNN

    plain = open_page(PROJECT / "pages" / page).run()
    own = plain.selectbox(key=key).value
    other = next(config.key for config in (TINY_CNN, TINY_DNN) if config.key != own)
    assert key not in plain.query_params  # the page's own model: a clean address
    plain.selectbox(key=key).set_value(other).run()
    assert not plain.exception and plain.query_params[key] == other
    del plain.query_params[key]  # the browser's Back: the address as it was before the pick
    assert plain.run().selectbox(key=key).value == own and key not in plain.query_params
    plain.query_params[key] = other  # Forward
    assert plain.run().selectbox(key=key).value == other and plain.query_params[key] == other
    plain.switch_page("pages/2_Datasets.py").run()
    plain.query_params.clear()  # the sidebar's link back names no model: the student's pick stays, and is written
    plain.switch_page(f"pages/{page}").run()
    assert plain.selectbox(key=key).value == other and plain.query_params[key] == other
    reloaded = open_page(PROJECT / "pages" / page)
    reloaded.query_params[key] = other  # the reload (a new session) or the link
    reloaded.run()
    assert not reloaded.exception and reloaded.selectbox(key=key).value == other
    assert not any("address" in info.value for info in reloaded.info)
    reloaded.selectbox(key=key).set_value(own).run()
    assert reloaded.selectbox(key=key).value == own and key not in reloaded.query_params
    for linked in ("0" * 12, "not a model"):
        stale = open_page(PROJECT / "pages" / page)
        stale.query_params[key] = linked
        stale.run()
        assert not stale.exception and stale.selectbox(key=key).value == own and key not in stale.query_params
        assert any("The model named in this page's address is not in the registry" in info.value for info in stale.info)


def test_a_link_to_a_model_the_page_does_not_show_says_so(trained_registry):
    """Transfer learning lists only CNNs as bases: a link naming the registry's DNN opens its own base, saying why."""
    from conftest import TINY_CNN, TINY_DNN

    at = open_page(PROJECT / "pages" / "7_Transfer_learning.py")
    at.query_params["transfer_base"] = TINY_DNN.key
    at.run()
    assert not at.exception and at.selectbox(key="transfer_base").value == TINY_CNN.key
    assert any("The model named in this page's address is not one this page shows" in info.value for info in at.info)
