"""``schedy add``, ``rm``, ``show``, ``list`` and ``push``: manage experiments and jobs from a shell.

Values on the command line are JSON. Values printed are shown the same way
everywhere: a string as it is (as a JSON string if it is empty or holds a
tab, newline or other unprintable character, so that a value is always one
line), anything else as JSON (``[1, 2]``, ``true``, ``null``, ``NaN``).
Everything parsed from the command line is checked before the database is
opened: a bad value is a usage error (exit status 2) that writes nothing.
"""

import dataclasses
import json
import os
import sys
from collections import Counter

import click
from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..adapters.api import (
    ASHA,
    BayesianSearch,
    Hyperband,
    Job,
    ManualSearch,
    PopulationBasedTraining,
    RandomSearch,
    SchedyDB,
)
from ..adapters.opening import default_path
from ..core import bayes as core_bayes
from ..core import distributions as core_distributions
from ..core import events as ev
from ..core import pbt as core_pbt
from ..pbt import BinaryTournament, Keep, Truncate
from ..random import Choice, Constant, LogUniform, Normal, Uniform
from . import db_option, failures, main, open_db

KINDS = {
    "manual": ManualSearch,
    "random": RandomSearch,
    "pbt": PopulationBasedTraining,
    "asha": ASHA,
    "hyperband": Hyperband,
    "bayesian": BayesianSearch,
}
HALVING = ("asha", "hyperband")  # successive halving: each job trains a configuration up to a rung
RANKED = ("pbt", *HALVING, "bayesian")  # the kinds that rank jobs by a result
# The kinds each option of `schedy add` that is not common to all applies to.
OPTION_KINDS = {
    "--objective": RANKED,
    "--result": RANKED,
    "--exploit": ("pbt",),
    "--explore": ("pbt",),
    "--pb2": ("pbt",),
    "--population-size": ("pbt",),
    "--max-generations": ("pbt",),
    "--ranking": ("pbt",),
    "--synchronous": ("pbt",),
    "--min-resource": HALVING,
    "--max-resource": HALVING,
    "--reduction-factor": HALVING,
    "--max-jobs": (*HALVING, "bayesian"),
    "--sampler": ("bayesian",),
    "--sampler-options": ("bayesian",),
}
# The options of `schedy add` passed to ASHA and Hyperband as they are, when given: the core checks them.
HALVING_ARGUMENTS = {
    "--objective": "objective",
    "--min-resource": "min_resource",
    "--max-resource": "max_resource",
    "--reduction-factor": "reduction_factor",
    "--max-jobs": "max_jobs",
}
# The options of `schedy add` passed to a Bayesian search as they are, when given (--sampler-options once read as JSON).
BAYESIAN_ARGUMENTS = {"--objective": "objective", "--sampler": "sampler", "--max-jobs": "max_jobs"}
JSON_OPTIONS = ("--min-resource", "--max-resource", "--reduction-factor")  # numbers as JSON: 3 and 3.0 differ

# The names `schedy add` takes for DIST; each PARAMS key is a constructor argument of the class.
DISTRIBUTIONS = {
    "uniform": Uniform,
    "loguniform": LogUniform,
    "normal": Normal,
    "choice": Choice,
    "constant": Constant,
    "const": Constant,
}  # const: the original client's name (and the log's)
# Distributions whose PARAMS is the value itself, as the original client wrote them: `x const 3`.
BARE_VALUE = {"const"}
CATEGORIES = ("schedy", "hyperparameter", "result")
CATEGORY_ALIASES = {"hp": "hyperparameter"}  # the prefix of `schedy export` columns (hp.lr) works here too


# -- showing values -----------------------------------------------------------------------------


def show_value(value):
    """``value`` as one line of text: a printable string as it is, anything else as JSON."""
    if isinstance(value, str) and value and value.isprintable():
        return value
    return json.dumps(value, separators=(", ", ": "), ensure_ascii=False, allow_nan=True)


def _short(x):
    """A float in at most 7 significant digits, for tables (scripts get every digit without -t)."""
    return show_value(x) if x != x or x in (float("inf"), float("-inf")) else format(x, ".7g")


def compact(value):
    """``value`` as JSON without spaces: the arguments of a distribution or a strategy."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=True)


def show_distribution(dist):
    """A distribution as ``schedy add`` takes it: ``DIST PARAMS``, e.g. ``loguniform {"low":0.001,"high":0.1}``."""
    name = next(n for n, cls in DISTRIBUTIONS.items() if type(dist) is cls)
    args = {f.name: getattr(dist, f.name) for f in dataclasses.fields(dist)}
    if args.get("weights", 0) is None:
        del args["weights"]
    return f"{name} {compact(args)}"


def show_strategy(spec):
    """An explore strategy (or a list of them) or an exploit strategy in its log form, as ``--explore`` takes it."""
    return compact([s.to_log() for s in spec] if isinstance(spec, list) else spec.to_log())


def kind_of(exp):
    # The last match: Hyperband is a subclass of ASHA.
    return next(k for k, cls in reversed(KINDS.items()) if isinstance(exp, cls))


def distributions_of(exp):
    """The distributions of a random search, ASHA, Hyperband or Bayesian search, or the initial distributions of PBT
    ({} otherwise)."""
    if isinstance(exp, (RandomSearch, ASHA, BayesianSearch)):
        return exp.distributions
    if isinstance(exp, PopulationBasedTraining):
        return exp.initial_distributions
    return {}


UNBOUNDED = 100_000  # the width of output into a file or a pipe: nothing is folded there
HEADER_MIN = 10  # a header longer than its column is broken over lines, in a column at least this wide
WORD_MAX = 30  # text wraps between words, and a longer word folds; numbers, ids and statuses never do


def _console():
    """A console for standard output, as wide as the terminal (or COLUMNS); into a file or a pipe, unbounded."""
    # Into a file or a pipe, fold nothing (unless COLUMNS says how wide): rich would assume 80 columns.
    unbounded = not sys.stdout.isatty() and not os.environ.get("COLUMNS")
    # Names and values are data: never read them as rich markup, emoji codes or things to colour.
    return Console(highlight=False, markup=False, emoji=False, width=UNBOUNDED if unbounded else None)


def render(renderable, console=None):
    """Print a rich renderable, without the spaces rich pads its lines with."""
    console = console or _console()
    with console.capture() as captured:
        console.print(renderable)
    click.echo("\n".join(line.rstrip() for line in captured.get().splitlines()).strip("\n"))


def as_paragraphs(headers, rows):
    """One paragraph of ``header: value`` lines per row (a None value is left out), a blank line between them."""
    return "\n\n".join("\n".join(f"{h}: {v}" for h, v in zip(headers, row) if v is not None) for row in rows)


def _column_widths(headers, rows, whole, available):
    """The width of the text of each column so that the table fits in ``available`` columns; None if it cannot.

    At its natural width when it fits. Else every column gets at least its longest value if its values
    are ``whole``, else its longest word up to WORD_MAX, and HEADER_MIN for a longer header; the room
    left widens the narrowest columns first, each up to its natural width.
    """
    natural, least = [], []
    for i, header in enumerate(headers):
        texts = [row[i] for row in rows if row[i]]
        longest = max(map(cell_len, texts), default=0)
        natural.append(max(cell_len(header), longest, 1))
        word = longest if whole[i] else min(max((cell_len(w) for t in texts for w in t.split()), default=0), WORD_MAX)
        least.append(max(min(cell_len(header), HEADER_MIN), word, 1))
    room = available - (3 * len(headers) + 1)  # box.SIMPLE_HEAD: a space each side of a cell, one between cells
    if sum(natural) <= room:
        return natural
    if sum(least) > room:
        return None
    widths = least
    for _ in range(room - sum(least)):  # fewer than the columns lack: sum(natural) > room
        i = min((i for i, w in enumerate(widths) if w < natural[i]), key=lambda i: widths[i])
        widths[i] += 1
    return widths


def _break(header, width):
    """``header`` over lines of at most ``width`` characters, broken after a space, ``_ - . /`` when there is one."""
    lines = []
    while len(header) > width:
        cut = max(header.rfind(c, 0, width) for c in " _-./") + 1
        if cut < width // 2:  # no separator, or too early to be worth it: fold
            cut = width
        lines.append(header[:cut].rstrip())
        header = header[cut:].lstrip()
    return "\n".join([*lines, header])


def print_rows(headers, rows, whole, right, full_rows=None, title=None):
    """Print ``rows`` under ``headers`` as a table that never drops a column nor cuts a value.

    ``rows`` hold the text of each cell (None: no value). The values of a ``whole`` column (numbers,
    ids, statuses) stay whole on one line; other values fold, and a header longer than its column is
    broken over lines. When even that does not fit in the terminal, each row becomes a paragraph of
    ``header: value`` lines, the values taken from ``full_rows`` (default: ``rows``). Into a file or a
    pipe the table is as wide as it needs. ``right``: the columns justified to the right (numbers).
    """
    console = _console()
    widths = _column_widths(headers, rows, whole, console.width)
    if title is not None:
        click.echo(f"{title}\n")
    if widths is None:
        text = as_paragraphs(headers, rows if full_rows is None else full_rows)
        if text:
            click.echo(text)
        return
    table = Table(box=box.SIMPLE_HEAD)
    for header, width, to_right in zip(headers, widths, right):
        table.add_column(
            Text(_break(header, width), overflow="fold"),
            justify="right" if to_right else "left",
            width=width,
            overflow="fold",
        )
    for row in rows:
        table.add_row(*(Text(v or "") for v in row))
    render(table, console)


def _grid(rows):
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")  # a long value continues on the next line, never cut
    for key, value in rows:
        grid.add_row(Text(key), Text(value) if isinstance(value, str) else value)
    return grid


def _mapping(m, how=show_value):
    return _grid([(k, how(v)) for k, v in m.items()]) if m else "none"


def _plural(n, word):
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def describe_experiment(exp, jobs):
    """A rich renderable describing ``exp`` and counting ``jobs`` by status."""
    counts = Counter(j.status for j in jobs)
    by_status = ", ".join(f"{counts[s]} {s}" for s in ev.JOB_STATUSES if counts[s])
    rows = [
        ("experiment", exp.name),
        ("kind", kind_of(exp)),
        ("status", exp.status),
        ("seed", str(exp.seed)),
        ("lease", f"{exp.lease:g} s"),
    ]
    if isinstance(exp, RandomSearch):
        rows.append(("distributions", _mapping(exp.distributions, show_distribution)))
    if isinstance(exp, PopulationBasedTraining):
        explore = (
            f"PB2 {compact(exp.explore.to_log())}"
            if isinstance(exp.explore, core_pbt.PB2)
            else _mapping(exp.explore, show_strategy)
        )
        rows += [
            ("objective", exp.objective),
            ("result", exp.result_name),
            ("exploit", show_strategy(exp.exploit)),
            ("explore", explore),
            ("initial", _mapping(exp.initial_distributions, show_distribution)),
            (
                "population size",
                "not set: the jobs pushed form the population"
                if exp.population_size is None
                else str(exp.population_size),
            ),
            ("max generations", "no limit" if exp.max_generations is None else str(exp.max_generations)),
            (
                "ranking",
                {
                    core_pbt.SAME_GENERATION: "against the same generation",
                    core_pbt.LATEST: "against each member's latest segment",
                }[exp.ranking]
                + (", synchronous" if exp.synchronous else ""),
            ),
        ]
    if isinstance(exp, ASHA):
        rows += halving_rows(exp)
    if isinstance(exp, BayesianSearch):
        rows += bayesian_rows(exp)
    rows.append(("jobs", f"{len(jobs)} ({by_status})" if jobs else "0"))
    return _grid(rows)


def halving_rows(exp):
    """The definition of an ASHA or Hyperband experiment, with the resource each rung trains to."""
    config = exp._config()  # the core's reading of the definition: its ladder of resources
    ladder = ", ".join(show_value(config.resource(0, rung)) for rung in range(config.rungs(0)))
    rows = [
        ("objective", exp.objective),
        ("result", exp.result_name),
        ("distributions", _mapping(exp.distributions, show_distribution)),
        ("min resource", show_value(exp.min_resource)),
        ("max resource", show_value(exp.max_resource)),
        ("reduction factor", show_value(exp.reduction_factor)),
        ("rung resources", ladder),
    ]
    if config.bracket_count > 1:  # bracket b starts at rung b of the ladder
        rows.append(("brackets", f"{config.bracket_count}, starting at {ladder}"))
    rows.append(("max jobs", "no limit" if exp.max_jobs is None else str(exp.max_jobs)))
    return rows


def bayesian_rows(exp):
    """The definition of a Bayesian search, with every option of its sampler (the defaults it writes to the log)."""
    config = exp._config()  # the core's reading of the definition: the sampler's options, defaults filled in
    return [
        ("objective", exp.objective),
        ("result", exp.result_name),
        ("distributions", _mapping(exp.distributions, show_distribution)),
        ("sampler", exp.sampler),
        ("sampler options", _mapping(config.sampler_options)),  # a line each: as one JSON object, tpe's would fold
        ("max jobs", "no limit" if exp.max_jobs is None else str(exp.max_jobs)),
    ]


def describe_job(job):
    """A rich renderable describing ``job``."""
    rows = [("job", job.job_id), ("experiment", job.experiment.name), ("status", job.status)]
    if job.rung is not None:  # ASHA or Hyperband: a configuration trained up to a rung
        rows += [
            ("rung", str(job.rung)),
            ("resource", show_value(job.resource)),
            ("parent", job.parent_id or "none"),
            ("member", str(job.member)),
        ]
    elif job.member is not None:  # a PBT segment
        rows += [("generation", str(job.generation)), ("parent", job.parent_id or "none"), ("member", str(job.member))]
    rows += [("hyperparameters", _mapping(job.hyperparameters)), ("results", _mapping(job.results))]
    return _grid(rows)


# -- parsing the command line -------------------------------------------------------------------


def parse_json(text, what):
    """The JSON value ``text``; a usage error naming ``what`` if it is not JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise click.UsageError(f"{what}: not valid JSON ({e.msg} at column {e.colno}): {shown!r}") from None
    except RecursionError:
        raise click.UsageError(f"{what}: nested too deeply") from None


def parse_distribution(hp, dist, text):
    """The distribution of hyperparameter ``hp`` from the words ``DIST PARAMS``."""
    cls = DISTRIBUTIONS.get(dist)
    if cls is None:
        raise click.UsageError(f"unknown distribution {dist!r} for {hp!r}; use one of {', '.join(DISTRIBUTIONS)}")
    args = parse_json(text, f"the parameters of {hp!r}")
    if dist in BARE_VALUE:
        args = {"value": args}  # `x const 3` (`x constant '{"value": 3}'` says the same)
    if not isinstance(args, dict):
        raise click.UsageError(
            f'the parameters of {hp!r} must be a JSON object such as \'{{"low": 0, "high": 1}}\', got {text!r}'
        )
    try:
        # The core's check of the arguments' names, then the constructor's of their values: the messages a
        # log holding the same distribution gets.
        core_distributions.check_keys(f"the {dist} distribution", args, *core_distributions.ARGUMENTS[cls])
        return cls(**args)
    except (TypeError, ValueError) as e:
        raise click.UsageError(f"bad parameters for {hp!r}: {e}") from None


def _status(text, statuses, what):
    """``text`` as one of ``statuses``, in any case; a usage error otherwise."""
    if text.upper() not in statuses:
        raise click.UsageError(f"unknown {what} status {text!r}; use one of {', '.join(statuses)}")
    return text.upper()


def parse_triplets(words):
    """``HP DIST PARAMS`` triplets as a dict of hyperparameter name -> distribution."""
    if len(words) % 3:
        rest = words[len(words) - len(words) % 3 :]
        raise click.UsageError(
            f"distributions are HP DIST PARAMS triplets; the last one is incomplete: {' '.join(rest)!r}"
        )
    dists = {}
    for i in range(0, len(words), 3):
        hp, dist, text = words[i : i + 3]
        if hp in dists:
            raise click.UsageError(f"hyperparameter {hp!r} is given twice")
        dists[hp] = parse_distribution(hp, dist, text)
    return dists


def parse_exploit(text):
    """An exploit strategy: ``truncate``, ``tournament``, ``keep`` or the log form (``{"truncate": 0.25}``)."""
    if text == "truncate":
        return Truncate()
    if text in ("tournament", "binaryTournament"):
        return BinaryTournament()
    if text == "keep":
        return Keep()
    if not text.lstrip().startswith("{"):
        raise click.UsageError(
            f"unknown --exploit {text!r}; use truncate, tournament, keep, "
            "'{\"truncate\": PROPORTION}' or '{\"binaryTournament\": {}}'"
        )
    spec = parse_json(text, "--exploit")
    try:
        return core_pbt.exploit_from_log(spec)
    except (TypeError, ValueError) as e:
        raise click.UsageError(f"--exploit: {e}") from None


def parse_explore(hp, text):
    """The explore strategies of ``hp``: a log-form strategy or list of them, or the word ``perturb``.

    The log form is read by the core (unknown keys, ranges and types are its checks, with its messages); the
    rest of the definition (an empty list, a name without an initial distribution) is checked when the whole
    experiment is built.
    """
    spec = {"perturb": {}} if text == "perturb" else parse_json(text, f"--explore {hp!r}")
    try:
        return core_pbt.explore_from_log(spec)
    except (TypeError, ValueError) as e:
        raise click.UsageError(f"--explore {hp!r}: {e}") from None


def _kinds(kinds):
    return kinds[0] if len(kinds) == 1 else f"{', '.join(kinds[:-1])} and {kinds[-1]}"


def build_experiment(name, kind, words, status, seed, lease, options):
    """The experiment the arguments of ``schedy add`` describe; a usage error for any bad value.

    ``options`` maps each option of OPTION_KINDS to its value (None, False or () when not given).
    """
    for opt, value in options.items():
        if value is not None and value is not False and value != () and kind not in OPTION_KINDS[opt]:
            raise click.UsageError(f"{opt} applies to {_kinds(OPTION_KINDS[opt])} experiments only")
    if kind == "manual" and words:
        raise click.UsageError(f"a manual experiment takes no distributions, got {' '.join(words)!r}")
    dists = parse_triplets(words)
    common = {"status": status, "seed": seed, "lease": lease}
    try:
        if kind == "manual":
            return ManualSearch(name, **common)
        if kind == "random":
            if not dists:
                raise click.UsageError("a random search needs at least one HP DIST PARAMS triplet")
            return RandomSearch(name, dists, **common)
        if kind in HALVING:
            return _build_halving(kind, name, dists, options, common)
        if kind == "bayesian":
            return _build_bayesian(name, dists, options, common)
        return _build_pbt(name, dists, options, common)
    except (TypeError, ValueError) as e:
        raise click.UsageError(str(e)) from None


def _build_halving(kind, name, dists, opts, common):
    if opts["--result"] is None:  # missing; an empty one is the core's to refuse
        article = "an" if kind[0] in "aeiou" else "a"
        raise click.UsageError(f"{article} {kind} experiment needs --result NAME: the result that ranks configurations")
    # The values go to the core as given (JSON, so that 3 stays an integer and the resources with it), unchecked:
    # its ValueError names what is wrong, as it does for the Python API; the defaults are the API's.
    given = {
        arg: parse_json(opts[opt], opt) if opt in JSON_OPTIONS else opts[opt]
        for opt, arg in HALVING_ARGUMENTS.items()
        if opts[opt] is not None
    }
    return KINDS[kind](name, dists, opts["--result"], **given, **common)


def _build_bayesian(name, dists, opts, common):
    if opts["--result"] is None:  # missing; an empty one is the core's to refuse
        raise click.UsageError("a bayesian experiment needs --result NAME: the result the sampler optimizes")
    # As for ASHA: the values go to the core unchecked, and its ValueError names what is wrong.
    given = {arg: opts[opt] for opt, arg in BAYESIAN_ARGUMENTS.items() if opts[opt] is not None}
    if opts["--sampler-options"] is not None:
        options = parse_json(opts["--sampler-options"], "--sampler-options")
        if not isinstance(options, dict):  # the API would read a list of pairs as a dict
            raise click.UsageError(
                f"--sampler-options must be a JSON object such as '{{\"n_startup_trials\": 5}}', "
                f"got {opts['--sampler-options']!r}"
            )
        given["sampler_options"] = options
    return BayesianSearch(name, dists, opts["--result"], **given, **common)


def _build_pbt(name, dists, opts, common):
    if opts["--objective"] is None:
        raise click.UsageError("a pbt experiment needs --objective min or max")
    if not opts["--result"]:
        raise click.UsageError("a pbt experiment needs --result NAME: the result that ranks the population")
    explore = {}
    for hp, text in opts["--explore"]:
        if hp in explore:
            raise click.UsageError(f"--explore {hp!r} is given twice; chain strategies in one JSON list")
        explore[hp] = parse_explore(hp, text)
    if opts["--pb2"] is not None:
        if explore:
            raise click.UsageError(
                "--pb2 and --explore do not go together: PB2 chooses the values of the hyperparameters in its bounds"
            )
        try:
            explore = core_pbt.PB2.from_log(parse_json(opts["--pb2"], "--pb2"))
        except (TypeError, ValueError) as e:
            raise click.UsageError(f"--pb2: {e}") from None
    # The rest is the core's check of the whole definition (as for the Python API and a log), raised here as
    # a ValueError or TypeError and shown as a usage error by build_experiment.
    return PopulationBasedTraining(
        name,
        objective=opts["--objective"],
        result_name=opts["--result"],
        exploit=parse_exploit(opts["--exploit"] or "truncate"),
        explore=explore,
        initial_distributions=dists,
        population_size=opts["--population-size"],
        max_generations=opts["--max-generations"],
        ranking=opts["--ranking"] or core_pbt.SAME_GENERATION,
        synchronous=opts["--synchronous"],
        **common,
    )


# -- add ----------------------------------------------------------------------------------------


@main.command(short_help="Create an experiment: manual queue, random search, PBT, ASHA, Hyperband or Bayesian search.")
@click.argument("name")
@click.argument("kind", type=click.Choice(list(KINDS)), metavar="|".join(KINDS))
@click.argument("distributions", nargs=-1, metavar="[HP DIST PARAMS]...")
@click.option(
    "-s",
    "--status",
    default=ev.RUNNING,
    metavar="RUNNING|DONE",
    show_default=True,
    callback=lambda ctx, param, value: _status(value, ev.EXPERIMENT_STATUSES, "experiment"),
    help="RUNNING hands out jobs; DONE does not (any case).",
)
@click.option(
    "--seed",
    type=int,
    metavar="N",
    help="Seed of every sampled value, in [0, 2**63), for reproducible searches. Default: drawn at "
    "random, then recorded and shown.",
)
@click.option(
    "--lease",
    type=float,
    metavar="SECONDS",
    help="How long a claim lasts unless its worker renews it (at least 0.1). Default: 120.",
)
@click.option(
    "--objective",
    type=click.Choice(["min", "max"]),
    help="pbt, asha, hyperband, bayesian: minimize or maximize the result (pbt: required; the others: min by default).",
)
@click.option(
    "--result",
    "result_name",
    metavar="NAME",
    help="pbt: the result that ranks the population; asha, hyperband: the result that ranks configurations; "
    "bayesian: the result the sampler optimizes.",
)
@click.option(
    "--exploit",
    metavar="STRATEGY",
    help="pbt: truncate (the default, proportion 0.2), tournament, keep (never copy: a baseline), "
    "or the log form '{\"truncate\": 0.25}' / '{\"binaryTournament\": {}}' / '{\"keep\": {}}'.",
)
@click.option(
    "--explore",
    nargs=2,
    multiple=True,
    metavar="HP STRATEGY",
    help="pbt: how HP changes after a member copies a better one (repeatable, once per HP). STRATEGY is "
    "perturb (factor 0.8 to 1.2), or the log form of docs/pbt.md, or a JSON list of them.",
)
@click.option(
    "--pb2",
    metavar="JSON",
    help='pbt: explore with the PB2 bandit instead, e.g. \'{"bounds": {"lr": [0.0001, 0.1]}, '
    '"logScale": ["lr"]}\' (docs/pbt.md).',
)
@click.option(
    "--population-size", type=int, metavar="N", help="pbt: sample N members from the triplets (give both or neither)."
)
@click.option(
    "--max-generations", type=int, metavar="N", help="pbt: each member trains at most N segments. Default: no limit."
)
@click.option(
    "--ranking",
    type=click.Choice(list(core_pbt.RANKINGS)),
    help="pbt: rank a member against the others' segments of its generation (the default), or "
    "against their latest segments.",
)
@click.option(
    "--synchronous",
    is_flag=True,
    help="pbt: no member starts generation g+1 before every member has finished generation g.",
)
@click.option(
    "--min-resource",
    metavar="X",
    help="asha, hyperband: the resource (epochs, steps: your unit) rung 0 trains to, a JSON number. Default: 1.",
)
@click.option("--max-resource", metavar="X", help="asha, hyperband: the resource the last rung trains to. Default: 81.")
@click.option(
    "--reduction-factor",
    metavar="X",
    help="asha, hyperband: each rung trains X times as long, and promotes the top 1/X of it. Default: 3.",
)
@click.option(
    "--max-jobs",
    type=int,
    metavar="N",
    help="asha, hyperband: hand out at most N jobs, promotions included; bayesian: at most N jobs. Default: no limit.",
)
@click.option(
    "--sampler",
    type=click.Choice(list(core_bayes.SAMPLERS)),
    help="bayesian: what proposes each new job: Optuna's TPE (the default), CMA-ES, a quasi-random sequence (qmc) "
    "or Optuna's random sampler (a baseline).",
)
@click.option(
    "--sampler-options",
    metavar="JSON",
    help="bayesian: the sampler's options as a JSON object, e.g. '{\"n_startup_trials\": 5}'; the others "
    "keep their defaults.",
)
@db_option
def add(
    name,
    kind,
    distributions,
    status,
    seed,
    lease,
    objective,
    result_name,
    exploit,
    explore,
    pb2,
    population_size,
    max_generations,
    ranking,
    synchronous,
    min_resource,
    max_resource,
    reduction_factor,
    max_jobs,
    sampler,
    sampler_options,
    db,
):
    """Create the experiment NAME, then print it.

    \b
    manual  a queue of jobs you add with `schedy push`.
    random  random search: hands out queued jobs first, else samples a new
            job from the distributions.
    pbt     Population Based Training (docs/pbt.md): each job is a training
            segment of a member; members that do badly continue from better
            ones.
    asha    asynchronous successive halving: each job trains a configuration
            sampled from the distributions up to a rung; the best 1/X of a
            rung (X: --reduction-factor) are promoted to the next rung, a
            job that goes on from its parent's checkpoint to X times the
            resource, from --min-resource up to --max-resource.
    hyperband
            asha in several brackets, which start at different rungs.
    bayesian
            Bayesian search: a sampler proposes each new job from the
            results of every job so far (needs Optuna: pip install
            'schedy[optuna]').

    Random search, pbt, asha, hyperband and bayesian take distributions as
    HP DIST PARAMS triplets: PARAMS is a JSON object of the arguments of
    DIST (pbt samples its initial population from them, with
    --population-size; bayesian searches uniform, loguniform, choice
    without weights, and constant):

    \b
      uniform     {"low": L, "high": H}          on [L, H)
      loguniform  {"low": L, "high": H}          log-uniform, 0 < L < H
      normal      {"mean": M, "std": S}          S > 0
      choice      {"values": [...], "weights": [...]}   weights optional
      constant    {"value": V}

    \b
    Examples:
      schedy add queue manual
      schedy add mnist random lr loguniform '{"low": 1e-4, "high": 0.1}' \\
          layers choice '{"values": [2, 3, 4]}' --seed 7
      schedy add cifar pbt lr loguniform '{"low": 1e-4, "high": 0.1}' \\
          --objective min --result loss --exploit '{"truncate": 0.25}' \\
          --explore lr '{"perturb": {"minFactor": 0.8, "maxFactor": 1.2, "high": 0.1}}' \\
          --population-size 8 --max-generations 20
      schedy add sha asha lr loguniform '{"low": 1e-4, "high": 0.1}' \\
          --result loss --min-resource 1 --max-resource 27 --max-jobs 40
      schedy add bo bayesian lr loguniform '{"low": 1e-4, "high": 0.1}' \\
          --result loss --sampler-options '{"n_startup_trials": 5}' --max-jobs 50

    asha and hyperband rank by --result (--objective min by default). The
    values of --min-resource, --max-resource and --reduction-factor are JSON
    numbers; when all three are integers, so is every rung's resource.

    bayesian optimizes --result (--objective min by default). The tpe
    sampler's options and their defaults: n_startup_trials 10 (jobs sampled
    at random before the model is used), n_ei_candidates 24 (candidates
    scored for each job), multivariate true (model the hyperparameters
    jointly), constant_liar true (count running jobs as bad, so that workers
    are not all proposed the same point). cmaes (two floats or more):
    population_size 4 + floor(3 ln n) for n floats (jobs per generation),
    sigma0 0.16666666666666666 (first step in the unit cube). qmc: qmc_type
    "sobol" (or "halton"), scramble true. The random sampler takes none.
    Every option is written to the log, the defaults included.

    Explore strategies (log form; several apply in order if given as a JSON
    list): {"perturb": {"minFactor": F, "maxFactor": F, "low": X, "high": X,
    "discrete": true}}, {"resample": {"distribution": {"loguniform": {"low":
    L, "high": H}}, "probability": P}}, {"noise": {"scale": S, "low": X,
    "high": X}}; every argument is optional except resample's distribution
    and noise's scale.

    The database is created if it does not exist. Exit status: 0 when the
    experiment was created, 1 when the database refused it (e.g. the name is
    taken), 2 for a bad argument (nothing is written).
    """
    options = {
        "--objective": objective,
        "--result": result_name,
        "--exploit": exploit,
        "--explore": explore,
        "--pb2": pb2,
        "--population-size": population_size,
        "--max-generations": max_generations,
        "--ranking": ranking,
        "--synchronous": synchronous,
        "--min-resource": min_resource,
        "--max-resource": max_resource,
        "--reduction-factor": reduction_factor,
        "--max-jobs": max_jobs,
        "--sampler": sampler,
        "--sampler-options": sampler_options,
    }
    exp = build_experiment(name, kind, distributions, status, seed, lease, options)
    location = default_path() if db is None else db
    new = "://" not in location and not os.path.isfile(os.path.join(location, "SCHEDY"))
    with failures():
        database = SchedyDB(location)
        database.add_experiment(exp)
    if new:
        click.echo(f"Created the database {database.path}.", err=True)
    render(describe_experiment(exp, []))


# -- rm -----------------------------------------------------------------------------------------


@main.command(short_help="Delete an experiment or a job.")
@click.argument("name")
@click.argument("job", required=False)
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
@db_option
def rm(name, job, force, db):
    """Delete the experiment NAME with all its jobs, or only its job JOB.

    Prints what it will delete and asks for confirmation [y/N] unless -f is
    given. Declining deletes nothing and exits with status 1. The log keeps
    the history of what is deleted; a deleted experiment's name can be used
    again. Exit status 1 also when NAME or JOB does not exist.
    """
    with failures():
        exp = open_db(db).get_experiment(name)
        if job is None:
            target, jobs = exp, exp.all_jobs()
            what = f"experiment {name!r} and its {_plural(len(jobs), 'job')}"
        else:
            target = exp.get_job(job)
            what = f"job {job!r} of experiment {name!r}"
    if not force:
        render(describe_experiment(exp, jobs) if job is None else describe_job(target))
        if not click.confirm(f"Delete {what}?", default=False):
            click.echo("Nothing deleted.")
            sys.exit(1)
    with failures():
        target.delete()
    click.echo(f"Deleted {what}.")


# -- show ---------------------------------------------------------------------------------------


@main.command(short_help="Describe an experiment or a job.")
@click.argument("name")
@click.argument("job", required=False)
@db_option
def show(name, job, db):
    """Describe the experiment NAME, or its job JOB.

    An experiment: its kind, status, seed, lease, the parameters of its
    scheduler (distributions; for pbt the objective, result, exploit and
    explore strategies, initial distributions, population size and maximum
    generations; for asha and hyperband the objective, result,
    distributions, resources, reduction factor, the resource of each rung
    and the maximum number of jobs; for bayesian the objective, result,
    distributions, sampler, every option of the sampler (its defaults
    included) and the maximum number of jobs; in the form `schedy add`
    takes them) and how many jobs it has in each status. A job: its
    status, for pbt its generation, parent job and member, for asha and
    hyperband its rung, the resource it trains to, its parent job (whose
    checkpoint it goes on from) and member (its configuration), then its
    hyperparameters and results. Exit status 1 if NAME or JOB does not
    exist.
    """
    with failures():
        exp = open_db(db).get_experiment(name)
        shown = describe_experiment(exp, exp.all_jobs()) if job is None else describe_job(exp.get_job(job))
    render(shown)


# -- list ---------------------------------------------------------------------------------------


class Listing:
    """Rows mapping (category, name) to a value, for ``schedy list``.

    ``columns`` are the schedy fields first, then hyperparameters, then
    results, each in order of first appearance.
    """

    def __init__(self, fixed, rows):
        self.rows = rows
        seen = dict.fromkeys(fixed)
        for category in CATEGORIES[1:]:
            for row in rows:
                seen.update((c, None) for c in row if c[0] == category)
        self.columns = list(seen)

    def header(self, column):
        """``name``, or ``category.name`` when another category has a field of that name."""
        shared = sum(1 for c in self.columns if c[1] == column[1]) > 1
        return f"{column[0]}.{column[1]}" if shared else column[1]

    def resolve(self, field, option):
        """The column named by ``field``; a usage error naming ``option`` if it is unknown or ambiguous."""
        category, dot, name = field.partition(".")
        category = CATEGORY_ALIASES.get(category, category)
        if dot and category in CATEGORIES and (category, name) in self.columns:
            return category, name
        matches = [c for c in self.columns if c[1] == field]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise click.BadParameter(
                f"field {field!r} is ambiguous: say {' or '.join(f'{c}.{n}' for c, n in matches)}", param_hint=option
            )
        raise click.BadParameter(
            f"unknown field {field!r}; the fields are {', '.join(self.header(c) for c in self.columns)}",
            param_hint=option,
        )

    def sort(self, columns, decreasing):
        """Sort by ``columns`` in order; missing values (and NaN) last, in either direction."""
        if not columns and decreasing:
            self.rows.reverse()
        # Stable passes from the last key to the first give the lexicographic order.
        for column in reversed(columns):
            present = [r for r in self.rows if _sortable(r.get(column, _MISSING))]
            absent = [r for r in self.rows if not _sortable(r.get(column, _MISSING))]
            self.rows = sorted(present, key=lambda r: _order(r[column]), reverse=decreasing) + absent


_MISSING = object()


def _sortable(value):
    return value is not _MISSING and value == value  # NaN != NaN


def _order(value):
    # Numbers by value, then strings, then anything else by its text: values of mixed types still sort.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return 0, value, ""
    if isinstance(value, str):
        return 1, 0, value
    return 2, 0, show_value(value)


def _job_number(job_id):
    # Job ids are numbers as text ("10"): keep them numbers so that they sort as numbers.
    return int(job_id) if job_id is not None and job_id.isdigit() else job_id


def experiment_listing(exps):
    rows = []
    for exp in exps:
        row = {("schedy", "name"): exp.name, ("schedy", "status"): exp.status, ("schedy", "kind"): kind_of(exp)}
        row.update((("hyperparameter", hp), show_distribution(d)) for hp, d in distributions_of(exp).items())
        rows.append(row)
    fixed = [("schedy", "name"), ("schedy", "status"), ("schedy", "kind")]
    return Listing(fixed, rows), fixed


def _lineage_fields(exp):
    """The fields of a job that place it in a chain of jobs, for experiments whose jobs have them."""
    if isinstance(exp, ASHA):
        return ("rung", "resource", "parent", "member")
    if isinstance(exp, PopulationBasedTraining):
        return ("generation", "parent", "member")
    return ()


def _lineage_value(job, field):
    if field == "parent":
        return _job_number(job.parent_id)
    return getattr(job, field)


def job_listing(exp, jobs):
    fields = _lineage_fields(exp)
    fixed = [("schedy", "id"), ("schedy", "status"), *(("schedy", f) for f in fields)]
    rows = []
    for job in jobs:
        row = {("schedy", "id"): _job_number(job.job_id), ("schedy", "status"): job.status}
        for field in fields:
            value = _lineage_value(job, field)
            if value is not None:  # a job of rung or generation 0 has no parent: an empty cell, not null
                row[("schedy", field)] = value
        row.update((("hyperparameter", k), v) for k, v in job.hyperparameters.items())
        row.update((("result", k), v) for k, v in job.results.items())
        rows.append(row)
    return Listing(fixed, rows), fixed[:2]


@main.command(name="list", short_help="List experiments, or the jobs of one.")
@click.argument("name", required=False)
@click.option("-t", "--table", is_flag=True, help="A table of every field, with headers.")
@click.option("-p", "--paragraphs", is_flag=True, help="One paragraph of 'field: value' lines per row.")
@click.option(
    "-s",
    "--sort",
    "sort_fields",
    multiple=True,
    metavar="FIELD",
    help="Sort by FIELD (repeatable: by the first, then the next...). Missing values and NaN come last.",
)
@click.option("-d", "--decreasing", is_flag=True, help="Sort in decreasing order (alone: reverse the listing).")
@click.option(
    "-f",
    "--field",
    "fields",
    multiple=True,
    metavar="FIELD",
    help="Show FIELD (repeatable, in that order) instead of the default ones.",
)
@db_option
def list_(name, table, paragraphs, sort_fields, decreasing, fields, db):
    """List the experiments, or with NAME the jobs of experiment NAME.

    Experiments have the fields name, status, kind, and one field per
    hyperparameter holding its distribution (random search, asha,
    hyperband and bayesian; for pbt the initial distribution). Jobs have
    the fields id, status (for pbt also generation, parent and member; for
    asha and hyperband rung, resource, parent and member), one per
    hyperparameter and one per result. Experiments come in the order of the database, jobs
    in the order they were added.

    A FIELD is a name, or category.name where the category is schedy,
    hyperparameter (or hp, as in schedy export) or result; say category.name when two categories have a
    field of that name (e.g. a hyperparameter and a result both called x).
    Naming an unknown or ambiguous field is a usage error (exit status 2).

    \b
    Output:
      (default)  one line per row, fields separated by a tab, no headers:
                 name, status, kind (experiments) or id, status (jobs),
                 or the fields given with -f. Meant for scripts.
      -t         a table of every field (or those of -f), with headers.
      -p         a paragraph per row: one 'field: value' line per field
                 that has a value, a blank line between paragraphs.

    A string is shown as it is, any other value as JSON; a missing value is
    an empty cell. Exit status 1 if NAME does not exist.
    """
    if table and paragraphs:
        raise click.UsageError("-t and -p are two layouts: give one")
    with failures():
        database = open_db(db)
        if name is None:
            listing, default = experiment_listing(database.get_experiments())
        else:
            exp = database.get_experiment(name)
            listing, default = job_listing(exp, exp.all_jobs())
    keys = [listing.resolve(f, "'-s' / '--sort'") for f in sort_fields]
    chosen = [listing.resolve(f, "'-f' / '--field'") for f in fields]
    listing.sort(keys, decreasing)
    columns = chosen or (listing.columns if table or paragraphs else default)
    cells = [[r.get(c, _MISSING) for c in columns] for r in listing.rows]
    text = [[("" if v is _MISSING else show_value(v)) for v in row] for row in cells]
    headers = [listing.header(c) for c in columns]
    full = [[None if v is _MISSING else t for v, t in zip(row, trow)] for row, trow in zip(cells, text)]
    if table:
        numeric = [
            bool(cells) and all(row[i] is _MISSING or _order(row[i])[0] == 0 for row in cells)
            for i in range(len(columns))
        ]
        # A number cut across two lines reads as two numbers: keep numbers whole (and short), ids and statuses too.
        whole = [n or c[0] == "schedy" for n, c in zip(numeric, columns)]
        short = [
            [None if v is _MISSING else _short(v) if isinstance(v, float) else t for v, t in zip(row, trow)]
            for row, trow in zip(cells, text)
        ]
        print_rows(headers, short, whole, numeric, full_rows=full)
    elif paragraphs:
        blocks = as_paragraphs(headers, full)
        if blocks:
            click.echo(blocks)
    else:
        for row in text:
            click.echo("\t".join(row))


# -- push ---------------------------------------------------------------------------------------

PUSH_OPTIONS = {"-p": "hyperparameter", "--hyperparameters": "hyperparameter", "-r": "result", "--results": "result"}
STATUS_OPTIONS = ("-s", "--status")


def parse_pairs(words, command):
    """Hyperparameters, results and the status as typed (or None) from ``-p``/``-r``/``-s`` words; a usage
    error for anything wrong (``command`` names the command in messages)."""
    found = {"hyperparameter": {}, "result": {}}
    status, category, option, pairs, i = None, None, None, 0, 0
    while i < len(words):
        word = words[i]
        name, eq, inline = word.partition("=") if word.startswith("--") else (word, "", "")
        if name in PUSH_OPTIONS or name in STATUS_OPTIONS:
            if category is not None and pairs == 0:
                raise click.UsageError(f"{option} is not followed by any name value pair")
            option, pairs = name, 0
        if name in PUSH_OPTIONS and not eq:
            category, i = PUSH_OPTIONS[name], i + 1
        elif name in STATUS_OPTIONS:
            if status is not None:
                raise click.UsageError("the status is given twice")
            if eq:
                status, i = inline, i + 1
            elif i + 1 < len(words):
                status, i = words[i + 1], i + 2
            else:
                raise click.UsageError(f"{name} needs a status")
            category = None
        elif word.startswith("-"):
            # Here a name is expected, and a name never starts with '-' (a value may: -1 is JSON).
            raise click.UsageError(f"unknown option {word!r}; {command} takes -p, -r, -s and --db")
        elif category is None:
            raise click.UsageError(f"unexpected {word!r}: name value pairs follow -p or -r")
        else:
            if i + 1 >= len(words) or words[i + 1] in PUSH_OPTIONS or words[i + 1] in STATUS_OPTIONS:
                raise click.UsageError(f"{category} {word!r} has no value")
            if word in found[category]:
                raise click.UsageError(f"{category} {word!r} is given twice")
            found[category][word] = parse_json(words[i + 1], f"{category} {word!r}")
            pairs, i = pairs + 1, i + 2
    if category is not None and pairs == 0:
        raise click.UsageError(f"{option} is not followed by any name value pair")
    return found["hyperparameter"], found["result"], status


def parse_push(words):
    """Hyperparameters, results and status from the words after NAME; a usage error for anything wrong."""
    hyperparameters, results, status = parse_pairs(words, "push")
    status = Job.QUEUED if status is None else _status(status, ev.JOB_STATUSES, "job")
    return hyperparameters, results, status


@main.command(
    short_help="Add a job to an experiment.",
    context_settings={"ignore_unknown_options": True},
    options_metavar="[--db PATH]",
)
@click.argument("name")
@click.argument("words", nargs=-1, type=click.UNPROCESSED, metavar="[-p HP VALUE...] [-r RESULT VALUE...] [-s STATUS]")
@db_option
def push(name, words, db):
    """Add a job to the experiment NAME and print it.

    \b
    -p, --hyperparameters HP VALUE [HP VALUE ...]
                       the job's hyperparameters
    -r, --results RESULT VALUE [RESULT VALUE ...]
                       the job's results
    -s, --status QUEUED|RUNNING|CRASHED|PRUNED|DONE
                       the job's status (default QUEUED: workers will run it)
    --db PATH          the database (default: $SCHEDY_DB)

    Each VALUE is JSON: 0.01, 3, '[512, 256]', '"adam"' (a string needs its
    quotes), true, null, NaN. -p and -r may be repeated: -p a 1 b 2 is -p a 1
    -p b 2. A name may not start with '-'. A random search's job must have
    exactly the hyperparameters of its distributions; a pbt job must have the
    hyperparameters it explores, and a DONE one its result. An asha or
    hyperband job is a new configuration at rung 0: it must have exactly the
    hyperparameters of the distributions, and a DONE one its result; so
    must a bayesian job.

    \b
    Example:
      schedy push mnist -p lr 0.01 layers 3 -r loss 0.25 -s DONE

    Exit status: 0 when the job was added, 1 when the experiment refused it
    or does not exist, 2 for a bad argument (nothing is written).
    """
    if name.startswith("-"):
        raise click.UsageError(f"NAME comes first: schedy push NAME -p ..., got {name!r} where NAME goes")
    hyperparameters, results, status = parse_push(words)
    with failures():
        job = open_db(db).get_experiment(name).add_job(hyperparameters, status, results)
    render(describe_job(job))
