"""The robustness table: every test records what it tried; the run ends by printing the table.

Set ROBUSTNESS_TABLE=path to also write it as markdown (docs/robustness.md quotes it).
"""

import os

from robustness import support


def pytest_terminal_summary(terminalreporter):
    if not support.ROWS:
        return
    terminalreporter.section("robustness: what was tried, how many, what survived, what was lost")
    terminalreporter.write_line(support.table_markdown())
    lost = sum(row.lost for row in support.ROWS)
    terminalreporter.write_line(f"\n{len(support.ROWS)} rows; lost: {lost or 'nothing'}")
    target = os.environ.get("ROBUSTNESS_TABLE")
    if target:
        with open(target, "w") as handle:
            handle.write(support.table_markdown() + "\n")
