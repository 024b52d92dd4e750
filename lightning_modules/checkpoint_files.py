"""Checkpoints on disk: what a complete one is, the newest one, atomic publishing and pruning.

A checkpoint is a file (`torch.save` zip archive: one process, `hardware.strategy=auto`) or a torch
distributed checkpoint (DCP) directory (FSDP2 on more than one rank: one shard file per rank, DCP's
`.metadata` index and Lightning's `meta.pt` with everything that is not a tensor). Both are named
`step{iteration:06d}.ckpt`; `last.ckpt` links to the newest (callbacks/checkpoint.py).

Atomic: a checkpoint is written under a temporary name (`<name>.partial`, which no `*.ckpt` pattern
matches) and renamed when every rank has finished, so a write interrupted by a crash or a job limit is
never taken for a checkpoint. A DCP directory is complete only with both index files. `ckpt_path=auto`
resumes from the newest complete checkpoint, skipping (and logging) incomplete ones.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import zipfile
from pathlib import Path

import torch

from callbacks.iteration import checkpoint_iteration
from forcing.checkpoints import is_sharded
from forcing.errors import ConfigError

log = logging.getLogger("forcing")

#: files of a DCP checkpoint directory: DCP's index (written last, after every shard) and Lightning's
#: non-tensor state (written by rank 0 after DCP finished)
SHARDED_MARKERS = (".metadata", "meta.pt")
#: suffix of a checkpoint being written
PARTIAL_SUFFIX = ".partial"
#: name of the checkpoint the run resumes from by default (a link to the newest)
LAST = "last.ckpt"
#: names of the periodic checkpoints (Lightning adds `-v1`... to a name that exists)
STEP_NAME = re.compile(r"^step(\d+)(?:-v\d+)?\.ckpt$")


def checkpoint_problem(path: Path) -> str | None:
    """Why `path` is not a complete checkpoint (None: it is one)."""
    if not path.exists():
        return "does not exist"
    if is_sharded(path):
        missing = [name for name in SHARDED_MARKERS if not (path / name).is_file()]
        return f"is an incomplete distributed checkpoint (no {', '.join(missing)})" if missing else None
    try:
        with zipfile.ZipFile(path) as archive:
            archive.namelist()
    except (zipfile.BadZipFile, OSError) as err:
        return f"is corrupt or truncated ({err})"
    return None


def checkpoints_in(folder: Path) -> list[Path]:
    """Every checkpoint name in `folder` (files, DCP directories and links; partial writes excluded)."""
    return sorted(folder.glob("*.ckpt")) if folder.is_dir() else []


def stored_iteration(path: Path) -> int:
    """The training iteration checkpoint `path` was written at: from a step checkpoint's name, else read
    (a DCP directory's `meta.pt`, a file memory-mapped)."""
    match = STEP_NAME.match(path.resolve().name)
    if match:
        return int(match.group(1))
    source = path / "meta.pt" if is_sharded(path) else path
    return checkpoint_iteration(torch.load(source, map_location="cpu", mmap=not is_sharded(path), weights_only=False))


def newest_complete(folder: Path) -> Path | None:
    """The complete checkpoint of `folder` with the highest iteration (`last.ckpt` on a tie), None when
    `folder` holds none; incomplete ones are skipped with a warning, and only incomplete ones is an error."""
    found = checkpoints_in(folder)
    complete = []
    for path in found:
        problem = checkpoint_problem(path)
        if problem is None:
            complete.append(path)
        else:
            log.warning("skipping checkpoint %s: it %s", path, problem)
    if found and not complete:
        raise ConfigError(
            f"no complete checkpoint in {folder}: {found[-1].name} {checkpoint_problem(found[-1])} "
            f"(start another run with name=<new name>)"
        )
    return max(complete, key=lambda p: (stored_iteration(p), p.name == LAST), default=None)


def partial_path(path: Path) -> Path:
    """The temporary name `path` is written under until it is complete."""
    return path.with_name(path.name + PARTIAL_SUFFIX)


def remove(path: Path) -> None:
    """Delete a checkpoint: a link (not its target), a DCP directory or a file; nothing if absent."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def publish(partial: Path, final: Path) -> None:
    """Give the complete checkpoint `partial` its name `final`, replacing what had it (a file is replaced
    atomically; a directory is removed first, so until the rename the older checkpoints are the newest)."""
    if final.is_symlink() or final.is_dir() or partial.is_dir():
        remove(final)
    os.replace(partial, final)


def prune(folder: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` step checkpoints of `folder` (-1: keep all) and any leftover
    partial write; never the one `last.ckpt` links to. Returns the deleted paths. Call only when no
    checkpoint is being written."""
    removed = sorted(folder.glob(f"*{PARTIAL_SUFFIX}"))
    last = folder / LAST
    kept = {last.resolve()} if last.is_symlink() else set()
    steps = sorted((p for p in folder.iterdir() if STEP_NAME.match(p.name)), key=lambda p: (stored_iteration(p), p.name))
    if keep >= 0:
        removed += [p for p in steps[: max(0, len(steps) - keep)] if p.resolve() not in kept]
    for path in removed:
        remove(path)
    return removed
