#!/usr/bin/env python3
"""cluster_load's shape on a peer: Ray or Dask distributed, on this box.

    peers.py ray|dask

Run from the virtualenv that benches/peers.sh makes (it has ray and
dask[distributed]); peers.sh runs this once per system, after Fabric's
cluster_load, with the same knobs, and prints the three side by side.

The shape is benches/cluster_load.rs's: a warm-up (500 tasks, 64 in flight),
then FABRIC_BENCH_TASKS trivial tasks (default 20000) in a closed loop with
FABRIC_BENCH_INFLIGHT in flight (512), reported in tasks/s; then an open loop
for FABRIC_BENCH_SECONDS (5; 0 skips it) at half the closed loop's rate (or
at FABRIC_BENCH_RATE tasks/s if set), reported as p50/p99 latency. A task's
latency runs from the submit call to the moment the driver sees its result,
as cluster_load times submit to recorded result; unlike Fabric's, a peer's
results are held in memory only, never written to disk.

- Ray: ray.init(num_cpus=2), a trivial remote function, ray.wait.
- Dask: LocalCluster of 2 worker processes, 1 thread each; client.submit
  with pure=False, results seen through done callbacks.

Traffic stays on 127.0.0.1 (Ray's node IP and Dask's hosts are set to it;
Ray's dashboard and usage stats are off). Every phase is bounded in count and
in time (PHASE_LIMIT, as cluster_load's): one over it fails with an error
that says which, and the whole run has a watchdog (RUN_LIMIT).

Prints lines in a fixed form (peers.sh parses them):

    ray closed loop: 2345 tasks/s (20000 tasks, 512 in flight, 8.53 s); p50 210.12 ms p99 250.34 ms
    ray open loop at 1172/s: p50 1.23 ms p99 4.56 ms (5 s, 5860 tasks; submits at most 0.80 ms late)
"""

import argparse
import logging
import math
import os
import queue
import secrets
import shutil
import signal
import sys
import tempfile
import time

# As cluster_load.rs: each phase must end within this.
PHASE_LIMIT = 180.0
# Dask's start-up and shut-down timeouts (ray.init has none: the watchdog
# below bounds it).
SETUP_LIMIT = 120.0
# The whole run: setup, warm-up, closed loop, open loop, shutdown.
RUN_LIMIT = 2 * SETUP_LIMIT + 3 * PHASE_LIMIT

WARMUP_TASKS = 500
WARMUP_INFLIGHT = 64
CPUS = 2


class BenchError(Exception):
    """A phase that did not finish in time, or a task that failed."""


def env_u64(name, default):
    """A knob from the environment, read as cluster_load's env_u64 reads it."""
    try:
        value = int(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if value >= 0 else default


def percentile(sorted_lat, p):
    """The p quantile of sorted latencies, as benches/lib.rs picks it."""
    if not sorted_lat:
        return 0.0
    i = math.floor((len(sorted_lat) - 1) * p + 0.5)
    return sorted_lat[min(i, len(sorted_lat) - 1)]


def trivial():
    """The smallest useful task: a little arithmetic."""
    return 1 + 1


class Ray:
    """ray.init(num_cpus=2) on loopback; tasks are a remote trivial()."""

    name = "ray"

    def __init__(self):
        self.ray = None
        self.temp_dir = None
        self.pending = {}  # ObjectRef -> submit time
        self.waiting = []  # the same refs, in submission order

    def start(self):
        # On Linux, Ray (2.60 here) resolves a node IP of 127.0.0.1 to the routable
        # address and listens on all interfaces unless told it is a
        # single-machine cluster; set before ray is imported.
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
        os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
        # Token authentication, as Ray's default, but with a token of this
        # run's own in the environment: otherwise ray.init writes one to
        # ~/.ray/auth_token.
        os.environ["RAY_AUTH_MODE"] = "token"
        os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
        import ray  # noqa: PLC0415 (after the environment above)

        self.ray = ray
        self.version = ray.__version__
        self.temp_dir = tempfile.mkdtemp(prefix="fabric-peers-ray-")
        ray.init(
            num_cpus=CPUS,
            include_dashboard=False,
            log_to_driver=False,
            logging_level="warning",
            _node_ip_address="127.0.0.1",
            _temp_dir=self.temp_dir,
        )
        self.remote = ray.remote(trivial)

    def describe(self):
        return f"ray {self.version}, ray.init(num_cpus={CPUS}), one driver"

    def submit(self):
        ref = self.remote.remote()
        self.pending[ref] = time.perf_counter()
        self.waiting.append(ref)

    def outstanding(self):
        return len(self.pending)

    def collect(self, timeout):
        """Waits up to `timeout` s for at least one result; the latencies (s)
        of all results ready by then."""
        if not self.waiting:
            time.sleep(timeout)
            return []
        ready, self.waiting = self.ray.wait(self.waiting, num_returns=1, timeout=timeout)
        if ready and self.waiting:
            more, self.waiting = self.ray.wait(self.waiting, num_returns=len(self.waiting), timeout=0)
            ready += more
        if not ready:
            return []
        seen = time.perf_counter()
        values = self.ray.get(ready, timeout=PHASE_LIMIT)
        if any(v != trivial() for v in values):
            raise BenchError(f"ray: a task returned {values!r}, not {trivial()}")
        return [seen - self.pending.pop(ref) for ref in ready]

    def close(self):
        if self.ray is not None:
            self.ray.shutdown()
        if self.temp_dir is not None:
            shutil.rmtree(self.temp_dir, ignore_errors=True)


class Dask:
    """A LocalCluster of 2 worker processes with 1 thread each, on loopback;
    tasks are client.submit(trivial, pure=False)."""

    name = "dask"

    def __init__(self):
        self.temp_dir = None
        self.cluster = None
        self.client = None
        self.pending = {}  # Future -> submit time (the reference keeps it alive)
        self.done = queue.SimpleQueue()

    def start(self):
        import dask  # noqa: PLC0415 (a run needs only one of the two systems)
        import distributed  # noqa: PLC0415

        self.version = f"dask {dask.__version__}, distributed {distributed.__version__}"
        # Scratch space (the scheduler's and workers' lock files) of its own.
        self.temp_dir = tempfile.mkdtemp(prefix="fabric-peers-dask-")
        dask.config.set({"temporary-directory": self.temp_dir})
        self.cluster = distributed.LocalCluster(
            n_workers=CPUS,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            worker_dashboard_address=None,
            timeout=SETUP_LIMIT,
        )
        self.client = distributed.Client(self.cluster, timeout=SETUP_LIMIT)
        self.client.wait_for_workers(CPUS, timeout=SETUP_LIMIT)

    def describe(self):
        return f"{self.version}, LocalCluster({CPUS} worker processes x 1 thread), one client"

    def submit(self):
        future = self.client.submit(trivial, pure=False)
        self.pending[future] = time.perf_counter()
        future.add_done_callback(self.done.put)

    def outstanding(self):
        return len(self.pending)

    def collect(self, timeout):
        """Waits up to `timeout` s for at least one result; the latencies (s)
        of all results ready by then."""
        try:
            finished = [self.done.get(timeout=timeout)]
        except queue.Empty:
            return []
        seen = time.perf_counter()
        while True:
            try:
                finished.append(self.done.get_nowait())
            except queue.Empty:
                break
        lat = []
        for future in finished:
            if future.status != "finished":
                raise BenchError(f"dask: a task ended {future.status}: {future.exception()!r}")
            lat.append(seen - self.pending.pop(future))
        return lat

    def close(self):
        if self.pending:
            # A phase that failed or was stopped: its error is the news, not
            # the scheduler's complaints at closing with tasks under way.
            logging.getLogger("distributed").setLevel(logging.CRITICAL + 1)
            self.client.cancel(list(self.pending))
            self.pending.clear()
        if self.client is not None:
            self.client.close(timeout=SETUP_LIMIT)
        if self.cluster is not None:
            self.cluster.close(timeout=SETUP_LIMIT)
        if self.temp_dir is not None:
            shutil.rmtree(self.temp_dir, ignore_errors=True)


def closed_loop(system, n, inflight, what):
    """`n` tasks, `inflight` at once; the time it took and the latencies."""
    inflight = max(inflight, 1)
    start = time.perf_counter()
    deadline = start + PHASE_LIMIT
    submitted = 0
    lat = []
    while len(lat) < n:
        now = time.perf_counter()
        if now > deadline:
            raise BenchError(
                f"{system.name}: {what} did not end within {PHASE_LIMIT:.0f} s "
                f"({len(lat)} of {n} tasks done, {system.outstanding()} outstanding)"
            )
        while submitted < n and system.outstanding() < inflight:
            system.submit()
            submitted += 1
        lat += system.collect(min(1.0, deadline - now))
    return time.perf_counter() - start, lat


def open_loop(system, rate, seconds):
    """rate * seconds tasks, each submitted on its schedule (start + i / rate)
    whatever is outstanding; the latencies and the latest any submit was."""
    n = int(rate * seconds)
    gap = 1.0 / rate
    start = time.perf_counter()
    deadline = start + PHASE_LIMIT
    submitted = 0
    late = 0.0
    lat = []
    while len(lat) < n:
        now = time.perf_counter()
        if now > deadline:
            raise BenchError(
                f"{system.name}: open loop at {rate:.0f}/s did not end within {PHASE_LIMIT:.0f} s "
                f"({submitted} of {n} tasks submitted, {len(lat)} done)"
            )
        while submitted < n and start + submitted * gap <= now:
            late = max(late, now - (start + submitted * gap))
            system.submit()
            submitted += 1
            now = time.perf_counter()
        if submitted < n:
            wait = start + submitted * gap - now
        else:
            wait = min(1.0, deadline - now)
        lat += system.collect(max(wait, 0.0))
    return lat, late


def run(system_class, tasks, inflight, seconds, fixed_rate):
    system = system_class()
    try:
        setup_start = time.perf_counter()
        system.start()
        setup = time.perf_counter() - setup_start
        print(
            f"{system.name} summary: {system.describe()}, on {os.cpu_count()} CPUs; "
            f"127.0.0.1 only, results in memory (started in {setup:.1f} s)",
            flush=True,
        )
        closed_loop(system, WARMUP_TASKS, WARMUP_INFLIGHT, "warm-up")
        took, lat = closed_loop(system, tasks, inflight, "closed loop")
        lat.sort()
        rate = tasks / took
        print(
            f"{system.name} closed loop: {rate:.0f} tasks/s ({tasks} tasks, {inflight} in flight, {took:.2f} s); "
            f"p50 {percentile(lat, 0.50) * 1e3:.2f} ms p99 {percentile(lat, 0.99) * 1e3:.2f} ms",
            flush=True,
        )
        half = fixed_rate if fixed_rate else max(rate / 2.0, 1.0)
        if seconds == 0:
            print(f"{system.name} open loop: skipped (FABRIC_BENCH_SECONDS=0)", flush=True)
            return
        lat_half, late = open_loop(system, half, seconds)
        lat_half.sort()
        print(
            f"{system.name} open loop at {half:.0f}/s: "
            f"p50 {percentile(lat_half, 0.50) * 1e3:.2f} ms p99 {percentile(lat_half, 0.99) * 1e3:.2f} ms "
            f"({seconds} s, {len(lat_half)} tasks; submits at most {late * 1e3:.2f} ms late)",
            flush=True,
        )
    finally:
        system.close()


def on_alarm(_signum, _frame):
    raise BenchError(f"the run did not end within {RUN_LIMIT:.0f} s")


def on_term(_signum, _frame):
    # timeout(1) or peers.sh stopping the run: shut the system down all the same.
    raise BenchError("terminated")


def main():
    parser = argparse.ArgumentParser(
        description="cluster_load's shape on Ray or Dask (knobs: FABRIC_BENCH_TASKS, "
        "FABRIC_BENCH_INFLIGHT, FABRIC_BENCH_SECONDS, FABRIC_BENCH_RATE)"
    )
    parser.add_argument("system", choices=["ray", "dask"])
    args = parser.parse_args()
    tasks = env_u64("FABRIC_BENCH_TASKS", 20_000)
    inflight = env_u64("FABRIC_BENCH_INFLIGHT", 512)
    seconds = env_u64("FABRIC_BENCH_SECONDS", 5)
    fixed_rate = env_u64("FABRIC_BENCH_RATE", 0)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.alarm(int(RUN_LIMIT))
    try:
        run({"ray": Ray, "dask": Dask}[args.system], tasks, inflight, seconds, fixed_rate)
    except BenchError as e:
        print(f"peers.py: {e}", file=sys.stderr)
        return 1
    finally:
        signal.alarm(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
