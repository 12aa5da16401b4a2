"""Fleet scaling: wall time of one `harness run` on N SSH targets / wall time on one target.

Each target is a real OpenSSH server on loopback behind a TCP delay proxy that adds `--delay-ms`
of round-trip time (default 50 ms), like devices on a remote network. Targets run concurrently, so
the ratio should stay close to 1 (goal: <= 1.5 for 8 targets).

Protocol: the artifact cache is warmed and every target receives the artifacts in an untimed run
first, so both timed runs do the same work per target (connect, "already on device" checks, runner
jobs, fetches). The timed runs alternate (1, N, 1, N, ...) `--repeats` times; medians are reported.

Caveat on this machine: all "devices" share the controller's 2 CPU cores, so the device-side work
(N runner processes measuring latency at the same time) is CPU-bound here and inflates the ratio
for reasons that do not exist on a real fleet. `--suite` defaults to bench/fleet_suite.yaml, a
light suite (one variant, one thread count, short timing); the smoke suite can be given too.

    python bench/fleet_scaling.py [--targets 8] [--delay-ms 50] [--repeats 3] [--suite FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from delayproxy import DelayProxy  # noqa: E402
from sshd import SSHServer, host_pattern  # noqa: E402


FAILURES: list[str] = []


def run_once(suite: Path, names: list[str], inventory: Path, out: Path, env: dict) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(suite), "--targets",
                           ",".join(names), "--inventory", str(inventory), "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    elapsed = time.perf_counter() - t0
    if proc.returncode == 3:  # a job failed on a target: the run still completed; say so
        FAILURES.append(f"{len(names)} targets: {proc.stderr.strip().splitlines()[-1]}")
        print(f"  warning: {FAILURES[-1]}", file=sys.stderr)
    elif proc.returncode != 0:
        raise SystemExit(f"harness run failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
                         f"{proc.stderr[-3000:]}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", type=int, default=8)
    ap.add_argument("--delay-ms", type=float, default=50.0, help="added round-trip time")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--suite", type=Path, default=ROOT / "bench" / "fleet_suite.yaml")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="fleet-scaling-"))
    env = dict(os.environ, HARNESS_CACHE=str(tmp / "cache"))
    servers, proxies = [], []
    try:
        key = None
        targets = {}
        for i in range(args.targets):
            server = SSHServer(tmp / f"sshd{i}", client_key=key).start()
            key = server.client_key
            proxy = DelayProxy(server.host, server.port, one_way=args.delay_ms / 2000).start()
            servers.append(server)
            proxies.append(proxy)
            kind, blob = Path(f"{server.host_key}.pub").read_text().split()[:2]
            server.known_hosts.write_text(f"{host_pattern('127.0.0.1', proxy.port)} {kind} {blob}\n")
            targets[f"dev{i}"] = server.inventory_entry(port=proxy.port, python=sys.executable,
                                                        connect_timeout=30)
        inventory = tmp / "inventory.yaml"
        inventory.write_text(yaml.safe_dump({"targets": targets}))
        names = list(targets)
        print(f"{args.targets} sshd targets behind {args.delay_ms:g} ms RTT proxies; warming up",
              file=sys.stderr)
        run_once(args.suite, names, inventory, tmp / "warm", env)
        one, many = [], []
        for r in range(args.repeats):
            one.append(run_once(args.suite, names[:1], inventory, tmp / f"one{r}", env))
            many.append(run_once(args.suite, names, inventory, tmp / f"many{r}", env))
            print(f"  repeat {r + 1}: 1 target {one[-1]:.1f} s, {args.targets} targets "
                  f"{many[-1]:.1f} s", file=sys.stderr)
        figures = {
            "targets": args.targets, "rtt_ms": args.delay_ms, "suite": str(args.suite),
            "one_target_s": round(statistics.median(one), 2),
            "n_targets_s": round(statistics.median(many), 2),
            "ratio": round(statistics.median(many) / statistics.median(one), 3),
            "samples": {"one": [round(x, 2) for x in one], "many": [round(x, 2) for x in many]},
            "cpu_count": os.cpu_count(), "runs_with_failed_jobs": FAILURES,
        }
        print(json.dumps(figures, indent=1))
        print(f"fleet scaling: {args.targets} targets / 1 target = {figures['ratio']:.2f} "
              f"(goal <= 1.5)", file=sys.stderr)
        if args.json:
            args.json.write_text(json.dumps(figures, indent=1))
    finally:
        for proxy in proxies:
            proxy.stop()
        for server in servers:
            server.stop()


if __name__ == "__main__":
    main()
