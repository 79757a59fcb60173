"""labyard/yamlcheck.py: every hostile YAML is an InvalidInput with its line, with both the
libyaml loader and the pure-Python one (used where libyaml is missing)."""

from __future__ import annotations

import pytest

from labyard.errors import InvalidInput
from labyard.mlsteam import MlsteamError, parse_mlsteam
from labyard.yamlcheck import LOADERS, MAX_BYTES, MAX_DEPTH, YamlError, load_checked

NESTED_256K = "x: " + "[" * (256 * 1024 - 3)
HOSTILE = [
    # (case, text, line, message)
    ("nested flow, 256 KiB", NESTED_256K, 1, "nest"),
    ("nested mappings", "x: " + "{a: " * 20_000, 1, "nest"),
    ("nested blocks", "a:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, 200)), None, "nest"),
    ("bad date", "command: x\nparams:\n  d: 2024-13-45\n", 3, "2024-13-45"),
    ("bad day", "command: x\nparams:\n  d: 2024-02-30\n", 3, "cannot be read"),
    ("alias bomb", "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n", 1, "anchors and aliases"),
    ("lone alias", "command: x\nb: *a\n", 2, "anchors and aliases"),
    ("huge integer", "command: x\nn: " + "1" * 5000 + "\n", 2, "cannot be read"),
    ("long value", "command: x\nn: " + "a" * 20_000 + "\n", 2, "longer than"),
    ("python tag", "command: !!python/object/apply:os.system ['ls']\n", 1, "constructor"),
    ("bad base64", "command: x\nb: !!binary 'a%%'\n", 2, "base64"),
    ("two documents", "command: x\n---\ncommand: y\n", 2, "another document"),
    ("syntax", "command: x\nparams: [a\n", 3, "invalid YAML"),
    ("control character", "command: x\nn: a\x00b\n", 2, "#x0000"),
    ("lone surrogate", "command: x\nn: \ud800\n", 2, "Unicode"),
]


@pytest.mark.parametrize("loader", LOADERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize(("case", "text", "line", "message"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_yaml_is_an_invalid_input_with_its_line(
    loader: type, case: str, text: str, line: int | None, message: str
) -> None:
    with pytest.raises(YamlError) as info:
        load_checked(text, source="mlsteam.yml", loader_class=loader)
    assert isinstance(info.value, InvalidInput)
    assert message in info.value.message
    if line is not None:
        assert info.value.line == line
        assert info.value.message.startswith(f"mlsteam.yml line {line}: ")
    else:
        assert info.value.line is not None


@pytest.mark.parametrize("loader", LOADERS, ids=lambda c: c.__name__)
def test_depth_up_to_the_limit_is_read(loader: type) -> None:
    deep = "x: " + "[" * (MAX_DEPTH - 1) + "1" + "]" * (MAX_DEPTH - 1) + "\n"
    _root, data = load_checked(deep, source="t.yml", loader_class=loader)
    for _ in range(MAX_DEPTH):  # the mapping, then MAX_DEPTH - 1 lists
        data = data["x"] if isinstance(data, dict) else data[0]
    assert data == 1
    with pytest.raises(YamlError, match="nest"):
        load_checked("x: [" + deep[3:], source="t.yml", loader_class=loader)


@pytest.mark.parametrize("loader", LOADERS, ids=lambda c: c.__name__)
def test_ordinary_yaml_reads_the_same_with_every_loader(loader: type) -> None:
    text = "command: python t.py\nparams:\n  a: [1, 2.5, true, x]\n  d: 2024-01-02\n"
    root, data = load_checked(text, source="t.yml", loader_class=loader)
    assert root is not None and root.start_mark.line == 0
    assert data["params"]["a"] == [1, 2.5, True, "x"]
    assert str(data["params"]["d"]) == "2024-01-02"
    assert load_checked("", source="t.yml", loader_class=loader) == (None, None)


def test_size_is_checked_in_bytes_before_parsing() -> None:
    with pytest.raises(YamlError, match="larger than 256 KiB"):
        load_checked("é" * (MAX_BYTES // 2 + 1), source="t.yml")


def test_mlsteam_errors_keep_their_line_for_the_config_tab() -> None:
    with pytest.raises(MlsteamError) as info:
        parse_mlsteam("command: x\nparams:\n  d: 2024-13-45\n")
    assert info.value.line == 3 and info.value.message.startswith("mlsteam.yml line 3:")
