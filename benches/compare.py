#!/usr/bin/env python3
"""Side-by-side comparison of sylvan with tokio, may, Go, std threads and
gevent: the same workloads, the same worker count, in one run on one
machine. Prints one Markdown table: each peer's median (and spread) and
sylvan's advantage over it (xN: sylvan is N times better; below 1, behind).

    python3 benches/compare.py                # everything, 3 runs each
    python3 benches/compare.py --runs 5 --only spawn,http
    python3 benches/compare.py --peers sylvan,tokio --secs 4
    python3 benches/compare.py --peers sylvan,tokio --only echo   # echo + echo_patched

Builds the programs in benches/peers (their own Cargo workspace, so the
test command never builds the peers). Go runs when `go` is installed
(`apt-get install golang-go`), gevent when `python3 -c 'import gevent'`
works (`pip install gevent`); wrk (`apt-get install wrk`) drives the HTTP
workload. Missing peers are left out of the table, with a note.

The echo_patched row (sylvan only; selected with echo, or alone) is the echo
server written with plain std::net inside sylvan fibers, built with sylvan's
`patch` feature in a second cargo invocation (`--features patch --bin
server-sylvan-patched`: features are unified across one build, and no other
program may carry the libc hooks); beside sylvan's own echo it shows what the
hooks cost.

Scale mode (`--scale`) runs three workloads at growing sizes instead, and
prints one Markdown table per measure: a row per size, a column per peer
(median, min–max, sylvan's ratio), so growth that is not linear shows:

    python3 benches/compare.py --scale                  # all three, 3 runs each
    python3 benches/compare.py --scale --runs 1 --only park
    python3 benches/compare.py --scale --max-size 10000 # quick: sizes up to 10k

- park: N tasks each wait on one event (sylvan Event, tokio Notify, Go a
  channel that is closed, may SyncFlag, std a condvar), then all are woken
  and joined; total ms, and peak RSS per task. N = 1k, 10k, 100k, 1M.
- idleconn: an echo server (the `echo` servers above) holds N idle TCP
  connections opened by `conn-load` (64 client threads; each connection
  echoes one byte, then stays open); ms from the first connect to the last
  echo, and the server's VmRSS growth per connection. N = 1k, 10k, 100k.
- http10k: the HTTP servers above under wrk -t2 with 100, 1,000 and 10,000
  keep-alive connections; req/s and p99.

It raises RLIMIT_NOFILE (children inherit it) so that 100k connections fit;
where that is not allowed (it needs CAP_SYS_RESOURCE beyond the hard
limit) it says so and measures idleconn at the largest size that fits
instead. gevent has no scale workloads; std threads stop at 10k tasks or
connections (a thread each: ~16k threads exhaust vm.max_map_count here).
"""
import argparse
import datetime
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS_DIR = os.path.join(ROOT, "benches", "peers")
RELEASE = os.path.join(PEERS_DIR, "target", "release")
GO_BIN = os.path.join(PEERS_DIR, "go", "bin")

# name, unit, lower is better, description
WORKLOADS = [
    ("spawn", "ns/task", True, "spawn+join of 100,000 trivial tasks (warm)"),
    ("pingpong", "ns/round trip", True, "ping-pong over two channels, 1,000,000 round trips"),
    ("yield", "ns/yield", True, "1,000 tasks x 1,000 yields"),
    ("idle", "bytes/task", True, "100,000 tasks blocked on a channel, peak RSS above baseline"),
    ("sleep", "ms wall", True, "100,000 tasks each sleeping 10 ms"),
    ("http", "req/s", False, "HTTP hello world, wrk -t1 -c64 on loopback"),
    ("http_p99", "ms p99", True, "(same run) 99th percentile latency"),
    ("echo", "msg/s", False, "TCP echo, 64 connections x 64-byte messages"),
    ("echo_patched", "msg/s", False,
     "the same echo, sylvan's server written with std::net in fibers under the `patch` feature "
     "(sylvan only; in square brackets: its ratio to sylvan's own echo above)"),
]
ALL_PEERS = ["sylvan", "tokio", "may", "go", "std", "gevent"]

# Sizes that differ from the standard one, per (peer, workload): std
# threads cannot reasonably run 100,000 threads or 1,000,000 round trips;
# gevent's Python round trips are slow.
SIZE_OVERRIDES = {
    ("std", "spawn"): 10_000,
    ("std", "idle"): 10_000,
    ("std", "sleep"): None,  # not meaningful: 100k OS threads
    ("std", "pingpong"): 20_000,
    ("gevent", "pingpong"): 100_000,
}
STANDARD = {"spawn": 100_000, "pingpong": 1_000_000, "idle": 100_000, "sleep": 100_000}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(cmd, timeout, env=None):
    """Runs cmd; returns its last stdout line as a float, or raises."""
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["?"])[-1]
        raise RuntimeError(f"exit {out.returncode}: {tail[:120]}")
    return float(out.stdout.strip().splitlines()[-1])


def workload_cmd(peer, workload, workers, n):
    args = [workload, str(workers)] + ([str(n)] if n else [])
    if peer == "go":
        return [os.path.join(GO_BIN, "wl")] + args, None
    if peer == "gevent":
        return [sys.executable, os.path.join(PEERS_DIR, "gevent", "wl.py")] + args, None
    return [os.path.join(RELEASE, f"wl-{peer}")] + args, None


def server_cmd(peer, kind, addr, workers):
    if kind == "echo_patched":
        assert peer == "sylvan"
        return [os.path.join(RELEASE, "server-sylvan-patched"), "echo", addr, str(workers)]
    if peer == "go":
        return [os.path.join(GO_BIN, "server"), kind, addr, str(workers)]
    if peer == "gevent":
        return [sys.executable, os.path.join(PEERS_DIR, "gevent", "server.py"), kind, addr, str(workers)]
    return [os.path.join(RELEASE, f"server-{peer}"), kind, addr, str(workers)]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, peer, kind, workers):
        self.addr = f"127.0.0.1:{free_port()}"
        self.proc = subprocess.Popen(server_cmd(peer, kind, self.addr, workers),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        LIVE_SERVERS.append(self)
        host, port = self.addr.split(":")
        deadline = time.time() + 15
        while True:
            try:
                socket.create_connection((host, int(port)), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    self.stop()
                    raise RuntimeError(f"{peer} {kind} server did not start")
                time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        if self in LIVE_SERVERS:
            LIVE_SERVERS.remove(self)


def wrk(addr, secs):
    out = subprocess.run(["wrk", "-t1", "-c64", f"-d{secs}s", "--latency", f"http://{addr}/"],
                         capture_output=True, text=True, timeout=secs + 60)
    text = out.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", text)
    p99 = float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: .*", text)
    if errors:
        raise RuntimeError(f"wrk reported errors: {errors.group(0)}")
    return rps, p99


def summarize(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def measure_workload(peer, workload, args):
    key = (peer, workload)
    n = SIZE_OVERRIDES.get(key, STANDARD.get(workload))
    if key in SIZE_OVERRIDES and n is None:
        return {"skip": "—"}
    note = ""
    if workload in STANDARD and n != STANDARD[workload]:
        note = f"at {n // 1000}k"
    values = []
    for _ in range(args.runs):
        cmd, env = workload_cmd(peer, workload, args.workers, n)
        try:
            values.append(run(cmd, args.timeout, env))
        except (RuntimeError, subprocess.TimeoutExpired, ValueError) as e:
            # Say where it breaks, and what it does at a tenth of the size.
            smaller = (n or STANDARD.get(workload, 0)) // 10
            if not smaller:
                return {"error": str(e)}
            try:
                v = run(workload_cmd(peer, workload, args.workers, smaller)[0], args.timeout)
                return {"median": v, "min": v, "max": v,
                        "note": f"fails at {n // 1000}k; {smaller // 1000}k:"}
            except (RuntimeError, subprocess.TimeoutExpired, ValueError) as e2:
                return {"error": f"fails ({e2})"}
    r = summarize(values)
    if note:
        r["note"] = note
    return r


def measure_servers(peer, args, results):
    for kind in ("http", "echo", "echo_patched"):
        if kind not in args.only:
            continue
        if kind == "echo_patched" and peer != "sylvan":
            results[(peer, kind)] = {"skip": "—"}
            continue
        if kind == "http" and not shutil.which("wrk"):
            results[(peer, "http")] = {"error": "wrk not installed"}
            continue
        try:
            server = Server(peer, kind, args.workers)
        except RuntimeError as e:
            results[(peer, kind)] = {"error": str(e)}
            continue
        try:
            if kind == "http":
                runs = [wrk(server.addr, args.secs) for _ in range(args.runs)]
                results[(peer, "http")] = summarize([r[0] for r in runs])
                results[(peer, "http_p99")] = summarize([r[1] for r in runs])
            else:
                load = os.path.join(RELEASE, "echo-load")
                runs = [run([load, server.addr, "64", "64", str(args.secs)], args.secs + 60)
                        for _ in range(args.runs)]
                results[(peer, kind)] = summarize(runs)
        except (RuntimeError, subprocess.TimeoutExpired, AttributeError) as e:
            results[(peer, kind)] = {"error": str(e)}
        finally:
            server.stop()


# Scale mode. name, sizes, measures: (key, unit, lower is better, title).
SCALE = [
    ("park", [1_000, 10_000, 100_000, 1_000_000], [
        ("park", "ms total", True,
         "park: N tasks wait on one event, then all are woken and joined"),
        ("park_rss", "B/task", True, "park: peak RSS above baseline per task (same runs)"),
    ]),
    ("idleconn", [1_000, 10_000, 100_000], [
        ("idleconn", "ms until all served", True,
         "idleconn: N connections opened (64 client threads), each echoes 1 byte, all held open"),
        ("idleconn_rss", "B/conn", True, "idleconn: server VmRSS growth per connection (same runs)"),
    ]),
    ("http10k", [100, 1_000, 10_000], [
        ("http10k", "req/s", False, "http10k: HTTP hello world, wrk -t2 with N keep-alive connections"),
        ("http10k_p99", "ms p99", True, "http10k: (same runs) 99th percentile latency"),
    ]),
]
SCALE_PEERS = ["sylvan", "tokio", "may", "go", "std"]
# Largest size a peer is run at (beyond it: "—"): std threads need a thread
# per task or connection, and ~16k threads exhaust vm.max_map_count here.
SCALE_CAPS = {("std", "park"): 10_000, ("std", "idleconn"): 10_000}
CONN_LOAD_THREADS = 64
NOFILE_MARGIN = 1_000  # fds beyond the connections: listeners, pipes, runtime
LIVE_SERVERS = []  # killed at exit, whatever happened


def raise_nofile(want):
    """Raises RLIMIT_NOFILE to `want` (children inherit it). Returns the
    soft limit in force afterwards and a note when `want` was not reached."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return soft, None
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
        return want, None
    except (ValueError, OSError):
        pass
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard, (f"RLIMIT_NOFILE could not be raised to {want:,} (hard limit {hard:,}; raising it "
                  f"needs root with CAP_SYS_RESOURCE, which this process lacks)")


def run_park(peer, n, args):
    """One park run: (total ms, peak B/task)."""
    cmd, env = workload_cmd(peer, "park", args.workers, n)
    # Bounded by size (30 s + 150 s per million), so a peer that hangs
    # instead of failing at 100k does not hold the run for --timeout.
    timeout = min(args.timeout, 30 + n * 150 // 1_000_000)
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        said = [l for l in err.splitlines() if "fail" in l or "panicked" in l]
        raise RuntimeError(f"hung {timeout} s" + (f" after: {said[-1][:60]}" if said else ""))
    if out.returncode != 0:
        tail = [l for l in out.stderr.strip().splitlines() if not l.startswith(("sylvan:", "  "))]
        raise RuntimeError(f"exit {out.returncode}: {(tail or ['?'])[-1][:120]}")
    m = re.search(r"park \d+: .*, (\d+) B/\w+ peak", out.stderr)
    return float(out.stdout.strip().splitlines()[-1]), float(m.group(1))


def run_idleconn(peer, n, args):
    """One idleconn run on a fresh echo server: (ms until all served, server B/conn)."""
    server = Server(peer, "echo", args.workers)
    try:
        out = subprocess.run([os.path.join(RELEASE, "conn-load"), server.addr, str(n),
                              str(CONN_LOAD_THREADS), str(args.timeout), str(server.proc.pid)],
                             capture_output=True, text=True, timeout=args.timeout + 60)
        if out.returncode != 0:
            raise RuntimeError((out.stderr.strip().splitlines() or ["?"])[-1][:120])
        if server.proc.poll() is not None:
            raise RuntimeError(f"server exited ({server.proc.returncode})")
        ms, per_conn = out.stdout.split()
        return float(ms), float(per_conn)
    finally:
        server.stop()


def wrk_scale(addr, conns, secs):
    """wrk -t2 -cN: (req/s, p99 ms, socket errors or "")."""
    out = subprocess.run(["wrk", "-t2", f"-c{conns}", f"-d{secs}s", "--timeout", "10s", "--latency",
                          f"http://{addr}/"], capture_output=True, text=True, timeout=secs + 120)
    text = out.stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", text)
    if not rps or not m:
        raise RuntimeError(f"wrk: {(out.stderr.strip() or text.strip() or '?')[-100:]}")
    p99 = float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if bad:
        raise RuntimeError(f"wrk: {bad.group(0)}")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    note = ""
    if errors and any(int(x) for x in errors.groups()):
        note = "errors c/r/w/t " + "/".join(errors.groups())
    return float(rps.group(1)), p99, note


def measure_scale(peer, name, sizes, args, results):
    """Runs one scale workload at every size for one peer; after a failure
    the larger sizes are not tried."""
    failed = None
    for n in sizes:
        measures = [m[0] for m in dict((w[0], w[2]) for w in SCALE)[name]]
        cap = SCALE_CAPS.get((peer, name))
        if failed or (cap and n > cap):
            for key in measures:
                results[(peer, key, n)] = {"skip": f"— (fails at {failed:,})" if failed else "—"}
            continue
        if n in args.unreachable.get(name, ()):
            for key in measures:
                results[(peer, key, n)] = {"skip": "needs more fds"}
            continue
        log(f"{peer}: {name} {n:,}")
        firsts, seconds, notes = [], [], []
        try:
            if name == "http10k":
                server = Server(peer, "http", args.workers)
                try:
                    for _ in range(args.runs):
                        rps, p99, note = wrk_scale(server.addr, n, args.secs)
                        firsts.append(rps)
                        seconds.append(p99)
                        if note:
                            notes.append(note)
                    if server.proc.poll() is not None:
                        raise RuntimeError(f"server exited ({server.proc.returncode})")
                finally:
                    server.stop()
            else:
                one = run_park if name == "park" else run_idleconn
                for _ in range(args.runs):
                    a, b = one(peer, n, args)
                    firsts.append(a)
                    seconds.append(b)
        except subprocess.TimeoutExpired as e:
            failed = n
            log(f"  fails: timed out after {e.timeout:.0f} s")
            for key in measures:
                results[(peer, key, n)] = {"error": f"timed out after {e.timeout:.0f} s"}
            continue
        except (RuntimeError, ValueError, AttributeError) as e:
            failed = n
            log(f"  fails: {e}")
            for key in measures:
                results[(peer, key, n)] = {"error": str(e)}
            continue
        for key, values in zip(measures, (firsts, seconds)):
            results[(peer, key, n)] = summarize(values)
        if notes:
            results[(peer, measures[0], n)]["errors"] = "; ".join(notes)


def size_label(n):
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return f"{n:,}"


def print_scale(peers, args, results, notes):
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip() or "?"
    go = ""
    if "go" in peers:
        go = ", " + subprocess.run(["go", "version"], capture_output=True, text=True).stdout.split()[2]
    print(f"Measured {datetime.date.today()} at commit {commit} on {os.cpu_count()} CPUs, Linux "
          f"{platform.release()}; {args.workers} workers / GOMAXPROCS={args.workers} (std threads: "
          f"n/a){go}; median of {args.runs} run(s) (min–max); **×N**: sylvan is N times better "
          f"than that peer (below 1: behind).")
    for name, sizes, measures in SCALE:
        if name not in args.only:
            continue
        sizes = args.sizes[name]
        for key, unit, lower, title in measures:
            print()
            print(f"{title} ({unit}, {'lower' if lower else 'higher'} is better):")
            print()
            print("| N | " + " | ".join(peers) + " |")
            print("|---|" + "---|" * len(peers))
            for n in sizes:
                s = results.get(("sylvan", key, n))
                row = [size_label(n)]
                for peer in peers:
                    r = results.get((peer, key, n))
                    text = f"fails ({r['error'][:80]})" if r and "error" in r else cell(r)
                    if r and "errors" in r:
                        text += f" [{r['errors']}]"
                    if peer != "sylvan":
                        text += ratio(s, r, lower)
                    row.append(text)
                print("| " + " | ".join(row) + " |")
            if key == "park" and "go" in peers:
                print()
                print("Goal: sylvan's time within 1.2× of Go's at every size: " + "; ".join(
                    park_goal(results, n) for n in sizes) + ".")
    print()
    for n in notes:
        print(f"- {n}")


def park_goal(results, n):
    s, g = results.get(("sylvan", "park", n)), results.get(("go", "park", n))
    if not s or not g or "median" not in s or "median" not in g:
        return f"{size_label(n)} n/a"
    x = s["median"] / g["median"]
    return f"{size_label(n)} {x:.2f}× Go ({'met' if x <= 1.2 else 'not met'})"


def scale_main(args, peers, notes):
    args.sizes, args.unreachable = {}, {}
    for name, sizes, _ in SCALE:
        args.sizes[name] = [n for n in sizes if not args.max_size or n <= args.max_size]
    if "idleconn" in args.only or "http10k" in args.only:
        biggest = max(args.sizes["idleconn"] + args.sizes["http10k"], default=0)
        limit, note = raise_nofile(biggest + NOFILE_MARGIN)
        fits = (limit - NOFILE_MARGIN) // 1_000 * 1_000
        for name in ("idleconn", "http10k"):
            over = [n for n in args.sizes[name] if n > fits]
            if over and name in args.only:
                args.unreachable[name] = set(over)
                if name == "idleconn" and fits > max((n for n in args.sizes[name] if n <= fits), default=0):
                    args.sizes[name] = sorted(set(args.sizes[name]) | {fits})
                note = (note or f"RLIMIT_NOFILE is {limit:,}") + (
                    f"; {name} at {', '.join(f'{n:,}' for n in over)} left out (needs "
                    f"{max(over) + NOFILE_MARGIN:,} fds)"
                    + (f", measured at {fits:,} instead" if name == "idleconn" else ""))
        if note:
            log("NOTE: " + note)
            notes.append(note)
    if "http10k" in args.only and not shutil.which("wrk"):
        args.only.discard("http10k")
        notes.append("http10k left out: wrk not installed (apt-get install wrk).")
    results = {}
    try:
        for peer in peers:
            for name, _, _ in SCALE:
                if name in args.only:
                    measure_scale(peer, name, args.sizes[name], args, results)
    finally:
        for server in list(LIVE_SERVERS):
            server.stop()
    print_scale(peers, args, results, notes)


def fmt(v):
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def cell(r):
    if r is None:
        return "n/a"
    if "skip" in r:
        return r["skip"]
    if "error" in r:
        return f"fails ({r['error'][:40]})"
    text = f"{fmt(r['median'])}"
    if r["min"] != r["max"]:
        text += f" ({fmt(r['min'])}–{fmt(r['max'])})"
    if "note" in r:
        text = f"{r['note']} {text}"
    return text


def ratio(sylvan, peer, lower_better):
    if not sylvan or not peer or "median" not in sylvan or "median" not in peer:
        return ""
    if "note" in peer and peer["note"].startswith("fails"):
        return ""
    if "note" in sylvan or "note" in peer:
        return ""  # different sizes
    s, p = sylvan["median"], peer["median"]
    if s == 0 or p == 0:
        return ""
    x = p / s if lower_better else s / p
    return f" **×{x:.2f}**"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="runs per workload and peer (default 3)")
    ap.add_argument("--workers", type=int, default=2, help="worker threads / GOMAXPROCS (default 2)")
    ap.add_argument("--secs", type=int, default=8, help="seconds per HTTP/echo run (default 8)")
    ap.add_argument("--timeout", type=int, default=180, help="seconds before a run counts as failed")
    ap.add_argument("--only", help="comma-separated workloads (default: all of the mode's; "
                    "naming only park, idleconn, http10k selects scale mode)")
    ap.add_argument("--peers", help="comma-separated peers (default: all; scale mode: all but gevent)")
    ap.add_argument("--scale", action="store_true", help="scale mode: park, idleconn, http10k at growing sizes")
    ap.add_argument("--max-size", type=int, default=0, help="scale mode: leave out sizes above this")
    args = ap.parse_args()
    scale_names = [w[0] for w in SCALE]
    if args.only and set(args.only.split(",")) <= set(scale_names):
        args.scale = True
    if args.only is None:
        args.only = ",".join(scale_names if args.scale else
                             [w[0] for w in WORKLOADS if w[0] != "http_p99"])
    args.only = set(args.only.split(","))
    if args.scale and not args.only <= set(scale_names):
        ap.error(f"scale mode runs {', '.join(scale_names)}; not {', '.join(sorted(args.only - set(scale_names)))}")
    if "echo" in args.only:
        args.only.add("echo_patched")  # beside sylvan's own echo
    peers = (args.peers or ",".join(SCALE_PEERS if args.scale else ALL_PEERS)).split(",")

    log("building benches/peers (release)...")
    # An explicit target dir: RELEASE is where the binaries must be, whatever
    # CARGO_TARGET_DIR says.
    cargo = ["cargo", "build", "--release", "--quiet", "--manifest-path",
             os.path.join(PEERS_DIR, "Cargo.toml"), "--target-dir", os.path.join(PEERS_DIR, "target")]
    subprocess.run(cargo, check=True)
    if "sylvan" in peers and "echo_patched" in args.only:
        # A second build: only this binary may carry the `patch` hooks.
        subprocess.run(cargo + ["--features", "patch", "--bin", "server-sylvan-patched"], check=True)
    notes = []
    if "go" in peers:
        if shutil.which("go"):
            os.makedirs(GO_BIN, exist_ok=True)
            for prog in ("wl", "server"):
                subprocess.run(["go", "build", "-o", os.path.join(GO_BIN, prog), f"./{prog}"],
                               cwd=os.path.join(PEERS_DIR, "go"), check=True)
        else:
            peers.remove("go")
            notes.append("Go left out: `go` not installed (apt-get install golang-go).")
    if "gevent" in peers and args.scale:
        peers.remove("gevent")
        notes.append("gevent left out: no scale workloads written for it.")
    if "gevent" in peers:
        ok = subprocess.run([sys.executable, "-c", "import gevent"], capture_output=True).returncode == 0
        if not ok:
            peers.remove("gevent")
            notes.append("gevent left out: not importable (pip install gevent).")

    if args.scale:
        scale_main(args, peers, notes)
        return

    results = {}
    for peer in peers:
        for name, _, _, _ in WORKLOADS:
            if name in args.only and name not in ("http", "http_p99", "echo", "echo_patched"):
                log(f"{peer}: {name}")
                results[(peer, name)] = measure_workload(peer, name, args)
        if args.only & {"http", "echo", "echo_patched"}:
            log(f"{peer}: servers")
            measure_servers(peer, args, results)

    versions = []
    if "go" in peers:
        versions.append(subprocess.run(["go", "version"], capture_output=True, text=True).stdout.split()[2])
    if "gevent" in peers:
        versions.append("gevent " + subprocess.run(
            [sys.executable, "-c", "import gevent; print(gevent.__version__)"],
            capture_output=True, text=True).stdout.strip())
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(f"Measured {datetime.date.today()} on {os.cpu_count()} CPUs ({cpu}), Linux "
          f"{platform.release()}; {args.workers} workers / GOMAXPROCS={args.workers} "
          f"(gevent and std threads: n/a); median of {args.runs} runs (min–max); "
          f"{', '.join(versions)}.")
    print()
    print("**×N** after a peer's figure: sylvan is N times better than that peer "
          "(below 1: sylvan is behind).")
    print()
    print("| workload | " + " | ".join(peers) + " |")
    print("|---|" + "---|" * len(peers))
    for name, unit, lower, _desc in WORKLOADS:
        if name not in args.only and not (name == "http_p99" and "http" in args.only):
            continue
        row = [f"{name} ({unit})"]
        s = results.get(("sylvan", name))
        for peer in peers:
            r = results.get((peer, name))
            text = cell(r)
            if peer != "sylvan":
                text += ratio(s, r, lower)
            elif name == "echo_patched":
                own = results.get(("sylvan", "echo"))
                if own and "median" in own and r and "median" in r and own["median"]:
                    text += f" [{r['median'] / own['median']:.2f} of sylvan::net]"
            row.append(text)
        print("| " + " | ".join(row) + " |")
    print()
    for name, unit, _, desc in WORKLOADS:
        if name in args.only:
            print(f"- {name}: {desc}; {unit}.")
    for n in notes:
        print(f"- {n}")


if __name__ == "__main__":
    main()
