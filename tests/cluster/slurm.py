"""A one-node SLURM cluster of this machine's own: munged, slurmctld and slurmd from a slurm.conf in a
temporary folder (2 CPUs, no cgroups), started and stopped by the tests' session fixture.

The settings are those measured in ../shared/notes/cluster-testing.md: a munge socket of its own, free ports,
``cred_expire=5`` with one-second scheduling (a requeued job restarts ~6 s later; 10 gave 11 s, SLURM's
default 120 about 130 s), ``proctrack/linuxproc`` and ``task/none`` (no cgroups here)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

NODE = "node1"
TOOLS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "srun", "squeue", "scontrol", "scancel", "sacct")


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None and not Path(f"/usr/sbin/{t}").exists()]


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _tool(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


class SlurmCluster:
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="dlbox-slurm-"))
        self.started: list[str] = []
        self.started_at = time.time()

    # --- set-up ---------------------------------------------------------------------------------------
    def start(self, timeout: float = 30) -> SlurmCluster:
        d = self.dir
        os.chmod(d, 0o755)  # munged refuses a socket folder others cannot read
        for sub in ("munge", "state", "spool", "log"):
            (d / sub).mkdir(mode=0o755)
        munge = d / "munge"
        subprocess.run([_tool("mungekey"), "-c", "-k", str(munge / "munge.key")], check=True, timeout=30,
                       capture_output=True)  # fmt: skip
        subprocess.run(["chown", "-R", "munge:", str(munge)], check=True, timeout=30)
        os.chmod(munge / "munge.key", 0o600)
        self.socket = munge / "munge.sock"
        subprocess.run(["runuser", "-u", "munge", "--", _tool("munged"), "-S", str(self.socket),
                        f"--key-file={munge / 'munge.key'}", f"--log-file={munge / 'munged.log'}",
                        f"--pid-file={munge / 'munged.pid'}", f"--seed-file={munge / 'munged.seed'}"],
                       check=True, timeout=30, capture_output=True)  # fmt: skip
        self.started.append("munged")
        ctld_port, d_port = _free_ports(2)
        self.conf = d / "slurm.conf"
        self.conf.write_text(f"""# dlbox tests: a one-node cluster (see tests/cluster/slurm.py)
ClusterName=dlboxtest
SlurmctldHost=localhost
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.socket},cred_expire=5
StateSaveLocation={d / 'state'}
SlurmdSpoolDir={d / 'spool'}
SlurmctldPidFile={d / 'slurmctld.pid'}
SlurmdPidFile={d / 'slurmd.pid'}
SlurmctldLogFile={d / 'log' / 'slurmctld.log'}
SlurmdLogFile={d / 'log' / 'slurmd.log'}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
SchedulerParameters=bf_interval=1,sched_interval=1
KillWait=5
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName={NODE} NodeAddr=127.0.0.1 CPUs=2 RealMemory=2000 State=UNKNOWN
PartitionName=debug Nodes={NODE} Default=YES MaxTime=INFINITE State=UP
""")
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        subprocess.run([_tool("slurmctld"), "-i"], env=self.env, check=True, timeout=30, capture_output=True)
        self.started.append("slurmctld")
        subprocess.run([_tool("slurmd"), "-N", NODE], env=self.env, check=True, timeout=30, capture_output=True)
        self.started.append("slurmd")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.run("sinfo", "-h", "-o", "%T", check=False).stdout.strip()
            if out == "idle":
                return self
            time.sleep(0.2)
        raise RuntimeError(f"slurmd did not become idle within {timeout} s: {self.logs()}")

    # --- use ----------------------------------------------------------------------------------------------
    def run(self, *cmd: str, check: bool = True, timeout: float = 30, **kw) -> subprocess.CompletedProcess:
        return subprocess.run([_tool(cmd[0]), *cmd[1:]], env={**self.env, **kw.pop("env", {})}, check=check,
                              capture_output=True, text=True, timeout=timeout, **kw)  # fmt: skip

    def job(self, job_id: str) -> dict[str, str]:
        """scontrol's view of a job: JobState, Restarts, ExitCode, ... ({} once it is forgotten)."""
        out = self.run("scontrol", "-o", "show", "job", job_id, check=False).stdout
        return dict(kv.split("=", 1) for kv in out.split() if "=" in kv)

    def wait(self, job_id: str, states: tuple[str, ...], timeout: float, restarts: int | None = None) -> dict:
        deadline = time.monotonic() + timeout
        info: dict[str, str] = {}
        while time.monotonic() < deadline:
            info = self.job(job_id)
            if info.get("JobState") in states and (restarts is None or int(info.get("Restarts", 0)) >= restarts):
                return info
            time.sleep(0.3)
        raise AssertionError(f"job {job_id} not in {states} within {timeout} s: {info}\n{self.logs()}")

    def logs(self) -> str:
        out = []
        for f in ("slurmctld.log", "slurmd.log"):
            p = self.dir / "log" / f
            if p.exists():
                out.append(f"--- {f}\n" + "\n".join(p.read_text(errors="replace").splitlines()[-15:]))
        return "\n".join(out)

    # --- tear-down ------------------------------------------------------------------------------------------
    def stop(self) -> None:
        if "slurmctld" in self.started:
            self.run("scancel", "--user", "root", check=False)
            deadline = time.monotonic() + 15  # let the cancelled jobs end before their slurmd goes
            while time.monotonic() < deadline and self.run("squeue", "-h", check=False).stdout.strip():
                time.sleep(0.3)
        pids = [int((self.dir / f"{n}.pid").read_text().split()[0]) for n in ("slurmd", "slurmctld")
                if n in self.started and (self.dir / f"{n}.pid").exists()]  # fmt: skip
        for pid in pids:  # both asked at once, then waited for
            _signal(pid, signal.SIGTERM)
        for pid in pids:
            _kill(pid)
        if "munged" in self.started:
            subprocess.run([_tool("munged"), "-S", str(self.socket), "--stop"], capture_output=True, timeout=30)
            pid_file = self.dir / "munge" / "munged.pid"
            if pid_file.exists():
                _kill(int(pid_file.read_text().split()[0]))
        # A job step's slurmstepd can outlive its slurmd (a job still ending when slurmd stopped): stop this
        # cluster's too, those started since it was.
        import psutil

        for proc in psutil.process_iter(["name", "create_time"]):
            if proc.info["name"] == "slurmstepd" and proc.info["create_time"] >= self.started_at - 1:
                _kill(proc.pid)
        shutil.rmtree(self.dir, ignore_errors=True)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _kill(pid: int, timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` s; returns once the process is gone."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
