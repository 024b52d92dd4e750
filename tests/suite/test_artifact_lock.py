"""The artifact store makes an artifact once when several runs ask for it at the same time."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from lightning_modules.artifacts import DONE, ensure


def test_concurrent_requests_make_the_artifact_once(tmp_path: Path) -> None:
    made: list[str] = []
    started = threading.Event()

    def make(out: Path) -> None:
        started.set()
        time.sleep(0.5)  # long enough for the second request to arrive while this one works
        (out / "weights").write_text("w")
        made.append(threading.current_thread().name)

    folder = tmp_path / "teacher" / "weights-abc"
    results: dict[str, Path] = {}

    def request(name: str) -> None:
        results[name] = ensure(folder, make, "teacher")

    first = threading.Thread(target=request, args=("first",), name="first")
    first.start()
    assert started.wait(10)
    second = threading.Thread(target=request, args=("second",), name="second")
    second.start()
    first.join(30)
    second.join(30)
    assert made == ["first"], made
    assert results == {"first": folder, "second": folder}
    assert (folder / DONE).is_file() and (folder / "weights").read_text() == "w"


def test_a_failed_make_leaves_no_artifact_and_releases_the_lock(tmp_path: Path) -> None:
    folder = tmp_path / "pairs"

    def broken(out: Path) -> None:
        raise RuntimeError("teacher diverged")

    try:
        ensure(folder, broken, "pairs")
    except RuntimeError:
        pass
    assert not (folder / DONE).exists()
    # the next request is not blocked by the failed one and makes it
    assert ensure(folder, lambda out: (out / "x").write_text("ok"), "pairs") == folder
    assert (folder / DONE).is_file()
