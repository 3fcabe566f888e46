"""The kit's device side: bundle loading, runtimes, screening. Never imports torch, onnx or
train_host; the bundle manifest is its only contract with the host."""

__version__ = "0.1.0"


class KitError(Exception):
    """The one base of every error a user can fix (bad bundle, path, flag, missing tool): every
    command line (`mpox-screen`, `mpox-train`, `mpox-bench`) prints it as one line, exit 2."""


class DeviceError(KitError):
    """Something the user or installer can fix on the kit (bad bundle, bad path)."""


MAX_MESSAGE = 400


def one_line(message: str) -> str:
    """An error as one readable line: a 50 MB config value is not echoed in full, a new line
    in a value does not start a second one (accents and other scripts stay as they are)."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message[:MAX_MESSAGE])
    return text if len(message) <= MAX_MESSAGE else f"{text}... ({len(message):,} characters)"
