"""The clean end of a torchrun test worker, after its results are written.

Gloo's worker threads can outlive `destroy_process_group` and abort the process while the interpreter
finalises ("terminate called without an active exception", SIGABRT, seen once in CI on the HSDP worker
after both ranks had written their results). Every rank waits for the others, destroys its process
groups while the interpreter is whole, flushes its streams and leaves without finalisation.
"""

from __future__ import annotations

import os
import sys

import torch.distributed as dist


def exit_cleanly() -> None:
    """Barrier, destroy the process groups, flush, `os._exit(0)` (call last in `__main__`)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
