"""What a SavedModel's graphs may do, read from ``saved_model.pb`` before anything is loaded.

Loading a SavedModel runs its graphs (restore functions at load, signatures when serving), and a
graph can read and write files, start Python callbacks or talk to the network with ordinary
TensorFlow ops. :func:`scan_saved_model` parses the ``SavedModel`` proto (it executes nothing)
and lists every node, in every meta graph and in every function of the graph library, whose op
is one of :data:`UNSAFE_OPS`, is not a TensorFlow op at all (a custom op library: native code),
or is a ``PrintV2`` that writes to a file.

Checkpoint ops (``SaveV2``, ``RestoreV2``, ...) are in every SavedModel: the saver functions
named by the meta graph's ``saver_def`` save and restore the variables with them. They are
allowed only in functions and nodes reached from the saver's save tensor and restore op and
from nothing else, so a signature that restores a checkpoint of its own choosing is refused.

``streamsense models register --allow-unsafe-ops`` accepts such a model anyway and records the
ops in its card (``allow_unsafe_ops``, ``unsafe_ops``); the loader refuses any other.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamsense.models.exceptions import ModelIntegrityError, UnsafeModelError

_FILES = "reads or writes files"
_NETWORK = "talks to the network"
_PYTHON = "runs a Python callback"
_OPAQUE = "runs code that cannot be inspected"

#: Op types refused anywhere in a graph, with what they do.
UNSAFE_OPS: dict[str, str] = {
    **dict.fromkeys(
        (
            "ReadFile",
            "WriteFile",
            "MatchingFiles",
            "ImmutableConst",
            "FileSystemSetConfiguration",
            "InitializeTableFromTextFile",
            "InitializeTableFromTextFileV2",
            "LoadAndRemapMatrix",
            "DecodeProtoV2",
            "EncodeProto",  # descriptor_source may name a file
            "WholeFileReader",
            "WholeFileReaderV2",
            "TextLineReader",
            "TextLineReaderV2",
            "TFRecordReader",
            "TFRecordReaderV2",
            "FixedLengthRecordReader",
            "FixedLengthRecordReaderV2",
            "LMDBReader",
            "IdentityReader",
            "IdentityReaderV2",
            "RecordInput",
            "TextLineDataset",
            "TFRecordDataset",
            "TFRecordDatasetV2",
            "FixedLengthRecordDataset",
            "FixedLengthRecordDatasetV2",
            "CSVDataset",
            "CSVDatasetV2",
            "ExperimentalCSVDataset",
            "SqlDataset",
            "ExperimentalSqlDataset",
            "LMDBDataset",
            "ExperimentalLMDBDataset",
            "MatchingFilesDataset",
            "ExperimentalMatchingFilesDataset",
            "CacheDataset",
            "CacheDatasetV2",
            "SnapshotDataset",
            "SnapshotDatasetV2",
            "SnapshotDatasetReader",
            "SnapshotNestedDatasetReader",
            "SnapshotChunkDataset",
            "ListSnapshotChunksDataset",
            "SaveDataset",
            "SaveDatasetV2",
            "LoadDataset",
            "DistributedSave",
            "DatasetToTFRecord",
            "ExperimentalDatasetToTFRecord",
            "CreateSummaryFileWriter",
            "CreateSummaryDbWriter",
            "WriteSummary",
            "WriteScalarSummary",
            "WriteAudioSummary",
            "WriteGraphSummary",
            "WriteHistogramSummary",
            "WriteImageSummary",
            "WriteRawProtoSummary",
            "DebugIdentity",
            "DebugIdentityV2",
            "DebugIdentityV3",
            "DebugNanCount",
            "DebugNumericSummary",
        ),
        _FILES,
    ),  # fmt: skip
    **dict.fromkeys(
        (
            "DataServiceDataset",
            "DataServiceDatasetV2",
            "DataServiceDatasetV3",
            "DataServiceDatasetV4",
            "RegisterDataset",
            "RegisterDatasetV2",
        ),
        _NETWORK,
    ),  # fmt: skip
    **dict.fromkeys(("PyFunc", "PyFuncStateless", "EagerPyFunc", "XlaHostCompute"), _PYTHON),
    # a graph decoded at run time, or a compiled module, escapes this inspection
    **dict.fromkeys(("DatasetFromGraph", "XlaCallModule"), _OPAQUE),
}
#: Checkpoint I/O: allowed only in the saver's own functions (see the module docstring).
CHECKPOINT_OPS: frozenset[str] = frozenset(
    {"Save", "SaveSlices", "SaveV2", "Restore", "RestoreSlice", "RestoreV2", "MergeV2Checkpoints"}
)
#: Where ``PrintV2`` may print (anything else is ``file://...``).
_PRINT_STREAMS = frozenset({"stderr", "stdout", "log(info)", "log(warning)", "log(error)"})


@dataclass(frozen=True, slots=True)
class UnsafeOp:
    op: str
    node: str
    where: str
    why: str

    def __str__(self) -> str:
        return f"{self.op} ({self.why}) at node {self.node!r} in {self.where}"


def _saved_model_proto(path: Path) -> Any:
    from google.protobuf import message, text_format  # type: ignore[import-untyped]
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    binary, text = path / "saved_model.pb", path / "saved_model.pbtxt"
    try:
        if binary.is_file():
            proto.ParseFromString(binary.read_bytes())
        elif text.is_file():
            text_format.Parse(text.read_text(encoding="utf-8"), proto)
        else:
            msg = f"{path} is not a SavedModel directory (no saved_model.pb)"
            raise ModelIntegrityError(msg)
    except (message.DecodeError, text_format.ParseError, UnicodeDecodeError) as exc:
        msg = f"{path}: unreadable saved_model.pb: {exc}"
        raise ModelIntegrityError(msg) from exc
    return proto


def _called(node: Any, functions: set[str]) -> Iterator[str]:
    """Library functions a node calls: as its op type, or through ``func`` attributes."""
    if node.op in functions:
        yield node.op
    for attr in node.attr.values():
        if attr.HasField("func"):
            yield attr.func.name
        yield from (f.name for f in attr.list.func)


def _closure(graph: Any, roots: Iterable[str]) -> set[str]:
    """Names of the graph nodes ``roots`` depend on (data and control inputs), roots included."""
    by_name = {n.name: n for n in graph.node}
    seen: set[str] = set()
    todo = [r for r in roots if r in by_name]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for inp in by_name[name].input:
            src = inp.lstrip("^").split(":")[0]
            if src in by_name:
                todo.append(src)
    return seen


def _reachable(start: Iterable[str], library: dict[str, Any]) -> set[str]:
    """Library functions reached from ``start`` through calls."""
    names = set(library)
    seen: set[str] = set()
    todo = [f for f in start if f in library]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for node in library[name].node_def:
            todo.extend(f for f in _called(node, names) if f not in seen)
    return seen


def _finding(node: Any, where: str, registered: Any, functions: set[str]) -> UnsafeOp | None:
    op = node.op
    if op in UNSAFE_OPS:
        return UnsafeOp(op, node.name, where, UNSAFE_OPS[op])
    if op == "PrintV2":
        stream = node.attr["output_stream"].s.decode(errors="replace") or "stderr"
        if stream not in _PRINT_STREAMS:
            return UnsafeOp(op, node.name, where, f"prints to {stream}")
    if op not in functions and registered(op) is None:
        return UnsafeOp(op, node.name, where, "is not a TensorFlow op (a custom op library)")
    return None


def scan_saved_model(path: Path) -> list[UnsafeOp]:
    """Every unsafe node of the SavedModel at ``path`` (empty when it is safe to load)."""
    from tensorflow.python.framework import op_def_registry

    proto = _saved_model_proto(path)
    found: list[UnsafeOp] = []
    for index, meta in enumerate(proto.meta_graphs):
        graph = meta.graph_def
        library = {f.signature.name: f for f in graph.library.function}
        names = set(library)
        saver = meta.saver_def
        saver_roots = [
            t.split(":")[0] for t in (saver.save_tensor_name, saver.restore_op_name) if t
        ]
        saver_nodes = _closure(graph, saver_roots)
        other_nodes = [n for n in graph.node if n.name not in saver_nodes]
        from_saver = _reachable(
            (f for n in graph.node if n.name in saver_nodes for f in _called(n, names)), library
        )
        objects = meta.object_graph_def
        from_objects = [*objects.concrete_functions]
        for obj in objects.nodes:
            for saveable in obj.saveable_objects.values():
                from_objects += [saveable.save_function, saveable.restore_function]
        from_others = _reachable(
            [*(f for n in other_nodes for f in _called(n, names)), *from_objects], library
        )
        exempt_functions = from_saver - from_others
        tag = f"meta graph {index}"
        for node in graph.node:
            if node.op in CHECKPOINT_OPS and node.name not in saver_nodes:
                found.append(UnsafeOp(node.op, node.name, tag, "checkpoint I/O outside the saver"))
            elif hit := _finding(node, tag, op_def_registry.get, names):
                found.append(hit)
        for name, fn in library.items():
            where = f"{tag}, function {name}"
            for node in fn.node_def:
                if node.op in CHECKPOINT_OPS and name not in exempt_functions:
                    found.append(
                        UnsafeOp(node.op, node.name, where, "checkpoint I/O outside the saver")
                    )
                elif hit := _finding(node, where, op_def_registry.get, names):
                    found.append(hit)
    return found


def check_saved_model(path: Path, *, allow_unsafe_ops: bool = False) -> list[UnsafeOp]:
    """:func:`scan_saved_model`; :class:`UnsafeModelError` naming the ops unless allowed."""
    found = scan_saved_model(path)
    if found and not allow_unsafe_ops:
        shown = "; ".join(str(f) for f in found[:5])
        more = f" and {len(found) - 5} more" if len(found) > 5 else ""
        msg = (
            f"{path}: refused, its graph {shown}{more}. Register it with --allow-unsafe-ops "
            "only if you trust where it came from"
        )
        raise UnsafeModelError(msg)
    return found
