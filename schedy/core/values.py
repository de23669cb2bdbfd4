"""Conversion between user values and their log form.

The log form is plain JSON with two escapes, so that values JSON cannot hold
survive a round trip exactly:

* a non-finite float is ``{"$f": "NaN"}``, ``{"$f": "Infinity"}`` or
  ``{"$f": "-Infinity"}``;
* a user dict that has exactly one key starting with ``$`` is wrapped as
  ``{"$d": {...}}`` so it is never mistaken for an escape.

Everything else is stored as is: None, booleans, 64-bit integers, finite
floats, strings, lists and dicts with string keys. Numpy scalars and arrays are
accepted and stored as plain numbers and lists; tuples become lists.
"""

import math
from collections.abc import Mapping

import numpy as np
import orjson

MAX_DEPTH = 100  # nesting deeper than this is refused (orjson itself stops at 255)
MAX_BYTES = 1 << 20  # hyperparameters or results larger than this (as JSON) are refused: every reader loads them
_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1
_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _float_escape(x):
    if x != x:
        return {"$f": "NaN"}
    return {"$f": "Infinity" if x > 0 else "-Infinity"}


def encode(value, where="value", depth=0):
    """Return the log form of ``value``; raise TypeError or ValueError naming ``where`` if it cannot be stored."""
    t = type(value)
    if value is None or t is bool or t is str:
        if t is str:
            _check_str(value, where)
        return value
    if t is int:
        if not _INT_MIN <= value <= _INT_MAX:
            raise ValueError(f"{where}: the integer {value} does not fit in 64 bits and cannot be stored")
        return value
    if t is float:
        return value if math.isfinite(value) else _float_escape(value)
    if depth >= MAX_DEPTH and (t in (dict, list, tuple) or isinstance(value, (Mapping, list, tuple, np.ndarray))):
        raise ValueError(f"{where}: nested deeper than {MAX_DEPTH} levels (or contains itself); cannot be stored")
    if t is dict or isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if isinstance(k, str):
                k = str(k)
                _check_str(k, where)
            else:
                raise TypeError(f"{where}: dict keys must be strings, got {type(k).__name__} {k!r}")
            out[k] = encode(v, f"{where}[{k!r}]", depth + 1)
        if len(out) == 1 and next(iter(out)).startswith("$"):
            return {"$d": out}
        return out
    if t is list or t is tuple:
        return [encode(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, np.ndarray):
        return encode(value.tolist(), where, depth)
    if isinstance(value, np.generic):
        item = value.item()
        if isinstance(item, (bool, int, float, str)):
            return encode(item, where)
    elif isinstance(value, bool):
        return bool(value)
    elif isinstance(value, int):
        return encode(int(value), where)
    elif isinstance(value, float):
        return encode(float(value), where)
    elif isinstance(value, str):
        return encode(str(value), where)
    elif isinstance(value, (list, tuple)):
        return encode(list(value), where, depth)
    hint = " (for a path, store str(path))" if hasattr(value, "__fspath__") else ""
    raise TypeError(
        f"{where}: cannot store a value of type {t.__name__}{hint}; Schedy stores None, booleans, "
        "numbers, strings, lists and dicts with string keys (numpy scalars and arrays included)"
    )


def _check_str(s, where):
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"{where}: the string {s!r} is not valid Unicode text ({e.reason})") from None


def decode(value):
    """Return the user value of a log-form value, as a fresh copy the caller may mutate."""
    t = type(value)
    if t is dict:
        if len(value) == 1:
            ((k, v),) = value.items()
            if k == "$f" and v in _NONFINITE:
                return _NONFINITE[v]
            if k == "$d" and type(v) is dict:
                return {kk: decode(vv) for kk, vv in v.items()}
        return {k: decode(v) for k, v in value.items()}
    if t is list:
        return [decode(v) for v in value]
    return value


def encode_mapping(value, where):
    """Encode a dict of named values (hyperparameters or results); None means empty."""
    if value is None:
        return {}
    if isinstance(value, dict):
        out = dict(value)  # checked after the copy: another thread may change the user's dict meanwhile
        if _plain(out):
            try:
                data = orjson.dumps(out)  # refuses what _plain lets through: an int beyond 64 bits, a lone surrogate
            except orjson.JSONEncodeError:
                pass  # encode() below names the problem
            else:
                _check_size(len(data), where)
                return out
    if not isinstance(value, Mapping):
        raise TypeError(f"{where} must be a dict of name -> value, got {type(value).__name__}")
    out = encode(value, where)
    out = out["$d"] if len(out) == 1 and "$d" in out else out
    _check_size(len(orjson.dumps(out)), where)
    return out


def _plain(mapping):
    """True if every key is a str and every value a scalar that is its own log form (a job's usual results)."""
    for k, v in mapping.items():
        t = type(v)
        if type(k) is not str or t not in _SCALARS or (t is float and not math.isfinite(v)):
            return False
    return True


def _check_size(size, where):
    if size > MAX_BYTES:
        raise ValueError(
            f"{where} take {size} bytes as JSON, more than the limit of {MAX_BYTES}: every worker reads "
            "every commit, so store large data (weights, curves) in files and put their paths here"
        )


_SCALARS = frozenset((int, float, str, bool, type(None)))


def decode_mapping(value):
    """Inverse of :func:`encode_mapping`."""
    if _SCALARS.issuperset(map(type, value.values())):
        return dict(value)  # the common case, at C speed: scalars are their own log form, and immutable
    return {k: decode(v) for k, v in value.items()}
