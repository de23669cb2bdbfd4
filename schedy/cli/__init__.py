"""The ``schedy`` command line (also ``python -m schedy``).

Each command is a small click function that opens the database with
:func:`open_db`, calls the library, and prints. The database comes from the
command's ``--db``, else ``--db`` given before the command (``schedy --db PATH
list``, as the original client's ``schedy --config FILE list``), else
``$SCHEDY_DB``, else the default of ``SchedyDB()``. Exit
status: 0 when the command did what was asked and everything it checked
holds, 1 when it found a problem or failed (the message says which), 2 for a
usage error.

Commands live in the modules of this package, one module per group of
commands. To add one, decorate a function with ``@main.command()`` and
``@db_option`` in such a module, import the module at the bottom of this
file, and turn Schedy's errors into messages with ``failures()``.
"""

from contextlib import contextmanager

import click
from click.core import ParameterSource

from .. import __version__, maintenance
from ..adapters.opening import default_path
from ..errors import SchedyError

DB_HELP = "The database: a directory, or an s3://, gs://, az:// URL."


def _db_value(ctx, param, value):
    """The command's ``--db``, else the one given before the command, else ``$SCHEDY_DB`` (else None)."""
    if ctx.get_parameter_source(param.name) is not ParameterSource.COMMANDLINE:
        root = ctx.find_root()
        if root is not ctx and root.params.get("db") is not None:
            return root.params["db"]
    return value


def db_option(f):
    """The ``--db PATH`` option every command takes (``--db`` before the command, then ``$SCHEDY_DB``, by default)."""
    return click.option(
        "--db",
        "db",
        metavar="PATH",
        envvar="SCHEDY_DB",
        show_envvar=True,
        callback=_db_value,
        help=f"{DB_HELP} Default: --db given before the command, else $SCHEDY_DB, else "
        "$XDG_DATA_HOME/schedy (~/.local/share/schedy).",
    )(f)


def open_db(location, **options):
    """The database at ``location`` (None: the default), which must already exist if it is a directory."""
    return maintenance.open_database(default_path() if location is None else location, **options)


@contextmanager
def failures():
    """Turn Schedy's errors and OS errors into a one-line message and exit status 1."""
    try:
        yield
    except (SchedyError, OSError, ValueError, TypeError) as e:
        raise click.ClickException(str(e)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="schedy")
@click.option(
    "--db",
    "db",
    metavar="PATH",
    help=f"{DB_HELP} For every command that takes --db, unless it is given its own; default: $SCHEDY_DB, "
    "else $XDG_DATA_HOME/schedy (~/.local/share/schedy).",
)
@click.pass_context
def main(ctx, db):
    """Schedy: hyperparameter searches coordinated through an append-only event log, with no server."""
    # The subcommands read this --db from the root context (see db_option); one that takes no database
    # would silently ignore it, so say so instead.
    if db is not None and ctx.invoked_subcommand is not None:
        command = main.get_command(ctx, ctx.invoked_subcommand)
        if command is not None and not any(p.callback is _db_value for p in command.params):
            name = ctx.invoked_subcommand
            raise click.UsageError(
                f"--db before the command does not apply to {name}"
                + (
                    f"; give {name} its own: schedy {name} ... --db PATH"
                    if any(p.name == "db" for p in command.params)
                    else ""
                )
            )


# Each module registers its commands.
from . import audit, dashboard, integrity, jobs, run, simulate, update  # noqa: E402,F401
