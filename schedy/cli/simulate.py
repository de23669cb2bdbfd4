"""``schedy simulate``: compare search strategies on a simulated problem, offline (see docs/simulation.md)."""

import inspect
import time

import click
from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..adapters.api import ASHA
from ..simulation import PROBLEMS
from . import failures, main

PROBLEM_FACTORIES = dict(PROBLEMS)  # the problems schedy simulate runs, by name
_DEFAULTS = {name: make() for name, make in PROBLEM_FACTORIES.items()}  # each problem with its defaults, for help
_LADDER_OPTIONS = {
    "min_resource": "--min-resource",
    "max_resource": "--max-resource",
    "reduction_factor": "--reduction-factor",
}


def _per_problem(value):
    """``"toy: 25, lr-schedule: 20, ..."``: ``value(problem)`` for the default problem of each name."""
    return ", ".join(f"{name}: {value(p)}" for name, p in _DEFAULTS.items())


def _takes(name, setting):
    """Whether the problem ``name`` has the setting ``setting`` (a keyword argument of its class)."""
    return setting in inspect.signature(type(_DEFAULTS[name])).parameters


def _halving(strategies):
    """The labels of the ASHA and Hyperband definitions among ``strategies``."""
    return [label for label, exp in strategies.items() if isinstance(exp, ASHA)]


def _and(names):
    """``"a"``, ``"a and b"``, ``"a, b and c"``."""
    names = list(names)
    return " and ".join(names) if len(names) < 3 else ", ".join(names[:-1]) + " and " + names[-1]


def _rungs(exp):
    """The resources the rungs of an ASHA or Hyperband definition train to, as the core reads the definition (as
    ``schedy show`` prints them)."""
    config = exp._config()
    return [config.resource(0, rung) for rung in range(config.rungs(0))]


def _budget(p):
    """The default budget of problem ``p``, as a rule."""
    if p.budget is None:
        return "none"
    if getattr(p, "population", None) and p.budget == p.population * p.segments:
        return "population x segments"
    return f"{p.budget // p.segments} x segments" if p.budget % p.segments == 0 else f"{p.budget} segments"


def _halving_default(setting):
    """The value of ``setting`` (``"min_resource"``...) in the ASHA and Hyperband definitions of the problems."""
    values = {
        getattr(exp, setting) for p in _DEFAULTS.values() for exp in p.strategies().values() if isinstance(exp, ASHA)
    }
    return ", ".join(f"{v:g}" for v in sorted(values))


_HALVING_PROBLEMS = [name for name, p in _DEFAULTS.items() if _halving(p.strategies())]
_POPULATION_PROBLEMS = [name for name in _DEFAULTS if _takes(name, "population")]


def _fmt(x):
    return "nan" if x != x else f"{x:.3g}"


def _print_table(console, table):
    """Print ``table``; piped output (80 columns by default) is widened to the table's natural width, so that no
    number is cut to an ellipsis."""
    natural = Measurement.get(console, console.options.update_width(10_000), table).maximum
    width = console.width
    if console.is_terminal or natural <= width:
        console.print(table)
        return
    console.width = natural
    try:
        console.print(table)
    finally:
        console.width = width


class WorkerCounts(click.ParamType):
    """A worker count, or several separated by commas (``1,2,4``)."""

    name = "N"

    def convert(self, value, param, ctx):
        if isinstance(value, list):
            return value
        counts = []
        for part in str(value).split(","):
            try:
                n = int(part.strip())
            except ValueError:
                self.fail(f"{value!r} is not a worker count, nor a comma-separated list of them (1,2,4)", param, ctx)
            if n < 1:
                self.fail(f"a worker count must be at least 1, got {n} in {value!r}", param, ctx)
            counts.append(n)
        return counts


def _ladder(problem, prob, available, chosen, min_resource, max_resource, reduction_factor):
    """``chosen`` with its ASHA and Hyperband definitions rebuilt on the resources given on the command line."""
    given = {
        name: value
        for name, value in (
            ("min_resource", min_resource),
            ("max_resource", max_resource),
            ("reduction_factor", reduction_factor),
        )
        if value is not None
    }
    halving = _halving(chosen)
    if given and not halving:
        flags = _and(_LADDER_OPTIONS[name] for name in given)
        verb = "applies" if len(given) == 1 else "apply"
        offered = _halving(available)
        if offered:
            raise click.UsageError(
                f"{flags} {verb} to {_and(offered)}, and none of the chosen strategies ({', '.join(chosen)}) is "
                f"one: add -s {offered[0]}"
            )
        raise click.UsageError(
            f"{flags} {verb} to ASHA and Hyperband, which {problem} does not offer (its strategies: "
            f"{', '.join(available)})"
            + (
                f"; {_and(_HALVING_PROBLEMS)} {'does' if len(_HALVING_PROBLEMS) == 1 else 'do'}"
                if _HALVING_PROBLEMS
                else ""
            )
        )
    if not given:
        return chosen
    chosen = dict(chosen)
    for label in halving:
        exp = chosen[label]
        r = given.get("min_resource", exp.min_resource)
        top = given.get("max_resource", exp.max_resource)
        eta = given.get("reduction_factor", exp.reduction_factor)
        if top < r:
            low = f"--min-resource {r}" if "min_resource" in given else f"the minimum resource of {label}, {r},"
            high = (
                f"--max-resource {top}"
                if "max_resource" in given
                else f"the maximum resource, {top} (a full training of {problem}: --segments {prob.segments})"
            )
            raise click.UsageError(f"{low} is more than {high}")
        try:
            chosen[label] = type(exp)(
                exp.name,
                exp.distributions,
                exp.result_name,
                exp.objective,
                min_resource=r,
                max_resource=top,
                reduction_factor=eta,
                status=exp.status,
                seed=exp.seed,
                max_jobs=exp.max_jobs,
                lease=exp.lease,
            )
        except ValueError as e:
            raise click.UsageError(f"{_and(_LADDER_OPTIONS.values())}: {e}") from None
    return chosen


@main.command(short_help="Compare search strategies on a simulated problem: table, plots, logs.")
@click.argument("problem", type=click.Choice(list(PROBLEM_FACTORIES)))
@click.option(
    "-s",
    "--strategy",
    "strategies",
    multiple=True,
    metavar="NAME",
    help="A strategy of the problem to simulate (repeat it; default: all). "
    + ". ".join(f"{name}: {', '.join(p.strategies())}" for name, p in _DEFAULTS.items())
    + ".",
)
@click.option("--seeds", type=click.IntRange(1), default=20, show_default=True, help="Runs per strategy.")
@click.option(
    "--first-seed",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="Seeds are FIRST-SEED, FIRST-SEED + 1, ...",
)
@click.option(
    "--workers",
    "workers",
    type=WorkerCounts(),
    multiple=True,
    help="Simulated workers. Repeat it (--workers 1 --workers 4), or give a comma-separated list "
    "(--workers 1,2,4,8), to run every strategy at every count and compare them in one table. "
    f"Default: the problem's ({_per_problem(lambda p: p.workers)}).",
)
@click.option(
    "--segments",
    type=click.IntRange(1),
    default=None,
    help="Segments of a full training (per member, or per job of random or manual search; the last rung of "
    f"ASHA and Hyperband unless --max-resource says otherwise). Default: the problem's "
    f"({_per_problem(lambda p: p.segments)}).",
)
@click.option(
    "--population",
    type=click.IntRange(1),
    default=None,
    help=f"{_and(_POPULATION_PROBLEMS)} only: the PBT population (default "
    f"{_and(str(_DEFAULTS[n].population) for n in _POPULATION_PROBLEMS)}); the budget is population x segments.",
)
@click.option(
    "--budget",
    type=click.IntRange(1),
    default=None,
    help="Segments each run reports in total, the same for every strategy (a segment cut short by a failure is "
    "trained again and counted once). Default: the problem's "
    f"({_per_problem(_budget)}).",
)
@click.option(
    "--min-resource",
    type=click.IntRange(1),
    default=None,
    metavar="SEGMENTS",
    help=f"ASHA and Hyperband ({_and(_HALVING_PROBLEMS)}): the resource of rung 0, in segments (default "
    f"{_halving_default('min_resource')}).",
)
@click.option(
    "--max-resource",
    type=click.IntRange(1),
    default=None,
    metavar="SEGMENTS",
    help="ASHA and Hyperband: the resource of the last rung, in segments (default: --segments, as long as a "
    "random search job trains).",
)
@click.option(
    "--reduction-factor",
    type=click.IntRange(2),
    default=None,
    metavar="ETA",
    help="ASHA and Hyperband: each rung trains ETA times as long as the one below, and promotes the top 1/ETA "
    f"of its jobs (default {_halving_default('reduction_factor')}).",
)
@click.option(
    "--segment-time",
    type=click.FloatRange(0, min_open=True),
    default=None,
    metavar="SECONDS",
    help=f"Mean simulated duration of a segment ({_per_problem(lambda p: f'{p.durations.mean:g}')}).",
)
@click.option(
    "--failure-rate",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.0,
    show_default=True,
    help="Probability that a worker dies during a segment (its lease lapses and the segment is redone).",
)
@click.option(
    "--restart",
    type=click.FloatRange(0),
    default=300.0,
    show_default=True,
    metavar="SECONDS",
    help="Seconds before a machine whose worker died runs a new worker.",
)
@click.option(
    "--processes",
    type=click.IntRange(1),
    default=None,
    help="Processes to spread the runs over (default: one per core).",
)
@click.option(
    "--plots",
    "plots_dir",
    type=click.Path(file_okay=False),
    default=None,
    metavar="DIR",
    help="Write PNG plots into DIR (needs matplotlib: pip install 'schedy[plots]').",
)
@click.option(
    "--db",
    "db",
    metavar="PATH",
    default=None,
    help="Also write the log of the first seed of each strategy into this database (a directory or "
    "URL; created if needed), as experiments named PROBLEM-STRATEGY-seedN (PROBLEM-STRATEGY-wW-seedN "
    "with several worker counts). Not read from $SCHEDY_DB: a simulation writes nowhere unless "
    "asked.",
)
def simulate(
    problem,
    strategies,
    seeds,
    first_seed,
    workers,
    segments,
    population,
    budget,
    min_resource,
    max_resource,
    reduction_factor,
    segment_time,
    failure_rate,
    restart,
    processes,
    plots_dir,
    db,
):
    """Simulate search strategies on PROBLEM with many seeds, offline, and compare them.

    The real scheduling decisions run against simulated workers on a
    simulated clock, in memory. Prints a table per strategy (the best score
    reached by a quarter and a half of the time, and at the end: mean,
    spread, median) and, for each pair of strategies, the difference of the
    mean final scores with a permutation test p-value. Every strategy
    reports the same budget of segments. PROBLEM is "toy" (the toy example
    of the PBT paper, Figure 2), "lr-schedule" (a learning rate that must
    decrease during training) or "noisy-curves" (learning curves whose early
    scores rank configurations well but noisily: random search, ASHA and
    Hyperband, whose rungs --min-resource, --max-resource and
    --reduction-factor set).

    With several worker counts (--workers 1,2,4), every strategy runs at
    every count, in one table; the pairs compare the strategies at each
    count, and each strategy with itself at the first count.
    """
    from ..simulation import Durations, Failures, compare

    settings = {}
    if segments is not None:
        settings["segments"] = segments
    if population is not None:
        if problem not in _POPULATION_PROBLEMS:
            raise click.UsageError(
                f"--population applies to {_and(_POPULATION_PROBLEMS)} only: {problem} has no population "
                f"(--budget sets the segments each run trains)"
            )
        settings["population"] = population
    with failures():
        prob = PROBLEM_FACTORIES[problem](**settings)
        if segment_time is not None:
            d = prob.durations
            prob.durations = Durations(segment_time, d.spread, d.worker_spread)
    available = prob.strategies()
    unknown = [s for s in strategies if s not in available]
    if unknown:
        elsewhere = [name for name, p in _DEFAULTS.items() if name != problem and unknown[0] in p.strategies()]
        raise click.UsageError(
            f"unknown strategy {unknown[0]!r} for {problem}"
            + (f" (it is a strategy of {_and(elsewhere)})" if elsewhere else "")
            + f"; choose among {', '.join(available)}"
        )
    chosen = {s: available[s] for s in (dict.fromkeys(strategies) or available)}
    chosen = _ladder(problem, prob, available, chosen, min_resource, max_resource, reduction_factor)
    counts = [n for given in workers for n in given]
    twice = sorted({n for n in counts if counts.count(n) > 1})
    if twice:
        raise click.UsageError(f"--workers {twice[0]} is given twice")
    several = len(counts) > 1
    options = {"failures": Failures(failure_rate, restart)}
    if counts:
        options["workers"] = counts if several else counts[0]
    if budget is not None:
        options["budget"] = budget
    seed_list = list(range(first_seed, first_seed + seeds))

    out = Console(soft_wrap=False, highlight=False)
    err = Console(stderr=True)
    d = prob.durations
    out.print(f"Simulating {problem}: {prob.description}.", markup=False)
    runs = len(chosen) * max(1, len(counts)) * seeds
    out.print(
        f"{len(chosen)} strateg{'y' if len(chosen) == 1 else 'ies'} x "
        + (f"{len(counts)} worker counts ({', '.join(map(str, counts))}) x " if several else "")
        + f"{seeds} seeds ({first_seed}..{first_seed + seeds - 1}); "
        + ("" if several else f"{options.get('workers', prob.workers)} worker(s); ")
        + f"budget "
        f"{options.get('budget', prob.budget) or 'none'} segments; segments of {d.mean:g} s on average "
        f"(lognormal spread {d.spread:g}, worker speeds spread {d.worker_spread:g}); "
        + (
            f"failure rate {failure_rate:g} per segment, restart after {restart:g} s."
            if failure_rate
            else "no failures."
        ),
        markup=False,
    )
    ladders = {}  # the rungs of each ASHA and Hyperband strategy, grouped when they are the same
    for label in _halving(chosen):
        exp = chosen[label]
        ladders.setdefault((tuple(_rungs(exp)), exp.reduction_factor), []).append(label)
    for (rungs, eta), labels in ladders.items():
        out.print(
            f"{_and(labels)}: rungs of {', '.join(f'{r:g}' for r in rungs)} segments (reduction factor {eta:g}); "
            f"a promotion continues its parent's model.",
            markup=False,
        )
    start = time.perf_counter()
    with Progress(
        TextColumn("simulating"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("runs"),
        TimeElapsedColumn(),
        console=err,
        disable=not err.is_terminal,
        transient=True,
    ) as bar:
        task = bar.add_task("runs", total=runs)
        with failures():
            result = compare(
                chosen,
                prob,
                seed_list,
                processes=processes,
                progress=lambda done, total: bar.update(task, completed=done),
                **options,
            )
    elapsed = time.perf_counter() - start

    score = result.score_name
    direction = "higher" if result.objective == "max" else "lower"
    table = Table(
        title=f"best {score} reached ({direction} is better); the time axis is {result.horizon / 3600:.3g} "
        f"simulated hours",
        box=box.SIMPLE_HEAD,
        collapse_padding=True,
    )
    cols = ["strategy", "runs", "by 1/4", "by 1/2", "final", "std", "median", "segments"]
    if several:
        cols[1:1] = ["workers"]
        cols.append("hours")
    for col in cols:
        table.add_column(col, justify="left" if col == "strategy" else "right", no_wrap=True)
    for r in result.rows():
        cells = [
            r["strategy"],
            str(r["runs"]),
            _fmt(r["at 0.25"]),
            _fmt(r["at 0.5"]),
            _fmt(r["mean"]),
            _fmt(r["std"]),
            _fmt(r["median"]),
            f"{r['segments']:.1f}",
        ]
        if several:
            cells[1:1] = [str(r["workers"])]
            cells.append(f"{r['end'] / 3600:.3g}")
        table.add_row(*cells)
    _print_table(out, table)
    out.print(
        "by 1/4, by 1/2: mean best score reached by that share of the time axis; final, std, median: of the "
        "best score at the end of each run; segments: trained (reported), mean per run"
        + ("; hours: simulated time until the end of the run, mean per run." if several else "."),
        markup=False,
    )
    if several:
        first = f"{counts[0]} worker{'' if counts[0] == 1 else 's'}"
        out.print(
            (
                f"Pairs: the strategies at each worker count, and each strategy against itself at {first}."
                if len(chosen) > 1
                else f"Pairs: each worker count against {first}."
            ),
            markup=False,
        )
    if len(result.labels) > 1:
        pairs = Table(
            title="pairs: difference of the mean final scores, first minus second",
            box=box.SIMPLE_HEAD,
            collapse_padding=True,
        )
        for col in ("first", "second", "difference", "better", "p", "p by 1/2"):
            pairs.add_column(col, justify="left" if col in ("first", "second", "better") else "right", no_wrap=True)
        for p, half in zip(result.pairs(), result.pairs(at=0.5)):
            pairs.add_row(
                p["a"], p["b"], f"{p['difference']:+.4g}", p["better"] or "neither", f"{p['p']:.2g}", f"{half['p']:.2g}"
            )
        _print_table(out, pairs)
        out.print(
            "p: two-sided permutation test of the difference of the means (10,000 resamples, seeded); "
            "p by 1/2: the same on the best scores reached by half the time axis.",
            markup=False,
        )
    segs = sum(r.stats["segments"] for runs in result.runs.values() for r in runs)
    commits = sum(r.stats["commits"] for runs in result.runs.values() for r in runs)
    out.print(
        f"{runs} runs, {segs} simulated segments and {commits} commits in {elapsed:.2f} s of wall time.", markup=False
    )
    if plots_dir is not None:
        with failures():
            try:
                paths = result.plot(plots_dir)
            except ImportError as e:
                raise click.ClickException(str(e)) from None
        out.print("Plots: " + ", ".join(str(p) for p in paths), markup=False)
    if db is not None:
        from ..adapters.api import SchedyDB

        with failures():
            database = SchedyDB(db)
            names = []
            for label, sim in result.examples.items():
                strategy, n = result.cells[label]
                name = f"{problem}-{strategy}-w{n}-seed{sim.seed}" if several else f"{problem}-{label}-seed{sim.seed}"
                sim.save(database, name)
                names.append(name)
        out.print(
            f"Logs of seed {first_seed} written to {database.path}: {', '.join(names)}. Check them with: "
            f"schedy verify --db {db}",
            markup=False,
        )
