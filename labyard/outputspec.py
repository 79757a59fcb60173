"""A lab's `output_dataset:` block of mlsteam.yml: which folder of a job's output becomes a
new dataset of the project when the job succeeds.

    output_dataset:
      path: dataset             # a folder inside the job's output ('' or left out: all of it)
      name: "{dataset_name}"    # the new dataset's name

In `name`, `{param}` is the job's value of that param and `{source}` the name of the job's
first attached dataset (also when it appears in a param's value, so a param defaulting to
`{source}-converted` names the dataset after whatever the job converted). Pure checks:
`parse_output_block` raises MlsteamError with the offending key's line; the jobs domain
saves the folder once the job succeeded (labyard.jobs.output_dataset).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from yaml.nodes import MappingNode, Node

OUTPUT_DATASET_KEYS = frozenset({"path", "name"})
SOURCE = "source"  # the placeholder for the job's first dataset
MAX_NAME = 200
MAX_PATH = 1000
_FIELD_RE = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True)
class OutputDatasetSpec:
    """The folder `path` of the output becomes the dataset named by `name` (a template)."""

    name: str
    path: str = ""

    def dataset_name(self, values: Mapping[str, Any], source: str) -> str:
        """`name` with the job's param `values` and its first dataset's name filled in."""

        def fill(match: re.Match[str]) -> str:
            key = match.group(1)
            if key not in values:
                return source if key == SOURCE else match.group(0)
            value = values[key]
            return ("true" if value else "false") if isinstance(value, bool) else str(value)

        return _FIELD_RE.sub(fill, self.name).replace("{" + SOURCE + "}", source)


def _name_problem(name: Any, params: Collection[str]) -> str | None:
    if not isinstance(name, str) or not name.strip():
        return 'name must be a non-empty string, e.g. "{dataset_name}".'
    if len(name) > MAX_NAME:
        return f"name is longer than {MAX_NAME} characters."
    if "{" in _FIELD_RE.sub("", name) or "}" in _FIELD_RE.sub("", name):
        return f"name {name!r} has a brace that opens or closes no {{param}}."
    for key in _FIELD_RE.findall(name):
        if key not in params and key != SOURCE:
            known = ", ".join(sorted({*params, SOURCE}))
            return f"name refers to {{{key}}}, which is not a param (known: {known})."
    return None


def _path_problem(path: Any) -> str | None:
    if not isinstance(path, str):
        return "path must be a folder of the job's output, e.g. dataset."
    parts = path.split("/")
    if path.startswith("/") or "\\" in path or "\x00" in path or ".." in parts:
        return f"path {path!r} must be a relative folder inside the output, without '..'."
    if len(path) > MAX_PATH:
        return f"path is longer than {MAX_PATH} characters."
    return None


def parse_output_block(node: Node, data: Any, params: Collection[str]) -> OutputDatasetSpec:
    """The `output_dataset:` block (`node`: its YAML node, for lines; `data`: its loaded
    value; `params`: the file's param names); MlsteamError with the offending key's line."""
    from labyard.mlsteam import MlsteamError  # mlsteam imports this module

    here = int(node.start_mark.line) + 1
    if not isinstance(node, MappingNode) or not isinstance(data, dict):
        raise MlsteamError("`output_dataset` must be a mapping of path and name.", line=here)
    lines = {str(k.value): int(k.start_mark.line) + 1 for k, _ in node.value}
    if "name" not in data:
        raise MlsteamError('output_dataset needs a name, e.g. "{dataset_name}".', line=here)
    path = "" if data.get("path") is None else data["path"]
    for key, problem in (
        ("name", _name_problem(data["name"], params)),
        ("path", _path_problem(path)),
    ):
        if problem is not None:
            raise MlsteamError(f"output_dataset.{problem}", line=lines.get(key, here))
    return OutputDatasetSpec(name=data["name"].strip(), path=path.strip("/"))
