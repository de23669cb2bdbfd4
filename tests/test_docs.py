"""The documentation runs: every ```python block of README.md and docs/*.md is executed.

Blocks of one file run in order in one shared namespace (``__name__`` is
``"__main__"``, as in a script), in a fresh temporary directory, with
``SCHEDY_DB`` and ``XDG_DATA_HOME`` pointing into it, so the examples must be
self-contained. Snippets that must not run are fenced as ```bash or ```text.
A traceback points at the line of the Markdown file.
"""

import ast
import re
import traceback
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
EXPECTED_PAGES = {"getting-started.md", "tutorial-database.md", "tutorial-scheduler.md", "tutorial-random-search.md"}

FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```[ \t]*$", re.M | re.S)


def python_blocks(path):
    """Return (index, first line number, code) for each ```python block of ``path``."""
    text = path.read_text(encoding="utf-8")
    blocks = []
    for m in FENCE.finditer(text):
        if m.group("info").strip() == "python":
            line = text.count("\n", 0, m.start("body")) + 1
            blocks.append((len(blocks) + 1, line, m.group("body")))
    return blocks


def rel(path):
    return path.relative_to(ROOT).as_posix()


def test_every_user_documentation_page_exists():
    assert EXPECTED_PAGES <= {p.name for p in DOCS}


@pytest.mark.parametrize("path", DOCS, ids=rel)
def test_python_blocks_are_complete_code(path):
    """No placeholders: each block parses, and none uses `...` (put non-runnable snippets in ```text)."""
    blocks = python_blocks(path)
    if path.name in EXPECTED_PAGES or path.name == "README.md":
        assert blocks, f"{rel(path)} has no ```python block"
    for index, line, code in blocks:
        try:
            tree = ast.parse(code)
        except SyntaxError as e:
            pytest.fail(f"{rel(path)}: python block {index} (line {line}) does not parse: {e}")
        ellipses = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Constant) and n.value is Ellipsis]
        assert not ellipses, f"{rel(path)}: python block {index} (line {line}) uses `...` as a placeholder"


@pytest.mark.parametrize("path", DOCS, ids=rel)
def test_python_blocks_run(path, tmp_path, monkeypatch):
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("SCHEDY_DB", str(tmp_path / "schedy-db"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    namespace = {"__name__": "__main__"}
    for index, line, code in python_blocks(path):
        # Pad with blank lines so that tracebacks name the line of the Markdown file.
        compiled = compile("\n" * (line - 1) + code, str(path), "exec")
        error = None
        try:
            exec(compiled, namespace)
        except Exception:
            error = traceback.format_exc()
        if error is not None:
            pytest.fail(f"{rel(path)}: python block {index} (line {line}) raised:\n{error}", pytrace=False)


def test_readme_quickstart_has_exactly_the_two_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    commands = [m.group("body").strip() for m in FENCE.finditer(section)]
    assert commands == ['pip install . && python -m schedy.demo', 'pip install -e ".[test]" && python -m pytest']


@pytest.mark.parametrize("path", DOCS, ids=rel)
def test_relative_links_resolve(path):
    text = path.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" in target:
            continue
        assert (path.parent / target).exists(), f"{rel(path)} links to {target}, which does not exist"
