"""Open one page of the app in AppTest the way a browser does: app.py is the entrypoint."""

import functools
from pathlib import Path

from streamlit.testing.v1 import AppTest

PROJECT = Path(__file__).resolve().parents[2]

# Each new AppTest has Streamlit read the metadata of every installed package, looking for components
# (0.2 s here). The installed packages do not change during a test run, so they are read once.
try:
    from streamlit.components.v2 import manifest_scanner
except ImportError:  # a Streamlit before components v2 does not scan
    pass
else:
    manifest_scanner.scan_component_manifests = functools.cache(manifest_scanner.scan_component_manifests)


def open_page(page: str | Path, timeout: float = 180) -> AppTest:
    """An AppTest of app.py switched to `page` (e.g. "pages/8_Train.py"); call .run() to render it."""
    relative = Path(page).relative_to(PROJECT) if Path(page).is_absolute() else Path(page)
    at = AppTest.from_file(str(PROJECT / "app.py"), default_timeout=timeout)
    if relative != Path("app.py"):
        at.switch_page(str(relative))
    return at
