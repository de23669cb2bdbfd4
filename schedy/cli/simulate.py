"""``schedy simulate``: compare search strategies on a simulated problem, offline (see docs/simulation.md)."""

import time

import click
from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import failures, main


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


@main.command(short_help="Compare search strategies on a simulated problem: table, plots, logs.")
@click.argument("problem", type=click.Choice(["toy", "lr-schedule"]))
@click.option(
    "-s",
    "--strategy",
    "strategies",
    multiple=True,
    metavar="NAME",
    help="A strategy of the problem to simulate (repeat it; default: all). toy: pbt, explore-only, "
    "exploit-only, grid, pbt-sync, pb2. lr-schedule: pbt, random, pbt-sync, pb2, explore-only.",
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
    "Default: the problem's (toy: 1, lr-schedule: 4).",
)
@click.option(
    "--segments",
    type=click.IntRange(1),
    default=None,
    help="Segments of a full training (per member, or per job of random or manual search). Default: the "
    "problem's (toy: 25, lr-schedule: 20).",
)
@click.option(
    "--population",
    type=click.IntRange(1),
    default=None,
    help="lr-schedule only: the PBT population (default 16); the budget is population x segments.",
)
@click.option(
    "--budget",
    type=click.IntRange(1),
    default=None,
    help="Segments each run reports in total (a segment cut short by a failure is trained again and "
    "counted once). Default: the problem's (toy: 2 x segments, lr-schedule: population x segments).",
)
@click.option(
    "--segment-time",
    type=click.FloatRange(0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Mean simulated duration of a segment (toy: 60, lr-schedule: 100).",
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
    mean final scores with a permutation test p-value. PROBLEM is "toy" (the
    toy example of the PBT paper, Figure 2) or "lr-schedule" (a learning rate
    that must decrease during training).

    With several worker counts (--workers 1,2,4), every strategy runs at
    every count, in one table; the pairs compare the strategies at each
    count, and each strategy with itself at the first count.
    """
    from ..simulation import Durations, Failures, compare, lr_schedule, toy

    settings = {}
    if segments is not None:
        settings["segments"] = segments
    if population is not None:
        if problem != "lr-schedule":
            raise click.UsageError("--population applies to lr-schedule only (the toy has the paper's two members)")
        settings["population"] = population
    with failures():
        prob = (toy if problem == "toy" else lr_schedule)(**settings)
        if segment_time is not None:
            d = prob.durations
            prob.durations = Durations(segment_time, d.spread, d.worker_spread)
    available = prob.strategies()
    unknown = [s for s in strategies if s not in available]
    if unknown:
        raise click.UsageError(f"unknown strategy {unknown[0]!r} for {problem}; choose among {', '.join(available)}")
    chosen = {s: available[s] for s in (dict.fromkeys(strategies) or available)}
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
