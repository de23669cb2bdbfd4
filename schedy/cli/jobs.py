"""(being written)"""

import click  # noqa: F401

from . import db_option, failures, main, open_db  # noqa: F401
