"""The README's configuration table lists every setting exactly as Settings defines it."""

from __future__ import annotations

from pathlib import Path

from labyard.config import Settings
from labyard.settings_doc import END, START, render_into, settings_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_table_matches_settings() -> None:
    text = README.read_text()
    assert START in text and END in text
    assert render_into(text) == text, "README table is stale: run python -m labyard.settings_doc"


def test_every_setting_is_documented() -> None:
    table = settings_table()
    for name, field in Settings.model_fields.items():
        assert f"`LABYARD_{name.upper()}`" in table
        assert field.description, f"setting {name} has no description"
