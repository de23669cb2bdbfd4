"""Simulated training problems: what a simulated worker runs during a segment.

A problem turns hyperparameters and a model state into a new model state and a
score, for a number of training steps::

    step(hyperparameters, state, steps, rng) -> (state, score)

``state`` is ``None`` for a model that starts from scratch, else the state a
previous segment returned (its parent's, with Population Based Training).
``step`` must return a new state and never modify the one it is given: two
members may continue from the same parent. ``rng`` is a seeded
:class:`numpy.random.Generator`, the only source of randomness a problem may
use (the simulation must stay reproducible).

Built-in problems (steps are vectorised with numpy: a segment costs a few
array operations, whatever its number of steps):

* :func:`toy`: the toy example of the PBT paper (Jaderberg et al., 2017,
  Figure 2).
* :func:`lr_schedule`: a noisy quadratic model whose best learning rate
  decreases during training, so a schedule beats every constant value.
* :func:`noisy_curves`: learning curves whose early scores rank
  configurations well on average but noisily, the case successive halving
  (ASHA, Hyperband) is made for.
"""

import math
from dataclasses import dataclass

import numpy as np

from ..core.distributions import LogUniform, Uniform
from ..core.pbt import MAXIMIZE, MINIMIZE, PB2, AddNoise, Keep, Perturb, Truncate


@dataclass(frozen=True)
class Durations:
    """How long a simulated segment takes, in simulated seconds.

    Each worker (each simulated machine) gets a speed factor
    ``exp(worker_spread * z)``, ``z`` standard normal, drawn once. Each segment
    then takes ``mean * factor * exp(spread * z' - spread**2 / 2)`` seconds, a
    fresh ``z'`` per segment: lognormal, with mean ``mean * factor``.
    """

    mean: float = 600.0
    spread: float = 0.25
    worker_spread: float = 0.1

    def __post_init__(self):
        for name in ("mean", "spread", "worker_spread"):
            x = getattr(self, name)
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) or x < 0:
                raise ValueError(f"Durations {name} must be a finite number >= 0, got {x!r}")
        if not self.mean > 0:
            raise ValueError(f"Durations mean must be positive, got {self.mean!r}")


@dataclass(frozen=True)
class Failures:
    """Workers that die: each segment, with probability ``rate``, its worker dies at a uniformly drawn moment.

    Nothing is reported then: the claim's lease lapses, the next writer
    records the expiry, and the segment is redone. ``restart`` seconds after
    dying, the machine runs a new worker (a new worker id).
    """

    rate: float = 0.0
    restart: float = 300.0

    def __post_init__(self):
        if isinstance(self.rate, bool) or not isinstance(self.rate, (int, float)) or not 0 <= self.rate < 1:
            raise ValueError(f"Failures rate is a probability in [0, 1), got {self.rate!r}")
        r = self.restart
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not math.isfinite(r) or r < 0:
            raise ValueError(f"Failures restart must be a finite number of seconds >= 0, got {r!r}")


class Problem:
    """A simulated training problem.

    ``step(hyperparameters, state, steps, rng) -> (state, score)`` trains a
    model for ``steps`` steps (see the module's docstring). ``steps`` is the
    number of steps of one segment; ``segments`` the length of a full
    training in segments (a random or manual search job trains that many;
    the built-in strategies use it as ``max_generations``). ``score`` and
    ``objective`` name the result and its direction (``None``: taken from a
    PBT definition, else ``"score"`` and ``MAXIMIZE``). ``jobs`` are the
    hyperparameters of the jobs a simulation adds before it starts (a
    population of your own jobs, or a grid). ``workers``, ``budget`` and
    ``durations`` are the defaults of :func:`schedy.simulation.simulate`.
    """

    def __init__(
        self,
        step,
        *,
        name=None,
        score=None,
        objective=None,
        steps=1,
        segments=10,
        jobs=None,
        workers=4,
        budget=None,
        durations=None,
        description="",
    ):
        if not callable(step):
            raise TypeError(
                f"a problem needs a callable (hyperparameters, state, steps, rng) -> (state, score), "
                f"got {type(step).__name__}"
            )
        if objective not in (None, MINIMIZE, MAXIMIZE):
            raise ValueError(f"objective must be schedy.pbt.MINIMIZE or MAXIMIZE, got {objective!r}")
        for label, x in (("steps", steps), ("segments", segments), ("workers", workers)):
            if isinstance(x, bool) or not isinstance(x, int) or x < 1:
                raise ValueError(f"{label} must be a positive integer, got {x!r}")
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 1):
            raise ValueError(f"budget must be a positive integer (segments), got {budget!r}")
        if durations is not None and not isinstance(durations, Durations):
            raise TypeError(f"durations must be a schedy.simulation.Durations, got {durations!r}")
        self.step = step
        self.name = name or getattr(step, "__name__", "problem")
        self.score, self.objective = score, objective
        self.steps, self.segments = steps, segments
        self.jobs = [dict(j) for j in jobs] if jobs else []
        self.workers, self.budget = workers, budget
        self.durations = durations or Durations()
        self.description = description

    def strategies(self):
        """The experiments this problem is meant to compare, ``{label: experiment}`` (none for your own problems)."""
        return {}

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r}: {self.steps} steps per segment, {self.segments} segments>"


# -- the toy problem of the PBT paper --------------------------------------------------------------


class Toy(Problem):
    """Figure 2 of the PBT paper: maximise Q(θ) = 1.2 − (θ0² + θ1²) by gradient ascent on a surrogate.

    A member with hyperparameters h = (h0, h1) ascends Q̂(θ|h) = 1.2 − (h0·θ0² +
    h1·θ1²): one step is θ ← θ + η·∇Q̂ = θ·(1 − 2ηh), so ``steps`` steps are
    θ·(1 − 2ηh)^steps, computed at once. The score is the true Q(θ). Two
    members start at θ = (0.9, 0.9), with h = (1, 0) and h = (0, 1): each
    alone can only ever reach Q = 1.2 − 0.81 = 0.39.

    The paper prints neither the step size nor the explore noise; these are
    the settings of common reproductions: η = ``step_size`` = 0.01, and
    explore adds Gaussian noise of standard deviation ``noise`` = 0.1 to h0
    and h1, clamped at ``low`` = 0 (a negative weight would make the ascent
    push θ away from 0 along that axis). Exploit and explore happen every
    ``steps`` = 4 steps (one segment). The strategies train for the same
    ``budget`` of segments, 2 × ``segments`` (two members of ``segments``
    segments each), on one worker by default: the paper's figure (and the
    reproductions) step the two members in turn, in one loop.
    """

    def __init__(
        self,
        step_size=0.01,
        noise=0.1,
        low=0.0,
        steps=4,
        segments=25,
        theta=(0.9, 0.9),
        workers=1,
        durations=Durations(mean=60.0),
    ):
        self.step_size, self.noise, self.low, self.theta0 = step_size, noise, low, np.array(theta, dtype=float)
        eta, theta0 = step_size, self.theta0

        def ascend(hps, theta, steps, rng):
            if theta is None:
                theta = theta0
            h = np.array((hps["h0"], hps["h1"]), dtype=float)
            theta = theta * (1.0 - 2.0 * eta * h) ** steps
            return theta, float(1.2 - theta @ theta)

        clamp = "" if low is None else f", clamped at {low:g}"
        super().__init__(
            ascend,
            name="toy",
            score="Q",
            objective=MAXIMIZE,
            steps=steps,
            segments=segments,
            jobs=[{"h0": 1.0, "h1": 0.0}, {"h0": 0.0, "h1": 1.0}],
            workers=workers,
            budget=2 * segments,
            durations=durations,
            description=(
                f"toy problem of the PBT paper (Figure 2): maximise Q = 1.2 - (theta0^2 + "
                f"theta1^2) by gradient ascent on 1.2 - (h0 theta0^2 + h1 theta1^2); step size "
                f"{step_size}, {steps} steps per segment (exploit and explore every {steps} "
                f"steps), theta = ({theta[0]:g}, {theta[1]:g}), members h = (1, 0) and (0, 1); "
                f"explore: Gaussian noise of std {noise:g} on h0 and h1{clamp}; budget "
                f"{2 * segments} segments"
            ),
        )

    @staticmethod
    def quality(theta):
        """The true objective Q(θ) (at most 1.2, at θ = 0)."""
        theta = np.asarray(theta, dtype=float)
        return 1.2 - np.sum(theta**2, axis=-1)

    def strategies(self):
        """PBT and the three baselines of Figure 2, on the two members of the paper, for the same budget.

        * ``pbt``: after each segment, the worse member copies the better one
          (``Truncate(0.5)`` of two members: θ and h) and adds Gaussian noise
          to the copied h (``AddNoise``).
        * ``explore-only``: no member ever copies another (``Keep()``); each
          member adds the same noise to its own h after each segment.
        * ``exploit-only``: copies, never perturbs (``explore={}``).
        * ``grid``: a manual search of the two jobs, each trained for
          ``segments`` segments with its own h.

        And two variants of PBT: ``pbt-sync`` (``synchronous=True``) and
        ``pb2`` (``PB2`` chooses h0 and h1 in [0, 1] instead of the noise).
        No ``max_generations``: every strategy trains until the budget is spent.
        """
        from ..adapters.api import ManualSearch, PopulationBasedTraining

        noise = {"h0": AddNoise(self.noise, low=self.low), "h1": AddNoise(self.noise, low=self.low)}
        return {
            "pbt": PopulationBasedTraining("toy-pbt", MAXIMIZE, "Q", Truncate(0.5), noise),
            "explore-only": PopulationBasedTraining("toy-explore-only", MAXIMIZE, "Q", Keep(), noise),
            "exploit-only": PopulationBasedTraining("toy-exploit-only", MAXIMIZE, "Q", Truncate(0.5), {}),
            "grid": ManualSearch("toy-grid"),
            "pbt-sync": PopulationBasedTraining("toy-pbt-sync", MAXIMIZE, "Q", Truncate(0.5), noise, synchronous=True),
            "pb2": PopulationBasedTraining(
                "toy-pb2", MAXIMIZE, "Q", Truncate(0.5), PB2({"h0": (0.0, 1.0), "h1": (0.0, 1.0)})
            ),
        }


def toy(**settings):
    """The toy problem of the PBT paper (see :class:`Toy` for the settings and their defaults)."""
    return Toy(**settings)


# -- a problem whose best learning rate decreases --------------------------------------------------


class LearningRateSchedule(Problem):
    """SGD on a noisy quadratic: fast progress needs a large learning rate, a low final loss a small one.

    The model is the noisy quadratic model (Zhang et al., 2019, "Which
    algorithmic choices matter at which batch sizes?"): a loss
    ½·Σ aᵢ·wᵢ² over ``dims`` directions whose curvatures aᵢ range
    log-uniformly from 1 down to ``1 / condition``, and SGD whose gradient
    noise has variance ``noise``·aᵢ in direction i. The state is the
    expected wᵢ² per direction (1 at the start), which one step of learning
    rate η maps to rᵢ·mᵢ + η²·noise·aᵢ with rᵢ = (1 − η·aᵢ)², so a segment of
    n steps is rᵢⁿ·mᵢ + η²·noise·aᵢ·(1 − rᵢⁿ)/(1 − rᵢ) at once. The expected
    loss falls fast with a large η but stalls at a floor proportional to η;
    the score ``loss`` is the expected loss times a lognormal evaluation
    noise of spread ``eval_noise``. η > 2 diverges.
    """

    def __init__(
        self,
        population=16,
        segments=20,
        steps=50,
        dims=10,
        condition=100.0,
        noise=0.1,
        eval_noise=0.05,
        low=1e-3,
        high=1.0,
        workers=4,
        durations=Durations(mean=100.0),
    ):
        self.population, self.low, self.high = population, low, high
        a = np.logspace(0.0, -math.log10(condition), dims)
        self.curvatures = a

        def sgd(hps, m, steps, rng):
            if m is None:
                m = np.ones_like(a)
            lr = float(hps["lr"])
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                r = (1.0 - lr * a) ** 2
                rn = r**steps
                gain = np.where(r == 1.0, float(steps), (1.0 - rn) / np.where(r == 1.0, 0.5, 1.0 - r))
                m = rn * m + lr * lr * noise * a * gain
                loss = 0.5 * float(a @ m)
            if eval_noise:
                loss *= math.exp(eval_noise * rng.standard_normal())
            return m, loss if math.isfinite(loss) else math.inf

        super().__init__(
            sgd,
            name="lr-schedule",
            score="loss",
            objective=MINIMIZE,
            steps=steps,
            segments=segments,
            workers=workers,
            budget=population * segments,
            durations=durations,
            description=(
                f"noisy quadratic model: {dims} directions, curvatures 1 to 1/{condition:g}, "
                f"gradient noise {noise}, {steps} SGD steps per segment, {segments} segments; "
                f"learning rates LogUniform({low}, {high}); budget {population} x {segments} "
                f"segments"
            ),
        )

    def strategies(self):
        """``pbt`` (a population of ``population``, ``Truncate(0.25)``, ``Perturb(0.8, 1.2)`` on ``lr``),
        ``random`` search of constant learning rates, each job trained for ``segments`` segments, and the
        variants of PBT: ``pbt-sync`` (``synchronous=True``), ``pb2`` (``PB2`` on ``lr`` within the initial
        bounds, on a log scale) and ``explore-only`` (``Keep()``: perturb, never copy)."""
        from ..adapters.api import PopulationBasedTraining, RandomSearch

        dist = {"lr": LogUniform(self.low, self.high)}
        perturb = {"lr": Perturb(0.8, 1.2)}
        common = dict(population_size=self.population, max_generations=self.segments)
        return {
            "pbt": PopulationBasedTraining("lr-pbt", MINIMIZE, "loss", Truncate(0.25), perturb, dist, **common),
            "random": RandomSearch("lr-random", dist),
            "pbt-sync": PopulationBasedTraining(
                "lr-pbt-sync", MINIMIZE, "loss", Truncate(0.25), perturb, dist, synchronous=True, **common
            ),
            "pb2": PopulationBasedTraining(
                "lr-pb2",
                MINIMIZE,
                "loss",
                Truncate(0.25),
                PB2({"lr": (self.low, self.high)}, log_scale=["lr"]),
                dist,
                **common,
            ),
            "explore-only": PopulationBasedTraining(
                "lr-explore-only", MINIMIZE, "loss", Keep(), perturb, dist, **common
            ),
        }


def lr_schedule(**settings):
    """The changing-learning-rate problem (see :class:`LearningRateSchedule` for the settings)."""
    return LearningRateSchedule(**settings)


# -- learning curves whose early scores are informative but noisy ----------------------------------


class NoisyCurves(Problem):
    """Learning curves that rank configurations early, but noisily: what successive halving is made for.

    A configuration (``lr``, ``dropout``) has a final loss
    q = ``floor`` + ``lr_weight``·(log10 lr − log10 ``best_lr``)² +
    ``dropout_weight``·(dropout − ``best_dropout``)². After t segments of
    training (one step each) its model reports the loss
    q + (``gap`` + ``noise``·(u + εₜ)) / √t: the gap to q shrinks as
    training goes on, and so does the noise, where u ~ N(0, 1) is the
    model's own luck (drawn when it starts from scratch and kept in its
    state, so a promotion inherits it) and εₜ ~ N(0, 1) is drawn at each
    evaluation. Every configuration follows the same curve shape, so early
    scores rank configurations by q on average; with the defaults the noise
    after one segment (standard deviation ``noise``·√2 ≈ 0.071) is as large
    as the standard deviation of q over the search space (0.069), so a
    configuration's first score says roughly, not exactly, where it stands.
    The state is ``(t, u)``.

    ``strategies()`` compares random search (each job trained for
    ``segments`` segments) with ASHA and Hyperband from 1 to ``segments``
    segments (``reduction_factor`` 3), on the same distributions and on a
    budget of ``configurations`` full trainings, with ``workers`` workers by
    default.
    """

    def __init__(
        self,
        segments=27,
        configurations=16,
        floor=0.1,
        best_lr=0.01,
        lr_weight=0.04,
        best_dropout=0.3,
        dropout_weight=0.5,
        gap=0.3,
        noise=0.05,
        workers=8,
        durations=Durations(mean=100.0),
    ):
        self.low, self.high = 1e-4, 1.0
        self.configurations = configurations
        centre = math.log10(best_lr)

        def curve(hps, state, steps, rng):
            t, u = (0, float(rng.standard_normal())) if state is None else state
            t += steps
            q = floor + lr_weight * (math.log10(float(hps["lr"])) - centre) ** 2
            q += dropout_weight * (float(hps["dropout"]) - best_dropout) ** 2
            return (t, u), q + (gap + noise * (u + rng.standard_normal())) / math.sqrt(t)

        super().__init__(
            curve,
            name="noisy-curves",
            score="loss",
            objective=MINIMIZE,
            segments=segments,
            workers=workers,
            budget=configurations * segments,
            durations=durations,
            description=(
                f"learning curves q + ({gap} + {noise} (u + e_t)) / sqrt(t): q = {floor} + {lr_weight} "
                f"(log10 lr - log10 {best_lr})^2 + {dropout_weight} (dropout - {best_dropout})^2; lr "
                f"LogUniform(1e-4, 1), dropout Uniform(0, 0.9); {segments} segments; budget "
                f"{configurations} x {segments} segments"
            ),
        )

    def distributions(self):
        """The search space: ``lr`` log-uniform in [1e-4, 1), ``dropout`` uniform in [0, 0.9)."""
        return {"lr": LogUniform(self.low, self.high), "dropout": Uniform(0.0, 0.9)}

    def strategies(self):
        """``random`` search (each job trained for ``segments`` segments), ``asha`` and ``hyperband`` (from 1 to
        ``segments`` segments, ``reduction_factor`` 3), all on :meth:`distributions`."""
        from ..adapters.api import ASHA, Hyperband, RandomSearch

        dist = self.distributions()
        ladder = dict(min_resource=1, max_resource=self.segments, reduction_factor=3)
        return {
            "random": RandomSearch("curves-random", dist),
            "asha": ASHA("curves-asha", dist, "loss", MINIMIZE, **ladder),
            "hyperband": Hyperband("curves-hyperband", dist, "loss", MINIMIZE, **ladder),
        }


def noisy_curves(**settings):
    """Learning curves with informative but noisy early scores (see :class:`NoisyCurves` for the settings)."""
    return NoisyCurves(**settings)


PROBLEMS = {"toy": toy, "lr-schedule": lr_schedule, "noisy-curves": noisy_curves}
"""The built-in problems by name (what ``schedy simulate`` accepts)."""
