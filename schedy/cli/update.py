"""``schedy update``: change an experiment's status, or a job's status, hyperparameters or results.

It steers a search from a shell: stop a random search (``-s DONE``), start it
again (``-s RUNNING``), queue a CRASHED job again (``-s QUEUED``), correct a
value. It goes through the public API only: ``Experiment.push_updates`` for an
experiment, a safe ``Job.put`` for a job (refused if the job changed in the log
since the command read it, so a worker's report is never overwritten).
Everything parsed from the command line is checked before the database is
opened: a bad value is a usage error (exit status 2) that writes nothing.
"""

import click

from ..adapters.api import Experiment, Job
from . import db_option, failures, main, open_db
from .jobs import _status, describe_experiment, describe_job, parse_pairs, render

JOB_STATUSES = (Job.QUEUED, Job.RUNNING, Job.CRASHED, Job.PRUNED, Job.DONE)
EXPERIMENT_STATUSES = (Experiment.RUNNING, Experiment.DONE)


def parse_update(words):
    """The job id (or None), status (or None), hyperparameters and results to set, from the words after NAME."""
    job_id = None
    if words and not words[0].startswith("-"):
        job_id, words = words[0], words[1:]
    hyperparameters, results, status = parse_pairs(words, "update")
    if job_id is None:
        if hyperparameters or results:
            raise click.UsageError("-p and -r change a job: give its id, as in schedy update NAME JOB -r loss 0.2")
        statuses, what = EXPERIMENT_STATUSES, "experiment"
    else:
        statuses, what = JOB_STATUSES, "job"
    if status is not None:
        status = _status(status, statuses, what)
    if status is None and not hyperparameters and not results:
        raise click.UsageError("nothing to update: give -s STATUS" + (", -p or -r" if job_id is not None else ""))
    return job_id, status, hyperparameters, results


@main.command(
    short_help="Change an experiment's status, or a job's status, hyperparameters or results.",
    context_settings={"ignore_unknown_options": True},
    options_metavar="[--db PATH]",
)
@click.argument("name")
@click.argument(
    "words", nargs=-1, type=click.UNPROCESSED, metavar="[JOB] [-s STATUS] [-p HP VALUE...] [-r RESULT VALUE...]"
)
@db_option
def update(name, words, db):
    """Change the status of the experiment NAME, or its job JOB, then print it.

    \b
    Without JOB:
    -s, --status RUNNING|DONE
                       DONE: workers get no more jobs (a random search stops
                       sampling); RUNNING: they get jobs again
    With JOB:
    -s, --status QUEUED|RUNNING|CRASHED|PRUNED|DONE
                       the job's status; QUEUED hands it out again
    -p, --hyperparameters HP VALUE [HP VALUE ...]
                       set these hyperparameters (the others stay)
    -r, --results RESULT VALUE [RESULT VALUE ...]
                       set these results (the others stay)
    --db PATH          the database (default: $SCHEDY_DB)

    Statuses may be in any case. Each VALUE is JSON, as in schedy push: 0.01,
    3, '[512, 256]', '"adam"' (a string needs its quotes), true, null, NaN.

    A job is written with a safe put: if it changed in the log after this
    command read it (a worker reported, or its lease lapsed), nothing is
    written and the command fails; read it again and retry. The experiment
    checks the new values as for a job pushed: a random search's job keeps
    exactly its hyperparameters, a DONE pbt segment or asha, hyperband or
    bayesian job needs its result.

    \b
    Examples:
      schedy update mnist -s DONE                 stop the search
      schedy update mnist 7 -s QUEUED             run job 7 again
      schedy update mnist 7 -r loss 0.25 -s DONE  record a result by hand

    Exit status: 0 when it is written (or already so), 1 when NAME or JOB
    does not exist, the experiment refuses the change, or the job changed
    meanwhile, 2 for a bad argument (nothing is written).
    """
    if name.startswith("-"):
        raise click.UsageError(f"NAME comes first: schedy update NAME ..., got {name!r} where NAME goes")
    job_id, status, hyperparameters, results = parse_update(words)
    with failures():
        exp = open_db(db).get_experiment(name)
        if job_id is None:
            if exp.status == status:
                click.echo(f"Experiment {name!r} is already {status}: nothing written.", err=True)
            else:
                exp.status = status
                exp.push_updates()
            shown = describe_experiment(exp, exp.all_jobs())
        else:
            job = exp.get_job(job_id)
            new_hps = {**job.hyperparameters, **hyperparameters}
            new_results = {**job.results, **results}
            new_status = job.status if status is None else status
            if (new_status, new_hps, new_results) == (job.status, job.hyperparameters, job.results):
                click.echo(f"Job {job_id!r} of {name!r} already has these values: nothing written.", err=True)
            else:
                job.status, job.hyperparameters, job.results = new_status, new_hps, new_results
                job.put(safe=True)
            shown = describe_job(exp.get_job(job_id))
    render(shown)
