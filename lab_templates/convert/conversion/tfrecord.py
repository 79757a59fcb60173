"""TFRecord shards of ``tf.train.Example`` records, with or without TensorFlow.

With TensorFlow importable, ``tf.train.Example`` and ``tf.io.TFRecordWriter`` write
them. Without it the two small formats are written here:

- A record (tensorflow/core/lib/io/record_writer.cc): ``uint64 length``,
  ``uint32 masked_crc32c(length)``, ``data``, ``uint32 masked_crc32c(data)``, all
  little-endian; ``masked = ((crc >> 15) | (crc << 17)) + 0xa282ead8`` of the CRC-32C
  (Castagnoli). The CRC is TensorBoard's (it writes its event files the same way).
- ``data`` is an ``Example`` (tensorflow/core/example/example.proto, feature.proto):
  ``Example.features(1) -> Features.feature(1): map<string, Feature>``; a ``Feature``
  is ``bytes_list(1)`` or ``int64_list(3)`` (packed), each holding ``value(1)``.

:func:`read_records` and :func:`parse_example` read both back (the tests use them).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

Features = dict[str, bytes | int]


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def encode_example(features: Features) -> bytes:
    """An ``Example`` holding one bytes or (non-negative) int64 value per feature."""
    entries = b""
    for key, value in features.items():
        if isinstance(value, bytes):
            feature = _field(1, _field(1, value))
        else:
            if value < 0:
                raise ValueError(f"feature {key}: negative integers are not written here")
            feature = _field(3, _field(1, _varint(value)))
        entries += _field(1, _field(1, key.encode()) + _field(2, feature))
    return _field(1, entries)


def frame(data: bytes) -> bytes:
    """One TFRecord record holding ``data``."""
    length = struct.pack("<Q", len(data))
    return (
        length
        + struct.pack("<I", masked_crc32c(length))
        + data
        + struct.pack("<I", masked_crc32c(data))
    )


def read_records(path: Path) -> Iterator[bytes]:
    """The records of a TFRecord file; ValueError on a bad checksum or a cut record."""
    with open(path, "rb") as fh:
        while header := fh.read(12):
            if len(header) < 12:
                raise ValueError(f"{path}: truncated record header")
            (length,), (crc,) = struct.unpack("<Q", header[:8]), struct.unpack("<I", header[8:])
            if masked_crc32c(header[:8]) != crc:
                raise ValueError(f"{path}: bad length checksum")
            data, footer = fh.read(length), fh.read(4)
            if len(data) < length or len(footer) < 4:
                raise ValueError(f"{path}: truncated record")
            if masked_crc32c(data) != struct.unpack("<I", footer)[0]:
                raise ValueError(f"{path}: bad data checksum")
            yield data


def _fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of a protobuf message: varints (0) and length-delimited (2)."""
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        if key & 7 == 0:
            value, pos = _read_varint(buf, pos)
            yield key >> 3, value
        elif key & 7 == 2:
            size, pos = _read_varint(buf, pos)
            yield key >> 3, buf[pos : pos + size]
            pos += size
        else:
            raise ValueError(f"unexpected protobuf wire type {key & 7}")


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _values(feature: bytes) -> list[Any]:
    """A Feature's values: bytes, or ints (packed or not; floats are not read)."""
    values: list[Any] = []
    for kind, body in _fields(feature):
        for number, value in _fields(body) if isinstance(body, bytes) else []:
            if number != 1:
                continue
            if kind == 3 and isinstance(value, bytes):  # packed int64
                pos = 0
                while pos < len(value):
                    item, pos = _read_varint(value, pos)
                    values.append(item - (1 << 64) if item >> 63 else item)
            else:
                values.append(value)
    return values


def parse_example(data: bytes) -> dict[str, list[Any]]:
    """An ``Example``'s features: name -> list of values (bytes or int)."""
    out: dict[str, list[Any]] = {}
    for _, features in _fields(data):
        for _, entry in _fields(features) if isinstance(features, bytes) else []:
            parts = dict(_fields(entry)) if isinstance(entry, bytes) else {}
            key, feature = parts.get(1, b""), parts.get(2, b"")
            if isinstance(key, bytes) and isinstance(feature, bytes):
                out[key.decode()] = _values(feature)
    return out


class ShardWriter:
    """Writes one part's records into ``<part>-00000-of-0000N.tfrecord`` files."""

    def __init__(self, folder: Path, part: str, total: int, per_shard: int, tf: Any) -> None:
        self.folder, self.part, self.per_shard, self.tf = folder, part, per_shard, tf
        self.shards = max(1, -(-total // per_shard)) if total else 0
        self.written = 0
        self.files: list[str] = []
        self._file: BinaryIO | Any = None

    def encode(self, features: Features) -> bytes:
        """What :meth:`write` takes (safe to call from worker threads)."""
        if self.tf is None:
            return frame(encode_example(features))
        return _tf_example(self.tf, features)

    def write(self, encoded: bytes) -> None:
        """Append one encoded record, opening the next shard when one is full."""
        if self.written % self.per_shard == 0:
            self.close()
            name = f"{self.part}-{len(self.files):05d}-of-{self.shards:05d}.tfrecord"
            self.files.append(name)
            path = str(self.folder / name)
            if self.tf is None:
                self._file = open(path, "wb")  # noqa: SIM115 - closed by close()
            else:
                self._file = self.tf.io.TFRecordWriter(path)
        self._file.write(encoded)
        self.written += 1

    def resume(self, files: list[str], written: int) -> None:
        """Continue after ``written`` records in ``files`` (a checkpoint's): the open
        shard is rebuilt from its first records, read back with their checksums, so
        whatever followed them (a record cut by a kill) is dropped."""
        self.files, self.written = list(files), written
        kept = written % self.per_shard
        if not kept:
            return  # the next record opens the next shard
        path = self.folder / self.files.pop()
        records = []
        for record in read_records(path):
            records.append(record)
            if len(records) == kept:
                break
        if len(records) < kept:
            raise ValueError(f"{path}: {len(records)} records, the checkpoint says {kept}")
        self.written -= kept
        for record in records:
            self.write(record if self.tf is not None else frame(record))

    def flush(self) -> None:
        """Push the written records to the file (before a checkpoint names them)."""
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        """Close the open shard, if any."""
        if self._file is not None:
            self._file.close()
            self._file = None


def _tf_example(tf: Any, features: Features) -> bytes:
    def feature(value: bytes | int) -> Any:
        if isinstance(value, bytes):
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

    example = tf.train.Example(
        features=tf.train.Features(feature={k: feature(v) for k, v in features.items()})
    )
    return bytes(example.SerializeToString(deterministic=True))  # sorted map keys


def load_tensorflow() -> Any:
    """The tensorflow module, or None when it is not installed."""
    try:
        import tensorflow as tf  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    return tf
