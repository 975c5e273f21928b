"""The seams of the design, checked on the source: typed contracts, thin pages, a registry that only stores."""

import ast
import re
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
CORE = sorted((PROJECT / "core").glob("*.py"))
PAGES = [PROJECT / "app.py", *sorted((PROJECT / "pages").glob("*.py"))]
MAX_MODULE_LINES = 400


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_module_reads_the_card_as_a_dictionary():
    """Pages, the CLI and core read typed fields; only core/card.py knows the JSON layout."""
    offenders = []
    for path in [PROJECT / "app.py", *sorted((PROJECT / "pages").glob("*.py")), *sorted((PROJECT / "core").glob("*.py"))]:
        if path.name == "card.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if re.search(r"card\s*\[|card\.get\(", line):
                offenders.append(f"{path.relative_to(PROJECT)}:{number}: {line.strip()}")
    assert offenders == []



def test_tensorflow_and_keras_are_entered_through_core_backend_only():
    """Two server threads that entered TensorFlow by different first modules (`import keras` in the preloading, `from
    tensorflow import keras` in a page) deadlocked and left it half-imported until a restart (core/backend.py)."""
    offenders = []
    for path in CORE + PAGES:
        if path.name == "backend.py":
            continue
        backend_seen = False
        for node in sorted((node for node in ast.walk(ast.parse(path.read_text()))
                            if isinstance(node, (ast.Import, ast.ImportFrom))), key=lambda node: node.lineno):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            backend_seen |= "core.backend" in names
            roots = {name.split(".")[0] for name in names}
            if "tensorflow" in roots or ("keras" in roots and not backend_seen):
                offenders.append(f"{path.relative_to(PROJECT)}:{node.lineno}")
    assert offenders == []


def test_every_table_of_counts_writes_them_with_thousands_separators():
    """Your own images' size table showed "319011" parameters beside "319,011" everywhere else."""
    offenders = []
    for path in PAGES + [PROJECT / "core" / "ui.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("dataframe"):
                call = ast.unparse(node)
                if any(f"'{column}'" in call for column in ("parameters", "test images", "training images")):
                    offenders += [] if "THOUSANDS_COLUMNS" in call else [f"{path.name}:{node.lineno}"]
    assert offenders == []


def test_every_page_that_trains_uses_the_one_training_panel():
    """Status, live progress, errors, the button and submitting are drawn by ui.training_panel, never by a page."""
    for path in PAGES:
        text = path.read_text()
        assert not re.search(r"runner\(\)\.(submit|status|cancel)|live_trainings", text), path.name


def test_the_registry_stores_and_never_trains():
    """Training and publishing a result is the job side's work; the registry sits below it in the import graph."""
    for module in ("registry", "card"):
        imports = imported_modules(PROJECT / "core" / f"{module}.py")
        assert not imports & {"core.training", "core.jobs", "core.engines", "core.workers"}, module
    assert "core.registry" not in imported_modules(PROJECT / "core" / "training.py")


def test_core_modules_are_short_or_say_why_and_keep_to_the_length_they_state():
    """A module over MAX_MODULE_LINES says why in its docstring, with the bound it keeps: "Under 600 lines: …"."""
    for path in CORE:
        lines = len(path.read_text().splitlines())
        docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
        stated = re.search(r"\bUnder\s+([\d,]+)\s+lines\b", docstring)
        if lines > MAX_MODULE_LINES:
            assert stated, f"{path.name}: {lines} lines, and its docstring says neither why nor 'Under N lines'"
            assert lines <= int(stated.group(1).replace(",", "")), f"{path.name}: {lines} lines, over what it states"


def test_every_uploader_sets_its_own_limit_below_the_servers():
    """The server accepts uploads up to maxUploadSize (the course zips); every uploader states its own smaller or equal
    limit, so that photos and model files keep 20 MB (Streamlit checks a widget's limit in the browser)."""
    import tomllib

    server_mb = tomllib.loads((PROJECT / ".streamlit" / "config.toml").read_text())["server"]["maxUploadSize"]
    uploaders = []
    for path in PAGES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "file_uploader":
                limit = next((keyword.value for keyword in node.keywords if keyword.arg == "max_upload_size"), None)
                uploaders.append((path.name, ast.unparse(limit) if limit is not None else None))
    assert uploaders and all(limit is not None for _, limit in uploaders), uploaders
    photo_limits = {limit for name, limit in uploaders if "Your_own_images" not in name}
    assert photo_limits <= {"20", "MAX_UPLOAD_BYTES // 2 ** 20"}, photo_limits
    assert re.search(rf"MAX_ZIP_MB = {server_mb}\b", (PROJECT / "pages" / "6_Your_own_images.py").read_text())


# A widget a student sets keeps its value when its page is left and opened again. Streamlit's own way,
# persist_state="session", also survives a page left while a live view (a fragment that reruns every second) runs,
# which the older way, re-assigning every value at each page's start, lost to a Streamlit bug (issue 10805).
WIDGETS = {"slider", "select_slider", "selectbox", "radio", "checkbox", "toggle", "number_input", "multiselect",
           "text_input", "text_area", "pills", "segmented_control"}
NOT_KEPT = {"f'{key}_to_delete'", "'teacher_passphrase'", "'teacher_budget_epochs'", "'teacher_budget_seconds'"}


def test_every_keyed_widget_keeps_its_value_across_pages():
    missing = []
    for path in PAGES + [PROJECT / "core" / "ui.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) in WIDGETS:
                key = next((keyword.value for keyword in node.keywords if keyword.arg == "key"), None)
                persist = next((keyword.value for keyword in node.keywords if keyword.arg == "persist_state"), None)
                if key is not None and ast.unparse(key) not in NOT_KEPT and ast.unparse(persist or key) != "'session'":
                    missing.append(f"{path.name}:{node.lineno} {ast.unparse(key)}")
    assert missing == []


# A lesson's settings are also kept in its address (bind="query-params"): a reload keeps them, and a teacher's link opens
# the lesson with them. Your own images is left out: its pickers name the server's own datasets. Not in the address:
NOT_IN_THE_ADDRESS = {
    "KERNEL_KEYS[row][number]": "the filter's nine numbers follow the preset, which is in the address",
    "'conv_step_row'": "set to the filter's strongest pixel whenever the image or the filter changes",
    "'conv_step_column'": "the same",
    "'inside_channel'": "set to the class's most telling channel whenever the class or the layer changes",
}
LESSON_PAGES = ["1_Hello_neuron.py", "2_Datasets.py", "3_Convolutions.py", "4_Augmentation.py",
                "5_Inside_the_network.py", "7_Transfer_learning.py"]


def test_every_lesson_setting_is_kept_in_the_pages_address():
    missing, found = [], set()
    for name in LESSON_PAGES:
        for node in ast.walk(ast.parse((PROJECT / "pages" / name).read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) in WIDGETS:
                keywords = {keyword.arg: ast.unparse(keyword.value) for keyword in node.keywords}
                key = keywords.get("key")
                if key in NOT_IN_THE_ADDRESS:
                    found.add(key)
                elif key is not None and keywords.get("bind") != "'query-params'":
                    missing.append(f"{name}:{node.lineno} {key}")
    assert missing == [] and found == set(NOT_IN_THE_ADDRESS)
