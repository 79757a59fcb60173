"""A SavedModel and model.onnx (tf2onnx) of the trained classifier.

Every export takes what PyTorch's model.onnx takes: ``input`` float ``[N, C, S, S]`` in
[0, 1] -> ``logits``. Under mixed precision a float32 copy is exported.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import keras
import onnx
import tensorflow as tf

from .models import KerasClassifier, build_classifier


def float32_copy(model: KerasClassifier, meta: dict[str, Any]) -> KerasClassifier:
    """``model`` itself when it computes in float32, else a float32 clone with its weights."""
    if model.compute_dtype == "float32":
        return model
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        clone = build_classifier(
            meta["network"],
            meta["in_channels"],
            meta["num_classes"],
            meta["image_size"],
            meta["mean"],
            meta["std"],
        )
    finally:
        keras.mixed_precision.set_global_policy(policy)
    clone.set_weights(model.get_weights())
    return clone


def serving_function(model: KerasClassifier, channels: int, size: int) -> Any:
    """A tf.function ``input -> {"logits": ...}`` with a batch-free signature."""
    spec = tf.TensorSpec([None, channels, size, size], tf.float32, name="input")

    @tf.function(input_signature=[spec])
    def serve(images: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"logits": tf.identity(model(images, training=False), name="logits")}

    return serve


def save_saved_model(model: KerasClassifier, path: Path, meta: dict[str, Any]) -> Path:
    """A SavedModel (``serving_default``: input -> logits) plus its meta as an asset."""
    serve = serving_function(model, meta["in_channels"], meta["image_size"])
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tf.saved_model.save(model, str(tmp), signatures={"serving_default": serve})
    (tmp / "assets").mkdir(exist_ok=True)
    (tmp / "assets" / "model_meta.json").write_text(json.dumps(meta, indent=2, default=str))
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)
    return path


def export_onnx(model: KerasClassifier, path: Path, meta: dict[str, Any], opset: int = 17) -> Path:
    """model.onnx through tf2onnx, input ``input`` and output ``logits``; checked by
    onnx.checker."""
    import tf2onnx

    serve = serving_function(model, meta["in_channels"], meta["image_size"])
    proto, _ = tf2onnx.convert.from_function(
        serve, input_signature=serve.input_signature, opset=opset
    )
    graph = proto.graph
    _rename(proto, graph.output[0].name, "logits")
    _rename(proto, graph.input[0].name, "input")
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return path


def _rename(proto: onnx.ModelProto, old: str, new: str) -> None:
    """Rename a graph input/output and every use of it."""
    if old == new:
        return
    graph = proto.graph
    for value in [*graph.input, *graph.output]:
        if value.name == old:
            value.name = new
    for node in graph.node:
        node.input[:] = [new if n == old else n for n in node.input]
        node.output[:] = [new if n == old else n for n in node.output]
