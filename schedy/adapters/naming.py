"""Stream keys: experiment names turned into names that are safe in any store.

Lowercase ASCII letters, digits, ``_`` and ``-`` stay as they are; every other
byte of the UTF-8 name becomes ``%XX`` (uppercase letters too, so that names
differing only in case stay apart on case-insensitive file systems). No key
contains ``/``, ``.`` or NUL, so no name can escape the store's root. A key
longer than 200 characters is cut to its first 134 characters, minus a
trailing incomplete escape (a ``%`` among the last two characters and what
follows it), then ``~`` and the 64 hex digits of the SHA-256 of the UTF-8
name are appended. The name itself is always in the log.
"""

import hashlib

_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789_-")
MAX_KEY = 200
_PREFIX = 134


def check_name(name):
    """Return ``name`` if it is a valid experiment name, else raise TypeError or ValueError."""
    if not isinstance(name, str):
        raise TypeError(f"an experiment name must be a string, got {type(name).__name__}")
    if not name:
        raise ValueError("an experiment name must not be empty")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"the experiment name {name!r} is not valid Unicode text") from None
    return name


def stream_key(name):
    """Return the store key of the experiment ``name``."""
    raw = check_name(name).encode("utf-8")
    key = "".join(chr(b) if b in _SAFE else f"%{b:02X}" for b in raw)
    if len(key) > MAX_KEY:
        prefix = key[:_PREFIX]
        cut = prefix.find("%", _PREFIX - 2)
        if cut != -1:
            prefix = prefix[:cut]
        key = prefix + "~" + hashlib.sha256(raw).hexdigest()
    return key
