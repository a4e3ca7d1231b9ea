"""A small converter from a TF.js graph model (``model.json`` + ``.bin`` shards) to TensorFlow.

TF.js stores a frozen GraphDef as JSON (``modelTopology``) whose ``Const`` nodes have no
values; the values are concatenated in the ``.bin`` shards in ``weightsManifest`` order,
some quantized (float16, or uint8/uint16 with ``min``/``scale``). The TF.js converter also
fuses ops into ``_FusedConv2D``, ``FusedDepthwiseConv2dNative`` and ``_FusedMatMul`` (with
``fused_ops`` such as BiasAdd, Relu, Relu6, Prelu); this module splits them back into plain
TensorFlow ops so the graph imports into stock TensorFlow. It replaces the ``tensorflowjs``
package (and its jax/flax dependencies) for the graph models the zoo needs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from google.protobuf import json_format  # type: ignore[import-untyped]

from streamsense.models.exceptions import FetchError

log = logging.getLogger(__name__)

_BASE_OP = {
    "_FusedConv2D": "Conv2D",
    "FusedDepthwiseConv2dNative": "DepthwiseConv2dNative",
    "_FusedMatMul": "MatMul",
}
# Attributes each plain op accepts (a subset of the fused op's attributes).
_BASE_ATTRS = {
    "Conv2D": {
        "T",
        "strides",
        "use_cudnn_on_gpu",
        "padding",
        "explicit_paddings",
        "data_format",
        "dilations",
    },
    "DepthwiseConv2dNative": {
        "T",
        "strides",
        "padding",
        "explicit_paddings",
        "data_format",
        "dilations",
    },
    "MatMul": {"T", "transpose_a", "transpose_b"},
}
_UNARY = {"Relu", "Relu6", "Elu", "Selu", "Tanh", "Sigmoid"}
_QUANT_DTYPES = {"uint8": np.uint8, "uint16": np.uint16, "float16": np.float16}


def read_weights(manifest: Sequence[dict[str, Any]], base_dir: Path) -> dict[str, np.ndarray]:
    """Values of every weight in ``weightsManifest``, dequantized to their original dtype."""
    values: dict[str, np.ndarray] = {}
    for group in manifest:
        buffer = b"".join((base_dir / p).read_bytes() for p in group["paths"])
        offset = 0
        for spec in group["weights"]:
            shape = [int(d) for d in spec["shape"]]
            count = int(np.prod(shape)) if shape else 1
            dtype = np.dtype(spec["dtype"]) if spec["dtype"] != "bool" else np.dtype(np.bool_)
            if spec["dtype"] == "string":
                msg = f"weight {spec['name']!r}: string weights are not supported"
                raise FetchError(msg)
            quant = spec.get("quantization")
            stored = np.dtype(_QUANT_DTYPES[quant["dtype"]]) if quant else dtype
            end = offset + count * stored.itemsize
            if end > len(buffer):
                msg = f"weight {spec['name']!r} runs past the end of the weight files"
                raise FetchError(msg)
            raw = np.frombuffer(buffer, dtype=stored, count=count, offset=offset)
            offset = end
            if quant and quant["dtype"] != "float16":
                raw = raw.astype(np.float32) * float(quant["scale"]) + float(quant["min"])
            values[spec["name"]] = raw.astype(dtype).reshape(shape)
        if offset != len(buffer):
            msg = f"weight files of {group['paths']} hold {len(buffer) - offset} unread bytes"
            raise FetchError(msg)
    return values


def _node(name: str, op: str, inputs: Sequence[str], dtype_attr: Any | None) -> Any:
    node = tf.compat.v1.NodeDef(name=name, op=op, input=list(inputs))
    if dtype_attr is not None:
        node.attr["T"].CopyFrom(dtype_attr)
    return node


def _split_fused(node: Any) -> list[Any]:
    """Plain ops equivalent to one fused node; the last keeps the fused node's name."""
    base_op = _BASE_OP[node.op]
    fused = [s.decode() for s in node.attr["fused_ops"].list.s]
    data_inputs = [i for i in node.input if not i.startswith("^")]
    controls = [i for i in node.input if i.startswith("^")]
    args = data_inputs[2:]
    t_attr = node.attr["T"]
    base = _node(f"{node.name}/_base", base_op, [*data_inputs[:2], *controls], t_attr)
    for key, value in node.attr.items():
        if key in _BASE_ATTRS[base_op]:
            base.attr[key].CopyFrom(value)
    out = [base]
    arg_i = 0
    for step, op in enumerate(fused):
        prev = out[-1].name
        name = f"{node.name}/_{step}_{op.lower()}"
        if op == "BiasAdd":
            new = _node(name, "BiasAdd", [prev, args[arg_i]], t_attr)
            if "data_format" in node.attr:
                new.attr["data_format"].CopyFrom(node.attr["data_format"])
            arg_i += 1
            out.append(new)
        elif op in _UNARY:
            out.append(_node(name, op, [prev], t_attr))
        elif op == "LeakyRelu":
            new = _node(name, "LeakyRelu", [prev], t_attr)
            new.attr["alpha"].f = node.attr["leakyrelu_alpha"].f
            out.append(new)
        elif op == "Prelu":
            # prelu(x) = relu(x) - alpha * relu(-x)
            alpha = args[arg_i]
            arg_i += 1
            out += [
                _node(f"{name}/pos", "Relu", [prev], t_attr),
                _node(f"{name}/neg_x", "Neg", [prev], t_attr),
                _node(f"{name}/neg", "Relu", [f"{name}/neg_x"], t_attr),
                _node(f"{name}/scaled", "Mul", [alpha, f"{name}/neg"], t_attr),
                _node(name, "Sub", [f"{name}/pos", f"{name}/scaled"], t_attr),
            ]
        else:
            msg = f"node {node.name!r}: fused op {op!r} is not supported by the converter"
            raise FetchError(msg)
    if arg_i != len(args):
        msg = f"node {node.name!r}: {len(args)} fused arguments, {arg_i} used by {fused}"
        raise FetchError(msg)
    out[-1].name = node.name
    return out


def load_graph_def(model_json: Path, input_shapes: dict[str, Sequence[int]] | None = None) -> Any:
    """The TF.js graph model at ``model_json`` as a plain, importable ``GraphDef``.

    ``input_shapes`` overrides placeholder shapes (use -1 for a polymorphic batch dimension).
    """
    spec = json.loads(model_json.read_text(encoding="utf-8"))
    if spec.get("format") != "graph-model":
        msg = f"{model_json}: not a TF.js graph model (format={spec.get('format')!r})"
        raise FetchError(msg)
    source = json_format.ParseDict(
        spec["modelTopology"], tf.compat.v1.GraphDef(), ignore_unknown_fields=True
    )
    weights = read_weights(spec["weightsManifest"], model_json.parent)
    shapes = dict(input_shapes or {})
    graph_def = tf.compat.v1.GraphDef()
    graph_def.versions.CopyFrom(source.versions)
    graph_def.library.CopyFrom(source.library)
    for node in source.node:
        node.ClearField("device")
        if node.op == "Const":
            if node.name not in weights:
                msg = f"constant {node.name!r} has no value in the weight files"
                raise FetchError(msg)
            value = weights.pop(node.name)
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value))
        elif node.op == "Placeholder" and node.name in shapes:
            dims = shapes.pop(node.name)
            node.attr["shape"].shape.CopyFrom(tf.TensorShape(_dims(dims)).as_proto())
        if node.op in _BASE_OP:
            graph_def.node.extend(_split_fused(node))
        else:
            graph_def.node.append(node)
    if shapes:
        msg = f"no placeholders named {sorted(shapes)}"
        raise FetchError(msg)
    if weights:
        log.warning("%d weights have no constant node: %s", len(weights), sorted(weights)[:5])
    return graph_def


def _dims(dims: Sequence[int]) -> list[int | None]:
    return [None if d < 0 else int(d) for d in dims]


def import_pruned(graph_def: Any, inputs: Sequence[str], outputs: Sequence[str]) -> Any:
    """A concrete function computing ``outputs`` from ``inputs`` (tensor names, ``op:0``)."""

    def _import() -> None:
        tf.compat.v1.import_graph_def(graph_def, name="")

    wrapped = tf.compat.v1.wrap_function(_import, [])
    graph = wrapped.graph
    return wrapped.prune(
        feeds=[graph.as_graph_element(name) for name in inputs],
        fetches=[graph.as_graph_element(name) for name in outputs],
    )
