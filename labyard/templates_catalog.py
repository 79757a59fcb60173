"""The catalog of lab templates: every `lab_templates/<name>/template.yml`, read at start."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from labyard.errors import NotFound
from labyard.resources import resource_dir
from labyard.yamlcheck import YamlError, load_checked

MANIFEST = "template.yml"
TEMPLATE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")


@dataclass(frozen=True)
class LabTemplate:
    """One template: its folder and what its manifest says."""

    name: str
    title: str
    description: str
    path: Path
    default_datasets: tuple[str, ...] = field(default_factory=tuple)
    default_flavor: str = "cpu"
    includes: tuple[Path, ...] = field(default_factory=tuple)

    @property
    def readme(self) -> str:
        """The template's README text ('' when it has none)."""
        readme = self.path / "README.md"
        return readme.read_text(errors="replace") if readme.is_file() else ""


def _read_manifest(folder: Path) -> LabTemplate | None:
    """The template in `folder`, or None when its manifest is missing or malformed."""
    manifest = folder / MANIFEST
    if not TEMPLATE_NAME_RE.match(folder.name) or not manifest.is_file():
        return None
    try:
        _root, data = load_checked(manifest.read_text(errors="replace"), source=MANIFEST)
    except YamlError:
        return None
    if not isinstance(data, dict):
        return None
    datasets = data.get("default_datasets") or []
    includes = _includes(folder, data.get("include") or [])
    if includes is None:
        return None
    return LabTemplate(
        name=folder.name,
        title=str(data.get("title") or folder.name),
        description=str(data.get("description") or ""),
        path=folder,
        default_datasets=tuple(str(d) for d in datasets) if isinstance(datasets, list) else (),
        default_flavor=str(data.get("default_flavor") or "cpu"),
        includes=includes,
    )


def _includes(folder: Path, listed: object) -> tuple[Path, ...] | None:
    """The sibling templates' folders or files that `include:` names (e.g.
    ``classification/cls``), each inside the catalog; None when one is not."""
    if not isinstance(listed, list):
        return None
    root = folder.parent.resolve()
    found: list[Path] = []
    for entry in listed:
        path = (root / str(entry)).resolve()
        if not path.is_relative_to(root) or path == root or not path.exists():
            return None
        found.append(path)
    return tuple(found)


def copy_template(template: LabTemplate, dest: Path) -> None:
    """Copy the template into the new folder `dest`, then each included path into
    `dest/<its name>` (so ``classification/cls`` becomes the package ``cls``)."""
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", MANIFEST)
    shutil.copytree(template.path, dest, ignore=skip, copy_function=shutil.copyfile)
    for source in template.includes:
        target = dest / source.name
        if source.is_dir():
            shutil.copytree(source, target, ignore=skip, copy_function=shutil.copyfile,
                            dirs_exist_ok=True)  # fmt: skip
        else:
            shutil.copyfile(source, target)


def load_catalog(root: Path) -> dict[str, LabTemplate]:
    """Every valid template under `root`, by name."""
    found = (_read_manifest(p) for p in sorted(root.iterdir()) if p.is_dir())
    return {t.name: t for t in found if t is not None}


@lru_cache(maxsize=1)
def catalog() -> dict[str, LabTemplate]:
    """The shipped templates (read once per process)."""
    return load_catalog(resource_dir("lab_templates"))


def list_templates() -> list[LabTemplate]:
    """The templates, by title."""
    return sorted(catalog().values(), key=lambda t: t.title.lower())


def get_template(name: str) -> LabTemplate:
    """The template called `name`, or NotFound."""
    template = catalog().get(name)
    if template is None:
        raise NotFound(f"No template {name!r}.", field="template")
    return template
