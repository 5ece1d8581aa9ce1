#!/usr/bin/env python3
"""lanmeet benchmarks: runs the standard workloads against lanmeet, the no-crypto relay
(the ceiling) and the peers mediasoup and Janus, across a veth pair between two network namespaces,
and writes BENCHMARKS.md. Called by bench/run.sh after the release build; run as root.

Servers run in namespace lmb-srv (10.77.0.1), the load generator in lmb-cli (10.77.0.2).
Each server is pinned to CPU 0 and the load generator to CPU 1, so the server's CPU time
is one core's and the two do not steal cycles from each other.
"""

import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release")
SRV_NS, CLI_NS = "lmb-srv", "lmb-cli"
SRV_IP, CLI_IP = "10.77.0.1", "10.77.0.2"
SERVER_CPU, LOADGEN_CPU = "0", "1"
METRICS_PORT = 9100
QUICK = os.environ.get("BENCH_QUICK") == "1"
# Capacity steps: each measured CAP_REPEATS times for CAP_SECONDS after a warm-up long
# enough for the subscribers' bandwidth estimates to reach the top simulcast layer. An
# overloaded step passes in one run and fails in the next (bench/analysis.md): a step
# counts only if every repeat passes, and capacity is the highest step below the first
# one that fails, so a lucky run past an overloaded step cannot raise it.
CAP_REPEATS = 1 if QUICK else 2
CAP_SECONDS = 5 if QUICK else 10
CAP_WARMUP = 3
# The capacity criterion: loss and one-way p99 latency both under these.
CAP_LOSS_PCT = 0.5
CAP_P99_MS = 50.0
TARGETS = os.environ.get("BENCH_TARGETS", "lanmeet,relay,mediasoup,janus").split(",")
# Lecture steps (viewers of one publisher), e.g. BENCH_LECTURE_STEPS=100,200.
LECTURE_STEPS = [int(v) for v in os.environ.get(
    "BENCH_LECTURE_STEPS", "50,100,200,300,400,500,600,800,1000").split(",")]
# mediasoup: our signaling server for it and its worker, built by bench/mediasoup/build.sh
# when missing (or taken from MEDIASOUP_WORKER_BIN).
MEDIASOUP_DIR = os.path.join(ROOT, "bench", "mediasoup")
MEDIASOUP_WORKER = os.environ.get("MEDIASOUP_WORKER_BIN",
                                  os.path.join(MEDIASOUP_DIR, ".build", "mediasoup-worker"))
MEDIASOUP_PORT = 8300
# For comparisons (e.g. before/after a change): a subset of workloads, another lanmeet
# server binary (the load generator stays the same), and results written to BENCH_OUT
# instead of bench/last-results.json and BENCHMARKS.md.
WORKLOADS = os.environ.get("BENCH_WORKLOADS",
                           "meeting,lecture,capacity,half,joins,stations,profile").split(",")
# The stations workload: viewers of one station playing a 1.5 Mbit/s VP8 + Opus file,
# stepped up until loss reaches STATION_LOSS_PCT. Loss counts sequence gaps, which an
# overloaded server does not make at first: it queues, and the packets' lateness (their
# arrival against their RTP time) grows instead; a step passes only with lateness p99
# under STATION_P99_MS as well (the lecture's 150 ms goal for 1,000 viewers).
STATION_STEPS = [50, 100, 200, 400, 800, 1000]
STATION_LOSS_PCT = 1.0
STATION_P99_MS = 150.0
STATION_SECONDS = 5
SERVER_BIN = os.environ.get("BENCH_SERVER_BIN", os.path.join(BIN, "lanmeet"))
OUT = os.environ.get("BENCH_OUT")

started = []  # processes we started, stopped on exit
commands = []  # every load generator command line, for the report


def sh(*args, check=True, **kw):
    return subprocess.run(list(args), check=check, text=True, capture_output=True, **kw)


def netns_up():
    netns_down()
    sh("ip", "netns", "add", SRV_NS)
    sh("ip", "netns", "add", CLI_NS)
    sh("ip", "link", "add", "lmb-veth0", "type", "veth", "peer", "name", "lmb-veth1")
    sh("ip", "link", "set", "lmb-veth0", "netns", SRV_NS)
    sh("ip", "link", "set", "lmb-veth1", "netns", CLI_NS)
    sh("ip", "-n", SRV_NS, "addr", "add", SRV_IP + "/24", "dev", "lmb-veth0")
    sh("ip", "-n", CLI_NS, "addr", "add", CLI_IP + "/24", "dev", "lmb-veth1")
    for ns, dev in ((SRV_NS, "lmb-veth0"), (CLI_NS, "lmb-veth1")):
        sh("ip", "-n", ns, "link", "set", dev, "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")


def netns_down():
    for ns in (SRV_NS, CLI_NS):
        sh("ip", "netns", "del", ns, check=False)


def cleanup():
    for p in started:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
    netns_down()


def busy_processes():
    """Other engineers' work on this machine that would steal the cores: Chromium e2e
    tests (which assert frame rates, so we must not load the machine under them) and
    compilers."""
    found = []
    for name in ("chromium", "rustc", "cc1"):
        pids = subprocess.run(["pgrep", "-f" if name == "chromium" else "-x", name],
                              capture_output=True, text=True).stdout.split()
        # A stopped process (state T, e.g. paused with SIGSTOP for a measurement) steals
        # nothing.
        if any(process_state(pid) not in ("T", "t", None) for pid in pids):
            found.append(name)
    return found


def process_state(pid):
    """The one-letter state of a process from /proc (None if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


noisy_runs = []  # workloads run while someone else was compiling
compiler_waits = 0


def wait_for_chromium(name=""):
    """Never load the machine while Chromium tests run (wait up to 20 minutes); wait up
    to 5 minutes for other people's compilers to finish, then run anyway and say so."""
    global compiler_waits
    if os.environ.get("BENCH_IGNORE_BUSY"):
        # For a run under `chrt -r` on a shared machine: real-time priority keeps the
        # others' work off the measured processes, so there is nothing to wait for.
        return
    for _ in range(40):
        busy = busy_processes()
        if "chromium" not in busy and (not busy or compiler_waits >= 10):
            if busy:
                noisy_runs.append(name)
                print(f"  {', '.join(busy)} still running; measuring anyway", flush=True)
            return
        print(f"  {', '.join(busy)} running; waiting 30 s", flush=True)
        if "chromium" not in busy:
            compiler_waits += 1  # 5 minutes of waiting for compilers per run, in all
        time.sleep(30)
    sys.exit("chromium kept running for 20 minutes; try later")


def start(cmd, ready_text, ns=SRV_NS, cpu=SERVER_CPU, log=None, stdout_log=None, env=None,
          cwd=None):
    full = ["ip", "netns", "exec", ns, "taskset", "-c", cpu] + cmd
    out = open(log or os.devnull, "w")
    keep = open(stdout_log, "w") if stdout_log else None
    p = subprocess.Popen(full, stdout=subprocess.PIPE, stderr=out, text=True, env=env,
                         cwd=cwd or tempfile.gettempdir())  # Janus dumps core on SIGINT
    started.append(p)
    deadline = time.time() + 20
    while time.time() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        if ready_text in line:
            p.ready_line = line
            # Keep reading, or a chatty server blocks once the pipe fills.
            def drain():
                for l in p.stdout:
                    if keep:
                        keep.write(l)
                        keep.flush()
            threading.Thread(target=drain, daemon=True).start()
            return p
    raise RuntimeError(f"{cmd[0]} did not start")


def stop(p):
    p.send_signal(signal.SIGINT)
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


class Server:
    def __init__(self, target, args=()):
        self.target = target
        self.args = list(args)
        self.proc = None
        self.tmp = tempfile.mkdtemp(prefix="lmb-")

    def __enter__(self):
        if self.target == "lanmeet":
            self.url = f"http://{SRV_IP}:8080"
            self.proc = start([SERVER_BIN, "serve", "--http",
                               "--listen", f"{SRV_IP}:8080", "--udp-port", "10000",
                               "--public-ip", SRV_IP, "--workers", "1",
                               # All simulated participants share one address.
                               "--max-connections-per-ip", "4000",
                               "--join-burst", "1000", "--join-rate", "1000",
                               # Every audio stream forwarded, as mediasoup and Janus
                               # do: with the default (the 8 loudest) a room of 10
                               # leaves one publisher's audio unsent by design, which
                               # the load generator counts as loss.
                               "--audio-top-n", "64",
                               # The arrival-to-send histogram, read by the load
                               # generator at the start and end of each window.
                               "--metrics-listen", f"{SRV_IP}:{METRICS_PORT}",
                               # A folder of its own: the server log beside it
                               # would make the directory not lanmeet's.
                               "--data-dir", os.path.join(self.tmp, "data")]
                              + self.args,
                              "lanmeet ready",
                              log=os.path.join(self.tmp, "server.log"))
        elif self.target == "relay":
            self.url = f"{SRV_IP}:9000"
            self.proc = start([os.path.join(BIN, "lanmeet-relay"), f"{SRV_IP}:9000"],
                              "lanmeet-relay ready")
        elif self.target == "mediasoup":
            self.url = f"http://{SRV_IP}:{MEDIASOUP_PORT}"
            self.proc = start_mediasoup(self.tmp)
        else:
            self.url = f"ws://{SRV_IP}:8188"
            self.proc = start_janus(self.tmp)
        self.pid = server_pid(self.proc)
        if self.target == "mediasoup":
            # The media flows through the worker (a child process of node, which only
            # signals): its CPU and memory are the server's.
            self.pid = int(self.proc.ready_line.split("pids ")[1].split(")")[0].split(",")[0])
        return self

    def __exit__(self, *exc):
        stop(self.proc)
        shutil.rmtree(self.tmp, ignore_errors=True)


def server_pid(proc):
    """`ip netns exec` and `taskset` exec the server, so the pid is the server's."""
    return proc.pid


JANUS_LIB = "/usr/lib/x86_64-linux-gnu/janus"
JANUS_LOG = "/tmp/lmb-janus-last.log"


def janus_config(conf):
    """A config folder of our own (never /etc/janus): only the videoroom plugin and the
    WebSocket transport are loaded; every other plugin, transport, logger and event
    handler is disabled by name, because Janus loads every library in its folders
    whether or not a config file for it exists."""
    os.makedirs(conf, exist_ok=True)
    def others(kind, keep):
        folder = os.path.join(JANUS_LIB, kind)
        libs = sorted(f for f in os.listdir(folder) if f.endswith(".so")) if os.path.isdir(folder) else []
        return ",".join(f for f in libs if f != keep)
    with open(os.path.join(conf, "janus.jcfg"), "w") as f:
        f.write(f"""general: {{
\tconfigs_folder = "{conf}"
\tplugins_folder = "{JANUS_LIB}/plugins"
\ttransports_folder = "{JANUS_LIB}/transports"
\tevents_folder = "{JANUS_LIB}/events"
\tloggers_folder = "{JANUS_LIB}/loggers"
\tdebug_level = 4
\tsession_timeout = 120
}}
certificates: {{
}}
media: {{
\trtp_port_range = "20000-40000"
}}
nat: {{
\tnat_1_1_mapping = "{SRV_IP}"
\tice_enforce_list = "lmb-veth0"
\tignore_mdns = true
}}
plugins: {{
\tdisable = "{others('plugins', 'libjanus_videoroom.so')}"
}}
transports: {{
\tdisable = "{others('transports', 'libjanus_websockets.so')}"
}}
loggers: {{
\tdisable = "{others('loggers', '')}"
}}
events: {{
\tbroadcast = false
\tdisable = "{others('events', '')}"
}}
""")
    # ws_ip: libwebsockets' default bind is an IPv6 wildcard, which fails in a
    # namespace without IPv6.
    with open(os.path.join(conf, "janus.transport.websockets.jcfg"), "w") as f:
        f.write(f"""general: {{
\tjson = "plain"
\tws = true
\tws_port = 8188
\tws_ip = "{SRV_IP}"
\twss = false
}}
admin: {{
\tadmin_ws = false
\tadmin_wss = false
}}
""")
    with open(os.path.join(conf, "janus.plugin.videoroom.jcfg"), "w") as f:
        f.write("general: {\n}\n")


def start_janus(tmp):
    conf = os.path.join(tmp, "janus")
    janus_config(conf)
    p = ["janus", "--configs-folder", conf, "--config", os.path.join(conf, "janus.jcfg"),
         "--disable-colors"]
    # Janus logs to stdout; the last run's log stays in /tmp for checking.
    return start(p, "Websockets server started", log=os.path.join(tmp, "janus-stderr.log"),
                 stdout_log=JANUS_LOG)


def mediasoup_missing():
    """Why mediasoup cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not os.path.exists(MEDIASOUP_WORKER) or not os.path.isdir(
            os.path.join(MEDIASOUP_DIR, "node_modules", "mediasoup")):
        print("  building mediasoup's worker (bench/mediasoup/build.sh, about 10 minutes)",
              flush=True)
        p = subprocess.run(["bash", os.path.join(MEDIASOUP_DIR, "build.sh")],
                           capture_output=True, text=True)
        if p.returncode != 0:
            return "bench/mediasoup/build.sh failed: " + p.stderr[-500:]
    return None


def start_mediasoup(tmp):
    """bench/mediasoup/server.mjs: one mediasoup worker, media on the veth address."""
    env = dict(os.environ, MEDIASOUP_WORKER_BIN=MEDIASOUP_WORKER)
    return start(["node", os.path.join(MEDIASOUP_DIR, "server.mjs"),
                  "--listen", f"{SRV_IP}:{MEDIASOUP_PORT}", "--ip", SRV_IP, "--workers", "1"],
                 "mediasoup ready", log=os.path.join(tmp, "mediasoup.log"), env=env,
                 cwd=MEDIASOUP_DIR)


def layers_args(target):
    """lanmeet (and mediasoup) get simulcast as the browser sends it, half the viewers
    showing small tiles; Janus gets one layer (the load generator's Janus participant
    does not negotiate simulcast)."""
    if target == "janus":
        return ["--layers", "1"]
    return ["--layers", "3", "--small-tiles", "0.5"]


def loadgen(server, target, name, extra, duration, layers=None):
    wait_for_chromium(f"{target} {name}")
    cmd = [os.path.join(BIN, "lanmeet-loadgen"), "--target", target,
           "--server", server.url, "--server-pid", str(server.pid), "--json",
           "--duration", str(duration), "--room-prefix", name]
    cmd += layers if layers is not None else layers_args(target)
    if target == "lanmeet":
        cmd += ["--server-metrics", f"http://{SRV_IP}:{METRICS_PORT}/metrics"]
    cmd += extra
    commands.append(" ".join(["lanmeet-loadgen"] + cmd[1:]).replace(str(server.pid), "$PID"))
    full = ["ip", "netns", "exec", CLI_NS, "taskset", "-c", LOADGEN_CPU] + cmd
    p = subprocess.run(full, capture_output=True, text=True, timeout=600)
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    # Status 3: the report is complete but some participants failed to join (it says
    # how many; the steps count that as a failure).
    if p.returncode not in (0, 3) or not lines:
        print(p.stdout, p.stderr[-2000:])
        raise RuntimeError(f"loadgen failed for {name}")
    r = json.loads(lines[-1])
    sd = r.get("server_delay_ms") or {}
    print(f"  {target:8} {name:24} fwd {r['forwarded_pps']:9.0f} pps  loss {r['loss_pct']:6.3f}%  "
          f"p50 {r['latency_ms']['p50']:7.3f}  p99 {r['latency_ms']['p99']:8.3f} ms  "
          f"srv p99 {fmt(sd.get('p99'), 3) if sd else '–':>7}  "
          f"srv cpu {r.get('server_cpu_pct', 0):5.1f}%  lg cpu {r['loadgen_cpu_pct']:5.1f}%  "
          f"joinfail {r['join_failures']}", flush=True)
    return r


def per_core(r):
    cpu = r.get("server_cpu_pct") or 0
    return r["forwarded_pps"] / (cpu / 100) if cpu > 1 else 0


def mem_per_stream(r):
    streams = r["streams_expected"]
    if not streams or r.get("server_rss_mb") is None:
        return None
    return (r["server_rss_mb"] - r.get("server_rss_start_mb", 0)) / streams


def meeting(target):
    with Server(target) as s:
        return loadgen(s, target, "meeting", ["--rooms", "5", "--participants", "10"],
                       5 if QUICK else 10)


def lecture_step(s, target, v):
    """One publisher and `v` viewers in one room, on the running server `s`."""
    r = loadgen(s, target, f"lecture-{v}",
                ["--rooms", "1", "--participants", "1", "--viewers", str(v),
                 "--join-rate", "100", "--join-timeout", "30",
                 "--warmup", str(CAP_WARMUP)], 5)
    r["viewers"] = v
    ok_loss = r["join_failures"] == 0 and r["loss_pct"] < 1.0
    r["pass_loss"] = ok_loss
    # The goals: 500 viewers at p99 < 50 ms, 1,000 at p99 < 150 ms.
    r["pass"] = ok_loss and r["latency_ms"]["p99"] < 50.0
    return r


def lecture(target):
    results = []
    with Server(target) as s:
        for v in LECTURE_STEPS:
            r = lecture_step(s, target, v)
            results.append(r)
            if not r["pass_loss"]:
                break
    return results


def interleaved(targets, steps, run_step, stop):
    """Runs each step for every target in turn (a fresh server per target and step), so
    that whatever else loads the machine meanwhile falls on all targets alike. A target
    stops at its first step for which `stop(result)` is true, or at an error.
    Returns {target: [results]} and {target: error}."""
    results = {t: [] for t in targets}
    errors = {}
    for step in steps:
        for t in targets:
            if t in errors or (results[t] and stop(results[t][-1])):
                continue
            try:
                results[t].append(run_step(t, step))
            except Exception as e:  # noqa: BLE001 - reported in BENCHMARKS.md
                errors[t] = str(e)
                print(f"  {t} failed: {e}", flush=True)
    return results, errors


def lecture_interleaved(targets):
    def run(t, v):
        with Server(t) as s:
            return lecture_step(s, t, v)
    return interleaved(targets, LECTURE_STEPS, run, lambda r: not r["pass_loss"])


def capacity_interleaved(targets):
    """Capacity steps, target after target within each step; lanmeet also runs the
    single-layer workload Janus gets (as `lanmeet-1layer`) when Janus is measured."""
    plan = list(targets)
    if "lanmeet" in targets and "janus" in targets:
        plan.insert(plan.index("lanmeet") + 1, "lanmeet-1layer")
    def run(t, rooms):
        target = "lanmeet" if t == "lanmeet-1layer" else t
        layers = ["--layers", "1"] if t == "lanmeet-1layer" else None
        with Server(target) as s:
            return capacity_step(s, target, rooms, layers)
    return interleaved(plan, CAP_STEPS, run, lambda r: not r["pass_loss"])


CAP_STEPS = [1, 2, 3, 4, 5, 6, 7, 8, 10, 12]


def capacity_step(s, target, rooms, layers=None):
    """One capacity step (`rooms` rooms of 10 publishers) on the running server `s`, run
    CAP_REPEATS times; the step's figures are its worst repeat (lowest forwarded rate,
    highest loss and p99)."""
    name = "capacity" if layers is None else "capacity-1layer"
    runs = []
    for k in range(CAP_REPEATS):
        r = loadgen(s, target, f"{name}-{rooms}-{k}",
                    ["--rooms", str(rooms), "--participants", "10",
                     "--join-rate", "100", "--warmup", str(CAP_WARMUP)],
                    CAP_SECONDS, layers=layers)
        runs.append(r)
    r = dict(min(runs, key=lambda x: x["forwarded_pps"]))
    r["rooms"] = rooms
    r["repeats"] = [{"forwarded_pps": x["forwarded_pps"], "loss_pct": x["loss_pct"],
                     "p99": x["latency_ms"]["p99"], "join_failures": x["join_failures"]}
                    for x in runs]
    r["loss_pct"] = max(x["loss_pct"] for x in runs)
    r["latency_ms"] = max((x["latency_ms"] for x in runs), key=lambda l: l["p99"])
    r["join_failures"] = max(x["join_failures"] for x in runs)
    r["pass_loss"] = all(x["join_failures"] == 0 and x["loss_pct"] < CAP_LOSS_PCT
                         for x in runs)
    r["pass"] = r["pass_loss"] and all(x["latency_ms"]["p99"] < CAP_P99_MS for x in runs)
    return r


def capacity(target, layers=None):
    """Meeting-shaped rooms (10 publishers each), more rooms until loss passes 0.5% in a
    repeat."""
    results = []
    with Server(target) as s:
        for rooms in CAP_STEPS:
            r = capacity_step(s, target, rooms, layers)
            results.append(r)
            if not r["pass_loss"]:
                break
    return results


def best_step(steps, key):
    """The highest step of `steps` below the first one that fails `key`."""
    best = None
    for r in steps:
        if not r.get(key, r["pass"]):
            break
        if best is None or r["forwarded_pps"] > best["forwarded_pps"]:
            best = r
    return best


def make_station_file(folder):
    """A 10 s station file made with ffmpeg: 640x360 VP8 at 30 fps, 1.4 Mbit/s constant
    rate (noise keeps the encoder at its rate), a key frame every second, and a 64 kbit/s
    Opus sine: about 1.5 Mbit/s in all, the lecture's publisher rate."""
    path = os.path.join(folder, "station.webm")
    sh("ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
       "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30:duration=10,noise=alls=12:allf=t",
       "-f", "lavfi", "-i", "sine=frequency=440:duration=10",
       "-c:v", "libvpx", "-b:v", "1400k", "-minrate", "1400k", "-maxrate", "1400k",
       "-bufsize", "700k", "-g", "30", "-keyint_min", "30", "-deadline", "realtime",
       "-cpu-used", "8", "-c:a", "libopus", "-b:a", "64k", path)
    return path


def stations(target):
    """Viewers of one station (the load generator's --station mode), more at each step
    until loss reaches STATION_LOSS_PCT. The station's packets carry no send time: the
    one-way figure is their lateness against the RTP clock, and the server's own delay
    comes from its /metrics."""
    if target != "lanmeet":
        return []
    if shutil.which("ffmpeg") is None:
        raise RuntimeError("ffmpeg is needed for the stations workload (apt-get install ffmpeg)")
    folder = tempfile.mkdtemp(prefix="lmb-station-")
    try:
        media = make_station_file(folder)
        results = []
        with Server(target, ["--station", f"bench={media}"]) as s:
            for v in STATION_STEPS:
                r = loadgen(s, target, f"station-{v}",
                            ["--station", "bench", "--viewers", str(v),
                             "--join-rate", "100", "--join-timeout", "30",
                             "--warmup", str(CAP_WARMUP)], STATION_SECONDS, layers=[])
                r["viewers"] = v
                r["pass_loss"] = r["join_failures"] == 0 and r["loss_pct"] < STATION_LOSS_PCT
                r["pass"] = r["pass_loss"] and r["latency_ms"]["p99"] < STATION_P99_MS
                results.append(r)
                if not r["pass_loss"]:
                    break
        return results
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def joins(target):
    """100 participants (10 rooms of 2 publishers and 8 viewers) joining within 10 s:
    join time is WebSocket (signaling) open to the first media packet."""
    with Server(target) as s:
        r = loadgen(s, target, "joins",
                    ["--rooms", "10", "--participants", "2", "--viewers", "8",
                     "--join-spread", "10", "--join-timeout", "30"], 5)
        return r


def half_load(target, rooms):
    with Server(target) as s:
        r = loadgen(s, target, f"half-{rooms}",
                    ["--rooms", str(rooms), "--participants", "10",
                     "--warmup", str(CAP_WARMUP)], CAP_SECONDS)
        r["rooms"] = rooms
        return r


PROFILE_ROOMS = 4  # about 83,000 forwarded packets/s: busy, but short of overload


def profile_lanmeet():
    """perf (cpu-clock sampling; this VM has no hardware counters) on the meeting load."""
    if shutil.which("perf") is None:
        return "perf is not installed."
    with Server("lanmeet") as s:
        data = os.path.join(s.tmp, "perf.data")
        perf = subprocess.Popen(["perf", "record", "-F", "997", "-g", "-p", str(s.pid),
                                 "-o", data], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        loadgen(s, "lanmeet", "profile", ["--rooms", str(PROFILE_ROOMS), "--participants", "10"], 8)
        perf.send_signal(signal.SIGINT)
        perf.wait()
        flat = sh("perf", "report", "-i", data, "--no-children", "--sort", "dso,symbol",
                  "--stdio", "--percent-limit", "1.2", "-g", "none", check=False).stdout
        incl = sh("perf", "report", "-i", data, "--children", "--sort", "symbol",
                  "--stdio", "--percent-limit", "6", "-g", "none", check=False).stdout
    def rows(text):
        return "\n".join(l.rstrip(" -") for l in text.splitlines() if l.strip() and not l.startswith("#"))
    return ("Self time (top symbols):\n\n```\n" + rows(flat)[:4000] + "\n```\n\n"
            "Inclusive time (children included):\n\n```\n" + rows(incl)[:4000] + "\n```\n")


def fmt(x, d=1):
    return "–" if x is None else f"{x:,.{d}f}"


def main():
    if os.environ.get("BENCH_REPORT_ONLY") == "stations":
        # Rewrites only the Stations section and row of BENCHMARKS.md (e.g. after
        # bench/stations-browser.sh measured start and switch times).
        update_stations({})
        return
    if os.environ.get("BENCH_REPORT_ONLY") == "1":
        # Rewrites BENCHMARKS.md from bench/last-results.json (e.g. after editing
        # bench/analysis.md) without measuring again.
        with open(os.path.join(ROOT, "bench", "last-results.json")) as f:
            results = json.load(f)
        run = results.pop("_run", {})
        commands.extend(run.get("commands", []))
        noisy_runs.extend(run.get("noisy", []))
        write_report(results, run.get("profile", ""), run.get("date"), run.get("commit"))
        return
    if os.geteuid() != 0:
        sys.exit("run as root: the benchmark creates network namespaces")
    netns_up()
    results = {}
    try:
        targets = []
        for t in TARGETS:
            if t == "janus" and shutil.which("janus") is None:
                results[t] = {"error": "janus is not installed (apt-get install janus)"}
            elif t == "mediasoup" and (why := mediasoup_missing()):
                results[t] = {"error": why}
            else:
                targets.append(t)
                results[t] = {}
        # Lecture and capacity steps interleave the targets (see `interleaved`).
        if "meeting" in WORKLOADS:
            for t in targets:
                print(f"== {t} meeting", flush=True)
                try:
                    results[t]["meeting"] = meeting(t)
                except Exception as e:  # noqa: BLE001 - reported in BENCHMARKS.md
                    results[t] = {"error": str(e)}
                    print(f"  {t} failed: {e}", flush=True)
        targets = [t for t in targets if "error" not in results[t]]
        if "lecture" in WORKLOADS:
            print("== lecture, targets interleaved", flush=True)
            lec, errors = lecture_interleaved(targets)
            for t in targets:
                results[t]["lecture"] = lec[t]
                if t in errors:
                    results[t] = {"error": errors[t]}
        targets = [t for t in targets if "error" not in results[t]]
        if "capacity" in WORKLOADS:
            print("== capacity, targets interleaved", flush=True)
            cap, errors = capacity_interleaved(targets)
            for t in targets:
                results[t]["capacity"] = cap[t]
                if t in errors:
                    results[t] = {"error": errors[t]}
            if "lanmeet" in results and "error" not in results["lanmeet"] \
                    and "lanmeet-1layer" in cap:
                # The same single-layer workload as Janus gets, for the ratio.
                results["lanmeet"]["capacity_single"] = cap["lanmeet-1layer"]
        targets = [t for t in targets if "error" not in results[t]]
        for t in targets:
            print(f"== {t}", flush=True)
            try:
                best = best_step(results[t].get("capacity", []), "pass")
                if best and "half" in WORKLOADS:
                    results[t]["half"] = half_load(t, max(1, best["rooms"] // 2))
                if "joins" in WORKLOADS:
                    results[t]["joins"] = joins(t)
                if "stations" in WORKLOADS and t == "lanmeet":
                    results[t]["stations"] = stations(t)
            except Exception as e:  # noqa: BLE001 - reported in BENCHMARKS.md
                results[t] = {"error": str(e)}
                print(f"  {t} failed: {e}", flush=True)
        prof = ""
        if "profile" in WORKLOADS and "lanmeet" in results and "error" not in results["lanmeet"]:
            prof = profile_lanmeet()
            if OUT:
                with open(OUT + ".profile.txt", "w") as f:
                    f.write(prof)
    finally:
        cleanup()
    if OUT:
        with open(OUT, "w") as f:
            json.dump(results, f, indent=1)
        return
    if WORKLOADS == ["stations"]:
        # Only the stations workload: keep every other figure, rewrite its section.
        update_stations(results.get("lanmeet", {}))
        return
    date = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')
    commit = sh("git", "-C", ROOT, "rev-parse", "HEAD", check=False).stdout.strip()
    if sh("git", "-C", ROOT, "status", "--porcelain", check=False).stdout.strip():
        commit += " (with uncommitted changes)"
    with open(os.path.join(ROOT, "bench", "last-results.json"), "w") as f:
        run = {"date": date, "commit": commit, "commands": commands, "noisy": noisy_runs,
               "profile": prof}
        json.dump(dict(results, _run=run), f, indent=1)
    write_report(results, prof, date, commit)


def summary(res):
    """Headline figures of one target."""
    if "error" in res:
        return None
    steps = res.get("capacity", [])
    best = best_step(steps, "pass")
    best_loss = best_step(steps, "pass_loss")
    single = best_step(res.get("capacity_single", []), "pass")
    lec = [r for r in res.get("lecture", []) if r["pass"]]
    half = res.get("half")
    meeting = res.get("meeting")
    joins = res.get("joins")
    sd = lambda r, q: ((r or {}).get("server_delay_ms") or {}).get(q)
    return {
        "capacity_pps": best["forwarded_pps"] if best else 0,
        "capacity_per_core": per_core(best) if best else 0,
        "capacity_rooms": best["rooms"] if best else 0,
        "capacity_loss_pps": best_loss["forwarded_pps"] if best_loss else 0,
        "capacity_single_pps": single["forwarded_pps"] if single else None,
        "lecture": max((r["viewers"] for r in lec), default=0),
        "lecture_150ms": max((r["viewers"] for r in res.get("lecture", [])
                              if r["pass_loss"] and r["latency_ms"]["p99"] < 150), default=0),
        "meeting": meeting,
        "meeting_pps": meeting["forwarded_pps"] if meeting else None,
        "meeting_loss": meeting["loss_pct"] if meeting else None,
        "meeting_per_core": per_core(meeting) if meeting else None,
        "meeting_p99": meeting["latency_ms"]["p99"] if meeting else None,
        "half": half,
        "half_p99": half["latency_ms"]["p99"] if half else None,
        "half_server_p99": sd(half, "p99"),
        "half_server_p50": sd(half, "p50"),
        "joins_p95": joins["join_ms"]["p95"] if joins else None,
        "joins_failed": (joins["join_failures"] + joins["join_ms"]["without_media"]) if joins else None,
        "mem": mem_per_stream(meeting) if meeting else None,
        "mem_lecture": mem_per_stream(lec[-1]) if lec else None,
    }


STATIONS_BROWSER = os.path.join(ROOT, "bench", "stations-browser.json")
STATION_HEADLINE = "| stations: most viewers of one 1.5 Mbit/s station"


def station_best(steps, key="pass"):
    """The most viewers of the last step passing `key` below the first one failing it."""
    best = 0
    for r in steps or []:
        if not r.get(key, r["pass"]):
            break
        best = r["viewers"]
    return best


def station_headline(res):
    steps = res.get("stations") or []
    return (f"{STATION_HEADLINE} (VP8 + Opus file) at loss < {STATION_LOSS_PCT:.0f}% and "
            f"lateness p99 < {STATION_P99_MS:.0f} ms | – | "
            f"{fmt(station_best(steps), 0) if steps else '–'} |")


def stations_section(res):
    """The "## Stations" section: the load generator's station steps and, from
    bench/stations-browser.json (written by bench/stations-browser.sh), the browser's
    start and switch times."""
    out = ["## Stations\n"]
    w = out.append
    steps = res.get("stations") or []
    if steps:
        best = station_best(steps)
        loss_only = station_best(steps, "pass_loss")
        largest = steps[-1]["viewers"]
        w(f"Most viewers of one station at loss < {STATION_LOSS_PCT:.0f}% and lateness p99 < "
          f"{STATION_P99_MS:.0f} ms: **{best}**; at loss < {STATION_LOSS_PCT:.0f}% alone: "
          f"{loss_only}" + (" (the largest step measured)" if loss_only == largest else "")
          + " (lanmeet on one core, `--workers 1`). The station plays a 10 s 640×360 VP8 file at "
          "30 fps, 1.4 Mbit/s constant rate with a key frame every second, and 64 kbit/s Opus, "
          "made with ffmpeg at run time (`make_station_file` in `bench/bench.py`); the load "
          "generator's viewers `watch` it (`--station bench --viewers N`, 100 joins/s, "
          f"{CAP_WARMUP} s warm-up, {STATION_SECONDS} s measured). Loss is sequence gaps after "
          "each viewer's first packet; the station's packets carry no send time, so the "
          "one-way figure is *lateness*: arrival against the packet's RTP time, from the "
          "earliest packet of its stream (pacing jitter plus queueing); the server's own delay "
          "is its `/metrics` histogram.")
        run = res.get("stations_run") or {}
        if run:
            w(f"Measured {run.get('date', '?')} at commit `{run.get('commit', '?')}`. "
              f"{run.get('conditions', '')}")
        w("")
        w("| viewers | joined / failed | loss % | per viewer kbit/s (min / median) | video fps (min) | "
          "lateness p50 / p99 ms | server delay p50 / p99 ms | watch → media p95 ms | server CPU % | "
          "server RSS MiB |")
        w("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for r in steps:
            st = r.get("station") or {}
            rate = st.get("rate_kbps") or {}
            fps = st.get("video_fps") or {}
            l = r["latency_ms"]
            sd = r.get("server_delay_ms")
            delay = f"{fmt(sd.get('p50'), 3)} / {fmt(sd.get('p99'), 3)}" if sd else "–"
            w(f"| {r['viewers']}{'' if r['pass'] else ' ✗'} | {r.get('joined', '–')} / "
              f"{r['join_failures']} | {r['loss_pct']:.3f} | {fmt(rate.get('min'), 0)} / "
              f"{fmt(rate.get('p50'), 0)} | {fmt(fps.get('min'))} | {l['p50']:.2f} / {l['p99']:.2f} | "
              f"{delay} | {fmt((r.get('join_ms') or {}).get('p95'), 0)} | "
              f"{fmt(r.get('server_cpu_pct'))} | {fmt(r.get('server_rss_mb'))} |")
        w(f"\n✗: loss {STATION_LOSS_PCT:.0f}% or more or failed watches (the stepping stops "
          f"there), or lateness p99 {STATION_P99_MS:.0f} ms or more. Beyond what one core can "
          "send the server queues rather than drops: lateness and watch → media grow, and a "
          "window may hold more than the station's rate as a backlog drains.\n")
    if os.path.exists(STATIONS_BROWSER):
        with open(STATIONS_BROWSER) as f:
            b = json.load(f)
        def med(xs):
            return statistics.median(xs) if xs else None
        w("Start and switch in the browser (`bench/stations-browser.sh`, "
          f"{len(b['start_ms'])} runs, {b.get('date', '?')}, commit `{b.get('commit', '?')}`):\n")
        w("| figure | goal | median ms | worst ms | runs (ms) |")
        w("| --- | --- | --- | --- | --- |")
        for key, label in (("start_ms", "click on a station → its first frame shown"),
                           ("switch_ms", "Next station → the new station's picture shown")):
            xs = b.get(key) or []
            w(f"| {label} | ≤ 1,500 | {fmt(med(xs), 0)} | {fmt(max(xs) if xs else None, 0)} | "
              f"{', '.join(str(round(x)) for x in xs)} |")
        w(f"\n{b.get('conditions', '')}\n")
    return out


def update_stations(res):
    """After a stations-only run: its steps go into bench/last-results.json beside the
    other figures, and BENCHMARKS.md gets its "## Stations" section and headline row
    rewritten in place (the rest of the file is left as the last full run wrote it)."""
    path = os.path.join(ROOT, "bench", "last-results.json")
    with open(path) as f:
        results = json.load(f)
    if "stations" in res:
        commit = sh("git", "-C", ROOT, "rev-parse", "--short", "HEAD", check=False).stdout.strip()
        results.setdefault("lanmeet", {})["stations"] = res["stations"]
        results["lanmeet"]["stations_run"] = {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
            "commit": commit,
            # How the machine was shared, e.g. "under chrt -f 50 with BENCH_IGNORE_BUSY=1".
            "conditions": os.environ.get("BENCH_CONDITIONS", ""),
        }
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
    md_path = os.path.join(ROOT, "BENCHMARKS.md")
    with open(md_path) as f:
        lines = f.read().split("\n")
    section = "\n".join(stations_section(results.get("lanmeet", {}))).split("\n")
    if "## Stations" in lines:
        start = lines.index("## Stations")
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        lines[start:end] = section
    else:
        at = next((i for i, l in enumerate(lines) if l.startswith("## lanmeet")), len(lines))
        lines[at:at] = section
    row = station_headline(results.get("lanmeet", {}))
    if "## Headline" in lines:
        # As many cells as the table has (the peers' are empty: lanmeet only).
        header = lines[lines.index("## Headline") + 2]
        row += " – |" * max(0, header.count("|") - row.count("|"))
    old = [i for i, l in enumerate(lines) if l.startswith(STATION_HEADLINE)]
    if old:
        lines[old[0]] = row
    elif "## Headline" in lines:
        i = lines.index("## Headline") + 2
        while i < len(lines) and lines[i].startswith("|"):
            i += 1
        lines.insert(i, row)
    with open(md_path, "w") as f:
        f.write("\n".join(lines))
    print("updated the Stations section of BENCHMARKS.md")


PEERS = [("relay", "relay (ceiling)"), ("mediasoup", "mediasoup 3.27.1"), ("janus", "Janus 1.1.2")]


def write_report(results, prof, date, commit):
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    s = {t: summary(r) for t, r in results.items()}
    out = []
    w = out.append
    w("# lanmeet benchmarks\n")
    w("Written by `bench/run.sh` (do not edit by hand; rerun it). Raw figures: "
      "`bench/last-results.json`.\n")
    w("## Machine and run\n")
    w(f"- date: {date}")
    w(f"- commit: `{commit}`")
    w(f"- machine: {cpu}, {os.cpu_count()} cores, {mem:.1f} GiB, "
      f"{platform.system()} {platform.release()}")
    w(f"- network: veth pair between namespaces `{SRV_NS}` ({SRV_IP}) and `{CLI_NS}` "
      f"({CLI_IP}); servers pinned to CPU {SERVER_CPU}, load generator to CPU {LOADGEN_CPU} "
      "(`taskset`), so each has one core of its own and the server's CPU figure is one "
      "core's (pinning makes the comparison fairer: without it the load generator, which "
      "does as much SRTP work as the server, would compete for the same cores). lanmeet runs "
      "with `--workers 1` (one media thread on its core); the relay is single-threaded and "
      "moves datagrams as lanmeet's worker does (4 MiB socket buffers, `recvmmsg`, UDP GSO "
      "sends grouped by destination) but without crypto or RTP; mediasoup runs one worker "
      "(one process, one thread) and Janus keeps its own threads, all on the same core.")
    w("- media per publisher, as the browser client sends it: VP8-like video at 1.5 Mbit/s "
      "in three simulcast layers (rids q/h/f, 320×180, 640×360 and 1280×720, splitting the "
      "bitrate 100:500:1800 as `web/publish.js` does at 720p; 30 fps, packets up to 1,200 "
      "bytes, VP8 payload descriptors with picture ids, a keyframe every 3 s and on a PLI for "
      "that layer) plus Opus-like audio, 50 packets/s of 100 bytes with an RFC 6464 audio "
      "level. Subscribers report their tiles with `view` as the client does: half of them "
      "small (320×180: the server forwards q), half large (1280×720: f). Janus gets one "
      "1.5 Mbit/s layer (its load-generator participant does not negotiate simulcast), and "
      "so does lanmeet in the `capacity 1 layer` rows, the workload the lanmeet/Janus "
      "capacity ratio compares.")
    w("- latency: one-way, send to receive on the same clock, includes the load generator's "
      "own queueing (it runs all participants on one core). **Server delay** is the server's "
      "own arrival-to-send histogram (`lanmeet_forward_delay_seconds` on `/metrics`), read "
      "at the start and end of each window; its percentiles are interpolated within the "
      "histogram's buckets (50 µs … 100 ms), so they are coarse.")
    w(f"- capacity: meeting-shaped rooms of 10 publishers, one more step at a time; each "
      f"step runs {CAP_REPEATS} times for {CAP_SECONDS} s after a {CAP_WARMUP} s warm-up, "
      f"and a step passes only if every run does (loss < {CAP_LOSS_PCT}% **and** one-way "
      f"p99 < {CAP_P99_MS:.0f} ms, no failed joins). Capacity is the highest step below the "
      "first failing one, so an overloaded step that passes by luck cannot raise it; the "
      "table shows each step's worst run. The old, loss-only figure is given beside it.\n")

    w("## Headline\n")
    lm = s.get("lanmeet")
    peers = [(t, label) for t, label in PEERS if t in results]
    head = "| figure | goal | lanmeet |"
    sep = "| --- | --- | --- |"
    for _, label in peers:
        head += f" {label} | lanmeet / {label.split(' ')[0]} |"
        sep += " --- | --- |"
    w(head)
    w(sep)

    def row(label, goal, key, d=0, higher=True, janus_key=None):
        """One figure for every target, and lanmeet's ratio to each peer. Against Janus,
        `janus_key` names lanmeet's figure on Janus's (single-layer) workload."""
        a = lm[key] if lm else None
        line = f"| {label} | {goal} | {fmt(a, d)} |"
        for t, _ in peers:
            b = s[t][key] if s.get(t) else None
            mine = a
            if t == "janus" and janus_key and lm and lm.get(janus_key) is not None:
                mine = lm[janus_key]
            ratio = f"{mine / b:.2f}" if mine and b and higher else "–"
            line += f" {fmt(b, d)} | {ratio} |"
        w(line)
    row(f"capacity: forwarded packets/s at loss < {CAP_LOSS_PCT}% and p99 < {CAP_P99_MS:.0f} ms "
        "(server on 1 core)", "≥ 250,000; ≥ 1.5× mediasoup, ≥ 2.5× Janus", "capacity_pps",
        janus_key="capacity_single_pps")
    row("same, per core of server CPU used", "≥ 250,000", "capacity_per_core")
    row(f"capacity, loss < {CAP_LOSS_PCT}% only (the old criterion)", "–", "capacity_loss_pps")
    if lm and lm.get("capacity_single_pps") is not None:
        w(f"| capacity, one layer (Janus's workload; the lanmeet/Janus ratio on the first row "
          f"uses this) | – | {fmt(lm['capacity_single_pps'], 0)} |" + " – | – |" * len(peers))
    row("lecture: most viewers of one 1.5 Mbit/s publisher at loss < 1% and p99 < 50 ms",
        "≥ 500", "lecture")
    row("lecture: most viewers at loss < 1% and p99 < 150 ms", "≥ 1,000", "lecture_150ms")
    row("meeting 5×10: forwarded packets/s", "–", "meeting_pps")
    row("meeting 5×10: loss %", "–", "meeting_loss", 3, higher=False)
    row("meeting 5×10: p99 latency ms", "–", "meeting_p99", 2, higher=False)
    row("meeting 5×10: forwarded packets/s per core of server CPU used", "≥ 250,000",
        "meeting_per_core")
    row("half capacity load: one-way p99 latency ms", "–", "half_p99", 2, higher=False)
    row("half capacity load: server delay p99 ms (inside the server)", "< 1 ms",
        "half_server_p99", 3, higher=False)
    row("joining: 100 participants within 10 s, join → first media p95 ms", "< 1,000",
        "joins_p95", 0, higher=False)
    row("joining: participants without media (of 100)", "0", "joins_failed", 0, higher=False)
    row("memory per subscribed stream, meeting (MiB)", "< 0.25", "mem", 3, higher=False)
    w(station_headline(results.get("lanmeet", {})) + " – | – |" * len(peers))
    if os.path.exists(os.path.join(ROOT, "bench", "peers-results.json")) and "mediasoup" not in results:
        w("\nmediasoup is not in this run; lanmeet, mediasoup and Janus side by side, in one "
          "interleaved run, with their ratios: **Peers in the same run** under Analysis below "
          "(raw figures: `bench/peers-results.json`).")
    if lm and lm.get("meeting"):
        m = lm["meeting"]
        w(f"\nMeeting (5 rooms × 10): lanmeet forwarded {fmt(m['forwarded_pps'], 0)} packets/s "
          f"at {m['loss_pct']:.3f}% loss, latency p50 {m['latency_ms']['p50']:.2f} ms / "
          f"p99 {m['latency_ms']['p99']:.2f} ms, server CPU {fmt(m.get('server_cpu_pct'))}% of one core.")
        if lm["half"]:
            h = lm["half"]
            sd = h.get("server_delay_ms") or {}
            w(f"At half the capacity load ({h['rooms']} rooms of 10, {fmt(h['forwarded_pps'], 0)} "
              f"packets/s): one-way latency p99 {h['latency_ms']['p99']:.2f} ms, "
              f"p50 {h['latency_ms']['p50']:.2f} ms; inside the server p50 {fmt(sd.get('p50'), 3)} ms, "
              f"p99 {fmt(sd.get('p99'), 3)} ms (goal < 1 ms); loss {h['loss_pct']:.3f}%.")
        w(f"Server memory per subscribed stream: {fmt(lm['mem'], 3)} MiB in the meeting, "
          f"{fmt(lm['mem_lecture'], 3)} MiB in the largest passing lecture (goal < 0.25 MiB).\n")

    w("")
    out.extend(stations_section(results.get("lanmeet", {})))
    for t, res in results.items():
        w(f"## {t}\n")
        if "error" in res:
            w(f"Not measured: {res['error']}\n")
            continue
        w("| workload | joined / failed | forwarded pps | loss % | p50 ms | p95 ms | p99 ms | max ms | "
          "server delay p50 / p99 ms | join → media p95 ms | server CPU % | pps per core | "
          "server RSS MiB | MiB per stream | loadgen CPU % |")
        w("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        rows = []
        if res.get("meeting"):
            rows.append(("meeting 5×10", res["meeting"]))
        rows += [(f"lecture 1 + {r['viewers']}" + ("" if r["pass"] else " ✗"), r)
                 for r in res.get("lecture", [])]
        rows += [(f"capacity {r['rooms']}×10" + ("" if r["pass"] else " ✗"), r)
                 for r in res.get("capacity", [])]
        rows += [(f"capacity 1 layer {r['rooms']}×10" + ("" if r["pass"] else " ✗"), r)
                 for r in res.get("capacity_single", [])]
        if res.get("half"):
            rows.append((f"half load {res['half']['rooms']}×10", res["half"]))
        if res.get("joins"):
            rows.append(("joins: 10×(2+8) in 10 s", res["joins"]))
        for label, r in rows:
            l = r["latency_ms"]
            sd = r.get("server_delay_ms")
            delay = f"{fmt(sd.get('p50'), 3)} / {fmt(sd.get('p99'), 3)}" if sd else "–"
            join = (r.get("join_ms") or {}).get("p95")
            w(f"| {label} | {r.get('joined', '–')} / {r['join_failures']} | {fmt(r['forwarded_pps'], 0)} "
              f"| {r['loss_pct']:.3f} | {l['p50']:.2f} | {l['p95']:.2f} | {l['p99']:.2f} | {l['max']:.1f} | "
              f"{delay} | {fmt(join, 0)} | "
              f"{fmt(r.get('server_cpu_pct'))} | {fmt(per_core(r), 0)} | {fmt(r.get('server_rss_mb'))} | "
              f"{fmt(mem_per_stream(r), 3)} | {r['loadgen_cpu_pct']:.0f} |")
        w(f"\n✗: failed the workload's limit (capacity: loss {CAP_LOSS_PCT}% or p99 "
          f"{CAP_P99_MS:.0f} ms in any of its {CAP_REPEATS} runs, whose worst is shown; lecture: "
          "loss 1% or p99 50 ms; both step on past a latency failure and stop at a loss "
          "failure). Server delay: `–` where the server exports none (relay, Janus, "
          "mediasoup); a percentile above the largest bucket (100 ms) is shown as `–` too. "
          "CPU busy per core (including kernel softirq work no process is charged for) is in "
          "`bench/last-results.json` as `cpu_busy_pct`.\n")

    w("## Commands\n")
    w("Servers (in namespace lmb-srv, `taskset -c 0`):\n")
    w("```\nlanmeet serve --http --listen 10.77.0.1:8080 --udp-port 10000 --public-ip 10.77.0.1 --workers 1 --max-connections-per-ip 4000 --join-burst 1000 --join-rate 1000 --audio-top-n 64 --metrics-listen 10.77.0.1:9100 --data-dir TMP")
    w("lanmeet-relay 10.77.0.1:9000")
    w("janus --configs-folder TMP/janus --config TMP/janus/janus.jcfg --disable-colors")
    w(f"MEDIASOUP_WORKER_BIN=bench/mediasoup/.build/mediasoup-worker node bench/mediasoup/server.mjs "
      f"--listen {SRV_IP}:{MEDIASOUP_PORT} --ip {SRV_IP} --workers 1\n```\n")
    w("mediasoup 3.27.1's worker is built by `bench/mediasoup/build.sh` from Debian's packages "
      "(see `bench/mediasoup/FINDINGS.md` for how it differs from mediasoup's own build); "
      "`server.mjs` gives each room a router (VP8 + Opus) and each participant a "
      "WebRtcTransport to publish and one to subscribe; consumers prefer the lowest simulcast "
      "layer for small tiles and the top one for large tiles (`preferredLayers`) and run no "
      "bandwidth estimation (no transport-cc or REMB negotiated), so they forward the "
      "preferred layer at once. The server's CPU and memory figures are the worker "
      "process's (node only signals).\n")
    w("Janus's config folder is generated per run (`janus_config` in `bench/bench.py`): "
      "`nat_1_1_mapping = 10.77.0.1`, `ice_enforce_list = lmb-veth0`, RTP ports "
      "20000-40000, the WebSocket transport on 10.77.0.1:8188 (`ws_ip`, since "
      "libwebsockets' IPv6 wildcard bind fails in the namespace), the videoroom plugin "
      "with default settings; every other plugin, transport, logger and event handler "
      "disabled. Rooms are created by the load generator with `bitrate 0`, Opus and VP8.\n")
    if noisy_runs:
        w("Someone else's compiler (rustc/cc1) was running during: "
          + ", ".join(noisy_runs) + ". Those figures may be lower than on a quiet machine.\n")
    w("Load generator (in namespace lmb-cli, `taskset -c 1`):\n")
    w("```")
    for c in commands:
        w(c)
    w("```\n")
    w("## Where lanmeet's time goes\n")
    w(prof or "No profile taken.")
    notes = os.path.join(ROOT, "bench", "analysis.md")
    if os.path.exists(notes):
        w("\n## Analysis\n")
        w("(From `bench/analysis.md`, written by hand after looking at the run above.)\n")
        with open(notes) as f:
            w(f.read())
    with open(os.path.join(ROOT, "BENCHMARKS.md"), "w") as f:
        f.write("\n".join(out) + "\n")
    print("wrote BENCHMARKS.md")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        cleanup()
        raise
