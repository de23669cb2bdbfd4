"""The dashboard and the report: the population, the lineage and the schedule, drawn from the log.

``schedy dashboard`` serves a read-only page that follows the logs as they
grow; ``schedy report`` writes one experiment's page as a single HTML file.
Charts are drawn by plotly.js from the ``plotly`` package (the
``schedy[dashboard]`` extra). See docs/dashboard.md.
"""

from .report import report_html, write_report
from .server import DashboardServer

__all__ = ["DashboardServer", "report_html", "write_report"]
