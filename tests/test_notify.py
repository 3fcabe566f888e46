"""device.live.notify against a real AF_UNIX datagram socket the test binds (path and abstract)."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import uuid

import pytest

from device.live.notify import Notifier


@pytest.fixture(params=["path", "abstract"])
def listener(request, tmp_path):
    """(NOTIFY_SOCKET value, bound socket) for a filesystem path or an abstract name."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if request.param == "path":
        path = str(tmp_path / "notify.sock")
        sock.bind(path)
        env_value = path
    else:
        name = f"mpox-screen-test-{uuid.uuid4().hex}"
        sock.bind("\0" + name)
        env_value = "@" + name
    sock.settimeout(2.0)
    yield env_value, sock
    sock.close()


def received(sock: socket.socket) -> list[str]:
    """Every datagram waiting on the socket, without blocking."""
    out = []
    sock.setblocking(False)
    try:
        while True:
            out.append(sock.recv(4096).decode())
    except BlockingIOError:
        pass
    finally:
        sock.settimeout(2.0)
    return out


def test_messages_arrive(listener):
    env_value, sock = listener
    n = Notifier.from_env({"NOTIFY_SOCKET": env_value})
    assert n.enabled
    assert n.watchdog_interval_s is None
    assert n.ready()
    assert sock.recv(4096) == b"READY=1"
    assert n.status("screening 9.8 fps")
    assert sock.recv(4096) == b"STATUS=screening 9.8 fps"
    assert n.stopping()
    assert sock.recv(4096) == b"STOPPING=1"
    n.close()


def test_watchdog_pings_and_rate_limit(listener):
    env_value, sock = listener
    pid = str(os.getpid())
    env = {"NOTIFY_SOCKET": env_value, "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": pid}
    n = Notifier.from_env(env)
    assert n.watchdog_interval_s == pytest.approx(15.0)
    assert n.min_ping_gap_s == pytest.approx(3.0)
    # Called after every frame: only the first call within the gap goes out.
    assert n.watchdog()
    assert not any(n.watchdog() for _ in range(50))
    assert received(sock) == ["WATCHDOG=1"]

    # Without a gap every call is a ping.
    n2 = Notifier.from_env(env)
    n2.min_ping_gap_s = 0.0
    for _ in range(5):
        assert n2.watchdog()
    assert received(sock) == ["WATCHDOG=1"] * 5


def test_watchdog_gap_elapses(listener, monkeypatch):
    env_value, sock = listener
    n = Notifier.from_env({"NOTIFY_SOCKET": env_value, "WATCHDOG_USEC": "2000000"})
    assert n.watchdog_interval_s == pytest.approx(1.0)
    clock = [100.0]
    monkeypatch.setattr("device.live.notify.time.monotonic", lambda: clock[0])
    assert n.watchdog()
    clock[0] += 0.1  # under the 0.2 s gap
    assert not n.watchdog()
    clock[0] += 0.15
    assert n.watchdog()
    assert received(sock) == ["WATCHDOG=1", "WATCHDOG=1"]


def test_watchdog_for_another_pid_or_unset(listener):
    env_value, sock = listener
    other = Notifier.from_env(
        {"NOTIFY_SOCKET": env_value, "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}
    )
    assert other.watchdog_interval_s is None
    assert not other.watchdog()
    none = Notifier.from_env({"NOTIFY_SOCKET": env_value})
    assert not none.watchdog()
    bad = Notifier.from_env({"NOTIFY_SOCKET": env_value, "WATCHDOG_USEC": "soon"})
    assert bad.watchdog_interval_s is None
    assert received(sock) == []
    # READY still works when only the watchdog is off.
    assert other.ready()
    assert received(sock) == ["READY=1"]


def test_status_is_one_line_and_deduplicated(listener):
    env_value, sock = listener
    n = Notifier.from_env({"NOTIFY_SOCKET": env_value})
    assert n.status("waiting for\ncamera")
    assert not n.status("waiting for camera")  # same text: nothing sent
    assert n.status("screening 9.8 fps")
    assert n.status("waiting for camera")
    assert received(sock) == [
        "STATUS=waiting for camera",
        "STATUS=screening 9.8 fps",
        "STATUS=waiting for camera",
    ]


def test_disabled_without_socket():
    n = Notifier.from_env({})
    assert not n.enabled
    assert n.watchdog_interval_s is None
    assert not n.ready()
    assert not n.watchdog()
    assert not n.status("x")
    assert not n.stopping()
    # WATCHDOG_USEC alone (no socket) does not enable anything.
    n = Notifier.from_env({"WATCHDOG_USEC": "1000000"})
    assert not n.enabled
    assert n.watchdog_interval_s is None


def test_not_a_unix_address_is_disabled_with_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="device.live.notify"):
        n = Notifier.from_env({"NOTIFY_SOCKET": "vsock:2:1234"})
    assert not n.enabled
    assert not n.ready()
    assert "not a unix socket address" in caplog.text


def test_send_error_warns_once_and_never_raises(tmp_path, caplog):
    missing = tmp_path / "gone.sock"
    pid = str(os.getpid())
    n = Notifier.from_env(
        {"NOTIFY_SOCKET": str(missing), "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": pid}
    )
    with caplog.at_level(logging.WARNING, logger="device.live.notify"):
        assert not n.ready()
        for _ in range(10):
            assert not n.watchdog()
            assert not n.status("screening")
        assert not n.stopping()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(missing) in warnings[0].getMessage()

    # The socket appears later (a listener restarted): sends resume.
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(missing))
    try:
        assert n.ready()
        assert sock.recv(4096) == b"READY=1"
    finally:
        sock.close()


def test_full_receiver_queue_does_not_block(listener):
    """A listener that never reads: sends fail fast (dropped), they never hang the loop."""
    env_value, _ = listener
    n = Notifier.from_env({"NOTIFY_SOCKET": env_value})
    results = [n.notify(f"STATUS={i} " + "x" * 2000) for i in range(5000)]
    assert results[0]
    assert not all(results)  # the queue filled up and later sends were dropped, not blocked


def test_from_env_reads_os_environ(listener):
    """The default environment is the process's own (a child process, as systemd starts it)."""
    env_value, sock = listener
    code = (
        "from device.live.notify import Notifier\n"
        "n = Notifier.from_env()\n"
        "assert n.enabled and n.watchdog_interval_s == 0.5\n"
        "n.ready(); n.watchdog(); n.stopping()\n"
    )
    env = dict(os.environ, NOTIFY_SOCKET=env_value, WATCHDOG_USEC="1000000")
    env.pop("WATCHDOG_PID", None)
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=30)
    assert [sock.recv(4096).decode() for _ in range(3)] == ["READY=1", "WATCHDOG=1", "STOPPING=1"]
