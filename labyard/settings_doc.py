"""The README's configuration table, generated from Settings so the two never drift.

`python -m labyard.settings_doc` prints it; tests/unit/test_settings_doc.py checks the README.
"""

from __future__ import annotations

from labyard.config import Settings

START = "<!-- settings-table:start -->"
END = "<!-- settings-table:end -->"
_DYNAMIC_DEFAULTS = {
    "data_dir": "your user data directory (platformdirs), e.g. `~/.local/share/labyard`",
    "database_url": "SQLite file `labyard.db` in the data directory",
    "secret_key": "generated on first start, kept in `<data dir>/secret_key`",
}


def settings_table() -> str:
    """A Markdown table: variable, default, meaning — one row per Settings field."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        if name in _DYNAMIC_DEFAULTS:
            default = _DYNAMIC_DEFAULTS[name]
        elif field.default in ("", None):
            default = "(empty)"
        else:
            default = f"`{field.default}`"
        description = (field.description or "").replace("|", "\\|")
        rows.append(f"| `LABYARD_{name.upper()}` | {default} | {description} |")
    return "\n".join(rows)


def render_into(readme: str) -> str:
    """The README text with the table between the markers replaced by the current one."""
    head, _, rest = readme.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{settings_table()}\n{END}{tail}"


if __name__ == "__main__":
    print(settings_table())
