"""Host side of mpox-screen: data, models, training and evaluation (PyTorch allowed here)."""

__version__ = "0.1.0"


class UserError(Exception):
    """A mistake the user can fix (bad path, bad argument): shown as one line, never a traceback."""
