"""A Spark standalone cluster for the tests: a master and workers, each its own process started
with PySpark's own ``spark-class`` (no Spark install beyond the ``spark`` extra).

Where the machine allows it (root, ``ip netns``, ``unshare``) every daemon is its own network
host: a network namespace with one address on a bridge, the driver (the test process's
children) on the bridge's host side. Each worker also gets its own mount namespace in which the
driver's directory (``hidden``) is an empty tmpfs except for the repo's ``data/`` directory
(``shared``): executors see the event log and the tables, and nothing else of the driver's.
Elsewhere the daemons share the loopback interface, and ``SparkCluster.isolation`` says why.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

MASTER = "org.apache.spark.deploy.master.Master"
WORKER = "org.apache.spark.deploy.worker.Worker"
# Bind-mount ``shared`` over a fresh tmpfs on ``hidden``, then run the daemon (as root, inside
# ``unshare --mount``: the mounts are the worker's own and vanish with it).
HIDE_ALL_BUT_SHARED = """set -e
hold=$1 hidden=$2 shared=$3; shift 3
mount --bind "$shared" "$hold"
mount -t tmpfs -o size=1m tmpfs "$hidden"
mkdir -p "$shared"
mount --bind "$hold" "$shared"
exec "$@"
"""


@dataclass
class SparkCluster:
    master_url: str  # spark://host:port, what the driver connects to
    master_ui: str  # the master's web UI (JSON status at /json/)
    driver_ip: str  # the address executors reach the driver at: the driver's SPARK_LOCAL_IP
    isolation: str  # how the master and workers are separated
    processes: list[subprocess.Popen] = field(default_factory=list)

    def status(self) -> dict:
        """The master's JSON status: workers, applications."""
        with urllib.request.urlopen(f"{self.master_ui}/json/", timeout=10) as response:
            return json.load(response)

    def driver_env(self) -> dict[str, str]:
        return {**os.environ, "SPARK_LOCAL_IP": self.driver_ip}

    def workers_see(self, directory: Path) -> list[list[str]]:
        """What each worker (and so each of its executors) sees in ``directory``."""
        return [sorted(subprocess.run(
            ["nsenter", "--target", str(worker.pid), "--mount", "ls", "-A", str(directory)],
            capture_output=True, text=True, check=True).stdout.split())
            for worker in self.processes[1:]]


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


@contextmanager
def spark_cluster(workdir: Path, hidden: Path, shared: Path, workers: int = 2,
                  cores: int = 1, memory: str = "768m", timeout: float = 240) -> Iterator[
                      SparkCluster]:
    """A running master with ``workers`` registered workers (``cores`` and ``memory`` each),
    logs and work directories under ``workdir``; everything stopped and removed on exit."""
    shared.mkdir(parents=True, exist_ok=True)
    reason = namespaces_unavailable()
    network = None if reason else Network(["m", *(f"w{i}" for i in range(1, workers + 1))])
    processes: list[subprocess.Popen] = []
    try:
        if network:
            network.create()
            host = network.addresses
            master = f"spark://{host['m']}:7077"
            cluster = SparkCluster(master, f"http://{host['m']}:8080", network.gateway,
                                   f"network namespaces {', '.join(network.namespaces)} on "
                                   f"bridge {network.bridge}", processes)
            ports = {"m": (7077, 8080), **{f"w{i}": (0, 8081) for i in range(1, workers + 1)}}
        else:
            host = {"m": "127.0.0.1", **{f"w{i}": "127.0.0.1" for i in range(1, workers + 1)}}
            ports = {name: (_free_port() if name == "m" else 0, _free_port()) for name in host}
            master = f"spark://127.0.0.1:{ports['m'][0]}"
            cluster = SparkCluster(master, f"http://127.0.0.1:{ports['m'][1]}", "127.0.0.1",
                                   f"loopback, one process per daemon ({reason})", processes)
        port, ui = ports["m"]
        processes.append(_launch(
            [MASTER, "--host", host["m"], "--port", str(port), "--webui-port", str(ui)],
            workdir / "m", host["m"], network and network.namespace("m")))
        for i in range(1, workers + 1):
            name = f"w{i}"
            processes.append(_launch(
                [WORKER, "--host", host[name], "--port", str(ports[name][0]),
                 "--webui-port", str(ports[name][1]), "--cores", str(cores),
                 "--memory", memory, master],
                workdir / name, host[name], network and network.namespace(name),
                hide=(hidden, shared) if network else None))
        _wait_for_workers(cluster, workers, timeout)
        yield cluster
    finally:
        _stop(processes)
        if network:
            network.delete()


def namespaces_unavailable() -> str | None:
    """Why this machine cannot give each daemon its own network host (``None``: it can)."""
    if os.geteuid() != 0:
        return "not root: network namespaces need CAP_NET_ADMIN"
    for tool in ("ip", "unshare", "mount", "nsenter"):
        if shutil.which(tool) is None:
            return f"no `{tool}` command"
    probe = f"ufp{uuid.uuid4().hex[:8]}"
    for create, delete in ((["ip", "netns", "add", probe], ["ip", "netns", "del", probe]),
                           (["ip", "link", "add", probe, "type", "bridge"],
                            ["ip", "link", "del", probe]),
                           (["unshare", "--mount", "true"], None)):
        done = subprocess.run(create, capture_output=True, text=True)
        if done.returncode:
            return f"`{' '.join(create)}` failed: {done.stderr.strip()}"
        if delete:
            subprocess.run(delete, capture_output=True)
    return None


class Network:
    """A bridge (the driver's side, ``.1``) and one network namespace per host (``.10`` on)."""

    def __init__(self, hosts: list[str]) -> None:
        self.prefix = f"uf{uuid.uuid4().hex[:6]}"  # interface names have 15 characters at most
        self.bridge = f"{self.prefix}-br"
        self.subnet = _free_subnet()
        self.gateway = f"{self.subnet}.1"
        self.addresses = {h: f"{self.subnet}.{10 + i}" for i, h in enumerate(hosts)}
        self.namespaces: list[str] = []

    def namespace(self, host: str) -> str:
        return f"{self.prefix}-{host}"

    def create(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for host, address in self.addresses.items():
            ns = self.namespace(host)
            _ip("netns", "add", ns)
            self.namespaces.append(ns)
            _ip("link", "add", ns, "type", "veth", "peer", "name", "eth0", "netns", ns)
            _ip("link", "set", ns, "master", self.bridge, "up")
            _ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")

    def delete(self) -> None:
        for ns in self.namespaces:  # takes its end of the veth pair with it
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def _free_subnet() -> str:
    """A 10.213.N /24 no interface or route of this machine uses."""
    used = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    used += subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    free = [n for n in range(256) if f"10.213.{n}." not in used]
    if not free:
        raise RuntimeError("no free 10.213.N.0/24 subnet for the test cluster")
    return f"10.213.{random.choice(free)}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(args: list[str], directory: Path, address: str, namespace: str | None,
            hide: tuple[Path, Path] | None = None) -> subprocess.Popen:
    """One daemon: ``spark-class args``, in its own process group (and network namespace)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "conf").mkdir(exist_ok=True)  # no spark-defaults.conf from anywhere else
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK_", "SPARK_"))}
    env.update(SPARK_HOME=str(spark_home()), SPARK_CONF_DIR=str(directory / "conf"),
               SPARK_WORKER_DIR=str(directory / "work"), SPARK_LOCAL_IP=address,
               SPARK_DAEMON_MEMORY="256m")
    command = [str(spark_home() / "bin" / "spark-class"), *args]
    if hide:
        hidden, shared = hide
        (directory / "shared").mkdir(exist_ok=True)
        command = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                   HIDE_ALL_BUT_SHARED, "sh", str(directory / "shared"), str(hidden),
                   str(shared), *command]
    if namespace:
        command = ["ip", "netns", "exec", namespace, *command]
    with open(directory / "daemon.log", "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                   cwd=directory, start_new_session=True)
    process.log = directory / "daemon.log"
    return process


def _tail(process: subprocess.Popen, lines: int = 15) -> str:
    text = process.log.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join([f"--- {process.log}", *text])


def _wait_for_workers(cluster: SparkCluster, workers: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        for process in cluster.processes:
            if process.poll() is not None:
                raise RuntimeError(f"a Spark daemon exited ({process.returncode}): "
                                   f"{' '.join(map(str, process.args))}\n{_tail(process)}")
        try:
            if cluster.status()["aliveworkers"] >= workers:
                return
        except OSError:
            pass  # the master's UI is not up yet
        if time.monotonic() > deadline:
            raise TimeoutError(f"{workers} Spark workers did not register in {timeout:.0f} s\n"
                               + "\n".join(_tail(p) for p in cluster.processes))
        time.sleep(1)


def _stop(processes: list[subprocess.Popen]) -> None:
    """Each daemon's whole process group (a worker's executors included): TERM, then KILL."""
    for process in reversed(processes):
        _signal(process, signal.SIGTERM)
    deadline = time.monotonic() + 20
    for process in processes:
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        _signal(process, signal.SIGKILL)  # stragglers of the group (executors)
        process.wait()


def _signal(process: subprocess.Popen, sig: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
