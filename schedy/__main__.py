"""``python -m schedy``: the same command line as ``schedy``."""

from .cli import main

main(prog_name="schedy")
