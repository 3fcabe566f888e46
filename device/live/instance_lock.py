"""One daemon per kit: two would fight over the camera and the screen, and over the saved cases.

An advisory `flock` on a file in the runtime directory (`$RUNTIME_DIRECTORY` under systemd), else
the log folder; and a second one in the state folder, taken by the case recorder: two daemons
with different log folders and one state folder would otherwise sweep each other's saves in
flight. The kernel drops a lock when the process dies, so a power cut or SIGKILL never leaves a
stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from device import DeviceError

NAME = "mpox-screen.lock"


def lock_dir(log_dir: Path) -> Path:
    runtime = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    return Path(runtime) if runtime else log_dir


class InstanceBusy(DeviceError):
    """Another process holds the lock: a refusal, not a state to degrade into."""


class InstanceLock:
    def __init__(self, folder: Path, what: str = "is already running on this kit"):
        self.path = folder / NAME
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise DeviceError(f"cannot write the lock file to {folder}: {e.strerror}") from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            owner = os.pread(self.fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(self.fd)
            raise InstanceBusy(
                f"another mpox-screen {what} (pid {owner}, lock "
                f"{self.path}); stop it first (sudo systemctl stop mpox-screen)"
            ) from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing drops the flock
            self.fd = -1
