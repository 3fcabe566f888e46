"""A capture thread that keeps only the newest frame.

A camera keeps producing while the model runs; queueing those frames would put the screen seconds
behind the lens. The thread overwrites one slot and counts what it overwrote (dropped frames). A
recording (not live) instead waits until its frame was taken, so a replay skips nothing.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from device.live.sources import Frame, Source


@dataclass
class Slot:
    frame: Frame | None = None
    seq: int = 0  # frames captured so far
    dropped: int = 0
    ended: bool = False
    error: Exception | None = None


class LatestFrame:
    def __init__(self, source: Source):
        self.source = source
        self.slot = Slot()
        self.cond = threading.Condition()
        self.stopping = False
        self.thread = threading.Thread(target=self._run, name="capture", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopping:
            try:
                frame = self.source.read()
            except Exception as e:  # handed to the frame loop, which decides what it means
                self._finish(error=e)
                return
            if frame is None:
                self._finish()
                return
            with self.cond:
                while not self.source.live and self.slot.frame is not None and not self.stopping:
                    self.cond.wait()
                if self.slot.frame is not None:
                    self.slot.dropped += 1
                self.slot.frame, self.slot.seq = frame, self.slot.seq + 1
                self.cond.notify_all()

    def _finish(self, error: Exception | None = None) -> None:
        with self.cond:
            self.slot.ended, self.slot.error = True, error
            self.cond.notify_all()

    def get(self, timeout: float) -> Frame | None:
        """The newest frame not yet taken; None on timeout or when the source has ended/failed
        (then `ended`/`error` say which)."""
        with self.cond:
            ok = self.cond.wait_for(lambda: self.slot.frame is not None or self.slot.ended, timeout)
            if not ok or self.slot.frame is None:
                return None
            frame, self.slot.frame = self.slot.frame, None
            self.cond.notify_all()
            return frame

    @property
    def ended(self) -> bool:
        return self.slot.ended and self.slot.frame is None

    @property
    def error(self) -> Exception | None:
        return self.slot.error

    @property
    def dropped(self) -> int:
        return self.slot.dropped

    def close(self, join_timeout: float = 2.0) -> bool:
        """Stop the thread and release the source; False if the thread is stuck in read()."""
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        self.thread.join(join_timeout)
        stuck = self.thread.is_alive()
        if not stuck:
            self.source.close()
        return not stuck
