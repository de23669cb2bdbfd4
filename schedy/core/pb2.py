"""PB2's explore step: a time-varying Gaussian-process bandit over bounded hyperparameters.

Population Based Bandits (Parker-Holder et al., 2020, arXiv 2002.02518) keep
PBT's exploit and replace its random perturbation by a choice: a Gaussian
process models how much a training segment improves the score as a function of
its hyperparameters and of time, and the new values maximise an upper
confidence bound of that improvement.

The model. Each bounded hyperparameter is mapped to [0, 1] (through its
logarithm for log-scale names); an input is (x, t), the mapped values and the
segment's generation. The kernel is the squared exponential times the time
decay of TV-GP-UCB (Bogunovic et al., 2016)::

    k((x, t), (x', t')) = exp(-|x - x'|^2 / (2 l^2)) * (1 - eps) ** (|t - t'| / 2)

so eps = 0 is a stationary problem and a larger eps forgets old segments
faster. The improvements are standardised; l, eps and the noise are the point
of a fixed grid with the highest log marginal likelihood. Segments that are
still running enter as in GP-BUCB (Desautels et al., 2014): as observations
of their own posterior mean, which leaves the mean alone and shrinks the
variance there, so decisions taken while they run spread out.

Pure: numpy only, the generator passed in is the only randomness. A decision
with 16 members x 4 generations and 16 running segments takes about 5 ms;
MAX_SELECT and MAX_FIT bound it for large populations.
"""

import math
from dataclasses import dataclass

import numpy as np

from .distributions import check_keys

# Kernel hyperparameters, searched exhaustively (48 fits): no optimiser, no restarts, so a decision
# depends on its inputs only. Length scales are in the unit box, from a bump a tenth of the range wide
# to a near-linear trend. eps is per generation: 0.5 keeps a quarter of the correlation after four
# generations. Noise is a variance relative to the standardised improvements (1).
LENGTHS = (0.1, 0.2, 0.4, 0.8)
EPSILONS = (0.0, 0.1, 0.25, 0.5)
NOISES = (0.01, 0.1, 0.5)
MAX_SELECT = 64  # the newest observations the grid is chosen on: its 48 factorisations dominate the cost
MAX_FIT = 256  # the newest observations the posterior uses, so a large population keeps a claim fast
CLIP = 3.0  # standardised improvements beyond this are clipped: one lucky segment must not flatten the rest
_FIELDS = {"logScale": "log_scale", "kappa": "kappa", "window": "window", "candidates": "candidates"}
_KEYS = ("bounds", *_FIELDS)


def _real(x):
    return not isinstance(x, bool) and isinstance(x, (int, float, np.integer, np.floating))


def _finite(x):
    return _real(x) and math.isfinite(x)


def _count(name, x, most):
    if isinstance(x, bool) or not isinstance(x, int):
        raise TypeError(f"PB2 {name} must be an integer, got {x!r}")
    if not 1 <= x <= most:
        raise ValueError(f"PB2 {name} must be from 1 to {most:,}, got {x!r}")
    return x


@dataclass(frozen=True, eq=False)
class PB2:
    """Explore with a Gaussian-process bandit (PB2): the new values of the ``bounds`` names maximise an
    upper confidence bound of the improvement a segment makes, modelled from recent segments.

    ``bounds``: name -> ``(low, high)``, searched uniformly, or through the logarithm for the
    ``log_scale`` names (which need ``low > 0``). ``window``: the bandit models the segments of the last
    ``window`` generations; its kernel discounts old ones anyway, and four keep a decision at a few ms for
    a population of 16. ``candidates``: uniform random points scored, with the copied member's own values.
    ``kappa``: the score is mean + ``kappa`` * std of the standardised improvement, so with 1 a region
    nobody has tried scores as the 84th percentile of the observed ones: the bandit tries new regions
    and still prefers one known to be good. In a simulation (1, 2 and 4 dimensions, fixed or drifting
    optimum, 16 members) 1 did as well as or better than 0.5, 1.5, 2 and 3, and 250 to 4000 candidates
    made no measurable difference.
    """

    bounds: dict
    log_scale: tuple = ()
    kappa: float = 1.0
    window: int = 4
    candidates: int = 500

    def __post_init__(self):
        if not isinstance(self.bounds, dict):
            raise TypeError(f"PB2 bounds must be a dict of name -> (low, high), got {self.bounds!r}")
        if not self.bounds:
            raise ValueError("PB2 bounds must name at least one hyperparameter, got {}")
        bounds = {}
        for name, pair in self.bounds.items():
            if not isinstance(name, str) or not name:
                raise TypeError(f"PB2 bounds names must be non-empty strings, got {name!r}")
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise TypeError(f"PB2 bounds[{name!r}] must be (low, high), got {pair!r}")
            for which, v in zip(("low", "high"), pair):
                if not _real(v):
                    raise TypeError(f"PB2 bounds[{name!r}] {which} must be a number, got {v!r}")
                if not math.isfinite(v):
                    raise ValueError(f"PB2 bounds[{name!r}] {which} must be finite, got {v!r}")
            if not pair[0] < pair[1]:
                raise ValueError(f"PB2 bounds[{name!r}] needs low < high, got {list(pair)!r}")
            bounds[name] = (float(pair[0]), float(pair[1]))
        # Sorted, so the order names were given in changes neither equality nor the draws.
        object.__setattr__(self, "bounds", dict(sorted(bounds.items())))
        if not isinstance(self.log_scale, (list, tuple)):
            raise TypeError(f"PB2 log_scale must be a list or tuple of names, got {self.log_scale!r}")
        for name in self.log_scale:
            if not isinstance(name, str):
                raise TypeError(f"PB2 log_scale must hold hyperparameter names (strings), got {name!r}")
            if name not in bounds:
                raise ValueError(f"PB2 log_scale names {name!r}, which bounds does not define")
            if not bounds[name][0] > 0:
                raise ValueError(f"PB2 log_scale {name!r} needs low > 0, got bounds {list(bounds[name])!r}")
        object.__setattr__(self, "log_scale", tuple(sorted(set(self.log_scale))))
        if not _real(self.kappa):
            raise TypeError(f"PB2 kappa must be a number, got {self.kappa!r}")
        if not (math.isfinite(self.kappa) and self.kappa >= 0):
            raise ValueError(f"PB2 kappa must be a finite number >= 0, got {self.kappa!r}")
        object.__setattr__(self, "kappa", float(self.kappa))
        _count("window", self.window, 1_000)
        # Scored at every exploit, inside the claim: a typo of a few zeros must not stall every worker.
        _count("candidates", self.candidates, 100_000)

    def _key(self):
        return tuple(self.bounds.items()), self.log_scale, self.kappa, self.window, self.candidates

    def __eq__(self, other):
        return self._key() == other._key() if isinstance(other, PB2) else NotImplemented

    def __hash__(self):
        return hash(self._key())

    def to_log(self):
        return {
            "bounds": {n: [lo, hi] for n, (lo, hi) in self.bounds.items()},
            "logScale": list(self.log_scale),
            "kappa": self.kappa,
            "window": self.window,
            "candidates": self.candidates,
        }

    @classmethod
    def from_log(cls, d):
        if not isinstance(d, dict):
            # A log's garbage is a ValueError whatever its type, as in Config.from_log.
            raise ValueError(f"PB2 parameters must be an object, got {d!r}")  # noqa: TRY004
        check_keys("PB2", d, _KEYS, ("bounds",))
        try:
            return cls(d["bounds"], **{f: d[k] for k, f in _FIELDS.items() if k in d})
        except TypeError as e:
            raise ValueError(str(e)) from None

    def _unit(self, hps):
        """``hps`` clamped into the bounds and mapped to the unit box, or None without a finite number per name."""
        if not isinstance(hps, dict):
            return None
        out = []
        for name, (low, high) in self.bounds.items():
            v = hps.get(name)
            if not _finite(v):
                return None
            v = min(max(float(v), low), high)
            if name in self.log_scale:
                out.append((math.log(v) - math.log(low)) / (math.log(high) - math.log(low)))
            else:
                out.append((v - low) / (high - low))
        return out

    def _raw(self, u):
        """Unit-box coordinates back to values."""
        out = []
        for (name, (low, high)), ui in zip(self.bounds.items(), u):
            if name in self.log_scale:
                out.append(math.exp(math.log(low) + ui * (math.log(high) - math.log(low))))
            else:
                out.append(low + ui * (high - low))
        return out

    def _values(self, raw, start):
        out = {}
        for (name, (low, high)), v in zip(self.bounds.items(), raw):
            v = min(max(float(v), low), high)  # also absorbs the rounding of exp/log at the bounds
            s = start.get(name) if isinstance(start, dict) else None
            lo, hi = math.ceil(low), math.floor(high)
            if isinstance(s, (int, np.integer)) and not isinstance(s, bool) and lo <= hi:
                out[name] = int(min(max(round(v), lo), hi))
            else:
                out[name] = v
        return out

    def suggest(self, observations, pending, at, start, rng):
        """New values for the names in bounds.

        ``observations``: ``(time, hyperparameters, improvement)`` per finished segment: time is its
        generation, improvement how much the score got better during it (higher is better). Rows with a
        non-finite time or improvement, without a finite number for every name, or older than
        ``at - window`` are ignored; values outside the bounds count as the nearest bound.
        ``pending``: ``(time, hyperparameters)`` per segment running now. ``at``: the generation of the
        segment being decided. ``start``: the values explored from, one more candidate (clamped into the
        bounds) when it has a number for every name. ``rng``: a numpy Generator, the only randomness.

        Returns ``{name: value}`` for every name in bounds, within them: an int where ``start`` holds an
        int (rounded), else a float. With fewer than two usable observations, a uniform draw in the box
        (log-uniform for log-scale names).
        """
        if not _finite(at):
            raise ValueError(f"PB2 suggest needs a finite time 'at', got {at!r}")
        x, t, y = [], [], []
        for time, hps, gain in observations:
            u = self._unit(hps)
            if u is not None and _finite(time) and _finite(gain) and time >= at - self.window:
                x.append(u)
                t.append(float(time))
                y.append(float(gain))
        d = len(self.bounds)
        if len(y) < 2:
            return self._values(self._raw(rng.random(d)), start)
        px, pt = [], []
        for time, hps in pending:
            u = self._unit(hps)
            if u is not None and _finite(time):
                px.append(u)
                pt.append(float(time))
        if len(pt) > MAX_FIT:  # the newest only: a decision's cost must not grow with the population
            keep = np.sort(np.argsort(pt, kind="stable")[-MAX_FIT:])
            px, pt = [px[i] for i in keep], [pt[i] for i in keep]
        newest = np.argsort(t, kind="stable")[-MAX_FIT:]
        x, t, y = np.array(x)[newest], np.array(t)[newest], standardise(np.array(y)[newest])
        params = select(x[-MAX_SELECT:], t[-MAX_SELECT:], y[-MAX_SELECT:])
        gp = fit(x, t, y, np.array(px).reshape(-1, d), np.array(pt), params)
        cand = rng.random((self.candidates, d))
        own = self._unit(start)
        if own is not None:
            cand = np.vstack([own, cand])
        mean, std = gp.predict(cand, np.full(len(cand), float(at)))
        best = int(np.argmax(mean + self.kappa * std))
        if own is not None and best == 0:
            return self._values([start[n] for n in self.bounds], start)  # exactly its values, not a round trip
        return self._values(self._raw(cand[best]), start)


# -- the Gaussian process -------------------------------------------------------------------------


def standardise(y):
    """Improvements as z-scores, after raising each to at least ``2 * median - max``, clipped to +-CLIP.

    The floor is for a member that diverges: its one huge loss would otherwise inflate the spread and
    squash every other difference to nothing. The bandit looks for the top, so a segment need not count
    as further below the median than the best one is above it. The top keeps its shape: a floor from
    the median and the MAD would clip a few high improvements among many near zero all alike.
    """
    y = np.maximum(y, 2 * np.median(y) - y.max())
    spread = y.std()
    if not spread > 0:
        return np.zeros_like(y)
    return np.clip((y - y.mean()) / spread, -CLIP, CLIP)


def _kernel(d2, dt, length, eps):
    return np.exp(d2 * (-0.5 / length**2)) * (1.0 - eps) ** (0.5 * dt)


def _sqdist(a, b):
    d2 = np.zeros((len(a), len(b)))
    for k in range(a.shape[1]):  # one column at a time: no n x m x d temporary
        d2 += (a[:, k, None] - b[None, :, k]) ** 2
    return d2


def _tdist(a, b):
    return np.abs(a[:, None] - b[None, :])


def _cholesky(k):
    """The lower Cholesky factor of ``k``, with jitter growing by tens on the diagonal until it exists."""
    jitter = 0.0
    while True:
        try:
            return np.linalg.cholesky(k + jitter * np.eye(len(k)) if jitter else k)
        except np.linalg.LinAlgError:
            if jitter >= 1e-2:
                raise
            jitter = jitter * 10 if jitter else 1e-10


def select(x, t, y):
    """``(length, eps, noise)`` of the grid with the highest log marginal likelihood (the first on ties)."""
    d2, dt, eye = _sqdist(x, x), _tdist(t, t), np.eye(len(y))
    grid = [(length, eps, noise) for length in LENGTHS for eps in EPSILONS for noise in NOISES]
    kx = np.exp(d2 * (-0.5 / np.square(LENGTHS))[:, None, None])
    kt = (1.0 - np.array(EPSILONS))[:, None, None] ** (0.5 * dt)
    ks = (kx[:, None, None] * kt[None, :, None] + np.multiply.outer(NOISES, eye)).reshape(len(grid), *eye.shape)
    try:
        lows = np.linalg.cholesky(ks)  # all at once: a loop of 48 small factorisations costs more in calls
    except np.linalg.LinAlgError:
        lows = np.stack([_cholesky(k) for k in ks])
    z = np.linalg.solve(lows, np.broadcast_to(y[:, None], (len(grid), len(y), 1)))[..., 0]
    lml = -0.5 * (z * z).sum(axis=1) - np.log(np.diagonal(lows, axis1=1, axis2=2)).sum(axis=1)
    return grid[int(np.argmax(lml))]


class Posterior:
    """A fitted GP; ``predict(x, t)`` gives the posterior mean and standard deviation of the improvement."""

    def __init__(self, x, t, y, pending_x, pending_t, params):
        self.params = length, eps, noise = params
        n = len(y)
        self._x, self._t = np.vstack([x, pending_x]), np.concatenate([t, pending_t])
        low = _cholesky(_kernel(_sqdist(x, x), _tdist(t, t), length, eps) + noise * np.eye(n))
        self._alpha = np.linalg.solve(low.T, np.linalg.solve(low, y))
        if len(pending_t):
            # A pending point observed at its own posterior mean changes no mean, so the mean comes from the
            # finished segments alone and only the variance needs the factor with the pending points.
            k = _kernel(_sqdist(self._x, self._x), _tdist(self._t, self._t), length, eps)
            low = _cholesky(k + noise * np.eye(len(self._t)))
        # The inverse factor once, then a product per call: cheaper than a solve against 1000 candidates.
        self._inv, self._n = np.linalg.solve(low, np.eye(len(low))), n

    def predict(self, x, t):
        length, eps, _ = self.params
        ks = _kernel(_sqdist(np.asarray(x, float), self._x), _tdist(np.asarray(t, float), self._t), length, eps)
        mean = ks[:, : self._n] @ self._alpha
        v = self._inv @ ks.T
        return mean, np.sqrt(np.maximum(1.0 - (v * v).sum(axis=0), 0.0))


def fit(x, t, y, pending_x=None, pending_t=None, params=None):
    """The GP posterior of standardised improvements ``y`` at inputs ``x`` (n x d, unit box) and times ``t``.

    ``pending_x``/``pending_t``: running segments, which shrink the variance only. ``params``:
    ``(length, eps, noise)``, chosen by :func:`select` when None.
    """
    x, t, y = np.asarray(x, float), np.asarray(t, float), np.asarray(y, float)
    x = x.reshape(len(y), -1)
    px = np.zeros((0, x.shape[1])) if pending_x is None else np.asarray(pending_x, float).reshape(-1, x.shape[1])
    pt = np.zeros(0) if pending_t is None else np.asarray(pending_t, float)
    return Posterior(x, t, y, px, pt, select(x, t, y) if params is None else params)
