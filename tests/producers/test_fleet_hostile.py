"""The fleet file loader attacked with hostile YAML: each file is one short line naming the
camera (or the line) and the field, exit 2, quickly. Before: a list or mapping used as a key
raised TypeError, deep nesting RecursionError after seconds, a NUL or non-UTF-8 byte PyYAML's
ReaderError (all three a traceback from ``produce cameras``), ``<<`` merge keys an obscure
"could not determine a constructor", a 5,000-character id or 60,000 unknown keys an error line
as long, and a 1 MiB file took ~8 s to refuse."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streamsense.services.cli.app import app
from streamsense.services.producers.exceptions import FleetConfigError
from streamsense.services.producers.fleet_config import MAX_DEPTH, MAX_FILE_BYTES, load_fleet
from streamsense.services.producers.settings import CameraProducerSettings

CAM = "cameras:\n  - id: a\n    source: rtsp://10.0.0.5/s\n"
#: nine levels of nine aliases: 9^9 = 387 million leaves if anything expanded them
LAUGHS = "l0: &l0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9)
)

#: the same inside one value, where the models see it
FLOW_LAUGHS = (
    "[&l0 [x, x, x, x, x, x, x, x, x], "
    + ", ".join(f"&l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9))
    + "]"
)


def _laughs_under(key: str) -> str:
    return f"{key}:\n" + "".join(f"  {line}\n" for line in LAUGHS.splitlines())


HOSTILE = [
    ("- a\n- b\n", "cameras.yaml: expected a mapping with `cameras:`"),
    ("42\n", "cameras.yaml: expected a mapping with `cameras:`"),
    ("", "cameras.yaml: expected a mapping with `cameras:`"),
    ("? [a, b]\n: 1\n" + CAM, "cameras.yaml: line 1: a key must be a plain value (text), not a"),
    ("cameras:\n  - {? {x: 1} : 2, id: a, source: 'rtsp://h/s'}\n",
     "cameras.yaml: line 2: a key must be a plain value"),
    ("[" * 50_000 + "]" * 50_000, f"cameras.yaml: line 1: nested more than {MAX_DEPTH} levels"),
    ("{a: " * 10_000 + "1" + "}" * 10_000, "cameras.yaml: line 1: nested more than"),
    ("cameras:\x00\n", "cameras.yaml: not valid YAML: byte 8: not text"),
    ("cameras:\n  - {id: \udcff, source: 'rtsp://h/s'}\n", "cameras.yaml: not valid YAML: byte 18"),
    ("d: &d {fps: 5}\ncameras:\n  - {<<: *d, id: a, source: 'rtsp://h/s'}\n",
     "cameras.yaml: line 3: `<<` merge keys are not supported: put shared values in `defaults:`"),
    (CAM + "---\n" + CAM, "cameras.yaml: not valid YAML: line 4, column 1: but found another"),
    ("!!python/object/apply:os.system ['true']\n", "cameras.yaml: not valid YAML: line 1"),
    (_laughs_under("defaults"), "cameras.yaml: defaults: l0: unknown field; l1: unknown field"),
    (LAUGHS + CAM, "cameras.yaml: unknown key(s) l0, l1, l2, l3, l4 and 4 more: expected"),
    (CAM + f"    fps: {FLOW_LAUGHS}\n", "camera 'a' (cameras[0]): fps: Input should be a valid"),
    (CAM + f"    reconnect: {{initial_s: {FLOW_LAUGHS}}}\n",
     "camera 'a' (cameras[0]): reconnect.initial_s: Input should be a valid number"),
    (f"defaults: {{width: {FLOW_LAUGHS}}}\n" + CAM, "cameras.yaml: defaults: width: Input"),
    ("cameras:\n  - &c {id: a, source: 'rtsp://h/s'}\n" + "  - *c\n" * 200,
     "cameras.yaml: camera 'a' (cameras[1]): id 'a' is also cameras[0]'s"),
    ("cameras:\n  - {id: 1, source: 'rtsp://h/s'}\n",
     "cameras.yaml: cameras[0]: id: Input should be a valid string (got 1)"),
    ("cameras:\n  - {id: [a], source: 'rtsp://h/s'}\n", "cameras[0]: id: Input should be a valid"),
    ("cameras:\n  - {id: null, source: 'rtsp://h/s'}\n", "cameras[0]: id: Input should be a valid"),
    (CAM + "    fps: 0\n", "camera 'a' (cameras[0]): fps: Input should be greater than 0 (got 0)"),
    (CAM + "    fps: -5\n", "camera 'a' (cameras[0]): fps: Input should be greater than 0"),
    (CAM + "    fps: .nan\n", "camera 'a' (cameras[0]): fps: Input should be less than or equal"),
    (CAM + "    fps: .inf\n", "camera 'a' (cameras[0]): fps: Input should be less than or equal"),
    (CAM + "    fps: 1000000000.0\n", "camera 'a' (cameras[0]): fps: Input should be less than"),
    (CAM + "    width: 99999999999999999999999999999\n",
     "camera 'a' (cameras[0]): width: Input should be less than or equal to 16384"),
    (CAM + "    password: hunter2\n", "camera 'a' (cameras[0]): password: unknown field"),
    ("cameras:\n  - {id: '" + "x" * 5000 + "', source: 'rtsp://h/s'}\n",
     "cameras.yaml: camera 'xxxxxxxxxxxxxxxx"),
    ("cameras:\n  - {id: a, source: 'rtsp://h/s', "
     + ", ".join(f"k{i}: 1" for i in range(5000)) + "}\n",
     "camera 'a' (cameras[0]): k0: unknown field; k1: unknown field"),
    ("# " + "x" * MAX_FILE_BYTES + "\n" + CAM, f"is over {MAX_FILE_BYTES // 1024} KiB"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), HOSTILE)
def test_a_hostile_fleet_file_is_one_short_line_at_once(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "cameras.yaml"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    start = time.monotonic()
    with pytest.raises(FleetConfigError) as err:
        load_fleet(path, CameraProducerSettings())
    assert time.monotonic() - start < 3
    line = str(err.value)
    assert message in line, line
    assert "\n" not in line and len(line) < 700, line


def test_the_largest_file_accepted_is_refused_in_time(tmp_path: Path) -> None:
    """A file just under the size limit, all of it mappings for the slow pure-Python parser."""
    body = "".join(f"  - {{id: c{i}, source: 'rtsp://h/{i}', fps: 5, width: 640}}\n"
                   for i in range(20_000))  # fmt: skip
    path = tmp_path / "cameras.yaml"
    path.write_text(("cameras:\n" + body)[: MAX_FILE_BYTES - 100].rsplit("\n", 1)[0] + "\n")
    start = time.monotonic()
    with pytest.raises(FleetConfigError, match="cameras, more than 256 in one process"):
        load_fleet(path, CameraProducerSettings())
    assert time.monotonic() - start < 10  # ~1 s alone on a 2-core host


@pytest.mark.parametrize(
    "text", ["? [a, b]\n: 1\n", "[" * 5000 + "]" * 5000, "cameras:\x00\n", "cameras: [\xff]\n"]
)
def test_the_cli_exits_2_without_a_traceback(tmp_path: Path, text: str) -> None:
    path = tmp_path / "cameras.yaml"
    path.write_bytes(text.encode("latin-1"))
    res = CliRunner().invoke(app, ["produce", "cameras", "--config", str(path), "--check"])
    assert res.exit_code == 2, res.output
    assert res.output.startswith("error: cameras.yaml: ")
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) <= 2
    assert isinstance(res.exception, SystemExit), res.exception  # not TypeError, RecursionError
