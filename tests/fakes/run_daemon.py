"""`python tests/fakes/run_daemon.py ARGS...`: `mpox-screen ARGS` with the test-only sources
registered, for tests that need the daemon as its own process (signals, NOTIFY_SOCKET)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import tests.fakes.sources  # noqa: F401  (registers flaky:// and stall://)
from device.cli import main

sys.exit(main(sys.argv[1:]))
