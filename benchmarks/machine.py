"""The description of the machine every benchmark prints with its figures (shared by the scripts here)."""

import os
import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def usable_cpus():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()


def _proc_field(path, key):
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def commit():
    """The checkout's short commit, saying so when schedy/ has uncommitted changes; None outside git."""
    try:
        head = (
            subprocess.run(
                ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
            ).stdout.strip()
            or None
        )
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no", "schedy"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head} + uncommitted changes to schedy/" if head and dirty else head


def version_of(package):
    try:
        from importlib.metadata import version

        return version(package)
    except Exception:  # noqa: BLE001 - not installed, or no metadata: say so with None
        return None


def describe(packages=()):
    """CPUs, memory, Python, platform, Schedy's commit and the versions of ``packages``."""
    mem = _proc_field("/proc/meminfo", "MemTotal")
    return {
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable_cpus(),
        "cpu": _proc_field("/proc/cpuinfo", "model name") or platform.processor() or "",
        "memory_gib": round(int(mem.split()[0]) / 1024 / 1024, 1) if mem else None,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "schedy_commit": commit(),
        **{p: version_of(p) for p in packages},
    }


def start_moto(stderr=subprocess.DEVNULL):
    """Start a moto S3 server on a free loopback port; return ``(process, endpoint)`` once it answers."""
    import socket
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        # moto, with its conditional puts made atomic as a real store's are (tests/s3server.py).
        [sys.executable, str(Path(__file__).resolve().parent.parent / "tests" / "s3server.py"), "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        text=True,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(endpoint + "/", timeout=1)
            return proc, endpoint
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                stop_process(proc)
                raise RuntimeError("the local S3 server (moto) did not start; is moto[server] installed?") from None
            time.sleep(0.05)


def stop_process(proc):
    """Terminate ``proc``, killing it if it does not exit within 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
