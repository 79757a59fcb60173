"""labyard.seed.atomic: a sample dataset appears complete or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from labyard.seed.atomic import atomic_folder
from labyard.seed.shapes import write_shapes_dataset


def test_a_finished_block_is_renamed_into_place(tmp_path: Path) -> None:
    with atomic_folder(tmp_path / "sub" / "ds") as tmp:
        assert tmp.parent == tmp_path / "sub" and tmp.is_dir() and not any(tmp.iterdir())
        (tmp / "a.txt").write_text("a")
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["ds"]
    assert (tmp_path / "sub" / "ds" / "a.txt").read_text() == "a"


def test_a_failure_leaves_neither_dest_nor_the_temporary_folder(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), atomic_folder(tmp_path / "ds") as tmp:
        (tmp / "a.txt").write_text("a")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_a_generator_refuses_a_non_empty_dest_and_fills_an_empty_one(tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(FileExistsError, match="not empty"):
        write_shapes_dataset(tmp_path / "full")
    (tmp_path / "empty").mkdir()
    write_shapes_dataset(tmp_path / "empty")
    assert sorted(p.name for p in (tmp_path / "empty").iterdir()) == ["test", "train", "val"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "full"]
