"""The kit's device side: bundle loading, runtimes, screening. Never imports torch, onnx or
train_host; the bundle manifest is its only contract with the host."""

__version__ = "0.1.0"


class DeviceError(Exception):
    """Something the user or installer can fix (bad bundle, bad path): one line, no traceback."""
