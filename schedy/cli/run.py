"""``schedy run``: pull the jobs of an experiment one after another and run a training command for each.

The command is a template: its placeholders (``%j``, ``%h``...) are checked
before anything runs, then expanded for each job. Each job runs inside
``with job:``, so its lease is renewed while the command trains; the
command's output is streamed through and scanned for results blocks, and the
last one becomes the job's results. A block ends at its end marker or, as with
the original Schedy client, when the command exits. ``schedy run --help`` is
the reference.
"""

import json
import os
import re
import selectors
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import click

from ..adapters import waiting
from ..adapters.opening import default_path
from ..core import values
from ..errors import (
    ExperimentNotFoundError,
    JobNotFoundError,
    NoJobError,
    Preempted,
    SchedyError,
    UnsafeUpdateError,
)
from . import db_option, failures, main, open_db

START, END = "--- RESULTS ---", "--- END RESULTS ---"
FIELDS = frozenset("ejgpmr%")  # the placeholders %e %j %g %p %m %r %% (and %h, a whole argument)
HALVING_VARIABLES = ("SCHEDY_RUNG", "SCHEDY_RESOURCE", "SCHEDY_PARENT_RESULTS")  # ASHA and Hyperband jobs only
# SIGUSR1: what Slurm's --signal=B:USR1@SECONDS sends the batch script ahead of a time limit.
HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1)
GRACE = 10.0  # seconds a command has to exit after the forwarded signal, before it is killed
DRAIN = 2.0  # seconds output is still read after the command exited: something it started may hold the pipe open
POLL = 0.1  # seconds between checks for signals and for the command's exit while its output is quiet
WAIT_MAX = waiting.LONGEST_PAUSE  # longest pause between two asks for a job while none can be handed out
MAX_LINE = 8 << 20  # a longer run of output without a newline is taken as a line, so memory stays bounded
MAX_BLOCK = 8 << 20  # results are at most 1 MiB as JSON; a block much longer is a runaway, not results

_PLACEHOLDER = re.compile(r"%(.?)", re.S)

HELP = f"""Pull jobs from experiment NAME one after another and run CMD for each.

\b
    schedy run [OPTIONS] NAME [--] CMD [ARGS]...

Each job is claimed for this worker, and its lease is renewed while CMD
runs. Options of schedy run come before NAME: everything after NAME is
the command, passed as is (a "--" right after NAME is dropped).

\b
Placeholders, expanded in every argument of CMD for each job:
  %e   the experiment's name
  %j   the job's id
  %g   its generation (PBT) or rung (ASHA, Hyperband), empty otherwise
  %p   the id of its parent job (PBT; ASHA and Hyperband: the job whose
       checkpoint a promotion goes on from), empty if none
  %m   its member (PBT) or configuration (ASHA, Hyperband), empty
       otherwise
  %r   the resource to train to (ASHA, Hyperband: epochs, steps... in
       all, from scratch), empty otherwise
  %%   a literal %
  %h   the hyperparameters, as options: "--NAME VALUE" for each one,
       underscores in NAME turned into hyphens, a null value left out,
       a string passed as is, any other value as compact JSON
       (--learning-rate 0.01 --layers [512,256] --augment true).
       %h must be a whole argument.
Any other %-sequence is a usage error, found before anything runs.

\b
Environment of CMD: schedy's own, plus
  SCHEDY_DB, SCHEDY_EXPERIMENT, SCHEDY_JOB, SCHEDY_GENERATION,
  SCHEDY_PARENT, SCHEDY_MEMBER (empty when not applicable),
  SCHEDY_HYPERPARAMETERS  the job's hyperparameters, as JSON
  SCHEDY_RESULTS          its results when it starts, as JSON: with PBT
                          a segment starts with its parent's results,
                          such as the model_path to load
  SCHEDY_RUNG, SCHEDY_RESOURCE
                          ASHA and Hyperband only: its rung and the
                          resource to train to (%g and %r)
  SCHEDY_PARENT_RESULTS   ASHA and Hyperband only: the results of the
                          job a promotion goes on from (its parent), as
                          JSON, such as the model_path to load; empty at
                          rung 0, or if the parent was deleted
  PYTHONUNBUFFERED=1      unless already set, so a Python script's
                          output streams as it is printed
Non-finite numbers are written NaN, Infinity, -Infinity (as Python's
json module writes and reads them). CMD's standard input is /dev/null,
and it runs in a session of its own.

CMD's standard output is shown line by line as it comes (its standard
error goes straight through) and scanned for results blocks. The job's
results are those of the last block, merged into the results it started
with:

\b
    --- RESULTS ---
    loss 0.25
    model_path /data/ckpt/7.pt
    layers [512, 256]
    --- END RESULTS ---

\b
The end line is optional: a block without one ends when CMD exits, so
every line CMD prints after "--- RESULTS ---" belongs to it (print the
block last, or close it). A block holds either one JSON object (over
as many lines as it likes: {{"loss": 0.25, "model_path": "/data/ckpt/7.pt"}}),
or one result per line: a name, spaces, and a value; a colon ending the
name is not part of it ("loss: 0.25" is the result loss). The value is
read as JSON (NaN and Infinity included), else as a number if Python's
float() reads it (nan, inf), else, unless it starts with {{ [ or ", as a
string: the rest of the line, trimmed. Quote a string as JSON when it
could be read as a number or as JSON. An empty block reports no results.

\b
Each job ends:
  DONE     CMD exited with status 0 and printed a valid results block
           (or none, with --allow-empty-results);
  CRASHED  CMD exited with another status or was killed (any results
           block, closed or not, is then ignored: the job keeps the
           results it started with), could not be started, printed no
           block or a malformed one (the error names the output line),
           or reported results the experiment refuses (a PBT segment
           without its score);
  released schedy run was told to stop (preempted, cancelled, at a time
           limit: see below): the job goes back to the front of the
           queue, with any results block CMD printed, for another
           worker to take at once; CMD's code did not fail;
  lost     the job changed in the log while CMD ran (its lease lapsed
           and it was handed out again, or someone marked it): the
           report is refused and the log keeps the other version.
Each failure prints one line "Error: job N: ..." on standard error.

After a failure schedy run stops, unless --ignore-errors. It stops when
the experiment hands out no more jobs ("no more jobs"): it is finished, or
nothing is queued, running or left to propose. While jobs run in other
workers and none can be handed out (every PBT member is training, or the
queue is empty but a running job may come back if its worker dies), it
waits, as exp.next_job(wait=True) does (asking the log again at most every
{WAIT_MAX:.0f} s). SIGINT (Ctrl-C),
SIGTERM and SIGHUP are forwarded to CMD's process group; CMD has
{GRACE:.0f} s to exit (a second signal kills it at once), then the job is
released, not CRASHED: it goes back to the front of the queue for another
worker to take at once, with any results block the command printed (a
checkpoint to resume from), and schedy run stops. SIGUSR1 (what Slurm's
--signal=B:USR1@SECONDS sends before a time limit) is handled the same way.

\b
Exit status:
  0        every job run ended DONE (also when there was none to run)
  1        a job failed (with --ignore-errors: at least one failed),
           or an error such as an unknown experiment
  2        a usage error, such as an unknown placeholder
  128+N    stopped by signal N (the job running then released): 130 for
           SIGINT, 143 for SIGTERM, 138 for SIGUSR1

On a terminal a live display shows the jobs done and failed, the current
job, its hyperparameters and elapsed time, below CMD's output; otherwise
plain lines such as "job 3: running: python train.py --lr 0.1" and
"job 3: DONE in 2.1 s: loss=0.25".

\b
Examples:
  schedy run mnist python train.py --epochs 2 --out ckpt/%j.pt %h
  schedy run sha python train.py --epochs %r --out ckpt/%j.pt %h
(ASHA: each job trains to its rung's resource; a promotion loads the
model_path in $SCHEDY_PARENT_RESULTS first.)
"""


# -- the command template ----------------------------------------------------------------------------------


def check_command(command):
    """CMD's arguments without a leading ``--``; raise click.UsageError for a bad placeholder."""
    args = list(command)
    if args and args[0] == "--":
        args = args[1:]
    if not args:
        raise click.UsageError("missing the command to run (CMD)")
    if args[0].startswith("-"):  # no command is named so: an option of schedy run put after NAME
        raise click.UsageError(f"{args[0]!r} is not a command; the options of schedy run go before NAME")
    for arg in args:
        if arg == "%h":
            continue
        for m in _PLACEHOLDER.finditer(arg):
            code = m.group(1)
            if code == "h":
                raise click.UsageError(f"%h must be a whole argument (it expands to several), not part of {arg!r}")
            if code not in FIELDS:
                what = "a lone % at the end" if code == "" else f"unknown placeholder %{code}"
                raise click.UsageError(
                    f"{what} in {arg!r}; the placeholders are %e %j %g %p %m %r %h, and %% for a literal %"
                )
    return args


def _text(value):
    return "" if value is None else str(value)


def _json(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def hp_options(hyperparameters):
    """``--name value`` for each hyperparameter: ``_`` becomes ``-``, None is left out, non-strings are JSON."""
    out = []
    for name, value in hyperparameters.items():
        if value is not None:
            out += ["--" + name.replace("_", "-"), value if isinstance(value, str) else _json(value)]
    return out


def expand(args, job):
    """The command line for ``job``: every placeholder of ``args`` (checked by check_command) replaced."""
    fields = {
        "e": job.experiment.name,
        "j": job.job_id,
        "g": _text(job.generation),
        "p": _text(job.parent_id),
        "m": _text(job.member),
        "r": _text(job.resource),
        "%": "%",
    }
    out = []
    for arg in args:
        if arg == "%h":
            out += hp_options(job.hyperparameters)
        else:
            out.append(_PLACEHOLDER.sub(lambda m: fields[m.group(1)], arg))
    return out


def child_env(job, db_location, parent_results=None):
    """The environment of the command for ``job``: ours, plus the SCHEDY_* variables.

    ``parent_results``: for an ASHA or Hyperband job, its parent's results (None: no parent, or it was deleted).
    """
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.update(
        SCHEDY_DB=db_location,
        SCHEDY_EXPERIMENT=job.experiment.name,
        SCHEDY_JOB=job.job_id,
        SCHEDY_GENERATION=_text(job.generation),
        SCHEDY_PARENT=_text(job.parent_id),
        SCHEDY_MEMBER=_text(job.member),
        SCHEDY_HYPERPARAMETERS=json.dumps(job.hyperparameters, ensure_ascii=False),
        SCHEDY_RESULTS=json.dumps(job.results, ensure_ascii=False),
    )
    for name in HALVING_VARIABLES:
        env.pop(name, None)  # one inherited from a schedy run around this one would describe another job
    if job.rung is not None:
        env.update(
            SCHEDY_RUNG=str(job.rung),
            SCHEDY_RESOURCE=_text(job.resource),
            SCHEDY_PARENT_RESULTS="" if parent_results is None else json.dumps(parent_results, ensure_ascii=False),
        )
    return env


def parent_results(job):
    """The results of the job an ASHA or Hyperband promotion goes on from (its checkpoint), or None.

    None when ``job`` has no parent (rung 0) or the parent was deleted. A promotion starts with no results of
    its own (unlike a PBT segment, which starts with its parent's), so the command finds them here.
    """
    if job.rung is None or job.parent_id is None:
        return None
    try:
        return dict(job.experiment.get_job(job.parent_id).results)
    except JobNotFoundError:
        return None
    except (SchedyError, OSError) as e:
        raise JobFailed(f"job {job.job_id}: cannot read its parent job {job.parent_id}: {e}") from None


# -- results blocks ----------------------------------------------------------------------------------------


class ResultsError(Exception):
    """A results block that cannot be read; the message names the output line."""


class Block:
    """The lines of one results block, numbered as lines of the command's output.

    A block ends at its END marker, or else at the end of the output: the marker is optional.
    """

    def __init__(self, start):
        self.start = start  # the output line of its START marker
        self.lines = []  # (output line number, text) after START, up to END or the end of the output
        self.closed = False  # whether its END marker came
        self.size = 0
        self.too_long = False


class BlockScanner:
    """Reads a command's output line by line and keeps its last results block."""

    def __init__(self):
        self.count = 0  # lines seen
        self.open = None  # a block whose END marker has not come yet
        self.last = None  # the last block closed

    def feed(self, text):
        self.count += 1
        marker = text.strip()
        if marker == START:
            self.open = Block(self.count)  # a new block, even inside an unclosed one: the last one counts
        elif self.open is not None:
            if marker == END:
                self.open.closed = True
                self.last, self.open = self.open, None
            elif not self.open.too_long:
                self.open.size += len(text) + 1
                self.open.too_long = self.open.size > MAX_BLOCK
                self.open.lines.append((self.count, text))

    def block(self):
        """The last block printed, or None; once the output has ended, a block without END is complete."""
        return self.open if self.open is not None else self.last


def _clip(text, width=80):
    text = text.strip()
    return text if len(text) <= width else text[: width - 1] + "…"


def parse_value(raw):
    """A result's value from the text after its name; raise ValueError if it starts like JSON but is not."""
    try:
        return json.loads(raw)  # Python's json also reads NaN, Infinity and -Infinity
    except ValueError:
        pass
    try:
        return float(raw)  # Python's own spellings: nan, inf, -inf (what print(loss) writes)
    except ValueError:
        pass
    if raw[0] in '{["':
        raise ValueError("not valid JSON")
    return raw


def read_block(block, job):
    """The results ``block`` holds for ``job``; ResultsError, or ValueError/TypeError for what cannot be stored
    with the job's results (refused now, not when the job is reported)."""
    results = parse_block(block)
    values.encode_mapping({**job.results, **results}, "results")
    return results


def parse_block(block):
    """The results a block holds, as a dict; raise ResultsError naming the bad line."""
    if block.too_long:
        raise ResultsError(
            f"the results block opened on output line {block.start} is longer than {MAX_BLOCK >> 20} MiB"
        )
    body = [(n, t) for n, t in block.lines if t.strip()]
    if not body:
        return {}
    if body[0][1].lstrip().startswith("{"):
        try:
            return json.loads("\n".join(t for _, t in block.lines))
        except json.JSONDecodeError as e:
            i = min(e.lineno, len(block.lines)) - 1
            while i > 0 and not block.lines[i][1].strip():  # an object cut short: name its last line
                i -= 1
            n, text = block.lines[i]
            raise ResultsError(
                f"output line {n}: {e.msg} (column {e.colno}) in the JSON object: {_clip(text)!r}"
            ) from None
    results = {}
    for n, text in body:
        parts = text.split(None, 1)
        name = parts[0].removesuffix(":")  # "loss: 0.25", the original client's form
        if not name:
            raise ResultsError(
                f"output line {n}: {_clip(text)!r} has no name; expected 'name value' per line, or one JSON object"
            )
        if len(parts) < 2:
            raise ResultsError(
                f"output line {n}: {_clip(text)!r} has no value; expected 'name value' per line, or one JSON object"
            )
        raw = parts[1].strip()
        if name in results:
            raise ResultsError(f"output line {n}: result {name!r} is given twice")
        try:
            results[name] = parse_value(raw)
        except ValueError:
            raise ResultsError(f"output line {n}: the value of {name!r} is not valid JSON: {_clip(text)!r}") from None
    return results


# -- progress ----------------------------------------------------------------------------------------------


def duration(seconds):
    """``2.1 s``, ``3 min 04 s``, ``1 h 02 min``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    seconds = int(seconds)
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds // 60 % 60:02d} min"


def _short(value, width=60):
    return _clip(value if isinstance(value, str) else _json(value), width)


def summary(mapping, width=200):
    """``name=value, ...`` for display, clipped."""
    return _clip(", ".join(f"{k}={_short(v)}" for k, v in mapping.items()), width)


def _segment(job):
    if job.generation is None and job.member is None and job.parent_id is None:
        return ""
    parts = [f"member {job.member}"] if job.member is not None else []
    if job.rung is not None:  # ASHA, Hyperband
        parts += [f"rung {job.rung}", f"resource {_text(job.resource)}"]
    elif job.generation is not None:
        parts.append(f"generation {job.generation}")
    parts += [f"parent {job.parent_id}"] if job.parent_id is not None else []
    return f" ({', '.join(parts)})"


class PlainOutput:
    """Progress as plain lines on standard output, errors on standard error."""

    def __init__(self):
        self.counts = (0, 0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def line(self, text, style=None):
        click.echo(text)

    def error(self, text):
        click.echo(f"Error: {text}", err=True)

    def notice(self, text):
        click.echo(text, err=True)

    def child_line(self, raw):
        sys.stdout.flush()
        out = sys.stdout.buffer
        out.write(raw if raw.endswith(b"\n") else raw + b"\n")
        out.flush()

    def job_started(self, job, argv):
        self.line(f"job {job.job_id}: running{_segment(job)}: {shlex.join(argv)}")

    def job_ended(self, job, word, seconds, results, done, failed):
        self.counts = (done, failed)
        shown = f": {summary(results)}" if results else ""
        self.line(f"job {job.job_id}: {word} in {duration(seconds)}{shown}", "green" if word == "DONE" else "red")

    def waiting(self, text):
        self.line(text)


class RichOutput(PlainOutput):
    """A live display (jobs done and failed, current job, its hyperparameters, elapsed time) below the output."""

    def __init__(self, console):
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        super().__init__()
        self.console = console
        # Every line goes through self.console, above the display; nothing needs redirecting.
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", markup=False),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self.stderr_is_terminal = Console(stderr=True).is_terminal
        self.task = self.progress.add_task("starting", total=None)

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()
        return False

    def line(self, text, style=None):
        from rich.text import Text

        # A styled Text, not print(style=): that style would also paint the display redrawn below the line.
        self.console.print(Text(text, style=style or ""), soft_wrap=True)

    def error(self, text):
        if self.stderr_is_terminal:  # the same screen: print above the display, which stderr would tear
            self.line(f"Error: {text}", "red")
        else:
            super().error(text)

    def notice(self, text):
        if self.stderr_is_terminal:
            self.line(text, "yellow")
        else:
            super().notice(text)

    def child_line(self, raw):
        from rich.text import Text

        self.console.print(Text.from_ansi(raw.decode("utf-8", "replace").rstrip("\r\n")), soft_wrap=True)

    def _describe(self, text):
        done, failed = self.counts
        self.progress.update(self.task, description=f"{text}  [{done} done, {failed} failed]", refresh=True)

    def job_started(self, job, argv):
        super().job_started(job, argv)
        self.progress.reset(self.task)  # the elapsed time is the job's
        self._describe(f"job {job.job_id}{_segment(job)}: {summary(job.hyperparameters, 120)}")

    def job_ended(self, job, word, seconds, results, done, failed):
        super().job_ended(job, word, seconds, results, done, failed)
        self._describe("asking for the next job")

    def waiting(self, text):
        super().waiting(text)
        self.progress.reset(self.task)
        self._describe(text)


# -- running jobs ------------------------------------------------------------------------------------------


class JobFailed(Exception):
    """A job's command failed; the message is the one-line error."""


def _signal_name(signum):
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _signal_group(proc, signum):
    if proc.poll() is None:  # never signal a reaped process: its id may be reused
        try:
            os.killpg(proc.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


class Runner:
    """Runs jobs of one experiment, one after another; :meth:`loop` returns the exit status."""

    def __init__(self, exp, db_location, args, out, allow_empty=False, ignore_errors=False, max_jobs=None):
        self.exp, self.db_location, self.args, self.out = exp, db_location, args, out
        self.allow_empty, self.ignore_errors, self.max_jobs = allow_empty, ignore_errors, max_jobs
        self.signals = []  # the signals received, in order
        self.child = None  # the command running now
        self.done = self.failed = self.released = 0

    def on_signal(self, signum, frame):
        """Only record the signal: the loops forward it to the command, where it is safe to act."""
        self.signals.append(signum)
        if self.child is None and len(self.signals) > 1:
            raise KeyboardInterrupt  # asked twice while no command runs: stop whatever the log is doing

    def exit_status(self):
        if self.signals:
            return 128 + self.signals[0]
        return 1 if self.failed else 0

    def loop(self):
        """Run jobs until none is left, the limit, a failure (without ignore_errors) or a signal."""
        ran = 0
        while True:
            if self.signals:
                reason = f"interrupted by {_signal_name(self.signals[0])}"
                break
            if self.max_jobs is not None and ran >= self.max_jobs:
                reason = f"stopped after {ran} job{'s' if ran != 1 else ''}"
                break
            job, reason = self.claim()
            if job is None:
                break
            ran += 1
            if not self.run_job(job) and not self.ignore_errors:
                reason = "stopped after a failure (--ignore-errors goes on)"
                break
        if self.signals and not reason.startswith("interrupted"):
            reason = f"interrupted by {_signal_name(self.signals[0])}"
        released = f", {self.released} released" if self.released else ""
        self.out.line(f"{reason}: {self.done} done, {self.failed} failed{released}")
        return self.exit_status()

    def claim(self):
        """The next job and None, or None and why there is none (waiting as ``next_job(wait=True)`` does)."""

        def say(wait):
            busy = wait.jobs
            self.out.waiting(
                f"waiting: {wait.reason} (job{'s' * (len(busy) > 1)} {', '.join(busy)} running)"
                if busy
                else f"waiting: {wait.reason}"
            )

        try:
            return waiting.next_job(
                self.exp, True, sleep=self.pause, on_wait=say, stop=lambda: bool(self.signals)
            ), None
        except NoJobError as e:
            if self.signals:
                return None, f"interrupted by {_signal_name(self.signals[0])}"
            return None, f"no more jobs ({e})"

    def pause(self, seconds):
        end = time.monotonic() + seconds
        while not self.signals and time.monotonic() < end:
            time.sleep(min(POLL, max(0.0, end - time.monotonic())))

    def run_job(self, job):
        """Run the command for ``job`` inside ``with job:`` and report the outcome; True if the job is DONE."""
        started = time.monotonic()
        failure, word, new = None, "CRASHED", None
        try:
            reported = False
            try:
                with job:
                    new = self.execute(job)
                    job.results.update(new)
                    reported = True
                word = "DONE"
            except Preempted as e:  # told to stop: the with block gave the job back for another worker
                word, note = "released", str(e)
            except JobFailed as e:
                failure = str(e)
            except (ValueError, TypeError) as e:
                if not reported:
                    raise
                # The experiment refused the DONE report (a PBT segment without its score): the with block has
                # recorded the job CRASHED, with the reason as the result schedy_error (Job.__exit__).
                failure = f"job {job.job_id}: results refused: {e}"
                new = None
        except (UnsafeUpdateError, JobNotFoundError, ExperimentNotFoundError) as e:
            word = "lost"
            first = f" ({failure.split(': ', 1)[1]})" if failure else ""
            failure = (
                f"job {job.job_id} was lost{first}: it changed in the log while the command ran (its lease "
                f"lapsed and it was handed out again, or someone marked it), so this report was refused: {e}"
            )
        ok = word == "DONE"
        self.done += ok
        self.released += word == "released"
        self.failed += not ok and word != "released"
        self.out.job_ended(job, word, time.monotonic() - started, new if ok else None, self.done, self.failed)
        if failure:
            self.out.error(failure)
        if word == "released":
            self.out.notice(note)
        return ok

    def execute(self, job):
        """Run the command for ``job`` and return the results it reported; raise JobFailed."""
        if self.signals:  # arrived while the job was being claimed
            raise Preempted(
                f"job {job.job_id}: interrupted by {_signal_name(self.signals[0])} before the command started: "
                "released for another worker"
            )
        argv = expand(self.args, job)
        env = child_env(job, self.db_location, parent_results(job))
        self.out.job_started(job, argv)
        try:
            # A session of its own: a Ctrl-C at the terminal reaches schedy alone, which forwards it once to the
            # command's whole process group (a second copy could cut short the command's own clean-up).
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                env=env,
                start_new_session=True,
            )
        except (OSError, ValueError) as e:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise JobFailed(f"job {job.job_id}: cannot start the command {argv[0]!r}: {reason}") from None
        self.child = proc
        blocks = BlockScanner()
        try:
            self.pump(job, proc, blocks)
        finally:
            self.child = None
            proc.stdout.close()
            if proc.poll() is None:  # we are leaving on an error of our own: the command must not outlive it
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
        status = proc.returncode
        how = f"was killed by {_signal_name(-status)}" if status < 0 else f"exited with status {status}"
        if self.signals:
            # Told to stop: not a failure. What the command reported before it stopped (a checkpoint) goes with the
            # job given back, if it printed a whole results block.
            kept = ""
            block = blocks.block()
            if block is not None:
                try:
                    partial = read_block(block, job)
                    job.results.update(partial)
                    kept = f", with its results {', '.join(sorted(partial))}"
                except (ResultsError, ValueError, TypeError):
                    kept = ", without its malformed results block"
            raise Preempted(
                f"job {job.job_id}: interrupted by {_signal_name(self.signals[0])}: the command {how}; "
                f"released for another worker{kept}"
            )
        if status != 0:  # any block is ignored, closed or not: one left open may have been cut short
            raise JobFailed(f"job {job.job_id}: the command {how}")
        block = blocks.block()  # the output has ended: a block without END runs to here and is complete
        if block is None:
            if self.allow_empty:
                return {}
            raise JobFailed(
                f"job {job.job_id}: no results block in the command's output (print a line {START!r}, "
                "then the results; or pass --allow-empty-results)"
            )
        try:
            results = read_block(block, job)
        except (ResultsError, ValueError, TypeError) as e:
            raise JobFailed(f"job {job.job_id}: malformed results block: {e}") from None
        return results

    def pump(self, job, proc, blocks):
        """Stream the command's output through line by line until it exits; forward signals to it."""
        fd = proc.stdout.fileno()
        selector = selectors.DefaultSelector()
        selector.register(fd, selectors.EVENT_READ)
        reading, pending, exited_at, stopping_at, killed = True, b"", None, None, False
        try:
            while True:
                if self.signals and stopping_at is None:
                    name = _signal_name(self.signals[0])
                    self.out.notice(
                        f"job {job.job_id}: {name} received: stopping the command (send it again to kill it at once)"
                    )
                    _signal_group(proc, self.signals[0])
                    stopping_at = time.monotonic()
                if (
                    stopping_at is not None
                    and not killed
                    and (len(self.signals) > 1 or time.monotonic() - stopping_at > GRACE)
                ):
                    _signal_group(proc, signal.SIGKILL)
                    killed = True
                if reading:
                    if selector.select(POLL):
                        chunk = os.read(fd, 1 << 16)
                        if chunk:
                            pending = self.lines(pending + chunk, blocks)
                        else:
                            reading = False
                    if proc.poll() is not None:
                        exited_at = exited_at or time.monotonic()
                        if not reading or time.monotonic() - exited_at > DRAIN:
                            break  # after DRAIN, what still holds the pipe open is not the command
                else:
                    try:
                        proc.wait(POLL)  # the command closed its output but runs on
                        break
                    except subprocess.TimeoutExpired:
                        pass
        finally:
            selector.close()
            if pending:
                self.line(pending, blocks)

    def lines(self, data, blocks):
        """Pass on the complete lines of ``data``; return the rest."""
        *complete, rest = data.split(b"\n")
        for line in complete:
            self.line(line + b"\n", blocks)
        if len(rest) > MAX_LINE:
            self.line(rest, blocks)
            rest = b""
        return rest

    def line(self, raw, blocks):
        self.out.child_line(raw)
        blocks.feed(raw.decode("utf-8", "replace").rstrip("\r\n"))


@main.command(
    help=HELP,
    short_help="Pull jobs from an experiment and run a command for each.",
    context_settings={"allow_interspersed_args": False},
)  # what follows NAME is CMD, unparsed
@click.argument("name")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED, metavar="[--] CMD [ARGS]...")
@db_option
@click.option("--once", is_flag=True, help="Run at most one job.")
@click.option("--max-jobs", type=click.IntRange(min=1), metavar="N", help="Run at most N jobs.")
@click.option(
    "--allow-empty-results",
    is_flag=True,
    help="A command that exits with 0 without a results block is DONE, with no new results.",
)
@click.option(
    "--ignore-errors", is_flag=True, help="Go on with the next job after a failure (the exit status is still 1)."
)
@click.option(
    "--worker", metavar="ID", help="Name this worker in the log (e.g. after a cluster job id). Default: host:pid:tag."
)
def run(name, command, db, once, max_jobs, allow_empty_results, ignore_errors, worker):
    args = check_command(command)
    if once:
        max_jobs = 1
    with failures():
        database = open_db(db, worker=worker)
        exp = database.get_experiment(name)
        # The command gets the location as given for a URL (database.path hides any credentials in it).
        location = str(database.path) if isinstance(database.path, Path) else (db or default_path())
        from rich.console import Console

        console = Console()
        out = RichOutput(console) if console.is_terminal else PlainOutput()
        runner = Runner(exp, location, args, out, allow_empty_results, ignore_errors, max_jobs)
        in_main = threading.current_thread() is threading.main_thread()
        saved = {s: signal.signal(s, runner.on_signal) for s in HANDLED_SIGNALS} if in_main else {}
        try:
            with out:
                out.line(f"schedy run: experiment {exp.name!r}, worker {database.worker}")
                status = runner.loop()
        except KeyboardInterrupt:
            out.error(f"interrupted by {_signal_name(runner.signals[0]) if runner.signals else 'SIGINT'}")
            status = runner.exit_status() if runner.signals else 130
        finally:
            for s, handler in saved.items():
                signal.signal(s, handler)
    sys.exit(status)
