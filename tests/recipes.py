"""The cluster recipes of docs/clusters.md, taken from the page itself so that the tests run what users copy.

A recipe is a fenced block whose info string names the file it is, after the language:
```` ```python recipe=worker.py ````. The docs tests do not run these blocks (their info string is not
just ``python``); the cluster tests write them into a directory and run them there.
"""

import os
import re
from pathlib import Path

CLUSTERS_MD = Path(__file__).resolve().parents[1] / "docs" / "clusters.md"

_FENCE = re.compile(r"^```(?P<lang>[\w-]*) recipe=(?P<name>\S+)[ \t]*\n(?P<body>.*?)^```[ \t]*$", re.M | re.S)


def all_recipes(path=None):
    """Map each recipe's file name to its text, in the order of the page; a name given twice is an error."""
    text = Path(path or os.environ.get("SCHEDY_TEST_CLUSTERS_MD") or CLUSTERS_MD).read_text(encoding="utf-8")
    found = {}
    for m in _FENCE.finditer(text):
        if m.group("name") in found:
            raise ValueError(f"recipe {m.group('name')} is given twice in {path or CLUSTERS_MD}")
        found[m.group("name")] = m.group("body")
    return found


def recipe(name, path=None):
    """The text of the recipe file ``name``."""
    found = all_recipes(path)
    if name not in found:
        raise KeyError(f"no recipe named {name} in {path or CLUSTERS_MD} (there are: {', '.join(found)})")
    return found[name]


def write(directory, *names, path=None):
    """Write the recipes ``names`` into ``directory`` (shell scripts made executable); return their paths."""
    found = all_recipes(path)
    paths = []
    for name in names:
        if name not in found:
            raise KeyError(f"no recipe named {name} in {path or CLUSTERS_MD} (there are: {', '.join(found)})")
        p = Path(directory) / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(found[name], encoding="utf-8")
        if found[name].startswith("#!"):
            p.chmod(0o755)
        paths.append(p)
    return paths
