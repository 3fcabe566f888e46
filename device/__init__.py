"""The kit's device side: bundle loading, runtimes, screening. Never imports torch, onnx or
train_host; the bundle manifest is its only contract with the host."""

__version__ = "0.1.0"


class KitError(Exception):
    """The one base of every error a user can fix (bad bundle, path, flag, missing tool): every
    command line (`mpox-screen`, `mpox-train`, `mpox-bench`) prints it as one line, exit 2."""


class DeviceError(KitError):
    """Something the user or installer can fix on the kit (bad bundle, bad path)."""
