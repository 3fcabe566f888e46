"""Saving a case from the live screen: the space key, a push button, or every N seconds.

The daemon asks `due()` after showing a frame and calls `save()` with what it showed. A store
that cannot be opened or written (read-only card, full disk) never stops the screening: the
screen says so instead. The button goes through gpiozero, the Raspberry Pi's standard GPIO
library (tests drive it with gpiozero's mock pin factory).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone

import cv2
import numpy as np

from device import DeviceError
from device.cases.store import Case, CaseStore
from device.config import CasesConfig, state_dir
from device.core.bundle import Bundle, ModelFile
from device.core.skin_tone import ita
from device.core.verdict import Status, Verdict
from device.i18n import _
from device.live.instance_lock import InstanceBusy, InstanceLock

log = logging.getLogger(__name__)
JPEG_QUALITY = 92


def open_button(pin: int, pressed: Callable[[], None]):
    """A gpiozero Button on BCM `pin` (pressed = pulled to ground), or None for pin 0."""
    if not pin:
        return None
    try:
        from gpiozero import Button
        from gpiozero.exc import GPIOZeroError
    except ImportError:
        raise DeviceError("button_pin needs gpiozero: sudo apt install python3-gpiozero") from None
    try:
        button = Button(pin, bounce_time=0.05)
    except ImportError as e:  # gpiozero is there, no pin library for this machine's GPIO
        raise DeviceError(
            f"button on GPIO{pin}: no GPIO pin library ({e}); on a Pi: sudo apt install "
            "python3-lgpio; elsewhere set button_pin = 0"
        ) from None
    except (GPIOZeroError, OSError, RuntimeError) as e:
        raise DeviceError(f"button on GPIO{pin}: {e}") from None
    button.when_pressed = pressed
    return button


def _jpeg(image_bgr: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise DeviceError("could not encode the frame as JPEG")
    return buf.tobytes()


class CaseRecorder:
    def __init__(self, cfg: CasesConfig, bundle: Bundle, file: ModelFile, clock=time.monotonic):
        self.cfg, self.clock = cfg, clock
        self.wanted = threading.Event()
        self.held = None  # the camera whose exposure is held for the case being taken
        self.next_auto = clock() + cfg.capture_every if cfg.capture_every else None
        m = bundle.manifest
        self.model = (m.name, m.version, m.entry(file.name).sha256)
        self.lock: InstanceLock | None = None
        self.problem = ""
        self.store = self._open_store(state_dir(cfg))
        self.button = open_button(cfg.button_pin, self.wanted.set)

    def _open_store(self, root) -> CaseStore | None:
        """The store, swept of saves cut short; None (and `problem` set) when cases cannot be
        saved: screening goes on. Another daemon saving into the same folder is refused."""
        store = None
        try:
            self.lock = InstanceLock(root, f"saves cases into {root}")
            store = CaseStore(root)
            if removed := store.remove_orphans():
                log.info("removed %d image files of saves cut short", removed)
            if lost := store.unaccounted():
                log.warning("%d image files in %s no saved case names: kept", len(lost), root)
            return store
        except InstanceBusy:
            raise
        except (DeviceError, OSError) as e:  # a read-only card, a damaged database
            if store is not None:
                store.close()
            self.problem = _("Cases cannot be saved")
            log.warning("%s: %s", self.problem, e)
            return None

    def request(self) -> None:
        self.wanted.set()

    def ready(self, camera) -> bool:
        """Whether the frame on screen is to be saved now. A camera with autofocus first focuses
        once and holds exposure and white balance: the case is then the next frame."""
        if not self.due():
            return False
        if not hasattr(camera, "autofocus") or self.held is not None:
            return True
        try:
            camera.autofocus()
            camera.hold_exposure(True)
        except Exception as e:  # libcamera errors come in several types; save unfocused
            log.warning("focus before the case failed: %s", e)
            return True
        self.held = camera
        return False

    def _release(self) -> None:
        camera, self.held = self.held, None
        if camera is not None:
            try:
                camera.hold_exposure(False)
            except Exception as e:  # the camera may be gone; the next one starts free anyway
                log.warning("could not free exposure after the case: %s", e)

    def due(self) -> bool:
        if self.next_auto is not None and self.clock() >= self.next_auto:
            self.next_auto = self.clock() + self.cfg.capture_every
            self.wanted.set()
        return self.wanted.is_set()

    def save(self, frame_bgr: np.ndarray, view_bgr: np.ndarray, verdict: Verdict) -> str:
        """Save one case; return the line the screen shows (saved, or why not)."""
        self.wanted.clear()
        self._release()
        if self.store is None:
            return _("{problem}: case NOT saved").format(problem=self.problem)
        free = self.store.free_bytes()
        if free < self.cfg.min_free_mb * 1e6:
            return _("Disk nearly full: case NOT saved - export and purge cases")
        case = Case(
            saved_at=datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            verdict=verdict.text,
            status=verdict.status.value,
            smoothed_prob=verdict.saved_prob,
            ood_score=verdict.ood_score,
            quality=json.dumps(verdict.quality),
            label=verdict.label,
            positive=verdict.positive if verdict.status is Status.OK else None,
            frame_prob=verdict.frame_prob,
            threshold=verdict.threshold,
            ita=ita(frame_bgr, bgr=True),
            kit=socket.gethostname(),
            bundle=self.model[0],
            bundle_version=self.model[1],
            bundle_sha256=self.model[2],
        )
        try:
            n = self.store.save(case, _jpeg(frame_bgr), _jpeg(view_bgr))
            self.store.keep_newest(self.cfg.max_cases)
            count, left = self.store.count(), self.store.free_bytes() / 1e9
        except (OSError, DeviceError) as e:  # full disk, read-only card, damaged database
            log.warning("case not saved: %s", e)
            why = getattr(e, "strerror", None) or e
            return _("Case NOT saved: {why}").format(why=why)
        log.info("saved case %d (%s)", n, verdict.text)
        return _("Saved case {number} - {count} cases, {free} GB free").format(
            number=n, count=count, free=f"{left:.1f}"
        )

    def close(self) -> None:
        if self.button is not None:
            self.button.close()
        if self.store is not None:
            self.store.close()
        if self.lock is not None:
            self.lock.release()
