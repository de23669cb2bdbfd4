"""The dashboard's page: served with its files beside it, or as one self-contained HTML file (the report)."""

import functools
import html
from pathlib import Path

import orjson

_TYPES = {
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "plotly.min.js": "text/javascript; charset=utf-8",
}

# The report's own policy: it runs its inline scripts and fetches nothing, so it opens with no network.
REPORT_CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:"


def _ours(name):
    return (Path(__file__).parent / "static" / name).read_bytes()


@functools.cache
def plotly_js():
    """plotly.js as shipped inside the plotly Python package (nothing is fetched from the internet)."""
    try:
        from plotly.offline import get_plotlyjs
    except ImportError:
        raise ImportError("the dashboard needs plotly: pip install 'schedy[dashboard]'") from None
    return get_plotlyjs().encode("utf-8")


def static_file(name):
    """``(bytes, content type)`` of the page's file ``name``, or None if there is no such file."""
    ctype = _TYPES.get(name)
    if ctype is None:
        return None
    return (plotly_js() if name == "plotly.min.js" else _ours(name)), ctype


def _template(head, mode, body):
    page = _ours("index.html").decode("utf-8")
    return page.replace("{head}", head).replace("{mode}", html.escape(mode)).replace("{body}", body).encode("utf-8")


def _json_script(element_id, obj):
    # JSON inside <script> must not close it: "<" is written \u003c (and ">", "&" likewise), still valid JSON.
    text = orjson.dumps(obj).decode("utf-8")
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'<script type="application/json" id="{element_id}">{text}</script>'


def live_page(poll_interval):
    """The page the dashboard server sends: it loads its files from /static/ and polls the server."""
    # plotly.js is loaded by app.js once the tables are drawn.
    head = '<link rel="stylesheet" href="/static/app.css">\n' + _json_script(
        "schedy-config", {"mode": "live", "poll": poll_interval}
    )
    return _template(head, "live: updates by itself", '<script src="/static/app.js"></script>')


def report_page(data, note):
    """One HTML file holding the page, its scripts, plotly.js and ``data`` (``{experiments, experiment}``)."""
    inline = _inline_script
    head = (
        f'<meta http-equiv="Content-Security-Policy" content="{REPORT_CSP}">\n'
        f"<style>{_ours('app.css').decode('utf-8')}</style>\n" + _json_script("schedy-config", {"mode": "report"})
    )
    # plotly.js last, so that the tables are drawn while it is read.
    body = _json_script("schedy-data", data) + "\n" + inline(_ours("app.js")) + "\n" + inline(plotly_js())
    return _template(head, note, body)


def _inline_script(code):
    text = code.decode("utf-8")
    if "</script" in text.lower():  # would end the element early; neither plotly.js nor app.js has it
        raise ValueError("a script to inline contains '</script'")
    return f"<script>{text}</script>"
