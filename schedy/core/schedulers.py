"""What each kind of experiment decides beyond the shared queue.

A scheduler is a class of pure functions over log-form values. Add a kind by
subclassing :class:`Scheduler` and listing it in ``SCHEDULERS``.
"""

from . import bayes, distributions, halving, pbt, values
from . import events as ev
from .outcomes import Empty, Proposal, budget_spent

_parsed: dict = {}


def parsed(params, parse):
    """``parse(params)``, remembered while ``params`` is the same object: a claim must not re-parse the definition.

    Callers must not mutate the result.
    """
    key = (id(params), parse)
    hit = _parsed.get(key)
    if hit is not None and hit[0] is params:  # holding params keeps its id from being reused
        return hit[1]
    result = parse(params)
    if len(_parsed) >= 256:
        _parsed.clear()
    _parsed[key] = (params, result)
    return result


def _random_distributions(params):
    """The distributions of random-search ``params``; ValueError naming what is wrong (unknown keys too)."""
    args = distributions.scheduler_args(params, "RandomSearch", "random search")
    distributions.check_keys("random search", args, ("distributions",), ("distributions",))
    return distributions.named_from_log(args["distributions"], "random search")


class Scheduler:
    """The defaults: no parameters to check, nothing to propose."""

    kind: str | None = None
    expired_status = ev.QUEUED  # what a job whose claim lapsed becomes: handed out again

    @classmethod
    def check_params(cls, params):
        """Raise ValueError unless ``params`` is a valid definition of this kind.

        The one check of a definition: ``decide.create_experiment`` and ``update_experiment`` call it before
        writing (whether the definition came from the Python API or the command line), and the fold and the
        snapshot reader call it on what they read, so each refuses the same definition with the same message.
        It must refuse unknown keys rather than ignore them.
        """

    @classmethod
    def check_job(cls, params, hyperparameters):
        """Raise ValueError unless a job with ``hyperparameters`` may be added (or put) by hand."""

    @classmethod
    def on_add(cls, state):
        """Extra ``JobAdded`` fields (generation, parent, member) of a job added by hand."""
        return {}

    @classmethod
    def check_update(cls, state, job, status, results):
        """Raise ValueError unless ``status`` and ``results`` are acceptable for ``job`` (None: a job being added)."""

    @classmethod
    def propose(cls, state, now, rng, sample=None):
        """The job to hand out when no queued job waits, as a :mod:`schedy.core.outcomes` value.

        A ``Proposal`` is added and claimed in the same commit; ``Finished``
        marks the experiment DONE; ``Waiting`` and ``Empty`` refuse the
        request with a ``NoJobError`` that carries them. ``sample`` is the
        shell's sampler (a function from a :class:`bayes.SampleRequest` to a
        point), for the kinds that ask one.
        """
        return Empty("it has no queued job")


class ManualScheduler(Scheduler):
    """Hands out only the jobs queued by hand."""

    kind = "manual"

    @classmethod
    def check_params(cls, params):
        if params != {"scheduler": {"Manual": {}}}:
            raise ValueError(f"invalid manual search parameters {params!r}")


class RandomScheduler(Scheduler):
    """Samples a new job from the distributions when the queue is empty."""

    kind = "random"

    @staticmethod
    def distributions(params):
        """Return the dict of name -> Distribution of random-search parameters (shared: do not mutate)."""
        return parsed(params, _random_distributions)

    @classmethod
    def check_params(cls, params):
        cls.distributions(params)

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
    def propose(cls, state, now, rng, sample=None):
        hps = {name: values.encode(d.sample(rng)) for name, d in cls.distributions(state.params).items()}
        return Proposal({"hyperparameters": hps, "results": {}})


class PBTScheduler(Scheduler):
    """Population Based Training: each job is one training segment of a population member."""

    kind = "pbt"
    expired_status = ev.CRASHED  # the segment is redone from where it started, like a crash

    @classmethod
    def check_params(cls, params):
        parsed(params, pbt.Config.from_log)  # checks every key and value: see Config.from_log

    @classmethod
    def check_job(cls, params, hyperparameters):
        config = parsed(params, pbt.Config.from_log)
        missing = [n for n in config.explored() if n not in hyperparameters]
        if missing:
            raise ValueError(
                f"a job of this PBT experiment must carry the hyperparameters it explores: "
                f"missing {', '.join(map(repr, missing))}"
            )
        for name in config.explored():
            spec = config.explore if isinstance(config.explore, pbt.PB2) else config.explore[name]
            pbt.check_explorable(name, values.decode(hyperparameters[name]), spec, config)

    @classmethod
    def on_add(cls, state):
        return {"generation": 0, "parent": None, "member": len(state.members)}

    @classmethod
    def check_update(cls, state, job, status, results):
        if status != ev.DONE or (job is not None and job.member is None):
            return
        name = parsed(state.params, pbt.Config.from_log).result_name
        if name not in results:
            what = "a job added as DONE" if job is None else f"job {job.job_id!r}"
            raise ValueError(
                f"{what} of experiment {state.name!r} finished without its result {name!r}, "
                f"which PBT ranks members by; set job.results[{name!r}] before the job ends"
            )
        score = values.decode(results[name])
        if isinstance(score, bool) or not isinstance(score, (int, float)):
            raise ValueError(
                f"the result {name!r} of {'a new job' if job is None else 'job ' + repr(job.job_id)} "
                f"must be a number, got {score!r}"
            )

    @classmethod
    def propose(cls, state, now, rng, sample=None):
        return pbt.propose(state, now, rng, parsed(state.params, pbt.Config.from_log))


class ScoredScheduler(Scheduler):
    """A kind whose jobs are configurations of its distributions, each DONE with its score (halving, Bayesian)."""

    @classmethod
    def config(cls, params):
        """The parsed definition of ``params`` (shared: do not mutate)."""
        raise NotImplementedError

    @classmethod
    def label(cls):
        """The kind in the words of an error message."""
        return cls.kind

    @classmethod
    def score_use(cls):
        """What the score is for, in the words of an error message."""
        raise NotImplementedError

    @classmethod
    def scored(cls, job):
        """Whether ``job`` (None: a job being added) must finish with its score."""
        return True

    @classmethod
    def check_params(cls, params):
        cls.config(params)

    @classmethod
    def check_job(cls, params, hyperparameters):
        names = cls.config(params).distributions.keys()
        if set(names) != set(hyperparameters):
            raise ValueError(
                f"a job of {cls.label()} must have exactly the hyperparameters of its distributions "
                f"({', '.join(map(repr, names))}), got {', '.join(map(repr, hyperparameters)) or 'none'}"
            )

    @classmethod
    def check_update(cls, state, job, status, results):
        if status != ev.DONE or not cls.scored(job):
            return
        name = cls.config(state.params).result_name
        what = "a job added as DONE" if job is None else f"job {job.job_id!r}"
        if name not in results:
            raise ValueError(
                f"{what} of experiment {state.name!r} finished without its result {name!r}, which "
                f"{cls.score_use()}; set job.results[{name!r}] before the job ends"
            )
        score = values.decode(results[name])
        if isinstance(score, bool) or not isinstance(score, (int, float)) or score != score:
            raise ValueError(f"the result {name!r} of {what} must be a number, got {score!r}")


class HalvingScheduler(ScoredScheduler):
    """Successive halving (ASHA, Hyperband): each job trains one configuration up to one rung."""

    kind: str | None = None  # each subclass is one kind of halving.KINDS
    # A job whose claim lapsed is handed out again as it is: the same configuration, rung and parent
    # checkpoint, so a promotion whose worker died is redone from the checkpoint it was promoted from.
    expired_status = ev.QUEUED

    @classmethod
    def config(cls, params):
        """The :class:`halving.Config` of ``params`` (shared: do not mutate)."""
        return parsed(params, cls._parse)

    @classmethod
    def _parse(cls, params):
        return halving.Config.from_log(params, cls.kind)

    @classmethod
    def score_use(cls):
        return f"{cls.kind} ranks configurations by"

    @classmethod
    def scored(cls, job):
        return job is None or job.member is not None

    @classmethod
    def on_add(cls, state):
        return {"generation": 0, "parent": None, "member": len(state.members)}  # a new configuration

    @classmethod
    def propose(cls, state, now, rng, sample=None):
        return halving.propose(state, rng, cls.config(state.params))


class ASHAScheduler(HalvingScheduler):
    kind = "asha"


class HyperbandScheduler(HalvingScheduler):
    kind = "hyperband"


class BayesScheduler(ScoredScheduler):
    """Bayesian search: each new job is the answer of a sampler to every trial so far."""

    kind = bayes.KIND

    @classmethod
    def config(cls, params):
        """The :class:`bayes.Config` of ``params`` (shared: do not mutate)."""
        return parsed(params, bayes.Config.from_log)

    @classmethod
    def label(cls):
        return "a Bayesian search"

    @classmethod
    def score_use(cls):
        return "the sampler learns from"

    @classmethod
    def propose(cls, state, now, rng, sample=None):
        config = cls.config(state.params)
        spent = budget_spent(state, config.max_jobs)
        if spent is not None:
            return spent
        if sample is None:
            raise ValueError(f"experiment {state.name!r} is a Bayesian search: its decisions need a sampler")
        request = bayes.request(state, config, rng)
        fields = {"hyperparameters": request.hyperparameters(sample(request)), "results": {}}
        if request.generation is not None:
            fields["generation"] = request.generation
        return Proposal(fields)


SCHEDULERS = {
    s.kind: s
    for s in (ManualScheduler, RandomScheduler, PBTScheduler, ASHAScheduler, HyperbandScheduler, BayesScheduler)
}


def scheduler(kind):
    """Return the scheduler for ``kind``; raise ValueError for an unknown kind."""
    try:
        return SCHEDULERS[kind]
    except KeyError:
        raise ValueError(f"unknown experiment kind {kind!r}; known: {', '.join(sorted(SCHEDULERS))}") from None
