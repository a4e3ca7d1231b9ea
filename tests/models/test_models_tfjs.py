"""The TF.js graph-model converter on small hand-written graph models.

Each graph uses the fused ops the TF.js converter emits; after conversion the result must
equal the same computation written with plain TensorFlow ops on the dequantized weights.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

from streamsense.models.exceptions import FetchError
from streamsense.models.zoo.tfjs_convert import import_pruned, load_graph_def, read_weights

RNG = np.random.default_rng(3)


def _s(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _ints(*values: int) -> dict[str, Any]:
    return {"list": {"i": [str(v) for v in values]}}


def _const(name: str, dtype: str = "DT_FLOAT") -> dict[str, Any]:
    return {
        "name": name,
        "op": "Const",
        "attr": {"dtype": {"type": dtype}, "value": {"tensor": {"dtype": dtype}}},
    }


def _fused(name: str, op: str, inputs: list[str], fused: list[str], **extra: Any) -> dict:
    attr = {
        "T": {"type": "DT_FLOAT"},
        "fused_ops": {"list": {"s": [_s(f) for f in fused]}},
        "num_args": {"i": str(len(inputs) - 2)},
        "epsilon": {"f": 0},
        "_grappler_hint": {"b": True},
        **extra,
    }
    return {"name": name, "op": op, "input": inputs, "attr": attr, "device": "/device:CPU:0"}


CONV = {
    "strides": _ints(1, 1, 1, 1),
    "padding": {"s": _s("SAME")},
    "data_format": {"s": _s("NHWC")},
    "dilations": _ints(1, 1, 1, 1),
    "explicit_paddings": {"list": {}},
}


def _write_model(tmp: Path, nodes: list[dict], weights: list[tuple[str, np.ndarray, str]]) -> Path:
    """model.json + two weight shards; weights are (name, value, quantization)."""
    manifest, blob = [], b""
    for name, value, quant in weights:
        spec: dict[str, Any] = {
            "name": name,
            "shape": list(value.shape),
            "dtype": str(value.dtype),
        }
        if quant == "float16":
            spec["quantization"] = {"dtype": "float16", "original_dtype": "float32"}
            blob += value.astype(np.float16).tobytes()
        elif quant == "uint8":
            low, scale = float(value.min()), float(np.ptp(value) / 255 or 1.0)
            spec["quantization"] = {"dtype": "uint8", "min": low, "scale": scale}
            blob += np.round((value - low) / scale).astype(np.uint8).tobytes()
        else:
            blob += value.tobytes()
        manifest.append(spec)
    half = len(blob) // 2
    (tmp / "w1.bin").write_bytes(blob[:half])
    (tmp / "w2.bin").write_bytes(blob[half:])
    model = {
        "format": "graph-model",
        "modelTopology": {"node": nodes, "library": {}, "versions": {}},
        "weightsManifest": [{"paths": ["w1.bin", "w2.bin"], "weights": manifest}],
    }
    path = tmp / "model.json"
    path.write_text(json.dumps(model))
    return path


def _placeholder(shape: list[int]) -> dict[str, Any]:
    dims = [{"size": str(d)} for d in shape]
    return {
        "name": "x",
        "op": "Placeholder",
        "attr": {"dtype": {"type": "DT_FLOAT"}, "shape": {"shape": {"dim": dims}}},
    }


def test_fused_conv_depthwise_matmul_split_back_into_plain_ops(tmp_path: Path) -> None:
    w = RNG.normal(size=(3, 3, 2, 4)).astype(np.float32)
    b = RNG.normal(size=4).astype(np.float32)
    alpha = np.full(4, 0.25, np.float32)
    dw = RNG.normal(size=(3, 3, 4, 1)).astype(np.float32)
    db = RNG.normal(size=4).astype(np.float32)
    mw = RNG.normal(size=(4, 5)).astype(np.float32)
    mb = RNG.normal(size=5).astype(np.float32)
    axes = np.array([1, 2], np.int32)
    nodes = [
        _placeholder([1, 6, 6, 2]),
        *(_const(n) for n in ("w", "b", "alpha", "dw", "db", "mw", "mb")),
        _const("axes", "DT_INT32"),
        _fused("conv", "_FusedConv2D", ["x", "w", "b", "alpha"], ["BiasAdd", "Prelu"], **CONV),
        _fused(
            "depthwise",
            "FusedDepthwiseConv2dNative",
            ["conv", "dw", "db"],
            ["BiasAdd", "Relu6"],
            **CONV,
        ),
        {
            "name": "pool",
            "op": "Mean",
            "input": ["depthwise", "axes"],
            "attr": {"T": {"type": "DT_FLOAT"}, "Tidx": {"type": "DT_INT32"}},
        },
        _fused(
            "dense",
            "_FusedMatMul",
            ["pool", "mw", "mb"],
            ["BiasAdd", "Relu"],
            transpose_a={"b": False},
            transpose_b={"b": False},
        ),
    ]
    weights = [
        ("w", w, "float16"),
        ("b", b, "float16"),
        ("alpha", alpha, ""),
        ("dw", dw, "uint8"),
        ("db", db, ""),
        ("mw", mw, "float16"),
        ("mb", mb, ""),
        ("axes", axes, ""),
    ]
    path = _write_model(tmp_path, nodes, weights)
    values = read_weights(json.loads(path.read_text())["weightsManifest"], tmp_path)
    assert values["w"].dtype == np.float32
    assert np.allclose(values["w"], w, atol=1e-2)  # float16 storage
    assert np.allclose(values["dw"], dw, atol=np.ptp(dw) / 255)  # uint8 affine storage

    graph_def = load_graph_def(path, {"x": [-1, 6, 6, 2]})
    ops = {n.op for n in graph_def.node}
    assert not ops & {"_FusedConv2D", "FusedDepthwiseConv2dNative", "_FusedMatMul"}
    fn = import_pruned(graph_def, ["x:0"], ["dense:0"])

    x = RNG.normal(size=(3, 6, 6, 2)).astype(np.float32)  # batch 3: polymorphic batch
    v = values
    y = tf.nn.conv2d(x, v["w"], 1, "SAME") + v["b"]
    y = tf.nn.relu(y) - v["alpha"] * tf.nn.relu(-y)
    y = tf.nn.relu6(tf.nn.depthwise_conv2d(y, v["dw"], [1, 1, 1, 1], "SAME") + v["db"])
    y = tf.nn.relu(tf.reduce_mean(y, axis=[1, 2]) @ v["mw"] + v["mb"])
    (got,) = fn(tf.constant(x))
    assert got.shape == (3, 5)
    assert np.allclose(got.numpy(), y.numpy(), atol=1e-4)


def test_unsupported_fused_op_is_reported(tmp_path: Path) -> None:
    w = np.ones((1, 1, 2, 2), np.float32)
    nodes = [
        _placeholder([1, 2, 2, 2]),
        _const("w"),
        _fused("conv", "_FusedConv2D", ["x", "w"], ["FusedBatchNorm"], **CONV),
    ]
    path = _write_model(tmp_path, nodes, [("w", w, "")])
    with pytest.raises(FetchError, match="fused op 'FusedBatchNorm' is not supported"):
        load_graph_def(path)


def test_weight_files_must_match_the_manifest(tmp_path: Path) -> None:
    w = np.ones((2, 2), np.float32)
    path = _write_model(tmp_path, [_placeholder([1, 2]), _const("w")], [("w", w, "")])
    (tmp_path / "w2.bin").write_bytes((tmp_path / "w2.bin").read_bytes() + b"\0\0\0\0")
    with pytest.raises(FetchError, match="unread bytes"):
        load_graph_def(path)


def test_not_a_graph_model(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    path.write_text(json.dumps({"format": "layers-model"}))
    with pytest.raises(FetchError, match="not a TF.js graph model"):
        load_graph_def(path)
