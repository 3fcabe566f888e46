"""The kit's language: one gettext catalogue (`device/locale/`) for every string shown on the
screen or printed to a health worker; JSON keys and values, logs and errors for whoever maintains
the kit stay English.

Strings are marked `_("...")` where they are used, or `N_("...")` where they are defined before a
language is chosen (then `_()` at display time). The catalogue is kept with Babel's `pybabel`
(extract, update, compile: docs/languages.md); the device only reads the compiled `.mo` files.
"""

from __future__ import annotations

import contextlib
import gettext
from pathlib import Path

from device import DeviceError

DOMAIN = "mpox_screen"
LOCALE_DIR = Path(__file__).with_name("locale")
LANGUAGES = {"en": "English", "fr": "Français", "pt": "Português", "sw": "Kiswahili"}

_active: gettext.NullTranslations = gettext.NullTranslations()
_code = "en"


def use(language: str) -> None:
    """Switch every later `_()` to `language` (a key of LANGUAGES)."""
    global _active, _code
    if language not in LANGUAGES:
        raise DeviceError(f"language {language!r}: one of {', '.join(LANGUAGES)}")
    if language == "en":
        _active = gettext.NullTranslations()
    else:
        try:
            _active = gettext.translation(DOMAIN, LOCALE_DIR, [language])
        except OSError:
            raise DeviceError(
                f"language {language!r}: no compiled catalogue under {LOCALE_DIR}"
            ) from None
    _code = language


def current() -> str:
    return _code


def everywhere(message: str) -> set[str]:
    """`message` in every language (to read back a file written in any of them)."""
    out = {message}
    for code in LANGUAGES:
        if code != "en":
            with contextlib.suppress(OSError):  # a language not compiled: nothing to read
                out.add(gettext.translation(DOMAIN, LOCALE_DIR, [code]).gettext(message))
    return out


def add_language_flag(parser) -> None:
    """--language for the commands that print to people and do not read the config."""
    parser.add_argument(
        "--language",
        choices=list(LANGUAGES),
        default=None,
        help="of the printed text (default: the kit's config, else en); JSON stays English",
    )


def _(message: str) -> str:
    return _active.gettext(message)


def N_(message: str) -> str:
    """Marks a string for the catalogue without translating it yet."""
    return message
