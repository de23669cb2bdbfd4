"""Stream keys: experiment names turned into names that are safe in any store.

Lowercase ASCII letters, digits, ``_`` and ``-`` stay as they are; every other
byte of the UTF-8 name becomes ``%XX`` (uppercase letters too, so that names
differing only in case stay apart on case-insensitive file systems). No key
contains ``/``, ``.`` or NUL, so no name can escape the store's root. Keys too
long for a file name keep a readable prefix and end with ``~`` and a SHA-256
digest of the name; the name itself is always in the log.
"""

import hashlib

_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789_-")
MAX_KEY = 200


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
        key = key[: MAX_KEY - 66].rstrip("%0123456789ABCDEF") + "~" + hashlib.sha256(raw).hexdigest()
    return key
