"""A template's `include:` copies sibling templates' folders into each new lab, and only
paths inside the catalog count (a manifest naming anything else is not a template)."""

from __future__ import annotations

from pathlib import Path

from labyard.templates_catalog import copy_template, load_catalog


def _catalog(root: Path, include: str) -> Path:
    (root / "base" / "pkg").mkdir(parents=True)
    (root / "base" / "pkg" / "models.py").write_text("NET = 1\n")
    (root / "base" / "template.yml").write_text("title: Base\n")
    (root / "child").mkdir()
    (root / "child" / "train.py").write_text("from pkg.models import NET\n")
    (root / "child" / "template.yml").write_text(f"title: Child\ninclude: {include}\n")
    return root


def test_included_folders_are_copied_into_the_lab(tmp_path: Path) -> None:
    catalog = load_catalog(_catalog(tmp_path / "cat", "[base/pkg]"))
    lab = tmp_path / "lab"
    copy_template(catalog["child"], lab)
    assert sorted(p.name for p in lab.iterdir()) == ["pkg", "train.py"]
    assert (lab / "pkg" / "models.py").read_text() == "NET = 1\n"
    assert not (tmp_path / "cat" / "child" / "pkg").exists()  # the catalog is untouched


def test_an_include_outside_the_catalog_or_missing_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret").mkdir()
    for bad in ("[../secret]", "[/etc]", "[base/missing]", "[.]", "base/pkg"):
        root = tmp_path / f"cat-{abs(hash(bad))}"
        catalog = load_catalog(_catalog(root, bad))
        assert "child" not in catalog and "base" in catalog, bad


def test_the_shipped_templates_include_only_what_exists() -> None:
    from labyard.templates_catalog import catalog

    for template in catalog().values():
        assert all(path.exists() for path in template.includes), template.name
