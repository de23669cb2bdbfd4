"""What the dashboard shows, computed from an experiment's state and its commit times (pure).

Every view is a function of ``(state, time_of)``, where ``time_of(version)``
is the time stamped on commit ``version`` (None if unknown). The page draws
its charts and tables from these documents alone, so the live dashboard and
the self-contained report show the same thing.
"""

import math
import re

from ..core import events as ev
from ..core import pbt, values

FINISHED = (ev.DONE, ev.CRASHED, ev.PRUNED)

# A result whose name says it is a loss or an error is minimised; any other is maximised. Whole words only
# ("val_loss", "TrainError", "mse"), so that "power" or "answer_accuracy" are not taken for errors.
_LOWER_IS_BETTER = {
    "loss",
    "losses",
    "err",
    "error",
    "errors",
    "mse",
    "rmse",
    "mae",
    "cost",
    "regret",
    "perplexity",
    "ppl",
    "wer",
    "cer",
    "nll",
}


def _words(name):
    return re.findall(r"[a-z]+", re.sub(r"([a-z])([A-Z])", r"\1 \2", name).lower())


def score(state):
    """The result the experiment is ranked by: ``{"name", "goal"}`` with goal ``"min"`` or ``"max"``, or None.

    PBT says it (its objective); a manual or random search does not, so the
    first result with a number in the first job that has one is taken, minimised when its
    name says loss or error (the page lets the reader pick another).
    """
    if state.kind == "pbt":
        config = pbt.Config.from_log(state.params)
        return {"name": config.result_name, "goal": config.objective}
    for job in state.jobs.in_order():  # stops at the first job with a number: no sort of every job
        for name, v in job.results.items():
            if _number(v) is not None:
                return {"name": name, "goal": "min" if _LOWER_IS_BETTER.intersection(_words(name)) else "max"}
    return None


def summary(state, time_of):
    """One experiment at a glance: name, kind, status, job counts by status, best score, when it last changed."""
    counts = dict.fromkeys(ev.JOB_STATUSES, 0)
    for job in state.jobs.values():
        counts[job.status] += 1
    ranked_by = score(state)
    best = None
    if ranked_by is not None:
        name, sign = ranked_by["name"], (1 if ranked_by["goal"] == "max" else -1)
        for job in state.jobs.values():
            v = _number(job.results.get(name)) if job.status == ev.DONE else None
            if v is not None and (best is None or sign * v > sign * best[1]):
                best = (job.job_id, v)
    return {
        "name": state.name,
        "kind": state.kind,
        "status": state.status,
        "version": state.version,
        "created": state.created,
        "jobs": len(state.jobs),
        "counts": counts,
        "score": ranked_by,
        "best": None if best is None else {"job": best[0], "value": best[1]},
        "created_at": time_of(state.created),
        "updated_at": time_of(state.version),
    }


def job_columns(state, time_of, since=0):
    """The jobs changed after commit ``since`` (all of them for 0), column by column, in the order they were added.

    Columns: ``id``, ``status``, ``generation``, ``member``, ``parent``,
    ``added_at`` and ``finished_at`` (the time of the commit that last
    changed a finished job), ``worker`` (the claimant while RUNNING), then
    ``hp`` and ``results``: one column per name, None where a job has no
    such value. Values are the user's, except that NaN and infinities are
    the strings "NaN", "Infinity" and "-Infinity" (JSON has no spelling for them).
    """
    jobs = _in_order(state, since)
    cols = {
        "id": [],
        "status": [],
        "generation": [],
        "member": [],
        "parent": [],
        "added_at": [],
        "finished_at": [],
        "worker": [],
    }
    hp, res = {}, {}
    for i, job in enumerate(jobs):
        cols["id"].append(job.job_id)
        cols["status"].append(job.status)
        cols["generation"].append(job.generation)
        cols["member"].append(job.member)
        cols["parent"].append(job.parent)
        cols["added_at"].append(time_of(job.added))
        cols["finished_at"].append(time_of(job.version) if job.status in FINISHED else None)
        cols["worker"].append(job.worker)
        _spread(hp, job.hyperparameters, i, len(jobs))
        _spread(res, job.results, i, len(jobs))
    return {
        "name": state.name,
        "kind": state.kind,
        "version": state.version,
        "created": state.created,
        "since": since,
        "count": len(state.jobs),
        "columns": cols,
        "hp": hp,
        "results": res,
    }


def _spread(columns, mapping, i, n):
    for name, v in mapping.items():
        col = columns.get(name)
        if col is None:
            col = columns[name] = [None] * n
        col[i] = _plain(v)


def _plain(v):
    """A log-form value as the page shows it: the user's value, with NaN and infinities spelled as strings."""
    if type(v) in (int, float, str, bool) or v is None:
        return v
    v = values.decode(v)
    return _spell(v)


def _spell(v):
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")
    if isinstance(v, dict):
        return {k: _spell(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_spell(x) for x in v]
    return v


def _number(v):
    """``v`` as a finite float if it is a number (not a bool), else None."""
    if type(v) in (int, float) and math.isfinite(v):
        return float(v)
    return None


def _in_order(state, since=0):
    jobs = state.jobs.values()
    return sorted((j for j in jobs if j.version > since) if since else jobs, key=lambda j: j.number)
