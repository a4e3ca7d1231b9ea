"""The SavedModel inspection (:mod:`streamsense.models.safety`) on real exported graphs: every
class of unsafe op is found wherever it hides (a signature, a nested function, a loop body, the
graph itself), the saver's own checkpoint ops are not, and the zoo's models are clean."""

from __future__ import annotations

from pathlib import Path

import pytest
import tensorflow as tf

from streamsense.models.exceptions import UnsafeModelError
from streamsense.models.runtime import SavedModelRunner
from streamsense.models.safety import check_saved_model, scan_saved_model
from streamsense.models.store import ModelStore


def _export(tmp_path: Path, body, name: str = "m") -> Path:  # noqa: ANN001 - a tf.function body
    class M(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.v = tf.Variable(1.0)  # a variable: the saver functions are in the file

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"y": body(x) * self.v}

    m = M()
    path = tmp_path / name
    tf.saved_model.save(m, str(path), signatures={"serving_default": m.serve})
    return path


def _ops(path: Path) -> set[str]:
    return {u.op for u in scan_saved_model(path)}


def test_a_plain_model_with_variables_is_clean(tmp_path: Path) -> None:
    path = _export(tmp_path, lambda x: tf.nn.relu(x) + 1.0)
    assert scan_saved_model(path) == []  # SaveV2/RestoreV2 of the saver functions are allowed
    assert SavedModelRunner(path).run(x=tf.constant([1.0]).numpy())["y"].tolist() == [2.0]


@pytest.mark.parametrize(
    ("body", "op"),
    [
        (
            lambda x: x * tf.cast(tf.strings.length(tf.io.read_file("/etc/hostname")), tf.float32),
            "ReadFile",
        ),
        (
            lambda x: x + tf.cast(tf.size(tf.io.matching_files("/etc/*")), tf.float32),
            "MatchingFiles",
        ),
        (lambda x: tf.numpy_function(lambda a: a, [x], tf.float32), "PyFunc"),
        (lambda x: tf.py_function(lambda a: a, [x], tf.float32), "EagerPyFunc"),
    ],  # fmt: skip
    ids=["ReadFile", "MatchingFiles", "numpy_function", "py_function"],
)
def test_each_class_of_unsafe_op_is_found(tmp_path: Path, body, op: str) -> None:  # noqa: ANN001
    path = _export(tmp_path, body)
    assert op in _ops(path)
    with pytest.raises(UnsafeModelError, match=op):
        SavedModelRunner(path)


def test_ops_in_nested_functions_and_loop_bodies_are_found(tmp_path: Path) -> None:
    marker = tmp_path / "written"

    @tf.function
    def inner(x: tf.Tensor) -> tf.Tensor:
        tf.io.write_file(str(marker), tf.strings.as_string(x[0]))
        return x

    def body(x: tf.Tensor) -> tf.Tensor:
        return tf.while_loop(lambda i, y: i < 2, lambda i, y: (i + 1, inner(y)), (0, x))[1]

    path = _export(tmp_path, body)
    found = scan_saved_model(path)
    assert "WriteFile" in {u.op for u in found}
    assert all("function" in u.where for u in found if u.op == "WriteFile")
    with pytest.raises(UnsafeModelError, match="WriteFile"):
        SavedModelRunner(path)
    assert not marker.exists(), "refused before anything ran"


def test_checkpoint_io_outside_the_saver_is_refused(tmp_path: Path) -> None:
    def body(x: tf.Tensor) -> tf.Tensor:
        (restored,) = tf.raw_ops.RestoreV2(
            prefix="/tmp/elsewhere", tensor_names=["v"], shape_and_slices=[""], dtypes=[tf.float32]
        )
        return x + restored

    found = scan_saved_model(_export(tmp_path, body))
    assert [(u.op, u.why) for u in found] == [("RestoreV2", "checkpoint I/O outside the saver")]


def test_print_to_a_file_is_refused_print_to_stderr_is_not(tmp_path: Path) -> None:
    def to_stderr(x: tf.Tensor) -> tf.Tensor:
        tf.print(x)
        return x

    def to_file(x: tf.Tensor) -> tf.Tensor:
        tf.print(x, output_stream=f"file://{tmp_path / 'log.txt'}")
        return x

    assert scan_saved_model(_export(tmp_path, to_stderr, "stderr")) == []
    (found,) = scan_saved_model(_export(tmp_path, to_file, "file"))
    assert found.op == "PrintV2" and "file://" in found.why


def test_allowing_unsafe_ops_returns_them_instead_of_raising(tmp_path: Path) -> None:
    path = _export(tmp_path, lambda x: tf.numpy_function(lambda a: a, [x], tf.float32))
    found = check_saved_model(path, allow_unsafe_ops=True)
    assert [u.op for u in found] == ["PyFunc"]


def test_not_a_saved_model_is_an_integrity_error(tmp_path: Path) -> None:
    (tmp_path / "saved_model.pb").write_bytes(b"\x00garbage\xff" * 10)
    with pytest.raises(Exception, match="unreadable saved_model.pb"):
        scan_saved_model(tmp_path)


def test_every_zoo_model_still_loads(zoo_store: ModelStore) -> None:
    """CenterNet (SavedModel), the sentiment Keras model and the TFLite ones."""
    for name in zoo_store.list():
        card = zoo_store.card(name, zoo_store.champion(name) or "")
        if card.format == "saved_model":
            assert scan_saved_model(zoo_store.artifact_path(name, card.version)) == []
        adapter = zoo_store.load(name)
        adapter.predict_batch([adapter.sample_input()])
        assert not card.allow_unsafe_ops
