"""The one loader for YAML that users write: checked while it is read, so no file can make
the parser slow or deep, and every error is an InvalidInput (422) with its line.

    root, data = load_checked(text, source="mlsteam.yml")   # node tree (for lines) and data

PyYAML's pure-Python scanner costs time per token in proportion to the open flow levels
(`x: [[[[...` is quadratic: 20,000 `[` took 18 s) and its composer recurses once per level.
The size is checked first; then the nesting is counted before anything is composed and
refused past MAX_DEPTH, so the work stays linear in the size: with libyaml (C), a first pass
over its event stream with a depth counter; without it, the pure-Python scanner counts flow
levels plus block indents as it opens each one. Anchors
and aliases are refused as they are scanned (no alias bombs). Constructor failures that
PyYAML does not wrap (a bad date such as `2024-13-45`, an integer past Python's digit limit)
and over-long scalars become the same error, on the node's line.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.error import MarkedYAMLError
from yaml.nodes import Node, ScalarNode
from yaml.reader import ReaderError

from labyard.errors import InvalidInput

MAX_BYTES = 256 * 1024
MAX_DEPTH = 32
MAX_SCALAR_CHARS = 16 * 1024


class YamlError(InvalidInput):
    """A user's YAML file is invalid; `line` is 1-based when known."""

    def __init__(self, message: str, *, line: int | None = None, source: str = "YAML") -> None:
        where = f"{source} line {line}: " if line else f"{source}: "
        super().__init__(where + message, field=source)
        self.line = line
        self.reason = message


class _Refused(MarkedYAMLError):
    """Raised inside the loader where the text breaks one of our limits."""


_TOO_DEEP = f"nested deeper than {MAX_DEPTH} levels"
_NO_REFERENCES = "anchors and aliases (&, *) are not allowed"


class _CheckedConstructor:
    """Constructor part of both loaders: over-long scalars are refused, and every failure
    PyYAML does not wrap (ValueError from a bad date, ...) becomes a marked error."""

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        if isinstance(node, ScalarNode) and len(node.value) > MAX_SCALAR_CHARS:
            raise _Refused(
                problem=f"a value longer than {MAX_SCALAR_CHARS} characters",
                problem_mark=node.start_mark,
            )
        try:
            return super().construct_object(node, deep)  # type: ignore[misc]
        except (ValueError, OverflowError, TypeError, RecursionError) as exc:
            shown = f"{node.value[:40]!r} " if isinstance(node, ScalarNode) else ""
            raise ConstructorError(
                problem=f"{shown}cannot be read: {str(exc)[:200]}", problem_mark=node.start_mark
            ) from exc


class _PyLoader(_CheckedConstructor, yaml.SafeLoader):
    """PyYAML's pure-Python SafeLoader with the limits applied as the scanner goes."""

    def _check_depth(self) -> None:
        if self.flow_level + len(self.indents) > MAX_DEPTH:
            raise _Refused(problem=_TOO_DEEP, problem_mark=self.get_mark())

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:  # noqa: N803 (PyYAML's name)
        super().fetch_flow_collection_start(TokenClass)
        self._check_depth()

    def add_indent(self, column: int) -> bool:
        added: bool = super().add_indent(column)
        if added:
            self._check_depth()
        return added

    def fetch_alias(self) -> None:
        raise _Refused(problem=_NO_REFERENCES, problem_mark=self.get_mark())

    def fetch_anchor(self) -> None:
        raise _Refused(problem=_NO_REFERENCES, problem_mark=self.get_mark())


def _precheck_events(text: str) -> None:
    """The fast path's cheap pass: libyaml's event stream with a depth counter, stopping at
    the first anchor, alias or level past MAX_DEPTH (before anything is composed)."""
    depth = 0
    events = yaml.parse(text, Loader=yaml.CSafeLoader)
    while True:
        try:
            event = next(events, None)
        except yaml.scanner.ScannerError as exc:  # libyaml's own limit, met while reading ahead
            if "nesting depth" not in str(exc.problem):
                raise
            raise _Refused(problem=_TOO_DEEP, problem_mark=exc.problem_mark) from None
        if event is None:
            return
        mark: Any = event.start_mark
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise _Refused(problem=_NO_REFERENCES, problem_mark=mark)
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise _Refused(problem=_TOO_DEEP, problem_mark=mark)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


LOADERS: list[type] = [_PyLoader]
if yaml.__with_libyaml__:  # libyaml parses in C, ~30x faster; same checks, same errors

    class _FastLoader(_CheckedConstructor, yaml.CSafeLoader):
        """libyaml's parser and composer, after _precheck_events; our constructor."""

    LOADERS.insert(0, _FastLoader)


def _line_of(exc: yaml.YAMLError, text: str) -> int | None:
    if isinstance(exc, ReaderError):  # a character no YAML may hold: no mark, a position
        return text.count("\n", 0, max(int(exc.position), 0)) + 1
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return int(mark.line) + 1 if mark is not None else None


def _reason(exc: yaml.YAMLError) -> str:
    if isinstance(exc, ReaderError):
        return f"character #x{exc.character:04x} is not allowed"
    if isinstance(exc, MarkedYAMLError):
        return str(exc.problem or exc.context or "invalid YAML")
    return str(exc)


def load_checked(
    text: str, *, source: str, max_bytes: int = MAX_BYTES, loader_class: type | None = None
) -> tuple[Node | None, Any]:
    """The node tree (for line numbers) and the data of one YAML document; YamlError for
    anything wrong: too large, too deep, anchors, syntax, values PyYAML cannot construct.
    `loader_class` (one of LOADERS) is for tests; the default is the fastest available."""
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:  # a lone surrogate (JSON bodies can carry one)
        line = text.count("\n", 0, exc.start) + 1
        raise YamlError("the text is not valid Unicode.", line=line, source=source) from None
    if size > max_bytes:
        raise YamlError(f"the file is larger than {max_bytes // 1024} KiB.", source=source)
    cls = loader_class or LOADERS[0]
    loader = None
    try:
        if cls is not _PyLoader:
            _precheck_events(text)
        loader = cls(text)
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        where = _line_of(exc, text)
        raise YamlError(f"invalid YAML: {_reason(exc)}.", line=where, source=source) from exc
    except RecursionError as exc:  # cannot happen within MAX_DEPTH; kept as a last guard
        raise YamlError("invalid YAML: nested too deeply.", source=source) from exc
    finally:
        if loader is not None:
            loader.dispose()
    return root, data
