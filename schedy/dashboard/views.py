"""What the dashboard shows, computed from an experiment's state and its commit times (pure).

Every view is a function of ``(state, time_of)``, where ``time_of(version)``
is the time stamped on commit ``version`` (None if unknown); ASHA and
Hyperband experiments also have :func:`rungs`. The page draws
its charts and tables from these documents alone, so the live dashboard and
the self-contained report show the same thing.
"""

import math
import re

from ..core import events as ev
from ..core import halving, pbt, schedulers, values

FINISHED = (ev.DONE, ev.CRASHED, ev.PRUNED)
HALVING = tuple(halving.KINDS)  # the kinds that have a rung view: ASHA and Hyperband
PROMOTED_LISTED = 25  # promoted jobs named per rung (best first); the count says how many there are in all
LINE_POINTS = 1500  # points of the rung chart, at most: the configurations that climbed first

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

    PBT, ASHA, Hyperband and a Bayesian search say it (their objective); a manual or random search does not, so the
    first result with a number in the first job that has one is taken, minimised when its
    name says loss or error (the page lets the reader pick another).
    """
    if state.kind == "pbt":
        config = pbt.Config.from_log(state.params)
        return {"name": config.result_name, "goal": config.objective}
    config = _halving_config(state)
    if config is not None:  # ASHA and Hyperband rank by their result, as PBT does
        return {"name": config.result_name, "goal": config.objective}
    if state.kind == schedulers.BayesScheduler.kind:  # and so does a Bayesian search
        bayes_config = schedulers.BayesScheduler.config(state.params)
        return {"name": bayes_config.result_name, "goal": bayes_config.objective}
    for job in state.jobs.in_order():  # stops at the first job with a number: no sort of every job
        for name, v in job.results.items():
            if _number(v) is not None:
                return {"name": name, "goal": "min" if _LOWER_IS_BETTER.intersection(_words(name)) else "max"}
    return None


def summary(state, time_of):
    """One experiment at a glance: name, kind, status, job counts by status, best score, when it last changed.

    For ASHA and Hyperband, ``best`` is the best job at the highest resource any DONE job reached (a score
    after 1 epoch says less than one after 81), and ``halving`` holds the definition's facts (:func:`halving_facts`).
    """
    counts = dict.fromkeys(ev.JOB_STATUSES, 0)
    for job in state.jobs.values():
        counts[job.status] += 1
    ranked_by = score(state)
    config = _halving_config(state)
    facts = None if config is None else halving_facts(state, config)
    best = None
    if facts is not None:
        best = None if facts["best"] is None else (facts["best"]["job"], facts["best"]["value"])
    elif ranked_by is not None:
        name, sign = ranked_by["name"], (1 if ranked_by["goal"] == "max" else -1)
        for job in state.jobs.values():
            v = _number(job.results.get(name)) if job.status == ev.DONE else None
            if v is not None and (best is None or sign * v > sign * best[1]):
                best = (job.job_id, v)
    out = {
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
    if facts is not None:
        out["halving"] = facts
    return out


def job_columns(state, time_of, since=0):
    """The jobs changed after commit ``since`` (all of them for 0), column by column, in the order they were added.

    Columns: ``id``, ``status``, ``generation``, ``member``, ``parent``,
    ``added_at`` and ``finished_at`` (the time of the commit that last
    changed a finished job), ``worker`` (the claimant while RUNNING), for
    ASHA and Hyperband ``resource`` and ``bracket`` (the rung is the
    generation), then ``hp`` and ``results``: one column per name, None
    where a job has no such value. Values are the user's, except that NaN
    and infinities are the strings "NaN", "Infinity" and "-Infinity" (JSON
    has no spelling for them).
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
    config = _halving_config(state)
    if config is not None:
        cols["resource"], cols["bracket"] = [], []
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
        if config is not None:
            placed = _placed(job, config)
            cols["resource"].append(None if placed is None else config.resource(*placed))
            cols["bracket"].append(None if placed is None else placed[0])
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


def best_curve(state, time_of):
    """The experiment's best score so far, job by job, to compare experiments on one chart.

    Its DONE jobs with a numeric score (the result it is ranked by), in the order they finished (the commit that
    last changed them, then job number): ``jobs`` counts them (1, 2, ...), ``at`` is when each finished (seconds
    after the experiment was created, None if unknown), ``best`` the best score after each, ``job`` the job
    that holds it. ``score`` is None when no job has a score to rank by.
    """
    ranked_by = score(state)
    out = {"name": state.name, "kind": state.kind, "version": state.version, "score": ranked_by}
    out.update(jobs=[], at=[], best=[], job=[])
    if ranked_by is None:
        return out
    name, sign = ranked_by["name"], (1 if ranked_by["goal"] == "max" else -1)
    done = []
    for job in state.jobs.values():
        v = _number(job.results.get(name)) if job.status == ev.DONE else None
        if v is not None:
            done.append((job.version, job.number, job.job_id, v))
    done.sort()
    start, best = time_of(state.created), None
    for n, (version, _, job_id, v) in enumerate(done, start=1):
        if best is None or sign * v > sign * best[1]:
            best = (job_id, v)
        t = time_of(version)
        out["jobs"].append(n)
        out["at"].append(None if t is None or start is None else t - start)
        out["best"].append(best[1])
        out["job"].append(best[0])
    return out


def halving_facts(state, config):
    """An ASHA or Hyperband experiment's definition, and its best job at the highest resource reached.

    ``result`` and ``objective`` (``"min"`` or ``"max"``) rank the jobs; ``resources`` is the resource of each
    rung of bracket 0 (bracket b starts at its rung b); ``best`` is ``{job, value, member, bracket, rung,
    resource}`` of the best DONE job among those trained to the largest resource (ties: the earlier job), or
    None before any job is DONE with its result.
    """
    sign = 1 if config.objective == halving.MAXIMIZE else -1
    best = None  # ((resource, signed value, -number), job, value, placed)
    for job in state.jobs.values():
        placed = _placed(job, config)
        v = _number(job.results.get(config.result_name)) if job.status == ev.DONE else None
        if placed is None or v is None:
            continue
        key = (config.resource(*placed), sign * v, -job.number)
        if best is None or key > best[0]:
            best = (key, job, v, placed)
    return {
        "result": config.result_name,
        "objective": config.objective,
        "min_resource": config.min_resource,
        "max_resource": config.max_resource,
        "reduction_factor": config.reduction_factor,
        "max_jobs": config.max_jobs,
        "brackets": config.bracket_count,
        "resources": [config.resource(0, k) for k in range(config.rung_count)],
        "best": None
        if best is None
        else {
            "job": best[1].job_id,
            "value": best[2],
            "member": best[1].member,
            "bracket": best[3][0],
            "rung": best[3][1],
            "resource": best[0][0],
        },
    }


IMPORTANCE_TRIALS = 300  # fANOVA's cost grows faster than its trials: about 2 s for 300 on 2 CPUs


def importance(state, time_of=None, result=None, goal=None):
    """The hyperparameter importance of ``state``'s DONE jobs for ``result`` (default: the result the experiment
    is ranked by) and ``goal`` ("min" or "max"), as :func:`schedy.dashboard.importance.importance` gives it (a
    seeded sample of :data:`IMPORTANCE_TRIALS` jobs past that many), with ``score`` and ``goal`` named."""
    from .importance import importance as fanova

    ranked = score(state)
    name = result if result is not None else (ranked or {}).get("name")
    goal = goal if goal is not None else (ranked or {}).get("goal", "min")
    if name is None:
        return {"score": None, "goal": goal, "importances": [], "reason": "no job has a numeric result yet"}
    return {"score": name, "goal": goal, **fanova(state, name, goal, max_trials=IMPORTANCE_TRIALS)}


def rungs(state, time_of=None):
    """The rung view of an ASHA or Hyperband experiment (None for any other kind): each bracket's rungs, and
    every configuration's score against the resource it was trained to.

    ``brackets`` lists every bracket of the definition (ASHA has bracket 0 only), each with ``configurations``
    (how many started in it) and its ``rungs``: ``rung``, ``resource``, ``reached`` (how many configurations
    have a job at that rung, in any status), ``counts`` (its jobs by status), ``scored`` (DONE with the
    result), ``promotable`` (``floor(scored / reduction_factor)``, the most the rule promotes from what is
    completed now; None on the last rung), ``promoted`` (how many of its jobs some job continues from) and
    ``promoted_jobs`` (up to PROMOTED_LISTED of them, best first: ``{job, member, value, to}`` with ``to``
    the job that continues it), and ``best`` (``{job, value}`` or None).

    ``lines`` draws the chart: ``configurations`` holds, per configuration (``member``, ``bracket``), its DONE
    jobs with the result, rung by rung: ``jobs``, ``rungs``, ``resources``, ``values``, and ``promoted``
    (whether a job continues from each). At most LINE_POINTS points: the configurations that climbed above
    their first rung first (the highest resource reached, then the best score there), then an even stride of
    the others; ``shown`` and ``total`` count configurations. ``unplaced`` counts the jobs with no
    configuration or rung (which a log written by Schedy never has).

    ``time_of`` is unused: every view takes it.
    """
    del time_of
    config = _halving_config(state)
    if config is None:
        return None
    sign = 1 if config.objective == halving.MAXIMIZE else -1
    children = {}  # job id -> the first job that continues from it
    for job in _in_order(state):
        if job.parent is not None:
            children.setdefault(job.parent, job.job_id)
    cells = {}  # (bracket, rung) -> {"members": set, "counts": {}, "scored": [(key, job, v)], "promoted": [...]}
    chains = {}  # member -> [(rung, number, job, value)] of its DONE jobs with the result
    started = [set() for _ in range(config.bracket_count)]
    unplaced = 0
    for job in state.jobs.values():
        placed = _placed(job, config)
        if placed is None:
            unplaced += 1
            continue
        cell = cells.get(placed)
        if cell is None:
            cell = cells[placed] = {"members": set(), "counts": dict.fromkeys(ev.JOB_STATUSES, 0), "jobs": []}
        cell["members"].add(job.member)
        cell["counts"][job.status] += 1
        started[placed[0]].add(job.member)
        v = _number(job.results.get(config.result_name)) if job.status == ev.DONE else None
        cell["jobs"].append((job, v))
        if v is not None:
            chains.setdefault(job.member, []).append((placed[1], job.number, job, v))

    def rank(entry):  # best first, unscored last, then the earlier job
        job, v = entry
        return (v is None, 0 if v is None else -sign * v, job.number)

    brackets = []
    for b in range(config.bracket_count):
        top = max([config.rungs(b)] + [k + 1 for (cb, k) in cells if cb == b])
        ladder = []
        for k in range(top):
            cell = cells.get((b, k), {"members": (), "counts": dict.fromkeys(ev.JOB_STATUSES, 0), "jobs": []})
            entries = sorted(cell["jobs"], key=rank)
            scored = [e for e in entries if e[1] is not None]
            promoted = [e for e in entries if e[0].job_id in children]
            ladder.append(
                {
                    "rung": k,
                    "resource": config.resource(b, k),
                    "reached": len(cell["members"]),
                    "counts": cell["counts"],
                    "scored": len(scored),
                    "promotable": math.floor(len(scored) / config.reduction_factor)
                    if k < config.rungs(b) - 1
                    else None,
                    "promoted": len(promoted),
                    "promoted_jobs": [
                        {"job": j.job_id, "member": j.member, "value": v, "to": children[j.job_id]}
                        for j, v in promoted[:PROMOTED_LISTED]
                    ],
                    "best": {"job": scored[0][0].job_id, "value": scored[0][1]} if scored else None,
                }
            )
        brackets.append({"bracket": b, "configurations": len(started[b]), "rungs": ladder})
    return {
        "result": config.result_name,
        "objective": config.objective,
        "brackets": brackets,
        "lines": _lines(chains, children, config, sign),
        "unplaced": unplaced,
    }


def _lines(chains, children, config, sign):
    """The rung chart's configurations, within LINE_POINTS points (see :func:`rungs`)."""
    climbed, stayed = [], []
    for member, points in chains.items():
        points.sort(key=lambda p: (p[0], p[1]))
        rung, _, job, v = points[-1]
        if rung > 0:
            resource = config.resource_of(member, rung)
            climbed.append(((-resource, -sign * v, job.number), member))
        else:
            stayed.append(member)
    climbed.sort()
    stayed.sort()
    chosen, room = [], LINE_POINTS
    for _, member in climbed:
        if len(chains[member]) > room:
            break
        chosen.append(member)
        room -= len(chains[member])
    if len(stayed) > room:  # an even stride through the others, in the order they started
        stayed = [stayed[i * len(stayed) // room] for i in range(room)] if room > 0 else []
    chosen.extend(stayed)
    configurations = []
    for member in sorted(chosen):
        points = chains[member]
        configurations.append(
            {
                "member": member,
                "bracket": config.bracket_of(member),
                "jobs": [p[2].job_id for p in points],
                "rungs": [p[0] for p in points],
                "resources": [config.resource_of(member, p[0]) for p in points],
                "values": [p[3] for p in points],
                "promoted": [p[2].job_id in children for p in points],
            }
        )
    return {"total": len(chains), "shown": len(configurations), "configurations": configurations}


def _halving_config(state):
    """The :class:`halving.Config` of an ASHA or Hyperband experiment (shared: not to be changed), else None."""
    if state.kind not in HALVING:
        return None
    try:
        return schedulers.scheduler(state.kind).config(state.params)
    except ValueError:  # a definition this version cannot read: the page shows the generic views
        return None


def _placed(job, config):
    """``(bracket, rung)`` of a job of an ASHA or Hyperband experiment, or None if it has no configuration."""
    if job.member is None or job.generation is None:
        return None
    return config.bracket_of(job.member), job.generation


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
