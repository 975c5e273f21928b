"""Small tables for the pages as Markdown: drawn at once, where `st.dataframe` would import pandas and pyarrow (about
a second on a server's first page run)."""

import re


def markdown_table(rows: list[dict]) -> str:
    """Rows with the same keys as a Markdown table; cells are escaped, except ones already written as `code`."""
    def cell(value) -> str:
        text = " ".join(str(value).split())
        if len(text) > 1 and text.startswith("`") and text.endswith("`") and "`" not in text[1:-1]:
            return text.replace("|", "\\|")
        return re.sub(r"([\\`*_{}\[\]<>()#+!|~$])", r"\\\1", text)

    columns = list(rows[0]) if rows else []
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(cell(row[column]) for column in columns) + " |" for row in rows]
    return "\n".join(lines)


def one_column_each(names: list[str], rows: list[dict]) -> list[dict]:
    """`rows` (one per thing compared, with the same keys) turned for `markdown_table`: a column per thing, headed by
    its name in `names`, and a row per key. A few things compared fit a phone's width this way."""
    return [{"": key, **{name: row[key] for name, row in zip(names, rows)}} for key in (rows[0] if rows else [])]
