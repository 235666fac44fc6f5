"""The comparison workloads on gevent (greenlets on one libev hub, so
WORKERS is ignored). usage: python3 wl.py WORKLOAD WORKERS [N]"""
import sys
import time

import gevent
from gevent.event import Event
from gevent.queue import Channel, Queue


def status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    return 0


def spawn_join(n):
    start = time.perf_counter()
    gevent.joinall([gevent.spawn(lambda: None) for _ in range(n)])
    return (time.perf_counter() - start) * 1e9 / n


def main():
    workload = sys.argv[1]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else None
    if workload == "spawn":
        n = n or 100_000
        spawn_join(n)
        value = spawn_join(n)
    elif workload == "pingpong":
        n = n or 100_000
        ping, pong = Queue(1), Queue(1)

        def echo():
            while True:
                v = ping.get()
                if v is None:
                    return
                pong.put(v)

        g = gevent.spawn(echo)
        start = time.perf_counter()
        for i in range(n):
            ping.put(i)
            assert pong.get() == i
        value = (time.perf_counter() - start) * 1e9 / n
        ping.put(None)
        g.join()
    elif workload == "yield":
        n = n or 1_000

        def yielder():
            for _ in range(n):
                gevent.sleep(0)

        start = time.perf_counter()
        gevent.joinall([gevent.spawn(yielder) for _ in range(1000)])
        value = (time.perf_counter() - start) * 1e9 / (1000 * n)
    elif workload == "idle":
        n = n or 100_000
        base = status("VmRSS:")
        gate = Event()
        started = [0]

        def idle():
            started[0] += 1
            gate.wait()

        tasks = [gevent.spawn(idle) for _ in range(n)]
        while started[0] < n:
            gevent.sleep(0.001)
        value = (status("VmHWM:") - base) / n
        gate.set()
        gevent.joinall(tasks)
    elif workload == "sleep":
        n = n or 100_000
        start = time.perf_counter()
        gevent.joinall([gevent.spawn(gevent.sleep, 0.01) for _ in range(n)])
        value = (time.perf_counter() - start) * 1e3
    else:
        raise SystemExit("unknown workload " + workload)
    print("%.1f" % value)


if __name__ == "__main__":
    main()
