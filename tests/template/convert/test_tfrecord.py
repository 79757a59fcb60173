"""TFRecord output: read back, it equals the class-folder images; its framing follows
TensorFlow's published record format (checked with a CRC-32C written here from the
definition, on RFC 3720's check values); its Examples parse with protobuf against the
published example.proto / feature.proto schema."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conversion.tfrecord import encode_example, parse_example, read_records
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from PIL import Image

from .conftest import convert

FLAGS = ("--image_size", 8, "--seed", 3)


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), bit by bit."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked(crc: int) -> int:
    """TensorFlow's masked CRC (tensorflow/core/lib/hash/crc32c.h, kMaskDelta)."""
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def spec_records(path: Path) -> list[bytes]:
    """Records read by the published layout: u64 length, u32 masked crc of the length,
    data, u32 masked crc of the data (little-endian)."""
    blob, pos, out = path.read_bytes(), 0, []
    while pos < len(blob):
        (length,) = struct.unpack_from("<Q", blob, pos)
        assert struct.unpack_from("<I", blob, pos + 8)[0] == masked(crc32c(blob[pos : pos + 8]))
        data = blob[pos + 12 : pos + 12 + length]
        assert struct.unpack_from("<I", blob, pos + 12 + length)[0] == masked(crc32c(data))
        out.append(data)
        pos += 16 + length
    return out


def example_class() -> Any:
    """tensorflow.Example built from the published .proto definitions."""
    f = descriptor_pb2.FileDescriptorProto(name="example.proto", package="tensorflow")
    label = descriptor_pb2.FieldDescriptorProto
    rep, opt = label.LABEL_REPEATED, label.LABEL_OPTIONAL

    def message(name: str, *fields: tuple[str, int, int, int, str]) -> Any:
        msg = f.message_type.add(name=name)
        for field_name, number, kind, lab, type_name in fields:
            field = msg.field.add(name=field_name, number=number, type=kind, label=lab)
            if type_name:
                field.type_name = type_name
        return msg

    message("BytesList", ("value", 1, label.TYPE_BYTES, rep, ""))
    message("FloatList", ("value", 1, label.TYPE_FLOAT, rep, "")).field[0].options.packed = True
    message("Int64List", ("value", 1, label.TYPE_INT64, rep, "")).field[0].options.packed = True
    feature = message(
        "Feature",
        ("bytes_list", 1, label.TYPE_MESSAGE, opt, ".tensorflow.BytesList"),
        ("float_list", 2, label.TYPE_MESSAGE, opt, ".tensorflow.FloatList"),
        ("int64_list", 3, label.TYPE_MESSAGE, opt, ".tensorflow.Int64List"),
    )
    feature.oneof_decl.add(name="kind")
    for field in feature.field:
        field.oneof_index = 0
    features = message(
        "Features", ("feature", 1, label.TYPE_MESSAGE, rep, ".tensorflow.Features.FeatureEntry")
    )
    entry = features.nested_type.add(name="FeatureEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=label.TYPE_STRING, label=opt)
    entry.field.add(
        name="value", number=2, type=label.TYPE_MESSAGE, label=opt, type_name=".tensorflow.Feature"
    )
    message("Example", ("features", 1, label.TYPE_MESSAGE, opt, ".tensorflow.Features"))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.Example"))


@pytest.fixture
def outputs(banded_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The same conversion as class folders and as TFRecord shards of 4 images."""
    folders, records = tmp_path / "folders", tmp_path / "records"
    assert convert(banded_dir, folders, *FLAGS) == 0
    assert (
        convert(banded_dir, records, *FLAGS, "--output_format", "tfrecord", "--images_per_shard", 4)
        == 0
    )
    return folders / "dataset", records / "dataset"


def test_records_read_back_equal_the_images(outputs: tuple[Path, Path], tmp_path: Path) -> None:
    folders, records = outputs
    classes = (records / "labels.txt").read_text().splitlines()
    assert classes == ["a", "b"]
    summary = json.loads((tmp_path / "records" / "summary.json").read_text())
    assert summary["shards"]["train"] == [f"train-{i:05d}-of-00004.tfrecord" for i in range(4)]
    assert summary["shards"]["val"] == ["val-00000-of-00001.tfrecord"]
    seen = 0
    for part, shards in summary["shards"].items():
        for name in shards:
            found = list(read_records(records / name))
            assert 1 <= len(found) <= 4
            for data in found:
                f = parse_example(data)
                label, text = f["image/class/label"][0], f["image/class/text"][0].decode()
                assert classes[label] == text
                stem = Path(f["image/filename"][0].decode()).stem
                with Image.open(io.BytesIO(f["image/encoded"][0])) as img:
                    assert img.format == "PNG" and img.size == (8, 8)
                    assert (f["image/width"], f["image/height"], f["image/channels"]) == (
                        [8],
                        [8],
                        [3],
                    )
                    decoded = np.asarray(img)
                with Image.open(folders / part / text / f"{stem}.png") as img:
                    assert np.array_equal(decoded, np.asarray(img))
                seen += 1
    assert seen == 17 == sum(1 for _ in folders.glob("*/*/*.png"))


def test_framing_follows_the_published_record_format(outputs: tuple[Path, Path]) -> None:
    assert crc32c(b"\x00" * 32) == 0x8A9136AA  # RFC 3720 B.4 check values
    assert crc32c(b"\xff" * 32) == 0x62A8AB43
    assert crc32c(bytes(range(32))) == 0x46DD794E
    assert crc32c(b"123456789") == 0xE3069283
    _, records = outputs
    for shard in sorted(records.glob("*.tfrecord")):
        assert spec_records(shard) == list(read_records(shard))


def test_examples_parse_with_the_published_schema(outputs: tuple[Path, Path]) -> None:
    example_type = example_class()
    _, records = outputs
    data = next(read_records(next(records.glob("test-*.tfrecord"))))
    example = example_type.FromString(data)
    feature = example.features.feature
    assert feature["image/class/text"].bytes_list.value[0] in (b"a", b"b")
    assert list(feature["image/height"].int64_list.value) == [8]
    assert feature["image/encoded"].bytes_list.value[0].startswith(b"\x89PNG")
    assert feature["image/encoded"].WhichOneof("kind") == "bytes_list"
    assert parse_example(example.SerializeToString()) == parse_example(data)
    # and what protobuf writes from scratch, our reader reads (ints packed, large ones too)
    built = example_type()
    built.features.feature["n"].int64_list.value.extend([0, 1, 300, 2**40, -5])
    built.features.feature["b"].bytes_list.value.append(b"xyz")
    assert parse_example(built.SerializeToString()) == {"n": [0, 1, 300, 2**40, -5], "b": [b"xyz"]}
    mine = example_type.FromString(encode_example({"n": 2**40, "b": b"xyz"})).features.feature
    assert list(mine["n"].int64_list.value) == [2**40] and mine["n"].WhichOneof("kind")
    assert list(mine["b"].bytes_list.value) == [b"xyz"]


def test_a_damaged_record_is_refused(outputs: tuple[Path, Path], tmp_path: Path) -> None:
    _, records = outputs
    shard = next(records.glob("val-*.tfrecord"))
    blob = bytearray(shard.read_bytes())
    blob[40] ^= 0x01
    damaged = tmp_path / "damaged.tfrecord"
    damaged.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="bad data checksum"):
        list(read_records(damaged))
    damaged.write_bytes(shard.read_bytes()[:-3])
    with pytest.raises(ValueError, match="truncated"):
        list(read_records(damaged))
