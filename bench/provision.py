"""Benchmark: setup and teardown against a local AWS stand-in with real-ish round-trip latency.

Starts ../shared/bench/awsim.py (moto behind a middleware that sleeps AWSIM_LATENCY_MS per request
and logs each request's start/end), then runs, each on a fresh server, as subprocesses:
  * the baseline: bench/original_flow.py, the 27 serial calls of AWS's 2019 script;
  * ours: `amazonei_setup.py --yes` setup, then `teardown --yes`.
It prints wall seconds, API calls by action, and the number of sequential round trips on the
critical path (the longest chain of requests each starting after the previous one ended, from the
log), next to the lower bound derived from the dependency graph:

  setup    5 = reads (all concurrent) → create role ∥ profile ∥ group ∥ key → add role to profile
               → run_instances → describe (running, public DNS)
  teardown 5 = look-ups (concurrent) → terminate ∥ delete endpoint ∥ delete key → describe
               (terminated) → remove role from profile ∥ delete inline policy ∥ delete group
               → delete profile ∥ delete role

Each server is warmed first (one read per service, for both sides alike): moto builds a region's
EC2 backend (default VPC, ~1,200 AMIs) on its first request, a cold start real AWS does not have.

Also `--help` start-up time (median of several runs). Usage:
  python bench/provision.py [--latency-ms 100] [--repeat 3] [--awsim PATH]
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
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOWER_BOUND = {"setup": 5, "teardown": 5}
ORIGINAL_CALLS = 27


def sequential_depth(requests: list[dict]) -> int:
    """Longest chain of non-overlapping requests = max set of disjoint intervals (greedy by end)."""
    depth, last_end = 0, float("-inf")
    for r in sorted(requests, key=lambda r: r["t1"]):
        if r["t0"] >= last_end:
            depth, last_end = depth + 1, r["t1"]
    return depth


class Server:
    def __init__(self, awsim: Path, latency_ms: int, workdir: Path, extra_env: dict | None = None):
        """extra_env: more AWSIM_* settings (e.g. AWSIM_PENDING_S, the state delays bench/time_to_ssh.py uses)."""
        self.log = workdir / "awsim.log"
        portfile = workdir / "port"
        env = {**os.environ, "AWSIM_LATENCY_MS": str(latency_ms), "AWSIM_LOG": str(self.log), **(extra_env or {})}
        self.proc = subprocess.Popen([sys.executable, str(awsim), str(portfile)], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while not portfile.exists():
            if time.time() > deadline or self.proc.poll() is not None:
                raise SystemExit("awsim did not start")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{portfile.read_text().strip()}"

    def requests_between(self, t0: float, t1: float) -> list[dict]:
        lines = [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]
        return [r for r in lines if t0 <= r["t0"] <= t1]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def run(cmd: list[str], env: dict) -> tuple[float, float, float]:
    t0 = time.time()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    t1 = time.time()
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return t0, t1, t1 - t0


def measure(awsim: Path, latency: int, label: str, commands: list[tuple[str, list[str]]], home: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(awsim, latency, Path(tmp))
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ENDPOINT_URL=server.url, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                   AWS_EC2_METADATA_DISABLED="true", HOME=str(home), AMAZONEI_SETUP_HOME=str(home / ".aei"),
                   AWS_CONFIG_FILE=str(home / "none"), AWS_SHARED_CREDENTIALS_FILE=str(home / "none"))
        results = {}
        warm_up(server.url)
        try:
            for phase, cmd in commands:
                t0, t1, wall = run(cmd, env)
                reqs = server.requests_between(t0, t1)
                results[phase] = {"wall_s": wall, "calls": len(reqs), "depth": sequential_depth(reqs),
                                  "by_action": Counter(r["action"] for r in reqs)}
        finally:
            server.stop()
    return results


def warm_up(url: str) -> None:
    import boto3

    session = boto3.Session(region_name="us-west-2", aws_access_key_id="testing", aws_secret_access_key="testing")
    ec2 = session.client("ec2", endpoint_url=url)
    ec2.describe_vpcs()
    ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["warm-up"]}])
    ec2.describe_vpc_endpoint_services(ServiceNames=["com.amazonaws.us-west-2.elastic-inference.runtime"])
    session.client("iam", endpoint_url=url).list_roles()
    session.client("sts", endpoint_url=url).get_caller_identity()


def help_time(repeat: int = 9) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "amazonei_setup.py", "--help"], cwd=ROOT, capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; medians are reported")
    parser.add_argument("--awsim", type=Path, default=ROOT.parent / "shared" / "bench" / "awsim.py")
    args = parser.parse_args()
    py = sys.executable
    ours_setup = [py, "amazonei_setup.py", "--region", "us-west-2", "--instance-type", "m5.xlarge", "--yes",
                  "--name", "bench", "--ssh-cidr", "198.51.100.4/32", "--output", "json"]
    ours_teardown = [py, "amazonei_setup.py", "teardown", "--region", "us-west-2", "--name", "bench", "--yes"]
    baseline, ours = [], []
    with tempfile.TemporaryDirectory() as home:
        for i in range(args.repeat):
            baseline.append(measure(args.awsim, args.latency_ms, "baseline",
                                    [("setup", [py, "bench/original_flow.py", "us-west-2", "m5.xlarge"])],
                                    Path(home) / f"b{i}"))
            ours.append(measure(args.awsim, args.latency_ms, "ours",
                                [("setup", ours_setup), ("teardown", ours_teardown)], Path(home) / f"o{i}"))

    def med(rows, phase, key):
        return statistics.median(r[phase][key] for r in rows)

    print(f"latency {args.latency_ms} ms per request, {args.repeat} runs each, medians\n")
    print(f"{'':28}{'wall s':>8}{'calls':>7}{'round trips':>13}{'lower bound':>13}")
    b_wall = med(baseline, "setup", "wall_s")
    print(f"{'original (27 serial calls)':28}{b_wall:8.2f}{med(baseline, 'setup', 'calls'):7.0f}"
          f"{med(baseline, 'setup', 'depth'):13.0f}{'':>13}")
    for phase in ("setup", "teardown"):
        print(f"{'amazonei-setup ' + phase:28}{med(ours, phase, 'wall_s'):8.2f}{med(ours, phase, 'calls'):7.0f}"
              f"{med(ours, phase, 'depth'):13.0f}{LOWER_BOUND[phase]:13d}")
    print(f"\nsetup wall time vs original, same run: {med(ours, 'setup', 'wall_s') / b_wall:.2f}x")
    for phase in ("setup", "teardown"):
        actions = ", ".join(f"{a} {n}" for a, n in sorted(ours[-1][phase]["by_action"].items()))
        print(f"\n{phase} calls by action (last run): {actions}")
    print(f"\n--help start-up: {help_time() * 1000:.0f} ms (median of 9)")


if __name__ == "__main__":
    main()
