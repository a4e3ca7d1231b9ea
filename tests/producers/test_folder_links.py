"""Image folders and globs do not follow symbolic links. Before, a link in a watched folder to
an image elsewhere was published as a frame, a link to a FIFO or a device was dropped in
silence, and a ``**`` glob followed linked folders: out of the folder, round a loop (the same
image listed dozens of times), and with two links to ``.`` through 2^40 paths (a hang)."""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from streamsense.services.producers.exceptions import SourceError
from streamsense.services.producers.sources import ImageFolderSource, open_source


def _refused(reason: str) -> float:
    value = REGISTRY.get_sample_value("streamsense_camera_files_refused_total", {"reason": reason})
    return value or 0.0


@pytest.fixture
def world(tmp_path: Path, image_folder: Path) -> tuple[Path, Path]:
    """``watched/``: two real images and every kind of hostile link; ``outside/``: an image
    the folder's writer must not be able to publish."""
    watched, outside = tmp_path / "watched", tmp_path / "outside"
    (watched / "sub").mkdir(parents=True)
    outside.mkdir()
    shutil.copy(image_folder / "frame-00.jpg", watched / "a.jpg")
    shutil.copy(image_folder / "frame-01.png", watched / "sub" / "b.png")
    shutil.copy(image_folder / "frame-02.jpg", outside / "private.jpg")
    os.mkfifo(outside / "pipe")
    (watched / "leak.jpg").symlink_to(outside / "private.jpg")
    (watched / "pipe.jpg").symlink_to(outside / "pipe")
    (watched / "zero.jpg").symlink_to("/dev/zero")
    (watched / "self.jpg").symlink_to(watched / "self.jpg")  # ELOOP
    (watched / "inside.jpg").symlink_to(watched / "a.jpg")  # even one staying inside
    (watched / "out").symlink_to(outside)  # a folder link leaving the folder
    (watched / "sub" / "up").symlink_to(watched)  # a loop
    (watched / "sub" / "here").symlink_to(".")  # two links to "." : 2^40 paths for glob
    (watched / "sub" / "there").symlink_to(".")
    os.mkfifo(watched / "fifo.jpg")
    return watched, outside


def _read_all(source: ImageFolderSource) -> int:
    source.open()
    n = 0
    while source.read() is not None:
        n += 1
    source.close()
    return n


def test_a_folder_reads_no_link_and_names_each_one_once(
    world: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    watched, _ = world
    caplog.set_level(logging.WARNING, logger="streamsense")
    before = _refused("symlink"), _refused("not_regular")
    source = open_source(str(watched))
    assert isinstance(source, ImageFolderSource)
    assert source.paths == [watched / "a.jpg"]
    assert source.refused == 6
    assert (_refused("symlink"), _refused("not_regular")) == (before[0] + 5, before[1] + 1)
    warned = sorted(r.getMessage() for r in caplog.records)
    links = ("inside.jpg", "leak.jpg", "pipe.jpg", "self.jpg", "zero.jpg")
    assert warned == sorted(
        [f"skipping {watched / 'fifo.jpg'}: not a regular file (a FIFO, a device or a socket)"]
        + [f"skipping {watched / n}: a symbolic link (links in image folders are not followed)"
           for n in links]
    )  # fmt: skip
    assert _read_all(source) == 1


def test_a_recursive_glob_never_enters_a_linked_folder_and_ends_at_once(
    world: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    watched, _ = world
    caplog.set_level(logging.WARNING, logger="streamsense")
    result: list[ImageFolderSource] = []
    t = threading.Thread(target=lambda: result.append(open_source(f"{watched}/**/*.*")),
                         daemon=True)  # fmt: skip
    start = time.monotonic()
    t.start()
    t.join(20)
    assert not t.is_alive(), "the glob walked the link loops"
    assert time.monotonic() - start < 5
    (source,) = result
    assert source.paths == [watched / "a.jpg", watched / "sub" / "b.png"]
    warned = " ".join(r.getMessage() for r in caplog.records)
    for folder_link in ("out", "sub/up", "sub/here", "sub/there"):
        assert f"skipping {watched / folder_link}: a linked folder (not followed)" in warned
    assert "private" not in warned
    assert warned.count(f"skipping {watched / 'leak.jpg'}:") == 1
    assert _read_all(source) == 2


def test_a_glob_through_a_linked_folder_reads_nothing_behind_it(world: tuple[Path, Path]) -> None:
    watched, _ = world
    with pytest.raises(SourceError, match=r"no images in glob .*link\(s\) or special file"):
        open_source(f"{watched}/o*/*.jpg")  # (a folder written out in full is the operator's)
    with pytest.raises(SourceError, match="no images in glob"):
        open_source(f"{watched}/*/private.jpg")


def test_a_file_swapped_for_a_link_after_the_listing_is_refused_when_read(
    world: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    watched, outside = world
    source = open_source(f"{watched}/sub/*.png")
    assert isinstance(source, ImageFolderSource)
    (watched / "sub" / "b.png").unlink()
    (watched / "sub" / "b.png").symlink_to(outside / "private.jpg")
    caplog.set_level(logging.WARNING, logger="streamsense")
    with pytest.raises(SourceError, match="none of the 1 files"):
        source.open()
    assert "a symbolic link (links in image folders are not followed)" in caplog.text


def test_an_image_or_folder_named_as_the_source_may_itself_be_a_link(
    world: tuple[Path, Path], tmp_path: Path
) -> None:
    """The operator named it: that is not a link planted in a watched folder."""
    watched, outside = world
    (tmp_path / "latest.jpg").symlink_to(outside / "private.jpg")
    (tmp_path / "cams").symlink_to(watched)
    one = open_source(str(tmp_path / "latest.jpg"))
    assert isinstance(one, ImageFolderSource) and _read_all(one) == 1
    folder = open_source(str(tmp_path / "cams"))
    assert isinstance(folder, ImageFolderSource)
    assert folder.paths == [tmp_path / "cams" / "a.jpg"] and _read_all(folder) == 1
