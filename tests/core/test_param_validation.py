"""Every experiment parameter is checked by the core, once, with one message.

The scheduler's ``check_params`` is the check. ``decide.create_experiment`` and ``update_experiment`` call it
before anything is written (whatever built the definition: the Python API or ``schedy add``), and the fold
calls it on the ``params`` of every ``ExperimentCreated`` and ``ExperimentUpdated`` it reads, so a log carrying
a bad definition is a ``CorruptLogError`` with the same message. Unknown keys are refused, not ignored: a
misspelt ``min_factor`` would otherwise silently mean the default factor.
"""

import copy
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import log_size

import schedy
from schedy.cli import main
from schedy.core import decide
from schedy.core import events as ev
from schedy.core.codec import Commit, decode_commit, encode_commit
from schedy.core.schedulers import scheduler
from schedy.core.state import fold
from schedy.errors import CorruptLogError
from schedy.pbt import LATEST, MINIMIZE, PB2, AddNoise, Perturb, Resample, Truncate
from schedy.random import LogUniform, Normal, Uniform

NAME = "x"
OLD = Path(__file__).parent.parent / "data" / "release-0.1.0" / "db" / "experiments"

PBT = {
    "scheduler": {
        "PBT": {
            "objective": "min",
            "qualityResultName": "loss",
            "exploit": {"truncate": 0.25},
            "explore": {"lr": {"perturb": {"minFactor": 0.8, "maxFactor": 1.2}}},
            "init": {"lr": {"loguniform": {"low": 0.001, "high": 0.1}}},
            "numParallel": 4,
            "maxGenerations": 3,
            "ranking": "generation",
        }
    }
}
RANDOM = {"scheduler": {"RandomSearch": {"distributions": {"a": {"uniform": {"low": 0, "high": 1}}}}}}


def pbt(**changes):
    """PBT params with the fields of ``changes`` set (None: removed)."""
    params = copy.deepcopy(PBT)
    p = params["scheduler"]["PBT"]
    for key, value in changes.items():
        if value is None:
            del p[key]
        else:
            p[key] = value
    return params


def explore(spec):
    return pbt(explore={"lr": spec})


def random(**changes):
    params = copy.deepcopy(RANDOM)
    params["scheduler"]["RandomSearch"].update(changes)
    return params


def commit(version, event):
    """``event`` as the reader gets it: one commit, through its bytes."""
    return decode_commit(encode_commit(Commit(version, 1e9 + version, "w", [event])).rstrip(b"\n"))


# (kind, params, fragment of the message): each refused by the core alone, with the message.
BAD = [
    # explore strategies: unknown and missing keys, shapes, values
    (
        "pbt",
        explore({"perturb": {"min_factor": 0.5}}),
        "explore of 'lr': perturb takes minFactor, maxFactor, low, high, discrete: unknown 'min_factor'",
    ),
    ("pbt", explore({"perturb": {"minFactor": 0.8, "maxfactor": 1.5}}), "unknown 'maxfactor'"),
    ("pbt", explore({"noise": {}}), "noise takes scale, low, high: missing 'scale'"),
    ("pbt", explore({"noise": {"scale": 0.1, "lo": 0}}), "noise takes scale, low, high: unknown 'lo'"),
    (
        "pbt",
        explore({"resample": {"probability": 0.5}}),
        "resample takes distribution, probability: missing 'distribution'",
    ),
    (
        "pbt",
        explore({"resample": {"distribution": {"uniform": {"low": 0, "hi": 1}}}}),
        "the uniform distribution takes low, high: unknown 'hi'; missing 'high'",
    ),
    ("pbt", explore({"resample": {"distribution": {"gauss": {}}}}), "unknown distribution 'gauss'"),
    (
        "pbt",
        explore({"resample": {"distribution": {"uniform": {"low": 0, "high": 1}}, "p": 0.5}}),
        "resample takes distribution, probability: unknown 'p'",
    ),
    ("pbt", explore({"jitter": {}}), "unknown explore strategy {'jitter': {}}"),
    ("pbt", explore({"perturb": {}, "noise": {"scale": 1}}), "unknown explore strategy"),
    ("pbt", explore([{"perturb": {}}, [{"perturb": {}}]]), "unknown explore strategy [{'perturb': {}}]"),
    ("pbt", explore({"perturb": 5}), "the arguments of perturb must be an object, got 5"),
    ("pbt", explore([]), "explore of 'lr' is an empty list of strategies"),
    ("pbt", explore({"perturb": {"minFactor": "0.8"}}), "Perturb min_factor must be a finite number, got '0.8'"),
    ("pbt", explore({"perturb": {"minFactor": 0}}), "Perturb min_factor must be positive, got 0"),
    ("pbt", explore({"perturb": {"minFactor": 1.3, "maxFactor": 1.2}}), "Perturb needs min_factor <= max_factor"),
    ("pbt", explore({"perturb": {"low": 1, "high": 1}}), "Perturb needs low < high"),
    ("pbt", explore({"perturb": {"discrete": "yes"}}), "Perturb discrete must be True or False, got 'yes'"),
    ("pbt", explore({"noise": {"scale": 0}}), "AddNoise scale must be positive, got 0"),
    (
        "pbt",
        explore({"resample": {"distribution": {"uniform": {"low": 0, "high": 1}}, "probability": 1.5}}),
        "Resample probability must lie in [0, 1], got 1.5",
    ),
    ("pbt", pbt(explore={"wd": {"perturb": {}}}), "explore names 'wd', which initial_distributions does not define"),
    ("pbt", pbt(explore=[{"perturb": {}}]), "PBT explore must be an object of hyperparameter name -> value"),
    # exploit strategies
    ("pbt", pbt(exploit={"truncate": 0.9}), "Truncate needs 0 < proportion <= 0.5, got 0.9"),
    ("pbt", pbt(exploit={"truncate": "0.2"}), "Truncate proportion must be a finite number, got '0.2'"),
    ("pbt", pbt(exploit={"binaryTournament": 1}), "binaryTournament takes no arguments, got 1"),
    ("pbt", pbt(exploit={"keep": {"x": 1}}), "keep takes no arguments, got {'x': 1}"),
    ("pbt", pbt(exploit={"elitism": 0.2}), "unknown exploit strategy {'elitism': 0.2}"),
    # the definition's own keys and values
    (
        "pbt",
        pbt(maxGeneration=3),
        (
            "PBT takes objective, qualityResultName, exploit, explore, init, numParallel, "
            "maxGenerations, ranking, synchronous, pb2: unknown 'maxGeneration'"
        ),
    ),
    (
        "pbt",
        pbt(qualityResultName=None),
        (
            "PBT takes objective, qualityResultName, exploit, explore, init, "
            "numParallel, maxGenerations, ranking, synchronous, pb2: missing "
            "'qualityResultName'"
        ),
    ),
    ("pbt", pbt(objective="up"), "objective must be schedy.pbt.MINIMIZE ('min') or MAXIMIZE ('max'), got 'up'"),
    ("pbt", pbt(qualityResultName=""), "result_name must be a non-empty string"),
    ("pbt", pbt(numParallel=0), "population_size must be a positive integer, got 0"),
    ("pbt", pbt(numParallel=None), "initial_distributions and population_size go together"),
    ("pbt", pbt(maxGenerations=0), "max_generations must be a positive integer, got 0"),
    ("pbt", pbt(ranking="best"), "ranking must be schedy.pbt.SAME_GENERATION ('generation') or LATEST ('latest')"),
    ("pbt", pbt(ranking="latest", synchronous=True), "ranking='latest' cannot go with synchronous=True"),
    ("pbt", pbt(synchronous=1), "synchronous must be True or False, got 1"),
    (
        "pbt",
        pbt(init={"lr": {"uniform": {"low": 1, "high": 0}}}),
        "initial distribution of 'lr': Uniform needs low < high",
    ),
    (
        "pbt",
        pbt(init={"lr": {"uniform": {"low": 0, "high": 1, "step": 0.1}}}),
        "initial distribution of 'lr': the uniform distribution takes low, high: unknown 'step'",
    ),
    (
        "pbt",
        pbt(init={"lr": {"normal": {"mean": 0, "std": None}}}),
        "initial distribution of 'lr': Normal std must be a real number",
    ),
    ("pbt", pbt(init=[1]), "PBT init must be an object of hyperparameter name -> value"),
    (
        "pbt",
        {"scheduler": {"PBT": PBT["scheduler"]["PBT"]}, "comment": "hi"},
        "PBT parameters must be an object {'scheduler': {'PBT': {...}}}",
    ),
    ("pbt", {"scheduler": {"PBT": PBT["scheduler"]["PBT"], "Manual": {}}}, "PBT parameters must be an object"),
    # PB2
    (
        "pbt",
        pbt(explore={}, pb2={"bounds": {"lr": [0.001, 0.1]}, "kapa": 2}),
        "PB2 takes bounds, logScale, kappa, window, candidates: unknown 'kapa'",
    ),
    (
        "pbt",
        pbt(explore={}, pb2={"logScale": ["lr"]}),
        ("PB2 takes bounds, logScale, kappa, window, candidates: missing 'bounds'"),
    ),
    ("pbt", pbt(explore={}, pb2={"bounds": {"lr": [0.1, 0.001]}}), "PB2 bounds['lr'] needs low < high"),
    ("pbt", pbt(explore={}, pb2={"bounds": {"lr": [0.001, 0.1]}, "window": 0}), "PB2 window must be from 1"),
    (
        "pbt",
        pbt(explore={}, pb2={"bounds": {"wd": [0, 1]}}),
        "explore names 'wd', which initial_distributions does not define",
    ),
    ("pbt", pbt(pb2={"bounds": {"lr": [0.001, 0.1]}}), "explores with PB2 or with per-hyperparameter strategies"),
    # random search
    (
        "random",
        random(distributions={"a": {"uniform": {"low": 0, "hi": 1}}}),
        "distribution of 'a': the uniform distribution takes low, high: unknown 'hi'; missing 'high'",
    ),
    (
        "random",
        random(distributions={"a": {"normal": {"mean": 0, "std": 0}}}),
        "distribution of 'a': Normal needs std > 0",
    ),
    (
        "random",
        random(distributions={"a": {"choice": {"values": [1, 2], "weight": [1, 1]}}}),
        "the choice distribution takes values, weights: unknown 'weight'",
    ),
    (
        "random",
        random(distributions={"a": {"choice": {"values": "ab"}}}),
        "the values of the choice distribution must be a list",
    ),
    ("random", random(distributions=[1]), "random search distributions must be an object"),
    ("random", random(sampler="tpe"), "random search takes distributions: unknown 'sampler'"),
    ("random", {"scheduler": {"RandomSearch": {}}}, "random search takes distributions: missing 'distributions'"),
    (
        "random",
        {"scheduler": {"Random": RANDOM["scheduler"]["RandomSearch"]}},
        "random search parameters must be an object {'scheduler': {'RandomSearch': {...}}}",
    ),
    ("manual", {"scheduler": {"Manual": {"x": 1}}}, "invalid manual search parameters"),
]
IDS = [f"{kind}: {fragment[:60]}" for kind, _, fragment in BAD]


@pytest.mark.parametrize("kind, params, fragment", BAD, ids=IDS)
def test_the_core_refuses_each_bad_parameter_with_its_message(kind, params, fragment):
    with pytest.raises(ValueError) as info:
        scheduler(kind).check_params(params)
    assert fragment in str(info.value)
    # Creating and updating an experiment go through the same check, before any event is returned.
    with pytest.raises(ValueError) as info:
        decide.create_experiment(None, name=NAME, kind=kind, params=params, status=ev.RUNNING, seed=1)
    assert fragment in str(info.value)
    good = {"pbt": PBT, "random": RANDOM, "manual": {"scheduler": {"Manual": {}}}}[kind]
    state = decide_and_fold(
        decide.create_experiment(None, name=NAME, kind=kind, params=good, status=ev.RUNNING, seed=1)
    )
    with pytest.raises(ValueError) as info:
        decide.update_experiment(state, name=NAME, params=params)
    assert fragment in str(info.value)


def decide_and_fold(decision, state=None):
    return fold([commit(state.version + 1 if state else 1, e) for e in decision.events], state)


@pytest.mark.parametrize("kind, params, fragment", BAD, ids=IDS)
def test_a_log_carrying_a_bad_parameter_is_corrupt_with_the_same_message(kind, params, fragment):
    created = commit(1, ev.experiment_created(NAME, kind, params, ev.RUNNING, 1))
    with pytest.raises(CorruptLogError) as info:
        fold([created], stream=f"experiment {NAME!r}")
    assert "experiment 'x': commit 1 has a malformed ExperimentCreated event" in str(info.value)
    assert fragment in str(info.value)
    good = {"pbt": PBT, "random": RANDOM, "manual": {"scheduler": {"Manual": {}}}}[kind]
    state = fold([commit(1, ev.experiment_created(NAME, kind, good, ev.RUNNING, 1))])
    with pytest.raises(CorruptLogError) as info:
        fold([commit(2, ev.experiment_updated(params=params))], state, stream=f"experiment {NAME!r}")
    assert "experiment 'x': commit 2 has a malformed ExperimentUpdated event" in str(info.value)
    assert fragment in str(info.value)


def test_every_definition_the_api_writes_passes_the_check(tmp_path):
    """The log form the constructors write is read back by the strict reader: nothing valid is refused."""
    exps = [
        schedy.PopulationBasedTraining(
            "full",
            MINIMIZE,
            "loss",
            Truncate(0.25),
            {
                "lr": [Resample(LogUniform(1e-4, 0.1), 0.3), Perturb(0.7, 1.3, low=1e-4, high=0.1, discrete=True)],
                "wd": AddNoise(0.01, low=0.0, high=1.0),
            },
            {"lr": LogUniform(1e-3, 0.1), "wd": Uniform(0, 0.1)},
            population_size=4,
            max_generations=3,
            ranking=LATEST,
        ),
        schedy.PopulationBasedTraining(
            "bandit",
            MINIMIZE,
            "loss",
            schedy.pbt.BinaryTournament(),
            PB2({"lr": (1e-3, 0.1)}, log_scale=["lr"], kappa=2.0, window=3),
            {"lr": LogUniform(1e-3, 0.1)},
            population_size=4,
            synchronous=True,
        ),
        schedy.PopulationBasedTraining("own", "max", "acc", schedy.pbt.Keep(), {}),
        schedy.RandomSearch(
            "rs",
            {"a": Normal(0, 1), "b": schedy.random.Choice([1, "x"], [1, 2]), "c": schedy.random.Constant({"$f": 1})},
        ),
    ]
    db = schedy.SchedyDB(str(tmp_path / "db"))
    for exp in exps:
        db.add_experiment(exp)  # create_experiment checks the params
        # A fresh reader folds the log, checking them again, and reads back the same definition.
        assert schedy.SchedyDB(str(tmp_path / "db")).get_experiment(exp.name) == exp


def test_what_the_strict_reader_still_accepts():
    """docs/bad-input.md, "Accepted, not refused": null bounds mean no bound; a log without ranking is 0.1.0's."""
    params = explore([{"perturb": {"low": None, "high": None}}, {"noise": {"scale": 0.1, "low": None}}])
    scheduler("pbt").check_params(params)
    scheduler("pbt").check_params(pbt(ranking=None))
    scheduler("random").check_params(random(distributions={}))


@pytest.mark.parametrize("name", sorted(p.name for p in OLD.iterdir()))
def test_logs_of_release_0_1_0_still_pass_the_check(name):
    lines = (OLD / name / "log.jsonl").read_bytes().splitlines()
    state = fold([decode_commit(line) for line in lines])
    scheduler(state.kind).check_params(state.params)


# -- one bad input, three ways in: the Python API, `schedy add`, a log ------------------------------------------

INIT = {"lr": LogUniform(1e-3, 0.1)}
TRIPLET = ["lr", "loguniform", '{"low": 0.001, "high": 0.1}']
CLI_PBT = ["--objective", "min", "--result", "loss"]


def api(**changes):
    """The PBT experiment of the Python API, with ``changes`` (a callable value is called: a constructor that
    refuses its arguments raises here, as in a user's script)."""
    kw = {
        "objective": MINIMIZE,
        "result_name": "loss",
        "exploit": Truncate(0.25),
        "explore": {"lr": Perturb()},
        "initial_distributions": INIT,
        "population_size": 4,
    }
    return schedy.PopulationBasedTraining(NAME, **dict(kw, **_values(changes)))


def _values(changes):
    return {k: v() if callable(v) else v for k, v in changes.items()}


# (id, the Python API's changes, the arguments of `schedy add x pbt`, the log's params, the message)
SAME = [
    (
        "perturb factor",
        {"explore": lambda: {"lr": Perturb(min_factor=0)}},
        [*TRIPLET, *CLI_PBT, "--population-size", "4", "--explore", "lr", '{"perturb": {"minFactor": 0}}'],
        explore({"perturb": {"minFactor": 0}}),
        "Perturb min_factor must be positive, got 0",
    ),
    (
        "perturb discrete",
        {"explore": lambda: {"lr": Perturb(discrete="yes")}},
        [*TRIPLET, *CLI_PBT, "--population-size", "4", "--explore", "lr", '{"perturb": {"discrete": "yes"}}'],
        explore({"perturb": {"discrete": "yes"}}),
        "Perturb discrete must be True or False, got 'yes'",
    ),
    (
        "noise scale",
        {"explore": lambda: {"lr": AddNoise(-1)}},
        [*TRIPLET, *CLI_PBT, "--population-size", "4", "--explore", "lr", '{"noise": {"scale": -1}}'],
        explore({"noise": {"scale": -1}}),
        "AddNoise scale must be positive, got -1",
    ),
    (
        "resample probability",
        {"explore": lambda: {"lr": Resample(Uniform(0, 1), 1.5)}},
        [
            *TRIPLET,
            *CLI_PBT,
            "--population-size",
            "4",
            "--explore",
            "lr",
            '{"resample": {"distribution": {"uniform": {"low": 0, "high": 1}}, "probability": 1.5}}',
        ],
        explore({"resample": {"distribution": {"uniform": {"low": 0, "high": 1}}, "probability": 1.5}}),
        "Resample probability must lie in [0, 1], got 1.5",
    ),
    (
        "resample distribution",
        {"explore": lambda: {"lr": Resample(Uniform(1, 0))}},
        [
            *TRIPLET,
            *CLI_PBT,
            "--population-size",
            "4",
            "--explore",
            "lr",
            '{"resample": {"distribution": {"uniform": {"low": 1, "high": 0}}}}',
        ],
        explore({"resample": {"distribution": {"uniform": {"low": 1, "high": 0}}}}),
        "Uniform needs low < high, got low=1, high=0",
    ),
    (
        "empty list",
        {"explore": {"lr": []}},
        [*TRIPLET, *CLI_PBT, "--population-size", "4", "--explore", "lr", "[]"],
        explore([]),
        "explore of 'lr' is an empty list of strategies",
    ),
    (
        "explore without initial distribution",
        {"explore": {"wd": Perturb()}},
        [*TRIPLET, *CLI_PBT, "--population-size", "4", "--explore", "wd", "perturb"],
        pbt(explore={"wd": {"perturb": {}}}),
        "explore names 'wd', which initial_distributions does not define",
    ),
    (
        "truncate proportion",
        {"exploit": lambda: Truncate(0.9)},
        [*TRIPLET, *CLI_PBT, "--population-size", "4", "--exploit", '{"truncate": 0.9}'],
        pbt(exploit={"truncate": 0.9}),
        "Truncate needs 0 < proportion <= 0.5, got 0.9",
    ),
    (
        "population size",
        {"population_size": 0},
        [*TRIPLET, *CLI_PBT, "--population-size", "0"],
        pbt(numParallel=0),
        "population_size must be a positive integer, got 0",
    ),
    (
        "max generations",
        {"max_generations": 0},
        [*TRIPLET, *CLI_PBT, "--population-size", "4", "--max-generations", "0"],
        pbt(maxGenerations=0),
        "max_generations must be a positive integer, got 0",
    ),
    (
        "population without distributions",
        {"initial_distributions": {}, "explore": {}},
        [*CLI_PBT, "--population-size", "4"],
        pbt(init={}, explore={}),
        "initial_distributions and population_size go together",
    ),
    (
        "synchronous latest",
        {"ranking": LATEST, "synchronous": True},
        [*TRIPLET, *CLI_PBT, "--population-size", "4", "--ranking", "latest", "--synchronous"],
        pbt(ranking="latest", synchronous=True),
        "ranking='latest' cannot go with synchronous=True",
    ),
    (
        "initial distribution",
        {"initial_distributions": lambda: {"lr": LogUniform(0, 0.1)}},
        ["lr", "loguniform", '{"low": 0, "high": 0.1}', *CLI_PBT, "--population-size", "4"],
        pbt(init={"lr": {"loguniform": {"low": 0, "high": 0.1}}}),
        "LogUniform needs 0 < low < high, got low=0",
    ),
    (
        "pb2 bounds",
        {"explore": lambda: PB2({"lr": (0.1, 0.001)})},
        [*TRIPLET, *CLI_PBT, "--population-size", "4", "--pb2", '{"bounds": {"lr": [0.1, 0.001]}}'],
        pbt(explore={}, pb2={"bounds": {"lr": [0.1, 0.001]}}),
        "PB2 bounds['lr'] needs low < high",
    ),
    (
        "pb2 without initial distribution",
        {"explore": lambda: PB2({"wd": (0, 1)})},
        [*TRIPLET, *CLI_PBT, "--population-size", "4", "--pb2", '{"bounds": {"wd": [0, 1]}}'],
        pbt(explore={}, pb2={"bounds": {"wd": [0, 1]}}),
        ("explore names 'wd', which initial_distributions does not define"),
    ),
    (
        "pb2 window",
        {"explore": lambda: PB2({"lr": (0.001, 0.1)}, window=0)},
        [*TRIPLET, *CLI_PBT, "--population-size", "4", "--pb2", '{"bounds": {"lr": [0.001, 0.1]}, "window": 0}'],
        pbt(explore={}, pb2={"bounds": {"lr": [0.001, 0.1]}, "window": 0}),
        "PB2 window must be from 1 to 1,000",
    ),
]


def write_log(root, params):
    """A database whose experiment x was created with ``params`` (by a buggy or hostile writer)."""
    schedy.SchedyDB(str(root))  # creates the database
    line = encode_commit(Commit(1, 1e9, "w", [ev.experiment_created(NAME, "pbt", params, ev.RUNNING, 1)]))
    folder = root / "experiments" / NAME  # "x" is its own store key
    folder.mkdir(parents=True)
    (folder / "log.jsonl").write_bytes(line)


def cli_add(db, args):
    return CliRunner().invoke(main, ["add", NAME, "pbt", *args, "--db", str(db)])


@pytest.mark.parametrize("case, changes, args, params, fragment", SAME, ids=[c[0] for c in SAME])
def test_the_python_api_the_cli_and_a_log_refuse_the_same_input_with_the_same_message(
    tmp_path, case, changes, args, params, fragment
):
    # The Python API: refused before anything is written.
    db = schedy.SchedyDB(str(tmp_path / "api"))
    with pytest.raises((TypeError, ValueError)) as info:
        db.add_experiment(api(**changes))
    assert fragment in str(info.value)
    assert list(db.get_experiments()) == []
    # Changing an experiment's attributes to the same definition: refused by push_updates, nothing written.
    exp = db.add_experiment(api())
    before = log_size(db, NAME)
    with pytest.raises((TypeError, ValueError)) as info:
        for attribute, value in _values(changes).items():
            setattr(exp, attribute, value)
        exp.push_updates()
    assert fragment in str(info.value)
    assert log_size(db, NAME) == before
    # The command line: a usage error with the same message, and no database created.
    result = cli_add(tmp_path / "cli", args)
    assert result.exit_code == 2, result.output
    assert fragment in " ".join(result.output.split())
    assert not (tmp_path / "cli").exists()
    # A log holding the same definition: corrupt, with the same message, and `schedy show` says so.
    write_log(tmp_path / "log", params)
    with pytest.raises(CorruptLogError) as info:
        schedy.SchedyDB(str(tmp_path / "log")).get_experiment(NAME)
    assert fragment in str(info.value)
    shown = CliRunner().invoke(main, ["show", NAME, "--db", str(tmp_path / "log")])
    assert shown.exit_code == 1 and fragment in " ".join(shown.output.split())


# Unknown keys cannot be spelt in Python (a misspelt keyword is Python's own TypeError); the command line
# takes the log form, and refuses them with the message a log gets.
UNKNOWN = [
    (
        ["--explore", "lr", '{"perturb": {"min_factor": 0.5}}'],
        explore({"perturb": {"min_factor": 0.5}}),
        "perturb takes minFactor, maxFactor, low, high, discrete: unknown 'min_factor'",
    ),
    (
        ["--explore", "lr", '{"noise": {"sigma": 0.1}}'],
        explore({"noise": {"sigma": 0.1}}),
        "noise takes scale, low, high: unknown 'sigma'; missing 'scale'",
    ),
    (
        ["--explore", "lr", '{"resample": {"distribution": {"uniform": {"low": 0, "hi": 1}}}}'],
        explore({"resample": {"distribution": {"uniform": {"low": 0, "hi": 1}}}}),
        "the uniform distribution takes low, high: unknown 'hi'; missing 'high'",
    ),
    (["--explore", "lr", '{"jitter": {}}'], explore({"jitter": {}}), "unknown explore strategy {'jitter': {}}"),
    (
        ["--exploit", '{"binaryTournament": {"size": 2}}'],
        pbt(exploit={"binaryTournament": {"size": 2}}),
        "binaryTournament takes no arguments, got {'size': 2}",
    ),
    (
        ["--pb2", '{"bounds": {"lr": [0.001, 0.1]}, "kapa": 2}'],
        pbt(explore={}, pb2={"bounds": {"lr": [0.001, 0.1]}, "kapa": 2}),
        "PB2 takes bounds, logScale, kappa, window, candidates: unknown 'kapa'",
    ),
]


@pytest.mark.parametrize("args, params, fragment", UNKNOWN, ids=[u[2][:40] for u in UNKNOWN])
def test_the_cli_and_a_log_refuse_unknown_keys_with_the_same_message(tmp_path, args, params, fragment):
    result = cli_add(tmp_path / "cli", [*TRIPLET, *CLI_PBT, "--population-size", "4", *args])
    assert result.exit_code == 2, result.output
    assert fragment in " ".join(result.output.split())
    assert not (tmp_path / "cli").exists()
    with pytest.raises(ValueError) as info:
        decide.create_experiment(None, name=NAME, kind="pbt", params=params, status=ev.RUNNING, seed=1)
    assert fragment in str(info.value)
    write_log(tmp_path / "log", params)
    with pytest.raises(CorruptLogError) as info:
        schedy.SchedyDB(str(tmp_path / "log")).get_experiment(NAME)
    assert fragment in str(info.value)


def test_a_distribution_typed_on_the_command_line_gets_the_core_message(tmp_path):
    """`schedy add` triplets take the log form's argument names; the core checks them."""
    result = CliRunner().invoke(
        main, ["add", NAME, "random", "a", "uniform", '{"low": 0, "hi": 1}', "--db", str(tmp_path / "db")]
    )
    assert result.exit_code == 2
    message = "the uniform distribution takes low, high: unknown 'hi'; missing 'high'"
    assert message in " ".join(result.output.split())
    with pytest.raises(ValueError) as info:
        scheduler("random").check_params(random(distributions={"a": {"uniform": {"low": 0, "hi": 1}}}))
    assert str(info.value) == "distribution of 'a': " + message
