"""labyard/jobs/grid.py: the one grid validator (values typed, size from the value counts)."""

from __future__ import annotations

import pytest

from labyard.errors import InvalidInput, TooLarge
from labyard.jobs.grid import check_selection, resolve_grid
from labyard.mlsteam import parse_mlsteam

CONFIG = parse_mlsteam(
    "command: x\nparams:\n  a: [1]\n  b: [x]\n  c: 0.5\n"
    "params_definition:\n  b: {options: [x, y, z]}\n"
)


def test_values_are_typed_split_and_deduplicated() -> None:
    check = check_selection(CONFIG, {"a": ["1, 2", "02"], "b": ["x", "y"]}, limit=10)
    assert check.grid == {"a": [1, 2], "b": ["x", "y"], "c": [0.5]}
    assert (check.errors, check.size, check.too_many) == ({}, 4, None)


def test_size_is_exact_at_the_limit_and_refused_past_it() -> None:
    at_limit = check_selection(CONFIG, {"a": "1,2,3", "b": ["x", "y"]}, limit=6)
    assert at_limit.size == 6 and at_limit.require()["a"] == [1, 2, 3]
    past = check_selection(CONFIG, {"a": "1,2,3,4", "b": ["x", "y"]}, limit=6)
    assert past.size == 8
    with pytest.raises(TooLarge, match=r"makes 8 jobs; the limit is 6 .* 4 × 2 values"):
        past.require()


def test_a_billion_combinations_are_counted_not_made() -> None:
    thousand = ",".join(str(i) for i in range(1000))
    config = parse_mlsteam("command: x\nparams:\n  a: [1]\n  b: [1]\n  c: [1]\n")
    check = check_selection(config, {"a": thousand, "b": thousand, "c": thousand}, limit=1000)
    assert check.size == 10**9 and check.too_many is not None


@pytest.mark.parametrize(
    ("chosen", "message"),
    [
        ({"nope": [1]}, "mlsteam.yml has no param 'nope'"),
        ({"a": " , "}, "a: give at least one value."),
        ({"a": ["x"]}, "not a valid int"),
        ({"b": ["w"]}, "not one of x, y, z"),
    ],
)
def test_the_first_wrong_field_is_named(chosen: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as info:
        resolve_grid(CONFIG, chosen, limit=1000)
    assert info.value.field == next(iter(chosen))
