"""``schedy verify`` and ``schedy repair``: check a log, and move its damaged end aside."""

import sys

import click

from .. import maintenance
from . import db_option, failures, main, open_db


@main.command(short_help="Check logs: records, order, fold, claims, snapshots.")
@click.argument("experiment", required=False)
@db_option
def verify(experiment, db):
    """Check the log of EXPERIMENT (default: every experiment).

    Reads every record and reports every problem: damaged or missing
    commits, a fold that fails, a job claimed twice, a snapshot that
    disagrees with its log, a torn last record (a warning, saying whether
    writers complete it or cut it off). Prints one line
    per experiment; exits with 0 only if everything holds.
    """
    with failures():
        report = maintenance.verify(open_db(db), experiment)
    click.echo(str(report))
    sys.exit(0 if report.ok else 1)


@main.command(short_help="Move the damaged end of a log aside.")
@click.argument("experiment")
@db_option
@click.option("--dry-run", is_flag=True, help="Only say what would be done.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def repair(experiment, db, dry_run, yes):
    """Keep the commits of EXPERIMENT before its first damaged one; move the rest aside.

    Nothing is deleted: the damaged record and every later one are copied
    to a damaged-<UTC time> file (or folder) beside the log before the log
    is cut. A torn last commit whose CRC checks is completed instead (its
    final newline added). Stop the workers of the experiment first. Asks for
    confirmation unless -y is given; declining changes nothing.
    """
    with failures():
        database = open_db(db)
        plan = maintenance.repair(database, experiment, dry_run=True)
    click.echo(str(plan))
    if dry_run or not plan.changed:
        sys.exit(0 if dry_run or not plan.unrepaired else 1)
    if not yes and not click.confirm("Move these records aside and cut the log?", default=False):
        click.echo("Nothing changed.")
        sys.exit(1)
    with failures():
        done = maintenance.repair(database, experiment)
        if done.set_aside != plan.set_aside or done.torn != plan.torn or done.completed != plan.completed:
            click.echo("The log changed since the plan above; this is what was done:")
        click.echo(str(done))
        after = maintenance.verify(database, experiment)
    click.echo(str(after.experiments[0]))
    sys.exit(0 if after.ok else 1)
