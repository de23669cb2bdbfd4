"""``schedy dashboard`` and ``schedy report``: look at experiments in a browser."""

import os
import sys

import click

from . import db_option, failures, main, open_db


@main.command()
@db_option
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Anything but a loopback address lets other machines read your logs.",
)
@click.option(
    "--port",
    default=8765,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free port).",
)
@click.option(
    "--poll",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0.1, 3600),
    help="Seconds between two looks of the page for new commits.",
)
@click.option("--verbose", is_flag=True, help="Log every request on standard error.")
def dashboard(db, host, port, poll, verbose):
    """Serve a read-only dashboard of the database's experiments until interrupted.

    The page updates by itself as the logs grow. It shows every experiment;
    for one: a sortable, filterable jobs table, the best score over time,
    every PBT member's score with its exploits, the lineage and
    hyperparameter schedule of any job, and for a random search the score
    against each hyperparameter. It never writes to the database.
    """
    with failures():
        database = open_db(db)
        store = database._store
        from ..dashboard import DashboardServer
        from ..dashboard.page import plotly_js

        try:
            plotly_js()
        except ImportError as e:
            raise click.ClickException(str(e)) from None
        try:
            server = DashboardServer(store, host=host, port=port, poll_interval=poll, quiet=not verbose)
        except OSError as e:
            raise click.ClickException(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    click.echo(f"Schedy dashboard of {database.path} on {server.url} (read only; Ctrl-C to stop)")
    if not server.loopback:
        click.echo(
            f"Warning: listening on {host}: anyone who can reach this machine can read these experiments.", err=True
        )
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@main.command()
@db_option
@click.argument("name")
@click.option(
    "-o",
    "--output",
    "output",
    metavar="FILE",
    default=None,
    help="Where to write the HTML file (default: <name>.html in the current directory; - for standard output).",
)
def report(db, name, output):
    """Write experiment NAME's dashboard as one self-contained HTML file.

    The file holds the page, plotly.js and the data: it opens in a browser
    with no network and no server, to share or to attach to a paper or a
    bug report. It shows the log as it stands now.
    """
    with failures():
        store = open_db(db)._store
        from ..dashboard import report_html, write_report

        try:
            if output == "-":
                sys.stdout.buffer.write(report_html(store, name))
                return
            path = output or _default_name(name)
            size = write_report(store, name, path)
        except ImportError as e:
            raise click.ClickException(str(e)) from None
    click.echo(f"wrote {path} ({size / 1e6:.1f} MB)", err=True)


def _default_name(name):
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip(".") or "experiment"
    return os.path.join(os.getcwd(), safe[:100] + ".html")
