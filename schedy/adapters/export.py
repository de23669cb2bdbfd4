"""Jobs as rows and as a pandas DataFrame (``Experiment.to_dataframe``, ``schedy export``)."""

TIME_COLUMNS = ("added_at", "claimed_at", "finished_at")
FIXED_COLUMNS = (
    "job_id",
    "status",
    "generation",
    "parent_id",
    "member",
    "added_at",
    "claimed_at",
    "claimed_by",
    "finished_at",
    "claims",
    "lease_expiries",
)
HALVING_COLUMNS = ("rung", "resource")  # ASHA and Hyperband only, after member


def fixed_columns(rows, halving=None):
    """FIXED_COLUMNS, with HALVING_COLUMNS after ``member`` for an ASHA or Hyperband experiment.

    ``halving`` says whether the experiment is one; None: whether the rows have a ``rung``, which an experiment
    without jobs does not tell.
    """
    if halving is None:
        halving = any("rung" in r for r in rows)
    if not halving:
        return FIXED_COLUMNS
    at = FIXED_COLUMNS.index("member") + 1
    return FIXED_COLUMNS[:at] + HALVING_COLUMNS + FIXED_COLUMNS[at:]


def flat_row(row):
    """A job row with its hyperparameters and results spread into ``hp.<name>`` and ``result.<name>`` keys."""
    flat = {k: v for k, v in row.items() if k not in ("hyperparameters", "results")}
    flat.update({f"hp.{k}": v for k, v in row["hyperparameters"].items()})
    flat.update({f"result.{k}": v for k, v in row["results"].items()})
    return flat


def job_frame(rows, halving=None):
    """The DataFrame of job rows (``Experiment._job_rows()``); see :meth:`Experiment.to_dataframe`.

    ``halving``: whether the rows are an ASHA or Hyperband experiment's (see :func:`fixed_columns`).
    """
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("to_dataframe needs pandas: pip install 'schedy[export]'") from None
    rows = [flat_row(r) for r in rows]
    fixed = fixed_columns(rows, halving)
    columns = _columns(rows, fixed)
    frame = pd.DataFrame(rows, columns=columns)
    for col in columns[len(fixed) :]:
        # pandas would turn integers into floats where some job lacks the value (2**53 + 1 would change):
        # integer and boolean columns are nullable instead.
        present = [r[col] for r in rows if r.get(col) is not None]
        kinds = {type(v) for v in present}
        dtype = None
        if kinds == {bool}:
            dtype = "boolean"
        elif kinds == {int}:
            dtype = (
                "Int64"
                if all(-(2**63) <= v < 2**63 for v in present)
                else "UInt64"
                if all(0 <= v < 2**64 for v in present)
                else None
            )
        if dtype is not None:
            frame[col] = pd.array([r.get(col) for r in rows], dtype=dtype)
    # The fixed columns have one dtype whatever the rows hold (none, all None, some None).
    for col in TIME_COLUMNS:  # to the microsecond: a float of seconds holds no more
        micros = frame[col].astype("float64").mul(1e6).round()
        frame[col] = pd.to_datetime(micros, unit="us", utc=True).dt.as_unit("us")
    types = {"generation": "Int64", "member": "Int64", "claims": "int64", "lease_expiries": "int64"}
    if "rung" in fixed:
        # A resource is an integer when the definition's resources and reduction factor are (halving.Config).
        integers = all(isinstance(r.get("resource"), int) for r in rows if r.get("resource") is not None)
        types.update(rung="Int64", resource="Int64" if integers else "float64")
    return frame.astype(types)


def _columns(rows, fixed=FIXED_COLUMNS):
    seen = dict.fromkeys(fixed)
    for r in rows:
        seen.update(dict.fromkeys(k for k in r if k.startswith("hp.")))
    for r in rows:
        seen.update(dict.fromkeys(k for k in r if k.startswith("result.")))
    return list(seen)
