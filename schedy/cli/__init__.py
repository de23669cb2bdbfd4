"""The ``schedy`` command line (also ``python -m schedy``).

Each command is a small click function that opens the database with
:func:`open_db`, calls the library, and prints. The database comes from
``--db``, else ``$SCHEDY_DB``, else the default of ``SchedyDB()``. Exit
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

from .. import __version__, maintenance
from ..adapters.api import default_path
from ..errors import SchedyError


def db_option(f):
    """The ``--db PATH`` option every command takes (``$SCHEDY_DB`` by default)."""
    return click.option(
        "--db", "db", metavar="PATH", envvar="SCHEDY_DB", show_envvar=True,
        help="The database: a directory, or an s3://, gs://, az:// URL. Default: $SCHEDY_DB, else "
             "$XDG_DATA_HOME/schedy (~/.local/share/schedy).")(f)


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
def main():
    """Schedy: hyperparameter searches coordinated through an append-only event log, with no server."""


from . import audit, dashboard, integrity, jobs, run, simulate  # noqa: E402,F401 - each module registers its commands
