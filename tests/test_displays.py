"""Displays: the framebuffer into a plain file (both pixel formats), the window under Xvfb, and the
clear refusals where a display cannot work."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from device import DeviceError
from device.config import DisplayConfig
from device.live.displays import letterbox, open_display
from device.live.displays.framebuffer import FbOptions, Framebuffer
from device.live.displays.window import gui_backend, why_no_window
from device.live.screen import LIKELY, STATUS
from tests.conftest import require

ROOT = Path(__file__).resolve().parent.parent


def fake_sysfs(tmp_path: Path, w: int, h: int, bpp: int, stride: int) -> Path:
    node = tmp_path / "sys" / "fb0"
    node.mkdir(parents=True)
    (node / "virtual_size").write_text(f"{w},{h}\n")
    (node / "bits_per_pixel").write_text(f"{bpp}\n")
    (node / "stride").write_text(f"{stride}\n")
    return tmp_path / "sys"


def canvas_with_spot(w: int, h: int, bgr: tuple[int, int, int]) -> np.ndarray:
    canvas = np.zeros((h, w, 3), np.uint8)
    canvas[10:20, 30:40] = bgr
    return canvas


@pytest.mark.parametrize("bpp", [16, 32])
def test_framebuffer_pixels_at_a_known_spot(tmp_path, bpp):
    """Geometry and stride from sysfs (padded rows, as real drivers have); the bytes at (x=35,
    y=15) decode back to the colour drawn there, in RGB565 or XRGB8888 byte order."""
    w, h = 64, 48
    stride = w * bpp // 8 + 32  # row padding
    fb = tmp_path / "fb0"
    fb.write_bytes(b"")
    display = Framebuffer(str(fb), DisplayConfig(), sysfs=fake_sysfs(tmp_path, w, h, bpp, stride))
    b, g, r = 40, 200, 248
    display.show(canvas_with_spot(w, h, (b, g, r)))
    display.close()
    raw = fb.read_bytes()
    assert len(raw) == h * stride

    def pixel(x: int, y: int) -> tuple[int, int, int]:
        """(b, g, r) read back from the raw bytes, as the screen's controller reads them."""
        at = y * stride + x * bpp // 8
        if bpp == 32:  # XRGB8888, little-endian: B, G, R, X
            return tuple(raw[at : at + 3])
        v = int.from_bytes(raw[at : at + 2], "little")  # RGB565
        return ((v & 31) << 3, (v >> 5 & 63) << 2, (v >> 11) << 3)

    expected = (b, g, r) if bpp == 32 else (b & 0xF8, g & 0xFC, r & 0xF8)
    assert pixel(35, 15) == expected
    assert pixel(35, 9) == pixel(0, 0) == pixel(w - 1, h - 1) == (0, 0, 0)


def test_framebuffer_letterboxes_and_takes_config_geometry(tmp_path):
    fb = tmp_path / "fb1"
    fb.write_bytes(b"")
    opts = DisplayConfig(f"fb://{fb}", width=80, height=40, plugins={"fb": FbOptions(bpp=32)})
    display = open_display(opts)
    display.show(np.full((40, 40, 3), 255, np.uint8))  # square into a 2:1 screen
    pixels = np.frombuffer(fb.read_bytes(), np.uint8).reshape(40, 80, 4)
    assert pixels[:, :20, :3].max() == 0 and pixels[:, 60:, :3].max() == 0  # black bars
    assert pixels[:, 20:60, :3].min() == 255


def test_framebuffer_without_geometry_says_what_to_set(tmp_path):
    (tmp_path / "fb9").write_bytes(b"")
    with pytest.raises(
        DeviceError, match=r"set \[display\] width and height and \[display.fb\] bpp"
    ):
        Framebuffer(str(tmp_path / "fb9"), DisplayConfig(), sysfs=tmp_path / "nothing")
    with pytest.raises(DeviceError, match=r"no framebuffer .*use --display window"):
        Framebuffer(
            str(tmp_path / "fb8"),
            DisplayConfig(width=8, height=8, plugins={"fb": FbOptions(bpp=16)}),
        )


def test_letterbox_keeps_aspect():
    out = letterbox(np.full((100, 200, 3), 9, np.uint8), 100, 100)
    assert out.shape == (100, 100, 3)
    assert out[:24].max() == 0 and out[26:74].min() == 9


def test_window_refuses_without_desktop_or_gui_build():
    assert "no desktop" in why_no_window({}, "GUI: QT5")
    assert "opencv-python-headless" in why_no_window({"DISPLAY": ":0"}, "  GUI:   NONE\n")
    assert why_no_window({"DISPLAY": ":0"}, "  GUI:                           QT5\n") is None
    assert gui_backend("Video I/O:\n  GUI:     GTK3\n") == "GTK3"


def test_window_without_desktop_is_a_one_line_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = subprocess.run(
        [sys.executable, "-m", "device.cli", "run", "--source", "demo://", "--display", "window",
         "--log-dir", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("mpox-screen: error: cannot open a window")
    assert "Traceback" not in proc.stderr


def test_window_under_xvfb_screenshot(tmp_path):
    """The real HighGUI window on a virtual X screen: a screenshot shows the kit's screen."""
    for tool in ("Xvfb", "import"):
        require(shutil.which(tool) is not None, f"{tool} not installed")
    gui = gui_backend(__import__("cv2").getBuildInformation()) != "NONE"
    require(gui, "headless OpenCV here: the window needs opencv-python's GUI build")
    display = f":{90 + os.getpid() % 50}"
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "800x600x24", "-nolisten", "tcp"])
    env = {**os.environ, "DISPLAY": display}
    daemon = None
    try:
        time.sleep(1.0)
        daemon = subprocess.Popen(
            [sys.executable, "-m", "device.cli", "run", "--source", "demo://", "--display",
             "window", "--log-dir", str(tmp_path), "--fps", "15"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        shot = tmp_path / "shot.png"
        import cv2

        for _ in range(120):  # a loaded machine starts the daemon in 30 s or more
            time.sleep(0.5)
            subprocess.run(["import", "-window", "root", str(shot)], env=env, check=True)
            img = cv2.imread(str(shot))
            strip = np.all(img == STATUS, axis=2)  # drawn skin: "Cannot judge", no verdict
            if strip.sum() > 200:  # the strip left of the header, drawn 1:1
                break
        else:
            pytest.fail("the screen's header strip never appeared in the window")
        assert daemon.poll() is None
        assert img[:480, :640].std() > 20  # a camera view, not a blank window
        daemon.terminate()
        assert daemon.wait(20) == 0
    finally:
        if daemon and daemon.poll() is None:
            daemon.kill()
        xvfb.terminate()
        xvfb.wait(10)


# --- sdl:// under a real Wayland compositor (the Pi 5 kiosk) --------------------------------------

CAGE_TOOLS = "apt install cage grim xwayland libegl1 libegl-mesa0 libgl1-mesa-dri libwayland-egl1"


@contextlib.contextmanager
def cage_session():
    """A real Cage kiosk compositor on wlroots' headless backend (no GPU, no screen), as user
    nobody (Cage refuses to run as root); yields the environment its clients connect with."""
    for tool in ("cage", "grim", "setpriv"):
        require(shutil.which(tool) is not None, f"{tool} not installed ({CAGE_TOOLS})")
    runtime = Path(tempfile.mkdtemp(prefix="mpox-cage-", dir="/tmp"))
    nobody = pwd.getpwnam("nobody")
    os.chown(runtime, nobody.pw_uid, nobody.pw_gid)
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(runtime),
        "XDG_RUNTIME_DIR": str(runtime),
        "WLR_BACKENDS": "headless",  # one virtual output, 1280x720
        "WLR_LIBINPUT_NO_DEVICES": "1",
        "WLR_RENDERER": "pixman",  # software compositing: no GPU here
    }
    cage = subprocess.Popen(
        ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups",
         "env", "-i", *(f"{k}={v}" for k, v in env.items()), "cage", "--", "sleep", "600"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        for _ in range(100):
            if (runtime / "wayland-0").exists() or cage.poll() is not None:
                break
            time.sleep(0.1)
        if not (runtime / "wayland-0").exists():
            cage.kill()
            pytest.fail(f"cage did not start: {cage.communicate()[1].decode()[-800:]}")
        yield {"XDG_RUNTIME_DIR": str(runtime), "WAYLAND_DISPLAY": "wayland-0"}
    finally:
        os.killpg(cage.pid, signal.SIGTERM)
        cage.wait(timeout=10)
        shutil.rmtree(runtime, ignore_errors=True)


def test_sdl_display_fills_a_cage_kiosk(tmp_path, msid):
    """The kit with `--display sdl://` as a client of a real Cage compositor: grim's screenshot
    of the compositor's output shows the kit full screen with the verdict strip of an mpox
    photo in the "likely" colour."""
    require(importlib.util.find_spec("pygame") is not None, "pygame-ce not installed")
    photo = sorted((msid / "mpox").glob("*.png"))[0]  # P(mpox) 0.98 with the default bundle
    (tmp_path / "in").mkdir()
    shutil.copy(photo, tmp_path / "in" / photo.name)
    with cage_session() as wayland:
        env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "SDL_VIDEODRIVER")}
        env |= wayland
        kit = subprocess.Popen(
            [sys.executable, "-m", "device.cli", "run", "--display", "sdl://", "--source",
             f"dir://{tmp_path / 'in'}", "--loop", "--source-fps", "10", "--no-ood-gate",
             "--no-quality-gate", "--log-dir", str(tmp_path / "logs")],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        shot, img = tmp_path / "shot.png", None
        try:
            import cv2

            for _ in range(60):
                time.sleep(0.5)
                assert kit.poll() is None, kit.stderr.read().decode()[-1500:]
                subprocess.run(["grim", str(shot)], env=env, check=True, timeout=30)
                img = cv2.imread(str(shot))
                if tuple(img[20, 5]) == LIKELY:
                    break
        finally:
            kit.terminate()
            err = kit.communicate(timeout=30)[1].decode()
    assert img is not None and img.shape == (720, 1280, 3)  # the whole output
    assert tuple(img[20, 5]) == LIKELY, f"strip {img[20, 5]}; kit said: {err[-1500:]}"
    assert "SDL wayland 1280x720" in err
    band = img[: round(58 * 720 / 320)]  # the header band scaled to the output: text drawn in it
    assert (band == (255, 255, 255)).all(axis=2).sum() > 200


def test_sdl_wayland_without_libwayland_egl_is_a_one_line_error(monkeypatch):
    """SDL 2.32 segfaults in set_mode when libwayland-egl is missing (CI's first run on a
    machine without it); the kit checks for it once SDL has picked Wayland and says what to
    install."""
    require(importlib.util.find_spec("pygame") is not None, "pygame-ce not installed")
    from device import DeviceError
    from device.config import DisplayConfig
    from device.live.displays import sdl

    monkeypatch.setattr(sdl, "WAYLAND_EGL", "libwayland-egl-absent.so.1")
    for key in ("SDL_RENDER_VSYNC", "PYGAME_HIDE_SUPPORT_PROMPT"):
        monkeypatch.setenv(key, "1")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("SDL_VIDEODRIVER", raising=False)
    with cage_session() as wayland:
        for key, value in wayland.items():
            monkeypatch.setenv(key, value)
        with pytest.raises(DeviceError, match=r"libwayland-egl-absent\.so\.1 is missing.*apt"):
            sdl.SdlScreen("", DisplayConfig())


def test_sdl_display_without_a_screen_is_a_one_line_error(tmp_path):
    require(importlib.util.find_spec("pygame") is not None, "pygame-ce not installed")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = subprocess.run(
        [sys.executable, "-m", "device.cli", "run", "--source", "demo://", "--display",
         "sdl://kmsdrm", "--log-dir", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("mpox-screen: error: display sdl://")
    bad = subprocess.run(
        [sys.executable, "-m", "device.cli", "run", "--display", "sdl://vga", "--log-dir",
         str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bad.returncode == 2 and "kmsdrm, wayland, x11" in bad.stderr


def test_auto_display_is_the_framebuffer_where_there_is_one_else_sdl(tmp_path):
    from device.live.displays import auto_display

    fb = tmp_path / "fb0"
    assert auto_display(fb) == "sdl://"  # a Pi 5 on Trixie without fbdev emulation
    fb.write_bytes(b"")
    assert auto_display(fb) == f"fb://{fb}"
