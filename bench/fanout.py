#!/usr/bin/env python3
"""Cross-worker fan-out, before and after: a lecture (1 simulcast publisher, N viewers)
and one meeting of 4 on a server with two media workers, once with the room kept on one
worker (`--fanout-spill` larger than the room: what the server did before) and once
spread over both (`--fanout-spill 64`, the default). Runs are interleaved, so the
machine's other load falls on both alike. Run as root (network namespaces), ideally
under `chrt -f 50` on a shared machine (then set BENCH_IGNORE_BUSY=1).

Uses bench.py's load generator driver, with namespaces and addresses of its own so
it cannot disturb a bench.py run. The server runs on the cores in FANOUT_SERVER_CPUS
(default "0", as bench.py pins it; "0,1" lets its two workers use both cores, with the
load generator on core 1 too). Results go to FANOUT_OUT (JSON), a summary to stdout.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as b  # noqa: E402

b.SRV_NS, b.CLI_NS = "lmbfo-srv", "lmbfo-cli"
b.SRV_IP, b.CLI_IP = "10.78.0.1", "10.78.0.2"
b.METRICS_PORT = 9101
SERVER_CPUS = os.environ.get("FANOUT_SERVER_CPUS", "0")
VIEWERS = [int(v) for v in os.environ.get("FANOUT_VIEWERS", "200,400").split(",")]
REPEATS = int(os.environ.get("FANOUT_REPEATS", "2"))
OUT = os.environ.get("FANOUT_OUT", "/tmp/fanout-results.json")
VETH = ("lmbfo-veth0", "lmbfo-veth1")


def netns_up():
    netns_down()
    b.sh("ip", "netns", "add", b.SRV_NS)
    b.sh("ip", "netns", "add", b.CLI_NS)
    b.sh("ip", "link", "add", VETH[0], "type", "veth", "peer", "name", VETH[1])
    b.sh("ip", "link", "set", VETH[0], "netns", b.SRV_NS)
    b.sh("ip", "link", "set", VETH[1], "netns", b.CLI_NS)
    b.sh("ip", "-n", b.SRV_NS, "addr", "add", b.SRV_IP + "/24", "dev", VETH[0])
    b.sh("ip", "-n", b.CLI_NS, "addr", "add", b.CLI_IP + "/24", "dev", VETH[1])
    for ns, dev in ((b.SRV_NS, VETH[0]), (b.CLI_NS, VETH[1])):
        b.sh("ip", "-n", ns, "link", "set", dev, "up")
        b.sh("ip", "-n", ns, "link", "set", "lo", "up")


def netns_down():
    for ns in (b.SRV_NS, b.CLI_NS):
        b.sh("ip", "netns", "del", ns, check=False)


class Server:
    """lanmeet with two workers and the given spill size."""

    def __init__(self, spill):
        self.spill = spill
        self.tmp = b.tempfile.mkdtemp(prefix="lmbfo-")

    def __enter__(self):
        self.url = f"http://{b.SRV_IP}:8080"
        self.proc = b.start([b.SERVER_BIN, "serve", "--http",
                             "--listen", f"{b.SRV_IP}:8080", "--udp-port", "10000",
                             "--public-ip", b.SRV_IP, "--workers", "2",
                             "--fanout-spill", str(self.spill),
                             "--max-connections-per-ip", "4000",
                             "--join-burst", "1000", "--join-rate", "1000",
                             "--metrics-listen", f"{b.SRV_IP}:{b.METRICS_PORT}",
                             "--data-dir", os.path.join(self.tmp, "data")],
                            "lanmeet ready", ns=b.SRV_NS, cpu=SERVER_CPUS,
                            log=os.path.join(self.tmp, "server.log"))
        self.pid = self.proc.pid
        return self

    def __exit__(self, *exc):
        b.stop(self.proc)
        b.shutil.rmtree(self.tmp, ignore_errors=True)


def summary(r):
    sd = r.get("server_delay_ms") or {}
    return {
        "loss_pct": r["loss_pct"],
        "join_failures": r["join_failures"],
        "p50": r["latency_ms"]["p50"],
        "p99": r["latency_ms"]["p99"],
        "max": r["latency_ms"]["max"],
        "server_p99": sd.get("p99"),
        "server_cpu_pct": r.get("server_cpu_pct"),
        "forwarded_pps": r["forwarded_pps"],
        "cpu_busy_pct": r.get("cpu_busy_pct"),
    }


def main():
    if os.geteuid() != 0:
        sys.exit("run as root: the benchmark creates network namespaces")
    netns_up()
    results = []
    modes = [("one worker (before)", 100000), ("spread (after)", 64)]
    try:
        for rep in range(REPEATS):
            for v in VIEWERS:
                for label, spill in modes:
                    with Server(spill) as s:
                        r = b.loadgen(s, "lanmeet", f"lecture-{v}",
                                      ["--rooms", "1", "--participants", "1",
                                       "--viewers", str(v), "--join-rate", "100",
                                       "--join-timeout", "30", "--warmup", "3"], 5)
                    results.append({"workload": f"lecture 1 + {v}", "mode": label,
                                    "repeat": rep, **summary(r)})
            for label, spill in modes:
                with Server(spill) as s:
                    r = b.loadgen(s, "lanmeet", "meeting-4",
                                  ["--rooms", "1", "--participants", "4",
                                   "--warmup", "3"], 5)
                results.append({"workload": "1 room x 4", "mode": label, "repeat": rep,
                                **summary(r)})
            with open(OUT, "w") as f:
                json.dump({"server_cpus": SERVER_CPUS, "results": results}, f, indent=1)
    finally:
        b.cleanup()
        netns_down()
    for r in results:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
