"""The documented API: SchedyDB, Experiment (ManualSearch, RandomSearch) and Job.

These objects are mutable views of a stream. Every method that reads catches
up with the log first; every method that writes goes through the append loop
(:class:`~schedy.adapters.stream.StreamView`), where the pure core decides.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from .. import audit, preemption, samplers
from ..core import bayes, decide, halving, pbt, values
from ..core import events as ev
from ..core.distributions import check_distributions
from ..core.schedulers import RandomScheduler, scheduler
from ..core.state import ExperimentState, JobState, fold, lineage
from ..errors import ExperimentNotFoundError, JobNotFoundError, Preempted, SchedyError, UnsafeUpdateError
from . import leases
from .bulk import collector_paused
from .export import job_frame
from .naming import check_name, stream_key
from .opening import _open_store, default_path
from .stream import FrozenView, StreamView

if TYPE_CHECKING:
    import pandas

    from ..core.codec import Commit
    from ..core.distributions import Distribution

ExperimentT = TypeVar("ExperimentT", bound="Experiment")


class SchedyDB:
    """A Schedy database: one log per experiment, in a directory or on object storage.

    ``path`` is a directory or ``file://`` URL, or ``s3://bucket/prefix``,
    ``gs://bucket/prefix``, ``az://container/prefix`` (the account from
    ``AZURE_STORAGE_ACCOUNT_NAME`` or the ``account_name`` option) or
    ``memory://name`` (in this process only). It defaults to ``$SCHEDY_DB``,
    else ``~/.local/share/schedy``. Object-store ``options`` (``endpoint``,
    ``region``, ``access_key_id``...) are passed to obstore; credentials also
    come from the usual environment variables and are never logged.
    ``worker`` names this worker in the log (default: host, pid and a random
    tag). On local disk every write is synced before it
    returns, except claims (synced with the next write: the workers a power
    failure could make them forget stopped with it); ``durable=False`` skips
    every sync: faster, but the last commits may be lost on power failure. A snapshot of each experiment is
    stored every ``snapshot_every`` commits (for experiments of more than 16 ×
    ``snapshot_every`` jobs, every sixteenth of their number of jobs). On
    local disk, new files are created with ``file_mode`` (default ``0o600``, directories ``0o700``: the
    owner only). ``clock`` (default ``time.time``) stamps commits and leases; ``monotonic`` (default
    ``time.monotonic``) times how long this process has watched a claim go unrenewed
    (:mod:`schedy.core.leases`): tests and simulations pass their own, to make time pass without waiting.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        worker: str | None = None,
        durable: bool = True,
        snapshot_every: int = 1000,
        file_mode: int = 0o600,
        clock: Callable[[], float] | None = None,
        monotonic: Callable[[], float] | None = None,
        **options: Any,
    ) -> None:
        if isinstance(snapshot_every, bool) or not isinstance(snapshot_every, int) or snapshot_every < 1:
            raise ValueError(f"snapshot_every must be a positive integer, got {snapshot_every!r}")
        if worker is not None and (not isinstance(worker, str) or not worker):
            raise TypeError(f"worker must be a non-empty string naming this worker, got {worker!r}")
        if worker is not None:
            values.encode(worker, "worker")  # refuses text that is not valid Unicode
        self.path, self._store = _open_store(
            default_path() if path is None else path, durable, snapshot_every, file_mode, options
        )
        for name, fn in (("clock", clock), ("monotonic", monotonic)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{name} must be a function returning seconds, got {fn!r}")
        self._clock = clock or time.time
        self._monotonic = monotonic or time.monotonic
        self._worker_name = worker
        self._tag = secrets.token_hex(3)  # fixed at open, so threads never see two ids; the pid changes on fork
        self._worker_id: tuple[int | None, str] = (None, "")

    @property
    def worker(self) -> str:
        """The worker id written into this object's commits and claims: ``host:pid:tag`` unless given."""
        if self._worker_name is not None:
            return self._worker_name
        pid = os.getpid()
        if self._worker_id[0] != pid:  # computed once per process: every commit asks for it
            self._worker_id = (pid, f"{socket.gethostname()}:{pid}:{self._tag}")
        return self._worker_id[1]

    def __repr__(self) -> str:
        return f"SchedyDB({str(self.path)!r})"

    def _view(self, name: str) -> StreamView:
        return StreamView(
            self._store, stream_key(name), name, lambda: self.worker, clock=self._clock, monotonic=self._monotonic
        )

    def add_experiment(self, exp: ExperimentT, exist_ok: bool = False) -> ExperimentT:
        """Create ``exp`` in the database and bind it; return it.

        If the name is taken, raise ResourceExistsError; with ``exist_ok``, use the stored experiment instead
        when its definition (kind, distributions and other parameters, lease, and the seed if ``exp`` has one)
        is the same, so that every worker can run the same script: ``exp`` is bound to it and takes its
        status and seed. A different definition raises ResourceExistsError naming what differs.
        """
        if not isinstance(exp, Experiment) or exp._kind is None:
            raise TypeError("add_experiment needs a ManualSearch, RandomSearch or PopulationBasedTraining")
        if exp._view is not None:
            raise ValueError(
                f"experiment {exp.name!r} is already in {exp._db!r}; create a new object to add it elsewhere"
            )
        name = check_name(exp.name)
        status = ev.check_experiment_status(exp.status)
        params = exp._params()
        seed = _check_seed(exp.seed) if exp.seed is not None else secrets.randbits(63)
        any_seed = exp.seed is None
        view = self._view(name)
        lease = ev.check_lease(exp.lease)
        _, state = view.transact(
            lambda s, v, now, lapsed: decide.create_experiment(
                s,
                name=name,
                kind=exp._kind,
                params=params,
                status=status,
                seed=seed,
                lease=lease,
                exist_ok=exist_ok,
                any_seed=any_seed,
            )
        )
        exp.seed = state.seed
        exp.status = state.status
        exp._bind(self, view)
        return exp

    def get_experiment(self, name: str, as_of: int | float | str | datetime | None = None) -> Experiment:
        """Return the experiment ``name``, rebuilt from the log, as its own subclass.

        With ``as_of``, return it as it was at that moment of its log, read
        only (writing raises ReadOnlyError): an int is a commit version (the
        state right after that commit), a float a Unix time, a datetime or
        ISO 8601 string a time (UTC unless it says otherwise). By time, the
        state is the one after the last commit stamped at or before it.
        """
        view = self._view(name)
        if as_of is not None:
            moment = audit.as_of_point(as_of)
            commits = view.commits()
            if not commits:
                raise ExperimentNotFoundError(f"no experiment named {name!r}")
            try:
                commits = audit.commits_until(commits, moment)
            except ValueError as e:
                raise ValueError(f"experiment {name!r}: {e}") from None
            state = fold(commits, None, f"experiment {name!r}")
            if state is None or state.name != name or state.deleted:
                raise ExperimentNotFoundError(f"no experiment named {name!r} as of {moment}")
            return _from_state(self, FrozenView(name, state, commits, moment))
        state = view.refresh()
        if state is None or state.name != name:
            state = None
        decide.require(state, name)
        return _from_state(self, view)

    def get_experiments(self) -> Iterator[Experiment]:
        """Iterate over every experiment in the database, in the order of their store keys."""
        for key in self._store.keys():  # noqa: SIM118 - a store, not a dict
            view = StreamView(self._store, key, key, lambda: self.worker, clock=self._clock, monotonic=self._monotonic)
            state = view.refresh()
            if state is not None and not state.deleted:
                view.label = state.name
                yield _from_state(self, view)


def _check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ValueError(f"an experiment seed must be an integer in [0, 2**63), got {seed!r}")
    return seed


class Experiment:
    """Base class of experiments; create a :class:`ManualSearch` or :class:`RandomSearch`.

    ``status`` is ``Experiment.RUNNING`` or ``Experiment.DONE``; ``seed``
    (default: drawn at random when the experiment is added, then recorded)
    makes every sampled value reproducible. ``lease`` is how many seconds a
    claim lasts unless renewed (default 120): a job whose worker stopped
    renewing it is handed out again.
    """

    RUNNING = ev.RUNNING
    DONE = ev.DONE
    _kind: str | None = None
    _db: SchedyDB | None
    _view: StreamView | FrozenView | None

    def __init__(self, name: str, status: str = RUNNING, seed: int | None = None, lease: float | None = None) -> None:
        self.name = check_name(name)
        self.status = ev.check_experiment_status(status)
        self.seed = None if seed is None else _check_seed(seed)
        self.lease = ev.DEFAULT_LEASE if lease is None else ev.check_lease(lease)
        self._db = None
        self._view = None
        self._synced: tuple[Any, Any, Any] = (None, None, None)  # status, params, lease as the log had them

    # -- log form of the definition (each kind overrides these two) --
    def _params(self) -> dict:
        raise NotImplementedError

    def _load_params(self, params: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return (
            type(self) is type(other)
            and self.name == other.name
            and self.status == other.status
            and self.seed == other.seed
            and self.lease == other.lease
            and self._params() == other._params()
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, status={self.status!r})"

    def _bind(self, db: SchedyDB, view: StreamView | FrozenView) -> None:
        state = decide.require(view.state, self.name)
        self._db, self._view = db, view
        self._created = state.created
        self._synced = (state.status, state.params, state.lease)

    def _sync(self, state: ExperimentState | None = None) -> ExperimentState | None:
        """Adopt the log's status and parameters, except where this object holds unpushed changes."""
        state = state or self._require_db().state
        if state is None or state.deleted or state.created != self._created:
            return state  # this object's experiment is gone: keep its attributes as they were
        synced_status, synced_params, synced_lease = self._synced
        if self.status == synced_status:
            self.status = state.status
        if self.lease == synced_lease:
            self.lease = state.lease
        if state.params != synced_params and self._params() == synced_params:
            self._load_params(state.params)
        self._synced = (state.status, state.params, state.lease)
        return state

    def _require_db(self) -> StreamView | FrozenView:
        if self._view is None:
            raise SchedyError(f"experiment {self.name!r} is not in a database yet; call db.add_experiment(exp) first")
        return self._view

    def _worker(self) -> str:
        """The id of the worker this object writes as (the database's)."""
        self._require_db()
        assert self._db is not None  # bound together with the view
        return self._db.worker

    def _refresh(self) -> ExperimentState | None:
        self._require_db().refresh()
        return self._sync()

    def _transact(
        self, decision: Callable[..., decide.Decision], cached_ok: bool = False
    ) -> tuple[Any, ExperimentState]:
        """Run ``decision`` through the append loop; return its value and the state right after it."""
        view = self._require_db()
        try:
            value, state = view.transact(decision, cached_ok)
        finally:
            self._sync()
        return value, state

    def add_job(
        self,
        hyperparameters: Mapping[str, Any] | None = None,
        status: str = ev.QUEUED,
        results: Mapping[str, Any] | None = None,
    ) -> Job:
        """Add a job; it is handed out by ``next_job()`` while its status is QUEUED. Return the Job."""
        hps = values.encode_mapping(hyperparameters, "hyperparameters")
        res = values.encode_mapping(results, "results")
        ev.check_job_status(status)
        self._require_db()
        name, created = self.name, self._created
        job_id, state = self._transact(
            lambda s, v, now, lapsed: decide.add_job(
                s, name=name, hyperparameters=hps, status=status, results=res, incarnation=created
            )
        )
        return Job._from_state(self, state.jobs[job_id])

    def next_job(self, wait: bool | float | None = None) -> Job:
        """Claim the next job for this worker and return it (RUNNING); raise NoJobError if there is none.

        Use it as ``with exp.next_job() as job:``: the job is marked DONE when
        the block ends, CRASHED if it raises, and its results are pushed.

        ``wait=True`` asks again, with growing pauses (up to 2 s), for as long
        as a job may still come: while every PBT member is training elsewhere
        or a synchronous population finishes its generation, or while the
        queue is empty but jobs run (a worker that dies gives its job back
        when its lease lapses). ``wait=<seconds>`` waits at most that long.
        NoJobError comes once the experiment is finished, or nothing queued,
        running or to propose is left (see :mod:`schedy.adapters.waiting`).
        """
        if wait is not None and wait is not False:
            from . import waiting

            return waiting.next_job(self, wait)
        name, worker, created = self.name, self._worker(), self._created
        sample = self._sampler_answering_first(worker)
        # Told to stop while claiming, the worker gives the job back now, not when its lease lapses.
        with preemption.claiming() as claim:
            job_id, state = self._transact(
                lambda s, v, now, lapsed: decide.next_job(
                    s, name=name, worker=worker, version=v, now=now, incarnation=created, lapsed=lapsed, sample=sample
                )
            )
            claim.job = Job._from_state(self, state.jobs[job_id])
        return claim.job

    def _sampler_answering_first(self, worker: str) -> Callable[[bayes.SampleRequest], dict]:
        """The sampler of the decision made under the store's lock (a Bayesian search's, else unused).

        A sampler takes tens of milliseconds, too long to hold the lock for. So the decision is first made on
        the state read without the lock, and its request answered then; under the lock, a request equal to that
        one (the log has not moved) gets the same answer at once, as the sampler would give it again, and only
        a request made on a log that moved meanwhile is answered there.
        """
        if self._kind != bayes.KIND:
            return samplers.suggest
        answered: list[tuple[bayes.SampleRequest, dict]] = []

        def record(request: bayes.SampleRequest) -> dict:
            point = samplers.suggest(request)
            answered.append((request, point))
            return point

        state = self._refresh()
        if state is not None:
            try:
                clock = self._db._clock if self._db is not None else time.time
                decide.next_job(
                    state,
                    name=self.name,
                    worker=worker,
                    version=state.version + 1,
                    now=clock(),
                    incarnation=self._created,
                    sample=record,
                )
            except (SchedyError, ValueError):
                pass  # no job to propose now, or none of this experiment: the decision under the lock says why

        def sample(request: bayes.SampleRequest) -> dict:
            for asked, point in answered:
                if asked == request:
                    return point
            return samplers.suggest(request)

        return sample

    def get_job(self, job_id: str) -> Job:
        """Return the job ``job_id``; raise JobNotFoundError if there is none."""
        state = self._refresh()
        return Job._from_state(self, decide.require_job(state, self.name, job_id, self._created))

    def all_jobs(self) -> list[Job]:
        """Return every job of the experiment, in the order they were added."""
        state = decide.require(self._refresh(), self.name, self._created)
        with collector_paused():
            make = Job._from_state
            return [make(self, j) for j in sorted(state.jobs.values(), key=_number)]

    def lineage(self, job_id: str) -> list[Job]:
        """The chain of jobs from generation 0 to ``job_id``, each continuing from the one before.

        With PBT this is the hyperparameter schedule that produced a model:
        ``[j.hyperparameters for j in exp.lineage(best.job_id)]``.
        """
        state = self._refresh()
        decide.require_job(state, self.name, job_id, self._created)
        return [Job._from_state(self, j) for j in lineage(state, job_id)]

    @property
    def as_of(self) -> int | None:
        """The commit version this object shows if it was opened ``as_of`` a past moment (read only), else None."""
        view = self._view
        return view.state.version if isinstance(view, FrozenView) else None

    def history(self, job_id: str | None = None) -> list[Commit]:
        """Every commit of this experiment, oldest first: ``Commit(version, time, worker, events)``.

        ``time`` is in seconds since the Unix epoch; ``events`` are dicts in
        the log's form (docs/log-format.md). With ``job_id``, only the commits
        about that job, each with only its events about that job. The history
        starts at the commit that created this experiment (an older
        experiment of the same name is not included) and, when opened
        ``as_of``, ends at that moment.
        """
        view = self._require_db()
        commits = audit.incarnation(view.commits(), self._created)
        if job_id is None:
            return commits
        if not isinstance(job_id, str):
            raise TypeError(f"a job id is a string such as '1', got {type(job_id).__name__} {job_id!r}")
        mine = [c for c in (audit.about_job(c, job_id) for c in commits) if c is not None]
        if not mine:
            raise JobNotFoundError(f"experiment {self.name!r} never had a job {job_id!r}")
        return mine

    def _job_rows(self) -> list[dict]:
        """One dict per job (see :func:`schedy.core.audit.job_rows`), from one reading of the log."""
        view = self._require_db()
        commits = view.commits()
        # Fold from commit 1: an incarnation's commits alone do not start at version 1.
        state = fold(commits, None, f"experiment {self.name!r}")
        decide.require(state, self.name, self._created)
        return audit.job_rows(state, audit.incarnation(commits, self._created))

    def to_dataframe(self) -> pandas.DataFrame:
        """A pandas DataFrame with one row per job, in the order jobs were added (needs ``schedy[export]``).

        Columns: ``job_id``, ``status``, ``generation``, ``parent_id``,
        ``member``, ``added_at``, ``claimed_at`` (the last claim),
        ``claimed_by``, ``finished_at`` (when it last became DONE, CRASHED or
        PRUNED), ``claims``, ``lease_expiries``, then ``hp.<name>`` for each
        hyperparameter and ``result.<name>`` for each result. Times are UTC
        pandas timestamps (microseconds); ``generation``, ``member`` and
        integer hyperparameters and results are nullable integers (``Int64``),
        so a job without a value does not turn the others into floats.
        """
        return job_frame(self._job_rows(), halving=isinstance(self, ASHA))

    def push_updates(self) -> None:
        """Write the attributes changed on this object (``status``, ``lease``, distributions...) to the log."""
        view = self._require_db()
        status = ev.check_experiment_status(self.status)
        params = self._params()
        lease = ev.check_lease(self.lease)
        synced_status, synced_params, synced_lease = self._synced
        new_status = status if status != synced_status else None
        new_params = params if params != synced_params else None
        new_lease = lease if lease != synced_lease else None
        name, created = self.name, self._created
        _, state = view.transact(
            lambda s, v, now, lapsed: decide.update_experiment(
                s, name=name, status=new_status, params=new_params, incarnation=created, lease=new_lease
            )
        )
        self._synced = (state.status, state.params, state.lease)
        self._sync(state)

    def delete(self, ensure: bool = True) -> None:
        """Delete the experiment (its history stays in the log); with ``ensure``, raise if it is already gone."""
        view = self._require_db()
        name, created = self.name, self._created
        view.transact(
            lambda s, v, now, lapsed: decide.delete_experiment(s, name=name, ensure=ensure, incarnation=created)
        )


class ManualSearch(Experiment):
    """An experiment whose jobs are all queued by hand; ``next_job()`` hands them out oldest first."""

    _kind = "manual"

    def _params(self) -> dict:
        return {"scheduler": {"Manual": {}}}

    def _load_params(self, params: Mapping[str, Any]) -> None:
        pass


class RandomSearch(Experiment):
    """Random search: hands out queued jobs first, else a new job sampled from ``distributions``.

    ``distributions`` maps each hyperparameter name to a distribution of
    :mod:`schedy.random`. A job added by hand must have exactly these names.
    """

    _kind = "random"

    def __init__(
        self,
        name: str,
        distributions: Mapping[str, Distribution],
        status: str = Experiment.RUNNING,
        seed: int | None = None,
        lease: float | None = None,
    ) -> None:
        super().__init__(name, status, seed, lease)
        self.distributions = check_distributions(distributions)

    def _params(self) -> dict:
        dists = check_distributions(self.distributions)
        return {"scheduler": {"RandomSearch": {"distributions": {n: d.to_log() for n, d in dists.items()}}}}

    def _load_params(self, params: Mapping[str, Any]) -> None:
        self.distributions = dict(RandomScheduler.distributions(params))


class PopulationBasedTraining(Experiment):
    """Population Based Training: each job is one training segment of a member of the population.

    ``objective`` is ``schedy.pbt.MINIMIZE`` or ``MAXIMIZE`` and
    ``result_name`` the result ranked by. ``exploit`` (``Truncate``,
    ``BinaryTournament`` or ``Keep``) decides when a member continues from a
    better one; ``explore`` maps hyperparameter names to ``Perturb``,
    ``Resample``, ``AddNoise`` or a list of them, applied to what was copied,
    or is a ``schedy.pbt.PB2(bounds)`` bandit. With ``initial_distributions``
    and ``population_size``, the first ``population_size`` jobs are sampled;
    otherwise the jobs you add form the population. Each member trains at
    most ``max_generations`` segments. ``ranking`` (``SAME_GENERATION``, the
    default, or ``LATEST``) says which segments a member is ranked against;
    with ``synchronous``, no member starts generation g + 1 before every
    member has finished generation g. See docs/pbt.md.
    """

    _kind = "pbt"

    def __init__(
        self,
        name: str,
        objective: str,
        result_name: str,
        exploit: pbt.Exploit,
        explore: Mapping[str, pbt.Explore | list[pbt.Explore]] | pbt.PB2 | None = None,
        initial_distributions: Mapping[str, Distribution] | None = None,
        population_size: int | None = None,
        status: str = Experiment.RUNNING,
        max_generations: int | None = None,
        seed: int | None = None,
        lease: float | None = None,
        ranking: str = pbt.SAME_GENERATION,
        synchronous: bool = False,
    ) -> None:
        super().__init__(name, status, seed, lease)
        self.objective = objective
        self.result_name = result_name
        self.exploit = exploit
        self.explore = {} if explore is None else explore
        self.initial_distributions = {} if initial_distributions is None else initial_distributions
        self.population_size = population_size
        self.max_generations = max_generations
        self.ranking = ranking
        self.synchronous = synchronous
        self._params()  # refuse a bad definition now, not when it is added

    def _config(self) -> pbt.Config:
        explore = self.explore
        if isinstance(explore, dict):
            explore = {n: list(v) if isinstance(v, tuple) else v for n, v in explore.items()}
        elif not isinstance(explore, pbt.PB2):
            raise TypeError(
                f"explore must be a dict of hyperparameter name -> strategy, or schedy.pbt.PB2(...), "
                f"got {type(explore).__name__}"
            )
        return pbt.Config(
            self.objective,
            self.result_name,
            self.exploit,
            explore,
            check_distributions(self.initial_distributions),
            self.population_size,
            self.max_generations,
            self.ranking,
            self.synchronous,
        )

    def _params(self) -> dict:
        return self._config().to_log()

    def _load_params(self, params: Mapping[str, Any]) -> None:
        c = pbt.Config.from_log(params)
        self.objective, self.result_name, self.exploit = c.objective, c.result_name, c.exploit
        if isinstance(c.explore, pbt.PB2):
            self.explore = c.explore
        else:
            self.explore = {n: list(v) if isinstance(v, list) else v for n, v in c.explore.items()}
        self.initial_distributions = dict(c.initial_distributions)
        self.population_size, self.max_generations = c.population_size, c.max_generations
        self.ranking, self.synchronous = c.ranking, c.synchronous


class ASHA(Experiment):
    """Asynchronous successive halving (ASHA): each job trains one configuration up to one rung.

    New configurations are sampled from ``distributions`` and trained to
    ``min_resource`` (rung 0). When a worker asks for work, the best
    configuration in the top ``1 / reduction_factor`` of the highest rung
    that has one not yet promoted is promoted: a new job of the same
    configuration at the next rung (``job.rung``), to be trained to
    ``job.resource`` from the checkpoint of ``job.parent_id``; rung k trains
    to ``min_resource * reduction_factor ** k``, the last to ``max_resource``.
    Jobs are ranked by their result ``result_name`` (``objective``:
    ``schedy.pbt.MINIMIZE`` or ``MAXIMIZE``). With ``max_jobs``, no more than
    that many jobs are handed out, promotions included, and the experiment
    becomes DONE once they are finished. See docs/asha.md.
    """

    _kind = "asha"

    def __init__(
        self,
        name: str,
        distributions: Mapping[str, Distribution],
        result_name: str,
        objective: str = pbt.MINIMIZE,
        min_resource: float = 1,
        max_resource: float = 81,
        reduction_factor: float = 3,
        status: str = Experiment.RUNNING,
        seed: int | None = None,
        max_jobs: int | None = None,
        lease: float | None = None,
    ) -> None:
        super().__init__(name, status, seed, lease)
        self.distributions = dict(distributions) if isinstance(distributions, Mapping) else distributions
        self.result_name = result_name
        self.objective = objective
        self.min_resource = min_resource
        self.max_resource = max_resource
        self.reduction_factor = reduction_factor
        self.max_jobs = max_jobs
        self._params()  # refuse a bad definition now, not when it is added

    def _config(self) -> halving.Config:
        return halving.Config(
            self._kind or "",
            check_distributions(self.distributions),
            self.result_name,
            self.objective,
            self.min_resource,
            self.max_resource,
            self.reduction_factor,
            self.max_jobs,
        )

    def _params(self) -> dict:
        return self._config().to_log()

    def _load_params(self, params: Mapping[str, Any]) -> None:
        c = halving.Config.from_log(params, self._kind or "")
        self.distributions = dict(c.distributions)
        self.result_name, self.objective = c.result_name, c.objective
        self.min_resource, self.max_resource, self.reduction_factor = c.min_resource, c.max_resource, c.reduction_factor
        self.max_jobs = c.max_jobs


class Hyperband(ASHA):
    """Hyperband, run asynchronously: several brackets of ASHA that start at different resources.

    Bracket b starts its configurations at rung b of the ladder of
    :class:`ASHA` (``min_resource * reduction_factor ** b``), so the least
    aggressive bracket trains every configuration to ``max_resource``. Each new
    configuration goes to a bracket in turn, in Hyperband's proportions, and
    promotions happen within a bracket by ASHA's rule. Same arguments as
    :class:`ASHA`. See docs/asha.md.
    """

    _kind = "hyperband"


class BayesianSearch(Experiment):
    """Bayesian search: each new job is proposed by a model-based sampler from every job so far.

    The sampler (``sampler``: ``"tpe"``, Optuna's Tree-structured Parzen
    Estimator; ``"cmaes"``, CMA-ES replayed from the log; ``"qmc"``, a
    quasi-random sequence; or ``"random"``; ``sampler_options`` as in
    ``schedy.core.bayes.SAMPLERS``) is fed the experiment's DONE jobs with
    their result ``result_name`` (``objective``: ``schedy.pbt.MINIMIZE`` or
    ``MAXIMIZE``), its running jobs as pending (so that parallel workers are
    not all proposed the same point), and its crashed and pruned ones, and is
    seeded from the decision: the same log gives the same proposal. Only
    ``Uniform``, ``LogUniform``, unweighted ``Choice`` and ``Constant``
    distributions can be searched. Needs ``schedy[optuna]``. With
    ``max_jobs``, no more than that many jobs are handed out and the
    experiment becomes DONE once they are finished.
    """

    _kind = "bayesian"

    def __init__(
        self,
        name: str,
        distributions: Mapping[str, Distribution],
        result_name: str,
        objective: str = pbt.MINIMIZE,
        sampler: str = "tpe",
        sampler_options: Mapping[str, Any] | None = None,
        status: str = Experiment.RUNNING,
        seed: int | None = None,
        max_jobs: int | None = None,
        lease: float | None = None,
    ) -> None:
        super().__init__(name, status, seed, lease)
        self.distributions = dict(distributions) if isinstance(distributions, Mapping) else distributions
        self.result_name = result_name
        self.objective = objective
        self.sampler = sampler
        self.sampler_options = dict(sampler_options) if sampler_options is not None else {}
        self.max_jobs = max_jobs
        self._params()  # refuse a bad definition now, not when it is added

    def _config(self) -> bayes.Config:
        return bayes.Config(
            check_distributions(self.distributions),
            self.result_name,
            self.objective,
            self.sampler,
            dict(self.sampler_options),
            self.max_jobs,
        )

    def _params(self) -> dict:
        return self._config().to_log()

    def _load_params(self, params: Mapping[str, Any]) -> None:
        c = bayes.Config.from_log(params)
        self.distributions = dict(c.distributions)
        self.result_name, self.objective, self.sampler = c.result_name, c.objective, c.sampler
        self.sampler_options, self.max_jobs = dict(c.sampler_options), c.max_jobs


KINDS = {
    cls._kind: cls for cls in (ManualSearch, RandomSearch, PopulationBasedTraining, ASHA, Hyperband, BayesianSearch)
}


def _from_state(db: SchedyDB, view: StreamView | FrozenView) -> Experiment:
    state = decide.require(view.state, view.label)
    cls = KINDS.get(state.kind)
    if cls is None:
        raise SchedyError(
            f"experiment {state.name!r} is of kind {state.kind!r}, which this version of Schedy does not know"
        )
    exp = cls.__new__(cls)
    exp.name, exp.status, exp.seed, exp.lease = state.name, state.status, state.seed, state.lease
    exp._load_params(state.params)
    exp._bind(db, view)
    return exp


def _number(job_state: JobState) -> int:
    return job_state.number


class JobValues(dict):
    """A job's hyperparameters or results: a dict that refuses at once a value the log cannot store.

    Setting an item (``job.results["model_path"] = path``), ``update`` and ``setdefault`` check the value
    and raise TypeError or ValueError naming the key, so that a training run never learns only at its final
    report that a result cannot be saved. (A value changed in place, such as a list appended to, is
    checked when the job is written.)
    """

    def __init__(self, data: Any = (), where: str = "results") -> None:
        super().__init__(data)
        self.where = where

    def _check(self, key: object, value: object) -> None:
        if not isinstance(key, str):
            raise TypeError(f"{self.where}: names are strings, got {type(key).__name__} {key!r}")
        values.encode(value, f"{self.where}[{key!r}]")

    def __setitem__(self, key: str, value: Any) -> None:
        self._check(key, value)
        super().__setitem__(key, value)

    def update(self, *args: Any, **kwargs: Any) -> None:
        new = dict(*args, **kwargs)
        for k, v in new.items():
            self._check(k, v)
        super().update(new)

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def __ior__(self, other: Any) -> JobValues:  # type: ignore[misc]  # dict's |= takes what update takes
        self.update(other)
        return self

    def __reduce__(self) -> tuple:
        return (type(self), (dict(self), self.where))


def _job_values(value: Mapping[str, Any] | None, where: str) -> JobValues:
    """``value`` (a dict of name -> value, or None) checked whole and wrapped as JobValues."""
    values.encode_mapping(value, where)
    return JobValues({} if value is None else value, where)


class Job:
    """One job of an experiment: a set of hyperparameters, its results and its status.

    Get jobs from ``Experiment.next_job``, ``add_job``, ``get_job`` or
    ``all_jobs``; change ``status``, ``hyperparameters`` or ``results`` and
    call :meth:`put` to write them.
    """

    QUEUED = ev.QUEUED
    RUNNING = ev.RUNNING
    CRASHED = ev.CRASHED
    PRUNED = ev.PRUNED
    DONE = ev.DONE

    def __init__(
        self,
        job_id: str,
        experiment: Experiment,
        hyperparameters: Mapping[str, Any] | None,
        status: str = QUEUED,
        results: Mapping[str, Any] | None = None,
        generation: int | None = None,
        parent_id: str | None = None,
    ) -> None:
        self._fill(
            job_id,
            experiment,
            status,
            _job_values(hyperparameters, "hyperparameters"),
            _job_values(results, "results"),
            generation,
            parent_id,
            None,
            None,
        )

    @classmethod
    def _from_state(cls, exp: Experiment, js: JobState) -> Job:
        """The job ``js`` (a JobState) as a Job of ``exp``; its values came from the log, so are not checked again."""
        job = object.__new__(cls)  # no __init__: all_jobs() builds 100,000 of these at a time
        job._fill(
            js.job_id,
            exp,
            js.status,
            JobValues(values.decode_mapping(js.hyperparameters), "hyperparameters"),
            JobValues(values.decode_mapping(js.results), "results"),
            js.generation,
            js.parent,
            js.member,
            js,
        )
        return job

    def _fill(
        self,
        job_id: str,
        experiment: Experiment,
        status: str,
        hyperparameters: JobValues,
        results: JobValues,
        generation: int | None,
        parent_id: str | None,
        member: int | None,
        read: JobState | None,
    ) -> None:
        """Set every attribute of a Job: the one place they are set, whichever way it is built."""
        self.job_id, self.experiment, self.status = job_id, experiment, status
        self._hyperparameters, self._results = hyperparameters, results
        self.generation, self.parent_id, self.member = generation, parent_id, member
        self._read = read  # the job as the log had it when this object last read or wrote it (a JobState)
        self._version = None if read is None else read.version
        self._lease_lost = None  # why this worker lost the job while its `with` block ran, if it did

    @property
    def rung(self) -> int | None:
        """ASHA and Hyperband: the rung this job trains its configuration to (0: a new one); else None."""
        return self.generation if isinstance(self.experiment, ASHA) else None

    @property
    def resource(self) -> float | None:
        """ASHA and Hyperband: the resource to train this job's configuration to, in all; else None.

        A promoted job (``parent_id`` set) continues from its parent's checkpoint, which was trained to the
        parent's resource; the unit (epochs, steps...) is the one ``min_resource`` and ``max_resource`` use.
        """
        exp = self.experiment
        if not isinstance(exp, ASHA) or self.member is None or self.generation is None:
            return None
        # The definition in the log (parsed once per version of it), which the decisions used: not this object's
        # attributes, which may hold changes not pushed yet.
        view = exp._view
        state = view.state if view is not None else None
        config = scheduler(exp._kind or "").config(state.params) if state is not None else exp._config()
        return config.resource_of(self.member, self.generation)

    @property
    def hyperparameters(self) -> JobValues:
        """The job's hyperparameters (a :class:`JobValues`: values the log cannot store are refused when set)."""
        return self._hyperparameters

    @hyperparameters.setter
    def hyperparameters(self, value: Mapping[str, Any] | None) -> None:
        self._hyperparameters = _job_values(value, "hyperparameters")

    @property
    def results(self) -> JobValues:
        """The job's results (a :class:`JobValues`: values the log cannot store are refused when set)."""
        return self._results

    @results.setter
    def results(self, value: Mapping[str, Any] | None) -> None:
        self._results = _job_values(value, "results")

    def __repr__(self) -> str:
        return (
            f"Job(id={self.job_id!r}, experiment={self.experiment.name!r}, status={self.status!r}, "
            f"hyperparameters={self.hyperparameters!r}, results={self.results!r})"
        )

    def _adopt(self, state: ExperimentState) -> None:
        js = state.jobs[self.job_id]
        self.status, self._version, self._read = js.status, js.version, js

    def _context(self) -> tuple[str, str, float]:
        exp = self.experiment
        return exp.name, exp._worker(), exp._created

    def put(self, safe: bool = True) -> None:
        """Write this job's status, hyperparameters and results.

        With ``safe``, raise UnsafeUpdateError (writing nothing) if the job
        changed in the log since this object last read or wrote it, except
        when this worker still holds the claim it held then: its changes are
        then merged into the log's, field by field (each result and each
        hyperparameter by name, and the status), and only a field changed on
        both sides to different values is refused, by name. So a note another
        process adds to a running job does not cost the holder its report.
        """
        exp = self.experiment
        hps = values.encode_mapping(self.hyperparameters, "hyperparameters")
        res = values.encode_mapping(self.results, "results")
        status = ev.check_job_status(self.status)
        expected = (self._version or 0) if safe else None
        base = self._read if safe else None
        name, worker, created = self._context()
        job_id = self.job_id
        _, state = exp._transact(
            lambda s, v, now, lapsed: decide.update_job(
                s,
                name=name,
                job_id=job_id,
                worker=worker,
                status=status,
                hyperparameters=hps,
                results=res,
                expected_version=expected,
                incarnation=created,
                now=now,
                lapsed=lapsed,
                base=base,
            )
        )
        self._adopt(state)
        js = state.jobs[job_id]
        if (js.hyperparameters, js.results) != (hps, res):  # merged with another writer's changes: show them
            self._hyperparameters = JobValues(values.decode_mapping(js.hyperparameters), "hyperparameters")
            self._results = JobValues(values.decode_mapping(js.results), "results")

    def release(self) -> None:
        """Give this job back unfinished, for another worker to take at once.

        For a worker told to stop (preempted, cancelled, interrupted), not failed: the job goes to the front of
        the queue with its results as this object holds them (a checkpoint to resume from, say), and keeps its
        hyperparameters (and, for PBT and ASHA, the checkpoint it continues from). Raise UnsafeUpdateError if
        this worker does not hold the job. ``with job:`` calls it when the block raises
        :class:`schedy.errors.Preempted`, KeyboardInterrupt or SystemExit.
        """
        res = values.encode_mapping(self.results, "results")
        name, worker, created = self._context()
        job_id = self.job_id
        _, state = self.experiment._transact(
            lambda s, v, now, lapsed: decide.release_job(
                s, name=name, job_id=job_id, worker=worker, results=res, incarnation=created, now=now, lapsed=lapsed
            )
        )
        self._adopt(state)

    def _give_back(self) -> None:
        """:meth:`release` for a worker that stops: if it cannot be written, say so, and let the lease lapse."""
        leases.keeper.release(self)  # held already if the stop came at the end of `with job:`'s start
        try:
            self.release()
        except Exception as e:  # noqa: BLE001 - the stop goes on; the job is handed out again when its lease lapses
            logging.getLogger("schedy").warning(
                "job %r of experiment %r could not be released (%s): it is handed out again once its lease lapses",
                self.job_id,
                self.experiment.name,
                e,
            )

    def try_run(self) -> None:
        """Claim this job (status RUNNING) for this worker.

        Raise UnsafeUpdateError if another worker holds it or it changed in the log since this object read it.
        """
        name, worker, created = self._context()
        job_id, expected = self.job_id, self._version or 0
        _, state = self.experiment._transact(
            lambda s, v, now, lapsed: decide.claim_job(
                s,
                name=name,
                job_id=job_id,
                worker=worker,
                expected_version=expected,
                incarnation=created,
                now=now,
                lapsed=lapsed,
            )
        )
        self._adopt(state)

    def delete(self, ensure: bool = True) -> None:
        """Delete this job; with ``ensure``, raise JobNotFoundError if it is already gone."""
        name, _, created = self._context()
        job_id = self.job_id
        self.experiment._transact(
            lambda s, v, now, lapsed: decide.delete_job(s, name=name, job_id=job_id, ensure=ensure, incarnation=created)
        )

    def _renew(self) -> None:
        """Extend this worker's lease on the job; raise UnsafeUpdateError if it lost the job."""
        name, worker, created = self._context()
        job_id, claimed_at = self.job_id, self._claimed_at
        self.experiment._transact(
            lambda s, v, now, lapsed: decide.heartbeat(
                s,
                name=name,
                job_id=job_id,
                worker=worker,
                now=now,
                incarnation=created,
                claimed_at=claimed_at,
                lapsed=lapsed,
            )
        )

    def __enter__(self) -> Job:
        """Start work on the job: claim it unless this worker already holds it (see :meth:`try_run`); return it.

        Until the block ends, the lease of the claim is renewed every quarter
        of the experiment's lease (by one daemon thread for all the jobs of the
        process: :mod:`schedy.adapters.leases`).
        """
        name, worker, created = self._context()
        job_id, expected = self.job_id, self._version or 0
        with preemption.claiming() as claim:  # a stop signal until the block runs gives the job back, as in it
            _, state = self.experiment._transact(
                lambda s, v, now, lapsed: decide.enter_job(
                    s,
                    name=name,
                    job_id=job_id,
                    worker=worker,
                    expected_version=expected,
                    incarnation=created,
                    now=now,
                    lapsed=lapsed,
                ),
                cached_ok=True,
            )
            self._adopt(state)
            claim.job = self
            self._claimed_at = state.jobs[job_id].claimed_at
            self._lease_lost = None
            self._lease_lock = threading.Lock()  # a renewal and the end of the `with` block never overlap
            leases.keeper.hold(self)
            return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> Literal[False]:
        """Mark the job DONE, or CRASHED if the block raised (the exception propagates); push it with :meth:`put`.

        A worker told to stop is not a failure: if the block raised :class:`schedy.errors.Preempted`,
        KeyboardInterrupt or SystemExit, the job is given back (:meth:`release`) for another worker to take
        at once, with the results reported so far.

        If the report cannot be written for any reason but a lost claim (UnsafeUpdateError: another worker
        has the job now), the job is recorded CRASHED instead, with the results that can be stored and the
        reason as the result ``schedy_error``, and the error raised says what was kept.
        """
        leases.keeper.release(self)
        if exc_type is not None and issubclass(exc_type, (Preempted, KeyboardInterrupt, SystemExit)):
            self._give_back()
            return False
        self.status = ev.CRASHED if exc_type is not None else ev.DONE
        try:
            self.put()
        except UnsafeUpdateError as e:
            if not self._still_held():  # the claim was lost: the job is another worker's now
                if self._lease_lost is not None:  # the heartbeat saw it go: say when, and why
                    raise UnsafeUpdateError(
                        f"{e} (this worker lost the job while the block ran: its lease renewal "
                        f"was refused: {self._lease_lost})"
                    ) from e
                raise
            self._report_crash(e, conflict=True)
        except Exception as e:
            self._report_crash(e)
        return False

    def _still_held(self) -> bool:
        """Whether this worker still holds the claim this object read (after reading the log again)."""
        state = self.experiment._refresh()
        js = state.jobs.get(self.job_id) if state is not None else None
        read = self._read
        return (
            js is not None
            and read is not None
            and js.worker == read.worker == self.experiment._worker()
            and js.claimed_at == read.claimed_at
        )

    def _report_crash(self, failure: BaseException, conflict: bool = False) -> None:
        """Record the job CRASHED after its final report failed with ``failure``; raise an error saying so.

        With ``conflict`` (another writer changed what this report changes), the log's values are kept and
        none of this worker's results are written.
        """
        kept, dropped = {}, []
        if conflict:
            js = decide.require_job(self.experiment._require_db().state, self.experiment.name, self.job_id)
            self._read, self._version = js, js.version
            kept = values.decode_mapping(js.results)
            dropped = sorted(k for k in self._results if k not in kept or kept[k] != self._results[k])
        for k, v in ({} if conflict else dict(self._results)).items():
            try:
                values.encode(v, k)
                kept[k] = v
            except (TypeError, ValueError):
                dropped.append(k)
        kept["schedy_error"] = f"the final report failed: {type(failure).__name__}: {failure}"[:1000]
        status, results = self.status, self._results
        self.status, self._results = ev.CRASHED, JobValues(kept, "results")
        try:
            self.put()
        except Exception as e:  # noqa: BLE001 - e.g. the store is unreachable: say that nothing was written
            self.status, self._results = status, results
            raise SchedyError(
                f"job {self.job_id!r} of experiment {self.experiment.name!r}: its final report "
                f"failed ({failure}), and so did recording it CRASHED ({e}); nothing was written: "
                f"the job is handed out again once its lease lapses"
            ) from failure
        what = (
            f"the results {', '.join(sorted(k for k in kept if k != 'schedy_error'))}" if len(kept) > 1 else "no result"
        )
        what += " (as the log had them)" if conflict else ""
        lost = f"; not written: {', '.join(map(repr, dropped))}" if dropped else ""
        # The error of the failed report's kind (code that caught a ValueError for a missing score still does).
        error = (
            UnsafeUpdateError
            if conflict
            else type(failure)
            if type(failure) in (ValueError, TypeError)
            else SchedyError
        )
        raise error(
            f"job {self.job_id!r} of experiment {self.experiment.name!r}: its final report could not be "
            f"written ({failure}); it was recorded CRASHED with {what}{lost}"
        ) from failure
