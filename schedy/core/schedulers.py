"""What each kind of experiment does when its queue is empty.

A scheduler is a small object with three pure functions:

* ``check_params(params)``: validate the log-form parameters of a definition;
* ``check_job(params, hyperparameters)``: validate a job added by hand;
* ``propose(state, now, rng)``: the new job to hand out when no queued job waits,
  as a dict of :func:`schedy.core.events.job_added` fields, or None.

Population Based Training plugs in here as one more entry of ``SCHEDULERS``.
"""

from . import distributions, values


class ManualScheduler:
    """Hands out only the jobs queued by hand."""

    kind = "manual"

    @staticmethod
    def check_params(params):
        if params != {"scheduler": {"Manual": {}}}:
            raise ValueError(f"invalid manual search parameters {params!r}")

    @staticmethod
    def check_job(params, hyperparameters):
        pass

    @staticmethod
    def propose(state, now, rng):
        return None


class RandomScheduler:
    """Samples a new job from the distributions when the queue is empty."""

    kind = "random"

    @staticmethod
    def distributions(params):
        """Return the dict of name -> Distribution of random-search parameters."""
        dists = params["scheduler"]["RandomSearch"]["distributions"]
        return {name: distributions.from_log(d) for name, d in dists.items()}

    @classmethod
    def check_params(cls, params):
        try:
            cls.distributions(params)
        except (KeyError, TypeError, AttributeError):
            raise ValueError(f"invalid random search parameters {params!r}") from None

    @classmethod
    def check_job(cls, params, hyperparameters):
        names = params["scheduler"]["RandomSearch"]["distributions"].keys()
        missing = [n for n in names if n not in hyperparameters]
        extra = [n for n in hyperparameters if n not in names]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing {', '.join(map(repr, missing))}")
            if extra:
                parts.append(f"unexpected {', '.join(map(repr, extra))}")
            raise ValueError(
                f"a job of random search must have exactly the hyperparameters of its distributions "
                f"({', '.join(map(repr, names))}): {'; '.join(parts)}"
            )

    @classmethod
    def propose(cls, state, now, rng):
        hps = {name: values.encode(d.sample(rng)) for name, d in cls.distributions(state.params).items()}
        return {"hyperparameters": hps, "results": {}}


SCHEDULERS = {s.kind: s for s in (ManualScheduler, RandomScheduler)}


def scheduler(kind):
    """Return the scheduler for ``kind``; raise ValueError for an unknown kind."""
    try:
        return SCHEDULERS[kind]
    except KeyError:
        raise ValueError(f"unknown experiment kind {kind!r}; known: {', '.join(sorted(SCHEDULERS))}") from None
