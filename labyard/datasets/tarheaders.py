"""A faster tar header parser for the common case (plain files and folders).

Extraction spends much of its time in tarfile's per-header parsing; this parses the plain
ustar/GNU file and folder headers directly and hands every other header to tarfile itself,
so the result is always exactly what `tarfile.TarInfo.frombuf` answers (a test checks it on
ustar, GNU, pax, V7 and damaged headers).
"""

from __future__ import annotations

import struct
import tarfile

_USTAR = struct.Struct("100s8s8s8s12s12s8sc100s8s32s32s8s8s155s12x")  # one 512-byte header
_FAST_TYPES = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE)


def _number(field: bytes) -> int:
    """tarfile.nti for an octal field (ValueError for anything else)."""
    return int(field.partition(b"\0")[0].strip() or b"0", 8)


class FastTarInfo(tarfile.TarInfo):
    """tarfile's TarInfo with a faster header parser for the common case: a plain file or
    folder header with octal numbers and an unsigned checksum. Any other header (links,
    pax, GNU long names, sparse, base-256 numbers, any doubt) goes to tarfile's own parser,
    so the result is always what `tarfile.TarInfo.frombuf` answers."""

    @classmethod
    def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> FastTarInfo:
        if len(buf) != tarfile.BLOCKSIZE or buf[156:157] not in _FAST_TYPES:
            return super().frombuf(buf, encoding, errors)
        fields = _USTAR.unpack(buf)
        try:  # a base-256 number or any non-octal byte is a ValueError here
            numbers = [_number(fields[i]) for i in (1, 2, 3, 4, 5, 6, 12, 13)]
        except ValueError:
            return super().frombuf(buf, encoding, errors)
        if numbers[5] != 256 + sum(buf) - sum(buf[148:156]):  # the unsigned checksum
            return super().frombuf(buf, encoding, errors)
        name, link, uname, gname, prefix = (
            fields[i].partition(b"\0")[0].decode(encoding, errors) for i in (0, 8, 10, 11, 14)
        )
        obj = cls()
        obj.name, obj.linkname, obj.uname, obj.gname, obj.type = name, link, uname, gname, fields[7]
        obj.mode, obj.uid, obj.gid, obj.size, obj.mtime, obj.chksum = numbers[:6]
        obj.devmajor, obj.devminor = numbers[6:]
        if obj.type == tarfile.AREGTYPE and obj.name.endswith("/"):
            obj.type = tarfile.DIRTYPE
        if obj.type == tarfile.DIRTYPE:
            obj.name = obj.name.rstrip("/")
        if prefix:
            obj.name = prefix + "/" + obj.name
        return obj
