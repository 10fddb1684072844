"""Benchmark exha-lb against HAProxy (mode tcp) and nginx stream on loopback with wrk.

Two nginx back ends (one worker each) serve a 100-byte and a 1 MiB file on 127.0.0.23/.24. Each balancer
listens on 127.0.0.28 (its own port) and round-robins over them. wrk measures keep-alive requests, a new
connection per request, and 1 MiB bulk transfers; balancer CPU time per request comes from /proc. A last step
holds 5,000 idle client connections through exha-lb and sums its processes' RSS. Balancer CPU per request is
also measured below saturation: at a fixed rate held by a Python client (3,000 keep-alive requests/s, 600 new
connections/s) and with wrk pacing each connection (a pause of PACE_MS between requests).

    python benchmarks/lb_bench.py [--quick]     (or: exha-lb bench [--quick])
    python benchmarks/lb_bench.py --http        (or: exha-lb bench --http): HTTP mode against HAProxy's
    python benchmarks/lb_bench.py --floor       (or: exha-lb bench --floor): HAProxy, exha-lb and the least
                                                CPython can do per connection (benchmarks/python_floor.py)

The last line is: ratios vs haproxy: keepalive=X newconn=Y bulk=Z p99_added_ms=W
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VIP = "127.0.0.28"
SERVERS = ("127.0.0.23", "127.0.0.24")
BACKEND_PORT = 18980
PORTS = {"exha-lb": 18981, "haproxy": 18982, "nginx-stream": 18983}
HTTP_PORTS = {"exha-lb-http": 18984, "haproxy-http": 18985}  # `--http`: the same balancers in HTTP mode
FLOOR_PORT = 18986  # `--floor`: benchmarks/python_floor.py
CLK = os.sysconf("SC_CLK_TCK")
PACE_MS = 5  # wrk's per-connection pause between requests for the paced CPU measurement
PACED_CONNS = {"keepalive": 100, "newconn": 20}


@dataclass
class Run:
    rps: float
    p99_ms: float
    mib_s: float
    cpu_us_per_req: float


def wait_port(address: str, port: int, timeout: float = 10.0) -> None:
    """Wait until something accepts TCP on address:port; TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((address, port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{address}:{port} did not open within {timeout}s") from None
            time.sleep(0.05)


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return out


def socket_fds(pid: int) -> dict[str, int]:
    """The socket inodes process `pid` holds, each with its fd."""
    out: dict[str, int] = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
        if link.startswith("socket:["):
            out[link[8:-1]] = int(fd)
    return out


def _tree_pids(root: int) -> list[int]:
    return [root] + children(root)


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU seconds the processes `pids` have used so far (from /proc)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, ValueError, IndexError):
            pass
    return total / CLK


def _memory_mb(pids: list[int], field: str) -> float:
    """Sum of `field` (Rss: or Pss:) over `pids`, from /proc/PID/smaps_rollup, in MB."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as fh:
                for line in fh:
                    if line.startswith(field):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def _unit(value: str, units: dict[str, float]) -> float:
    m = re.match(r"([\d.]+)([a-zA-Z]*)", value)
    if not m:
        return 0.0
    return float(m.group(1)) * units.get(m.group(2), 1.0)


def wrk(url: str, conns: int, seconds: float, close: bool, pids: list[int], script: Path | None = None) -> Run:
    argv = ["wrk", "-t1", f"-c{conns}", f"-d{seconds:g}s", "--latency", url]
    if script is not None:
        argv[1:1] = ["-s", str(script)]
    if close:
        argv[1:1] = ["-H", "Connection: close"]
    before = cpu_seconds(pids)
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30).stdout
    cpu = cpu_seconds(pids) - before
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = _unit(re.search(r"\s99%\s+(\S+)", out).group(1), {"us": 0.001, "ms": 1.0, "s": 1000.0})  # type: ignore[union-attr]
    xfer = _unit(re.search(r"Transfer/sec:\s+(\S+)", out).group(1), {"B": 1 / 2**20, "KB": 1 / 1024, "MB": 1.0,
                                                                    "GB": 1024.0})  # type: ignore[union-attr]
    errors = re.search(r"Socket errors: (.*)", out)
    if errors:
        print(f"    wrk socket errors on {url}: {errors.group(1)}", file=sys.stderr)
    done = rps * seconds
    return Run(rps, p99, xfer, cpu / done * 1e6 if done and pids else 0.0)


class Stack:
    """The back ends and the three balancers, started in a temporary directory."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="exha-lb-bench-"))
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = (self.dir / f"{name}.log").open("wb")
        self.procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)

    def start(self) -> None:
        www = self.dir / "www"
        www.mkdir()
        for d in (self.dir, www):  # nginx workers run as www-data
            d.chmod(0o755)
        (www / "small").write_bytes(b"x" * 100)
        (www / "big").write_bytes(os.urandom(1 << 20))
        for i, addr in enumerate(SERVERS):
            conf = self.dir / f"backend{i}.conf"
            conf.write_text(f"""
worker_processes 1; daemon off; pid {self.dir}/backend{i}.pid; error_log {self.dir}/backend{i}.err;
worker_rlimit_nofile 12000;
events {{ worker_connections 10000; }}
http {{ access_log off; keepalive_requests 10000000; keepalive_timeout 600s;
  server {{ listen {addr}:{BACKEND_PORT} backlog=4096; root {www}; }} }}
""")
            self._spawn(f"backend{i}", ["nginx", "-c", str(conf), "-p", str(self.dir)])
        servers = "".join(f"""
[[virtual_services.real_servers]]
address = "{a}"
""" for a in SERVERS)
        (self.dir / "lb.toml").write_text(f"""
workers = {os.cpu_count() or 1}
log_level = "warning"
[admin]
port = 18990
[[virtual_services]]
name = "bench"
vip = "{VIP}"
port = {PORTS['exha-lb']}
server_port = {BACKEND_PORT}
scheduler = "round_robin"
[virtual_services.health]
kind = "tcp"
interval = 5
{servers}""")
        self._spawn("exha-lb", [sys.executable, "-m", "lb", "run", "--config", str(self.dir / "lb.toml")])
        (self.dir / "haproxy.cfg").write_text(f"""
global
  nbthread 2
  maxconn 9000
defaults
  mode tcp
  timeout connect 3s
  timeout client 600s
  timeout server 600s
frontend f
  bind {VIP}:{PORTS['haproxy']}
  default_backend b
backend b
  balance roundrobin
""" + "".join(f"  server s{i} {a}:{BACKEND_PORT} check inter 5s\n" for i, a in enumerate(SERVERS)))
        self._spawn("haproxy", ["haproxy", "-db", "-f", str(self.dir / "haproxy.cfg")])
        (self.dir / "stream.conf").write_text(f"""
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes 2; daemon off; pid {self.dir}/stream.pid; error_log {self.dir}/stream.err;
worker_rlimit_nofile 12000;
events {{ worker_connections 10000; }}
stream {{ upstream b {{ {' '.join(f'server {a}:{BACKEND_PORT};' for a in SERVERS)} }}
  server {{ listen {VIP}:{PORTS['nginx-stream']} backlog=4096; proxy_pass b; }} }}
""")
        self._spawn("nginx-stream", ["nginx", "-c", str(self.dir / "stream.conf"), "-p", str(self.dir)])
        self._wait([(addr, BACKEND_PORT) for addr in SERVERS] + [(VIP, port) for port in PORTS.values()])

    def pids(self, name: str) -> list[int]:
        return _tree_pids(self.procs[name].pid) if name in self.procs else []

    def start_http(self) -> None:
        """exha-lb and HAProxy in HTTP mode as well, each inserting a persistence cookie into every answer."""
        cfg = (self.dir / "lb.toml").read_text()
        cfg = cfg.replace(f"port = {PORTS['exha-lb']}", f"port = {HTTP_PORTS['exha-lb-http']}")
        cfg = cfg.replace("port = 18990", "port = 18991").replace(
            'scheduler = "round_robin"', 'scheduler = "round_robin"\nmode = "http"\n'
            '[virtual_services.persistence]\nkind = "cookie"\ncookie_name = "EXHALB"')
        (self.dir / "lb-http.toml").write_text(cfg)
        self._spawn("exha-lb-http", [sys.executable, "-m", "lb", "run", "--config", str(self.dir / "lb-http.toml")])
        cfg = (self.dir / "haproxy.cfg").read_text().replace("mode tcp", "mode http\n  option http-keep-alive")
        cfg = cfg.replace(f"bind {VIP}:{PORTS['haproxy']}", f"bind {VIP}:{HTTP_PORTS['haproxy-http']}")
        cfg = cfg.replace("balance roundrobin", "balance roundrobin\n  cookie EXHALB insert indirect nocache")
        cfg = re.sub(r"server (s\d) (\S+) check", r"server \1 \2 cookie \1 check", cfg)
        (self.dir / "haproxy-http.cfg").write_text(cfg)
        self._spawn("haproxy-http", ["haproxy", "-db", "-f", str(self.dir / "haproxy-http.cfg")])
        self._wait([(VIP, port) for port in HTTP_PORTS.values()])

    def start_floor(self) -> None:
        """benchmarks/python_floor.py, one process per core like exha-lb's workers, over the same back ends."""
        self._spawn("python-floor", [sys.executable, str(REPO / "benchmarks" / "python_floor.py"),
                                     f"{VIP}:{FLOOR_PORT}", *(f"{a}:{BACKEND_PORT}" for a in SERVERS),
                                     "--workers", str(os.cpu_count() or 1)])
        self._wait([(VIP, FLOOR_PORT)])

    def pace_script(self) -> Path:
        """A wrk Lua script pausing each connection PACE_MS between requests (the paced CPU measurement)."""
        path = self.dir / "pace.lua"
        path.write_text(f"function delay()\n  return {PACE_MS}\n end\n")
        return path

    @staticmethod
    def _wait(listeners: list[tuple[str, int]]) -> None:
        """Until each (address, port) accepts, then one second more for the processes to settle."""
        try:
            for address, port in listeners:
                wait_port(address, port)
        except TimeoutError as e:
            raise SystemExit(f"lb_bench: {e}") from None
        time.sleep(1.0)

    def worker_split(self) -> list[int]:
        """How many established client connections each exha-lb worker holds now (from /proc)."""
        port = f":{PORTS['exha-lb']:04X}"
        out = []
        for pid in self.pids("exha-lb")[1:]:
            inodes = socket_fds(pid).keys()
            with open(f"/proc/{pid}/net/tcp") as fh:
                rows = [line.split() for line in fh.read().splitlines()[1:]]
            out.append(sum(1 for f in rows if f[1].endswith(port) and f[3] == "01" and f[9] in inodes))
        return out

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def idle_connections(stack: Stack, count: int) -> tuple[int, float, float]:
    """Hold `count` idle client connections through exha-lb; returns (held, RSS MB, PSS MB) summed over its
    processes (RSS counts pages the forked workers share once per process; PSS splits them)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, count + 500)), hard))
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.connect((VIP, PORTS["exha-lb"]))
            socks.append(s)
        time.sleep(2.0)
        pids = stack.pids("exha-lb")
        held = _established(PORTS["exha-lb"])
        return held, _memory_mb(pids, "Rss:"), _memory_mb(pids, "Pss:")
    finally:
        for s in socks:
            s.close()


async def _fixed_rate(host: str, port: int, rate: float, seconds: float, conns: int, close: bool) -> int:
    """Send `rate` requests/s for `seconds` (keep-alive over `conns` connections, or a new connection per
    request); returns how many completed."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    done = [0]
    req = f"GET /small HTTP/1.1\r\nHost: x\r\n{'Connection: close' + chr(13) + chr(10) if close else ''}\r\n".encode()

    async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(req)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"Content-Length: (\d+)", head, re.I).group(1))  # type: ignore[union-attr]
        await reader.readexactly(length)
        done[0] += 1

    async def keepalive(offset: float) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        t = loop.time() + offset
        while t < deadline:
            await asyncio.sleep(max(0.0, t - loop.time()))
            await one(reader, writer)
            t += conns / rate
        writer.close()

    async def newconn(offset: float) -> None:
        t = loop.time() + offset
        while t < deadline:
            await asyncio.sleep(max(0.0, t - loop.time()))
            reader, writer = await asyncio.open_connection(host, port)
            await one(reader, writer)
            writer.close()
            t += conns / rate

    await asyncio.gather(*((newconn if close else keepalive)(i / rate) for i in range(conns)))
    return done[0]


def fixed_rate(host: str, port: int, rate: float, seconds: float, close: bool, pids: list[int]) -> float:
    """Balancer CPU µs per request while a client holds `rate` requests/s (0 for "direct")."""
    import asyncio

    try:
        import uvloop
        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    before = cpu_seconds(pids)
    with runner:
        n = runner.run(_fixed_rate(host, port, rate, seconds, 20, close))
    cpu = cpu_seconds(pids) - before
    return cpu / n * 1e6 if n and pids else 0.0


def _established(port: int) -> int:
    """Client connections to `port` that the kernel shows as established."""
    out = subprocess.run(["ss", "-Htn", "state", "established", f"dport = :{port}"], capture_output=True,
                         text=True).stdout
    return len(out.splitlines())


def main(quick: bool = False) -> int:
    for tool in ("wrk", "haproxy", "nginx"):
        if shutil.which(tool) is None:
            print(f"lb_bench: {tool} is not installed", file=sys.stderr)
            return 2
    seconds, passes = (3.0, 1) if quick else (10.0, 2)
    stack = Stack()
    try:
        stack.start()
        names = ["direct", "haproxy", "nginx-stream", "exha-lb"]
        results: dict[tuple[str, str], list[Run]] = {}
        splits: list[list[int]] = []
        for _ in range(passes):
            for name in names:
                host, port = (SERVERS[0], BACKEND_PORT) if name == "direct" else (VIP, PORTS[name])
                pids = stack.pids(name)
                for test, path, conns, close in (("keepalive", "small", 50, False), ("newconn", "small", 50, True),
                                                 ("bulk", "big", 10, False)):
                    timer = None
                    if name == "exha-lb" and test == "keepalive":  # how the workers share wrk's connections
                        timer = threading.Timer(seconds / 2, lambda: splits.append(stack.worker_split()))
                        timer.start()
                    r = wrk(f"http://{host}:{port}/{path}", conns, seconds, close, pids)
                    if timer is not None:
                        timer.join()
                    results.setdefault((name, test), []).append(r)
                    print(f"  {name:<13} {test:<9} {r.rps:>10.0f} req/s  p99 {r.p99_ms:6.2f} ms  "
                          f"{r.mib_s:8.1f} MiB/s  cpu {r.cpu_us_per_req:6.1f} us/req", flush=True)

        def med(name: str, test: str, attr: str) -> float:
            return statistics.median(getattr(r, attr) for r in results[(name, test)])

        print("\n| balancer | keep-alive req/s | p99 ms | new conn/s | p99 ms | bulk MiB/s | CPU us/req (ka / conn) |")
        print("|---|---|---|---|---|---|---|")
        for name in names:
            print(f"| {name} | {med(name, 'keepalive', 'rps'):,.0f} | {med(name, 'keepalive', 'p99_ms'):.2f} | "
                  f"{med(name, 'newconn', 'rps'):,.0f} | {med(name, 'newconn', 'p99_ms'):.2f} | "
                  f"{med(name, 'bulk', 'mib_s'):,.0f} | "
                  f"{med(name, 'keepalive', 'cpu_us_per_req'):.0f} / {med(name, 'newconn', 'cpu_us_per_req'):.0f} |")
        print("exha-lb workers' shares of wrk's 50 keep-alive connections, per pass: "
              + ", ".join("/".join(map(str, split)) for split in splits))
        # below saturation one measurement drifts with the machine's state: several shorter passes, interleaved
        # across the balancers, and their medians
        rates = {"keepalive": 3000.0, "newconn": 600.0}
        paced = stack.pace_script()
        balancers = ("haproxy", "nginx-stream", "exha-lb")
        fixed: dict[tuple[str, str], list[float]] = {}
        pace: dict[tuple[str, str], list[Run]] = {}
        below = seconds if quick else seconds // 2  # wrk takes whole seconds
        for _ in range(1 if quick else 4):
            for name in balancers:
                pids = stack.pids(name)
                for test, rate in rates.items():
                    fixed.setdefault((name, test), []).append(
                        fixed_rate(VIP, PORTS[name], rate, below, test == "newconn", pids))
                for test, close in (("keepalive", False), ("newconn", True)):
                    pace.setdefault((name, test), []).append(
                        wrk(f"http://{VIP}:{PORTS[name]}/small", PACED_CONNS[test], below, close, pids, paced))
        print(f"\nbalancer CPU per request at a fixed rate ({rates['keepalive']:.0f} keep-alive req/s over 20 "
              f"connections; {rates['newconn']:.0f} new connections/s; median of {len(fixed[balancers[0], 'keepalive'])}"
              f" interleaved passes):")
        for name in balancers:
            print(f"  {name:<13} keep-alive {statistics.median(fixed[(name, 'keepalive')]):6.1f} us/req   "
                  f"new connection {statistics.median(fixed[(name, 'newconn')]):6.1f} us/req")
        print(f"\nbalancer CPU per request with wrk pacing each connection ({PACE_MS} ms between requests; "
              f"keep-alive over {PACED_CONNS['keepalive']} connections, new connections over "
              f"{PACED_CONNS['newconn']}; medians):")
        for name in balancers:
            ka_runs, nc_runs = pace[(name, "keepalive")], pace[(name, "newconn")]
            print(f"  {name:<13} keep-alive {statistics.median(r.cpu_us_per_req for r in ka_runs):6.1f} us/req at "
                  f"{statistics.median(r.rps for r in ka_runs):6.0f} req/s   new connection "
                  f"{statistics.median(r.cpu_us_per_req for r in nc_runs):6.1f} us/req at "
                  f"{statistics.median(r.rps for r in nc_runs):5.0f} conn/s")
        held, rss, pss = idle_connections(stack, 1000 if quick else 5000)
        print(f"\nidle connections held through exha-lb: {held}; its processes: RSS {rss:.1f} MB, PSS {pss:.1f} MB")
        ka = med("exha-lb", "keepalive", "rps") / med("haproxy", "keepalive", "rps")
        nc = med("exha-lb", "newconn", "rps") / med("haproxy", "newconn", "rps")
        bulk = med("exha-lb", "bulk", "mib_s") / med("haproxy", "bulk", "mib_s")
        added = med("exha-lb", "keepalive", "p99_ms") - med("haproxy", "keepalive", "p99_ms")
        print(f"ratios vs haproxy: keepalive={ka:.2f} newconn={nc:.2f} bulk={bulk:.2f} p99_added_ms={added:.2f}")
        return 0
    finally:
        stack.stop()


def http_mode(quick: bool = False) -> int:
    """`--http`: keep-alive requests through exha-lb and HAProxy, each in TCP and in HTTP mode (every request
    framed, routed and given a persistence cookie), interleaved passes, medians."""
    seconds, passes = (3.0, 1) if quick else (5.0, 4)
    stack = Stack()
    try:
        stack.start()
        stack.start_http()
        ports = {**PORTS, **HTTP_PORTS}
        names = ["haproxy", "haproxy-http", "exha-lb", "exha-lb-http"]
        runs: dict[str, list[Run]] = {name: [] for name in names}
        for _ in range(passes):
            for name in names:
                runs[name].append(wrk(f"http://{VIP}:{ports[name]}/small", 50, seconds, False, stack.pids(name)))
        print("| balancer | keep-alive req/s | CPU us/req |\n|---|---|---|")
        for name in names:
            print(f"| {name} | {statistics.median(r.rps for r in runs[name]):,.0f} | "
                  f"{statistics.median(r.cpu_us_per_req for r in runs[name]):.1f} |")
        rps = statistics.median(r.rps for r in runs["exha-lb-http"]) / statistics.median(
            r.rps for r in runs["haproxy-http"])
        cpu = statistics.median(r.cpu_us_per_req for r in runs["exha-lb-http"]) / statistics.median(
            r.cpu_us_per_req for r in runs["haproxy-http"])
        print(f"http mode vs haproxy http: keepalive={rps:.2f} cpu_per_request={cpu:.2f}")
        return 0
    finally:
        stack.stop()


def floor(quick: bool = False) -> int:
    """`--floor`: HAProxy, exha-lb and benchmarks/python_floor.py (no features, one epoll loop per process) on
    the same back ends, in interleaved passes: keep-alive and new connections at saturation, and CPU per request
    at the main run's fixed rates and wrk pacing. Each ratio is the median of the passes' own ratios to
    HAProxy's figure in the same pass, so the machine's drift between passes cancels out."""
    seconds, passes = (3.0, 1) if quick else (5.0, 6)
    stack = Stack()
    try:
        stack.start()
        stack.start_floor()
        ports = {"haproxy": PORTS["haproxy"], "exha-lb": PORTS["exha-lb"], "python-floor": FLOOR_PORT}
        paced = stack.pace_script()
        measures = [
            "keep-alive req/s, wrk -c50", "new connections/s, wrk -c50",
            "CPU us per keep-alive request, 3,000/s", "CPU us per new connection, 600/s",
            f"CPU us per keep-alive request, wrk-paced ({PACED_CONNS['keepalive']} connections)",
            f"CPU us per new connection, wrk-paced ({PACED_CONNS['newconn']} connections)",
        ]
        got: dict[tuple[str, str], list[float]] = {}
        for _ in range(passes):
            for name, port in ports.items():
                pids, url = stack.pids(name), f"http://{VIP}:{port}/small"
                sat_ka = wrk(url, 50, seconds, False, pids)
                sat_nc = wrk(url, 50, seconds, True, pids)
                values = [sat_ka.rps, sat_nc.rps,
                          fixed_rate(VIP, port, 3000.0, seconds, False, pids),
                          fixed_rate(VIP, port, 600.0, seconds, True, pids),
                          wrk(url, PACED_CONNS["keepalive"], seconds, False, pids, paced).cpu_us_per_req,
                          wrk(url, PACED_CONNS["newconn"], seconds, True, pids, paced).cpu_us_per_req]
                for measure, value in zip(measures, values):
                    got.setdefault((name, measure), []).append(value)
        print("| measure | haproxy | exha-lb | python floor | exha-lb / haproxy | floor / haproxy |")
        print("|---|---|---|---|---|---|")
        ratios: dict[tuple[str, str], float] = {}
        for measure in measures:
            base = got[("haproxy", measure)]
            for name in ("exha-lb", "python-floor"):
                ratios[(name, measure)] = statistics.median(v / b for v, b in zip(got[(name, measure)], base))
            print(f"| {measure} | " + " | ".join(f"{statistics.median(got[(n, measure)]):,.1f}" for n in ports)
                  + f" | {ratios[('exha-lb', measure)]:.2f} | {ratios[('python-floor', measure)]:.2f} |")
        for name in ("exha-lb", "python-floor"):
            print(f"{name} vs haproxy (median of per-pass ratios, {passes} passes): "
                  f"keepalive={ratios[(name, measures[0])]:.2f} "
                  f"cpu_per_new_connection_fixed={ratios[(name, measures[3])]:.2f} "
                  f"cpu_per_new_connection_paced={ratios[(name, measures[5])]:.2f}")
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--http", action="store_true", help="HTTP mode against HAProxy's instead of the main run")
    ap.add_argument("--floor", action="store_true", help="HAProxy, exha-lb and the Python floor (python_floor.py)")
    args = ap.parse_args()
    sys.exit(http_mode(args.quick) if args.http else floor(args.quick) if args.floor else main(args.quick))
