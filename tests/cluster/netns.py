"""Two network namespaces joined by a veth pair: two "nodes" with two addresses on one machine.

Each end is renamed ``dlb0`` inside its namespace (the same interface name on every node, as on a real
cluster), 10.200.0.1/24 and 10.200.0.2/24. Both namespaces keep the machine's host name, which /etc/hosts maps
to 127.0.0.1: gloo must be told the interface (dlbox finds the one that reaches the master)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

IFACE = "dlb0"
ADDRS = ("10.200.0.1", "10.200.0.2")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20, check=check)


class NetnsPair:
    def __init__(self):
        tag = f"{os.getpid() % 100000}"
        self.names = (f"dlbA{tag}", f"dlbB{tag}")
        self.created: list[str] = []

    def create(self) -> NetnsPair:
        a, b = self.names
        for ns in self.names:
            _ip("netns", "add", ns)
            self.created.append(ns)
        va, vb = f"dlbva{a[4:]}", f"dlbvb{b[4:]}"
        _ip("link", "add", va, "type", "veth", "peer", "name", vb)
        for ns, dev, addr in ((a, va, ADDRS[0]), (b, vb, ADDRS[1])):
            _ip("link", "set", dev, "netns", ns)
            self.exec_ip(ns, "link", "set", dev, "name", IFACE)
            self.exec_ip(ns, "addr", "add", f"{addr}/24", "dev", IFACE)
            self.exec_ip(ns, "link", "set", IFACE, "up")
            self.exec_ip(ns, "link", "set", "lo", "up")
        return self

    def exec_ip(self, ns: str, *args: str) -> None:
        _ip("-n", ns, *args)

    def prefix(self, i: int) -> list[str]:
        """The command prefix that runs a program on node ``i``."""
        return ["ip", "netns", "exec", self.names[i]]

    def delete(self) -> None:
        for ns in self.created:  # deleting a namespace deletes its end of the veth, and so the pair
            _ip("netns", "delete", ns, check=False)
            etc = Path("/etc/netns") / ns
            if etc.exists():
                shutil.rmtree(etc, ignore_errors=True)
        self.created.clear()


def unavailable() -> str | None:
    """Why namespaces cannot be made here, or None."""
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    if os.geteuid() != 0:
        return "creating network namespaces needs root"
    probe = f"dlbprobe{os.getpid() % 100000}"
    r = _ip("netns", "add", probe, check=False)
    if r.returncode != 0:
        return f"ip netns add failed: {r.stderr.strip()[:200]}"
    _ip("netns", "delete", probe, check=False)
    return None
