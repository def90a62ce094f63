"""Nothing of a Lava run outlives it: no child process, no temporary folder.

Lava forks its actor processes (and a shared-memory manager) with
multiprocessing's ``fork`` start method. :func:`guarded_children` marks a run:

* every process forked while it is active (an ``os.register_at_fork`` hook, in
  the child) ignores SIGINT, so that Ctrl-C, which the terminal sends to the
  whole process group, ends the run through the parent alone instead of
  printing a traceback from every child;
* the same hook starts a thread in the child that watches its parent (Linux's
  PR_SET_PDEATHSIG would fire when the forking *thread* ends, and Lava forks
  from a worker thread that ends between runs): when the parent is gone, even
  killed by SIGKILL, the child removes the run's temporary folder and exits;
* when the run ends by an exception (KeyboardInterrupt, a failure, a timeout),
  every child process started during the run is terminated, then killed if it
  has not exited within a grace period, before the exception propagates.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import signal
import threading
import time
from typing import Iterator

WATCH_S = 0.2  # how often a child checks that its parent is alive
TERMINATE_GRACE_S = 1.0  # SIGTERM, then SIGKILL after this long

_active_workdirs: list[str] = []  # the temporary folders of runs in progress (innermost last)
_hook_installed = False


def _watch_parent(parent: int, workdir: str) -> None:
    while os.getppid() == parent:
        time.sleep(WATCH_S)
    shutil.rmtree(workdir, ignore_errors=True)
    # multiprocessing's own temporary folder (the manager's socket), made by the parent, inherited here
    tempdir = multiprocessing.process.current_process()._config.get("tempdir")
    if tempdir:
        shutil.rmtree(tempdir, ignore_errors=True)
    os._exit(1)


def _after_fork_in_child() -> None:
    if not _active_workdirs:
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(os.getppid(), _active_workdirs[-1]), daemon=True,
                     name="dsatgo-parent-watch").start()


def _install_hook() -> None:
    global _hook_installed
    if not _hook_installed:
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _hook_installed = True


def end_children(children: list[multiprocessing.Process], grace_s: float = TERMINATE_GRACE_S) -> None:
    """SIGTERM each live child, SIGKILL those still alive after ``grace_s``, and reap them all."""
    for child in children:
        with contextlib.suppress(ValueError, AssertionError, OSError):  # closed or already reaped
            if child.is_alive():
                child.terminate()
    deadline = time.monotonic() + grace_s
    join = multiprocessing.process.BaseProcess.join  # Lava's SystemProcess.join() takes no timeout
    for child in children:
        with contextlib.suppress(ValueError, AssertionError, OSError):
            join(child, max(deadline - time.monotonic(), 0.0))
            if child.is_alive():
                child.kill()
                join(child, grace_s)


@contextlib.contextmanager
def guarded_children(workdir: str) -> Iterator[None]:
    """A Lava run using ``workdir``: children forked inside are guarded (module doc), and terminated
    if the run ends by an exception."""
    _install_hook()
    before = {child.pid for child in multiprocessing.active_children()}
    _active_workdirs.append(str(workdir))
    try:
        yield
    except BaseException:
        end_children([c for c in multiprocessing.active_children() if c.pid not in before])
        raise
    finally:
        _active_workdirs.pop()
