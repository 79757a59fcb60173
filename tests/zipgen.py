"""Write zips with many entries fast by writing the records directly (for tests and benchmarks).

zipfile takes minutes and hundreds of MiB to write a million entries; these are empty stored
files named `f0000000`, `f0000001`, ... with a zip64 end record when the count needs one.
"""

from __future__ import annotations

import struct
from pathlib import Path

_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_EOCD = struct.Struct("<IHHHHIIH")
_EOCD64 = struct.Struct("<IQHHIIQQQQ")
_LOCATOR = struct.Struct("<IIQI")
_BATCH = 10_000


def write_many_entry_zip(path: Path, count: int, *, claimed: int | None = None) -> int:
    """A valid zip of `count` empty files at `path`; its size in bytes. `claimed` writes a
    different entry count into the end records (a lying archive)."""
    names = [f"f{i:07d}".encode() for i in range(count)]
    offsets: list[int] = []
    with path.open("wb") as out:
        position = 0
        for start in range(0, count, _BATCH):
            chunk = []
            for name in names[start : start + _BATCH]:
                offsets.append(position)
                record = _LOCAL.pack(0x04034B50, 20, 0, 0, 0, 0x21, 0, 0, 0, len(name), 0) + name
                chunk.append(record)
                position += len(record)
            out.write(b"".join(chunk))
        cd_start = position
        for start in range(0, count, _BATCH):
            chunk = []
            for name, offset in zip(
                names[start : start + _BATCH], offsets[start : start + _BATCH], strict=True
            ):
                chunk.append(
                    _CENTRAL.pack(
                        0x02014B50,
                        20,
                        20,
                        0,
                        0,
                        0,
                        0x21,
                        0,
                        0,
                        0,
                        len(name),
                        0,
                        0,
                        0,
                        0,
                        0o100644 << 16,
                        offset,
                    )
                    + name  # fmt: skip
                )
                position += 46 + len(name)
            out.write(b"".join(chunk))
        write_end_records(out, claimed if claimed is not None else count, cd_start, position)
        return out.tell()


def write_end_records(out: object, count: int, cd_start: int, cd_end: int) -> None:
    """The (zip64 and) classic end-of-central-directory records for a directory at
    [cd_start, cd_end) holding `count` entries."""
    size = cd_end - cd_start
    records = b""
    if count >= 0xFFFF or cd_start >= 0xFFFFFFFF:
        records += _EOCD64.pack(0x06064B50, 44, 45, 45, 0, 0, count, count, size, cd_start)
        records += _LOCATOR.pack(0x07064B50, 0, cd_end, 1)
        records += _EOCD.pack(0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    else:
        records += _EOCD.pack(0x06054B50, 0, 0, count, count, size, cd_start, 0)
    out.write(records)  # type: ignore[attr-defined]
