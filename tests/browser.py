"""A real browser for the end-to-end tests of the dashboard: Debian's chromium, driven by Playwright.

Nothing is downloaded by Playwright (``playwright install`` is never run):
the browser is the Debian package ``chromium`` at ``/usr/bin/chromium``.
When it is missing, :func:`ensure_chromium` installs it with ``apt-get``
(as root). Where no browser can be had (not root, no apt-get, no network
to the Debian mirror, Playwright not installed), the tests skip with the
reason, except in CI (``$CI`` set, as CI services set it to ``true``),
where they fail instead: a CI run must never pass by skipping them.
"""

import fcntl
import os
import shutil
import subprocess
import tempfile

import pytest

CHROMIUM = "/usr/bin/chromium"

# As root, in a sandbox-less container, on a closed network: without the background-networking flags
# chromium's own connections (updates, sync, field trials) are refused and slow everything down.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

APT_UPDATE = ["apt-get", "update"]


def install_command(packages):
    """The apt-get command that installs ``packages`` (waiting for another dpkg to finish, as a CI machine may)."""
    return ["apt-get", "install", "-y", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=600", *packages]


APT_INSTALL = install_command(["chromium"])
INSTALL_TIMEOUT = 1800  # seconds for each apt-get command: chromium and its libraries are a few hundred MB

# Two test processes (pytest-xdist) must not run apt-get at once, for chromium or for Slurm (tests/slurm.py).
APT_LOCK = os.path.join(tempfile.gettempdir(), "schedy-tests-apt.lock")


class Unavailable(Exception):
    """No browser can be had here; the message says why."""


def in_ci():
    """True when running in CI (``$CI`` set to anything but empty, 0, false or no)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def unavailable(reason):
    """Skip the test for ``reason``, or fail it in CI: there, a missing browser (or Slurm, Ray...) is a broken
    environment."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set: these tests must run there, not skip)", pytrace=False)
    pytest.skip(reason)


def _executable(path):
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _tail(text, lines=15):
    return "\n".join((text or "").strip().splitlines()[-lines:])


def ensure_chromium(path=CHROMIUM, run=subprocess.run):
    """The path of Debian's chromium, installed with apt-get first if it is missing; raise Unavailable if it cannot be.

    ``run`` is :func:`subprocess.run` (a parameter so that the install path can be exercised without apt-get).
    """
    apt_install(["chromium"], lambda: _executable(path), f"{path} is missing", run)
    if not _executable(path):
        raise Unavailable(f"apt-get installed the package chromium, but there is still no {path}")
    return path


def apt_install(packages, present, missing, run=subprocess.run):
    """Install the Debian ``packages`` with apt-get unless ``present()``; raise Unavailable if they cannot be.

    ``missing`` says what is missing, to begin the error message with. One test process at a time runs apt-get.
    """
    if present():
        return
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        raise Unavailable(
            f"{missing} and only root can install it "
            f"(run: apt-get install --no-install-recommends {' '.join(packages)})"
        )
    if shutil.which("apt-get") is None:
        raise Unavailable(f"{missing} and there is no apt-get to install it with (not a Debian system)")
    command = install_command(packages)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    with open(APT_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test process may be installing it right now
        if present():
            return
        update = _apt(APT_UPDATE, env, run)
        install = _apt(command, env, run)
    if install.returncode != 0:
        # A failed update alone is not fatal (a stale list may still hold the package), but say it when both failed.
        said = "" if update.returncode == 0 else f"\n`{' '.join(APT_UPDATE)}` also failed:\n{_tail(update.stdout)}"
        raise Unavailable(
            f"{missing} and `{' '.join(command)}` failed with exit status "
            f"{install.returncode}:\n{_tail(install.stdout)}{said}"
        )


def _apt(cmd, env, run):
    try:
        return run(
            cmd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=INSTALL_TIMEOUT,
        )
    except subprocess.TimeoutExpired as e:
        out = e.output.decode("utf-8", "replace") if isinstance(e.output, bytes) else (e.output or "")
        return subprocess.CompletedProcess(cmd, -1, f"{out}\ntimed out after {INSTALL_TIMEOUT} s")
    except OSError as e:
        return subprocess.CompletedProcess(cmd, -1, f"cannot run {cmd[0]}: {e}")


def start_playwright():
    """A started Playwright (sync API); raise Unavailable if the package is not installed."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise Unavailable("the Python package playwright is not installed: pip install -e '.[test]'") from None
    return sync_playwright().start()


def launch(playwright, path=CHROMIUM):
    """Launch the chromium at ``path`` headless with the flags this closed network needs."""
    return playwright.chromium.launch(executable_path=path, args=ARGS, headless=True)
