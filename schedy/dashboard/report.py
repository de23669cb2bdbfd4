"""One experiment's dashboard as a single HTML file that opens with no network and no server."""

import os
import tempfile

from ..audit import utc
from . import views
from .feed import Feeds
from .page import plotly_js, report_page


def report_html(store, name):
    """The bytes of the report of experiment ``name`` in ``store``, as its log stands now."""
    plotly_js()  # say that plotly is missing before reading a long log
    feed, state = Feeds(store).get(name)
    summary = views.summary(state, feed.time_of)
    data = {
        "experiments": [summary],
        "experiment": {"summary": summary, "jobs": views.job_columns(state, feed.time_of)},
    }
    if state.kind in views.HALVING:
        data["experiment"]["rungs"] = views.rungs(state, feed.time_of)
    data["experiment"]["importance"] = views.importance(state)  # for the result the experiment is ranked by
    stamp = feed.time_of(state.version)
    note = f"report: commit {state.version}" + (f", {utc(stamp)}" if stamp is not None else "")
    return report_page(data, note)


def write_report(store, name, path):
    """Write the report of experiment ``name`` to ``path`` (atomically: a reader never sees half of it)."""
    data = report_html(store, name)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".schedy-report-", suffix=".html", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(
            tmp, 0o666 & ~umask
        )  # as open() would have made it: mkstemp's 0o600 would hide a report meant to be shared
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return len(data)
