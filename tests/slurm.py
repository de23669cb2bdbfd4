"""A one-node Slurm cluster for the tests of the Slurm recipe: Debian's ``slurm-wlm`` and ``munge``.

:func:`ensure_installed` installs the packages with ``apt-get`` when they are missing (as root), as
tests/browser.py does for chromium. :class:`Cluster` starts munged (as the ``munge`` user, unless one runs
already), then slurmctld and slurmd in the foreground (``-D``, no systemd needed) on free ports, with a
slurm.conf of their own in a test directory: ``SLURM_CONF`` points every Slurm command at it, so a Slurm
the machine may run already is left alone. The node declares ``CPUS`` CPUs whatever the machine has
(``SlurmdParameters=config_overrides``), so that a 4-task array runs at once on 2 CPUs; the tasks mostly
wait. Where Slurm cannot be had the tests skip, except in CI, where they fail (``browser.unavailable``).
"""

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import browser
from browser import Unavailable

PACKAGES = ["slurm-wlm", "munge"]
CPUS = 8
_DAEMONS = ("slurmctld", "slurmd", "munged")


def _missing():
    return [d for d in _DAEMONS if shutil.which(d, path="/usr/sbin:/usr/bin:/sbin:/bin") is None]


def ensure_installed(run=subprocess.run):
    """Install slurm-wlm and munge with apt-get if a daemon is missing; raise Unavailable if they cannot be."""
    browser.apt_install(PACKAGES, lambda: not _missing(), f"{', '.join(_missing())} missing,", run)
    if _missing():
        raise Unavailable(f"apt-get installed {' '.join(PACKAGES)}, but there is still no {', '.join(_missing())}")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _munge_works():
    try:
        token = subprocess.run(["munge", "-n"], capture_output=True, timeout=30)
        check = subprocess.run(["unmunge"], input=token.stdout, capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return token.returncode == 0 and check.returncode == 0


class Cluster:
    """slurmctld and slurmd on this machine, configured in ``directory``; ``env`` is what Slurm commands need."""

    def __init__(self, directory):
        self.dir = Path(directory)
        self.host = socket.gethostname().split(".")[0]
        self.conf = self.dir / "slurm.conf"
        self.env = dict(os.environ, SLURM_CONF=str(self.conf))
        self._procs = []
        self._started_munged = False

    def start(self, timeout=120):
        """Start munged (if needed), slurmctld and slurmd; return once the node is idle."""
        self._start_munged()
        for d in ("state", "spool", "log"):
            (self.dir / d).mkdir(parents=True, exist_ok=True)
        self.conf.write_text(self._config(), encoding="utf-8")
        for daemon in (["slurmctld", "-D", "-c"], ["slurmd", "-D"]):
            log = open(self.dir / "log" / f"{daemon[0]}.out", "wb")  # noqa: SIM115 (kept open for the daemon)
            self._procs.append(
                subprocess.Popen(
                    daemon,
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
            log.close()
        deadline = time.monotonic() + timeout
        while True:
            state = self.run("sinfo", "-h", "-o", "%T", check=False).stdout.strip()
            if state == "idle":
                return
            if time.monotonic() > deadline or any(p.poll() is not None for p in self._procs):
                raise Unavailable(f"the one-node Slurm did not come up (node state {state!r}):\n{self.logs()}")
            time.sleep(0.2)

    def _start_munged(self):
        if _munge_works():
            return
        if not Path("/etc/munge/munge.key").exists():
            subprocess.run(["mungekey", "--create"], check=True, capture_output=True)
        # munged refuses files it does not own, and systemd (absent here) is what makes /run/munge.
        subprocess.run(["install", "-d", "-o", "munge", "-g", "munge", "-m", "0755", "/run/munge"], check=True)
        subprocess.run(["chown", "-R", "munge:munge", "/etc/munge", "/var/lib/munge", "/var/log/munge"], check=True)
        started = subprocess.run(["runuser", "-u", "munge", "--", "munged"], capture_output=True, text=True)
        self._started_munged = True
        if started.returncode != 0 or not _munge_works():
            raise Unavailable(f"munged did not start (exit status {started.returncode}): {started.stderr.strip()}")

    def _config(self):
        d = self.dir
        return f"""\
ClusterName=schedytest
SlurmctldHost={self.host}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MailProg=/bin/true
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdLogFile={d}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
KillWait=30
MinJobAge=600
NodeName={self.host} NodeAddr=127.0.0.1 CPUs={CPUS} RealMemory=2000 State=UNKNOWN
PartitionName=debug Nodes={self.host} Default=YES MaxTime=INFINITE State=UP
"""

    def run(self, *args, check=True, timeout=60, cwd=None, env=None):
        """Run a Slurm command against this cluster (``env``: its environment, else ``self.env``); its
        CompletedProcess (text)."""
        done = subprocess.run(args, env=env or self.env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({done.returncode}): {done.stdout}{done.stderr}")
        return done

    def job(self, job_id):
        """``scontrol show job``'s fields of ``job_id`` (``1234_2`` for a task of an array), as a dict."""
        out = self.run("scontrol", "show", "job", "-o", str(job_id)).stdout
        return dict(field.split("=", 1) for field in out.split() if "=" in field)

    def logs(self):
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted((self.dir / "log").glob("*"))
            if p.is_file()
        )

    def stop(self):
        """Cancel every job, stop the daemons (and munged if this cluster started it), whatever fails."""
        for command in (["scancel", "--full", "--signal=KILL", "--user=root"], ["scontrol", "shutdown"]):
            try:
                self.run(*command, check=False)
            except (OSError, subprocess.TimeoutExpired):
                pass  # the daemons are killed below all the same
        for p in self._procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        if self._started_munged:
            subprocess.run(["munged", "--stop"], capture_output=True, timeout=60)
