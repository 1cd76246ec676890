"""One writer per run folder: RUN/train.lock names the process (pid and host) that trains the
run. It is created atomically (O_CREAT | O_EXCL: of two processes, one gets it) before anything
in the folder is written, and removed when training ends, also on an error or Ctrl-C. A lock
whose process is gone (kill -9, a power cut) is stale: the next writer takes it over and says
so. Only the writer takes it (rank 0 of a data-parallel run; never the `--ddp` launcher, whose
children write); readers (sample, eval, report, the app) never look at it."""

from __future__ import annotations

import json
import os
import socket
import time
import warnings
from pathlib import Path

from ganforge.errors import GanforgeError, brief

LOCK_FILE = "train.lock"
MAX_LOCK_BYTES = 4096  # a lock is one short JSON object; anything longer is not one
_HELD: set[str] = set()  # the lock files this process holds (its pid may have held one before)


class RunLock:
    """The lock of one run folder, held by this process until `release`."""

    def __init__(self, path: Path, text: str):
        self.path, self._text = path, text

    @classmethod
    def acquire(cls, run_dir: str | Path, flag: str) -> RunLock:
        """Take RUN/train.lock (the folder must exist); a GanforgeError naming `flag`, the run
        and the owner's pid when another live process holds it."""
        path = Path(run_dir) / LOCK_FILE
        text = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()})
        for _ in range(5):  # a stale lock taken over, or one that vanished, is tried again
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                owner = _owner(path)
                if owner is None:  # removed since: try again
                    continue
                if _alive(owner, path):
                    raise GanforgeError(_in_use(flag, run_dir, owner, path)) from None
                _take_over(path, owner, run_dir)
                continue
            except OSError as exc:
                raise GanforgeError(
                    f"{flag}: cannot lock run '{run_dir}' ({path}): {exc.strerror or exc}"
                ) from None
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
            _HELD.add(_key(path))
            return cls(path, text)
        raise GanforgeError(f"{flag}: cannot lock run '{run_dir}': '{path}' keeps changing")

    def release(self) -> None:
        """Remove the lock if it is still this process's (idempotent)."""
        _HELD.discard(_key(self.path))
        try:
            if self.path.read_text() == self._text:
                self.path.unlink()
        except OSError:  # already gone, or the folder with it
            pass


def check_unlocked(run_dir: str | Path, flag: str) -> None:
    """Refuse early (before any data is read) when a live process holds the run's lock; a
    stale lock is left for the writer to take over."""
    path = Path(run_dir) / LOCK_FILE
    owner = _owner(path)
    if owner is not None and _alive(owner, path):
        raise GanforgeError(_in_use(flag, run_dir, owner, path))


def _owner(path: Path) -> dict | None:
    """The lock's JSON object ({} when it names no process: being written, or garbage);
    None when there is no lock."""
    for attempt in range(10):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            return None
        except OSError:
            return {}
        try:
            text = os.read(fd, MAX_LOCK_BYTES + 1)
        except OSError:
            text = b""
        finally:
            os.close(fd)
        try:
            owner = json.loads(text)
        except ValueError:
            owner = None
        if isinstance(owner, dict):
            return owner
        time.sleep(0.02 * (attempt + 1))  # a lock is written just after it is created
    return {}


def _alive(owner: dict, path: Path) -> bool:
    """Whether the lock's process may still run: a lock that names no process, or one on
    another host, counts as alive (nothing here can tell)."""
    pid = owner.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or not 0 < pid < 2**31:
        return True
    if owner.get("host") != socket.gethostname():
        return True
    if pid == os.getpid():  # this process: a live lock only if this process took it
        return _key(path) in _HELD
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True


def _take_over(path: Path, owner: dict, run_dir: str | Path) -> None:
    """Remove a stale lock: moved aside first, and put back if it turns out to be another
    process's new lock (two processes taking over the same stale one)."""
    aside = path.with_name(f".{LOCK_FILE}.{os.getpid()}.stale")
    try:
        os.replace(path, aside)
    except FileNotFoundError:
        return
    if _owner(aside) != owner:
        try:
            os.link(aside, path)
        except OSError:
            pass
    else:
        warnings.warn(
            f"run '{run_dir}': taking over the lock of process {owner['pid']} on "
            f"{owner.get('host')}, which is no longer running (it stopped without cleaning up)",
            stacklevel=4,
        )
    aside.unlink(missing_ok=True)


def _in_use(flag: str, run_dir: str | Path, owner: dict, path: Path) -> str:
    if not owner.get("pid"):
        return (
            f"{flag}: run '{run_dir}' is locked by '{path}', which names no process; if no "
            "ganforge trains this run, delete that file"
        )
    return (
        f"{flag}: run '{run_dir}' is being trained by process {brief(owner['pid'])} on "
        f"{brief(owner.get('host'))} (lock '{path}'); wait for it to finish, or delete the lock "
        "if that process is not ganforge"
    )


def _key(path: Path) -> str:
    return os.path.abspath(path)
