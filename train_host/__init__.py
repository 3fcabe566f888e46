"""Host side of mpox-screen: data, models, training and evaluation (PyTorch allowed here)."""

from device import KitError

__version__ = "0.1.0"


class UserError(KitError):
    """A mistake the user can fix (bad path, bad argument): shown as one line, never a traceback."""
