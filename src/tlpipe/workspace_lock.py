"""One pipeline run at a time per workspace.

Stage commands and ``tlpipe run`` hold an exclusive lock on a file next to ``params.yaml`` while
they work, taken without waiting: a second run started on the same workspace stops at once with
a message naming the holder, instead of writing the same outputs at the same time. The lock is
the operating system's (``flock`` through ``filelock``), so a killed holder releases it.

The holder sets ``TLPIPE_WORKSPACE_LOCK`` to the lock's path for its child processes, so the
stage commands that ``tlpipe run`` starts through DVC run under their parent's lock. Under
``torchrun`` rank 0 holds it for the whole launch (``tlpipe.distributed``).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from tlpipe.errors import WorkspaceBusyError

LOCK_FILE = ".tlpipe.lock"
HOLDER_FILE = ".tlpipe.lock.holder"
HELD_BY_PARENT = "TLPIPE_WORKSPACE_LOCK"


@contextlib.contextmanager
def hold_workspace(params_path: Path, command: str) -> Iterator[None]:
    """Hold the workspace of ``params_path`` for ``command``; raise ``WorkspaceBusyError`` if another run holds it."""
    from filelock import FileLock, Timeout

    folder = params_path.resolve().parent
    lock_path = folder / LOCK_FILE
    # Under torchrun every process runs the same command: rank 0 holds the lock for the group.
    if os.environ.get(HELD_BY_PARENT) == str(lock_path) or int(os.environ.get("RANK", "0")) > 0:
        yield
        return
    lock = FileLock(lock_path, blocking=False)
    try:
        lock.acquire()
    except Timeout:
        raise WorkspaceBusyError(
            f"{folder}: another tlpipe run is working in this workspace ({_describe_holder(folder)}). "
            "Wait for it to finish, or stop it; its lock is released when it ends."
        ) from None
    try:
        _write_holder(folder, command)
        with _environment(HELD_BY_PARENT, str(lock_path)):
            yield
    finally:
        (folder / HOLDER_FILE).unlink(missing_ok=True)
        lock.release()


def _write_holder(folder: Path, command: str) -> None:
    from tlpipe.artifacts import write_json

    write_json(
        folder / HOLDER_FILE,
        {
            "command": f"tlpipe {command}",
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        },
    )


def _describe_holder(folder: Path, wait_s: float = 2.0) -> str:
    # The holder writes this file just after it takes the lock: a run started at the same moment can
    # find the lock taken and the file not yet there, so it waits a little for it.
    deadline = time.monotonic() + wait_s
    while True:
        try:
            holder = json.loads((folder / HOLDER_FILE).read_text(encoding="utf-8"))
            return f"`{holder['command']}`, pid {holder['pid']} on {holder['host']}, started {holder['started']}"
        except (OSError, ValueError):
            if time.monotonic() > deadline:
                return f"holder unknown; the lock is {folder / LOCK_FILE}"
            time.sleep(0.05)


@contextlib.contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous
