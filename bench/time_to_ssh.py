"""Benchmark: time to the way in. Setup against the local AWS stand-in with AWS-like state delays (an instance
`pending` for AWSIM_PENDING_S, a new EI endpoint `pending` for AWSIM_ENDPOINT_PENDING_S), 100 ms per call.

For each pair of delays (instance / endpoint; 20/40, 30/60 and 0/0 by default), each run on a fresh
../shared/bench/awsim.py server started the way bench/provision.py starts it, as subprocesses:
  * the original: bench/original_flow.py, AWS's 2019 script's calls (it prints the public DNS once its boto3
    waiter, polling every 15 s, sees `running`; it never waits for the endpoint);
  * before (optional, --before PATH): the same setup from another checkout, e.g. the commit before issue 18;
  * ours: `amazonei_setup.py --yes` setup in text mode.
It prints, from the moment each process starts: when the first SSH command appears on its stdout (the original:
its DNS name line), when the run ends, the describe calls it made while waiting, and the floor (the delays:
no client can show SSH before the instance runs, nor be done before the endpoint is available).

Usage: python bench/time_to_ssh.py [--latency-ms 100] [--repeat 1] [--zero-repeat 3] [--delays 20/40 30/60 0/0]
                                   [--before PATH] [--awsim PATH]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.provision import Server, warm_up  # noqa: E402 - bench/ is run as a script

DESCRIBES = ("DescribeInstances", "DescribeVpcEndpoints")
ATTEMPTS = 3  # moto behind awsim now and then answers a request with an unreadable reply: run that round again


class RunFailed(Exception):
    pass


def timed(cmd: list[str], env: dict, cwd: Path, is_ssh) -> dict:
    """Run cmd; the time its first stdout line satisfying is_ssh appeared, and when it ended (seconds from its
    start). stdout is read line by line as the process writes it (a pipe: what a script reading it would see)."""
    with tempfile.TemporaryFile() as stderr:
        t0 = time.time()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=stderr, text=True)
        ssh_at = None
        for line in proc.stdout:
            if ssh_at is None and is_ssh(line.strip()):
                ssh_at = time.time() - t0
        code = proc.wait()
        t1 = time.time()
        if code != 0:
            stderr.seek(0)
            raise RunFailed(f"{' '.join(cmd)} failed ({code}):\n{stderr.read().decode()[-2000:]}")
    return {"t0": t0, "t1": t1, "ssh_s": ssh_at, "done_s": t1 - t0}


def measure(awsim: Path, latency: int, delays: tuple[float, float], cmd: list[str], cwd: Path, is_ssh,
            home: Path) -> dict:
    instance_s, endpoint_s = delays
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(awsim, latency, Path(tmp), {"AWSIM_PENDING_S": str(instance_s),
                                                   "AWSIM_ENDPOINT_PENDING_S": str(endpoint_s)})
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ENDPOINT_URL=server.url, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                   AWS_EC2_METADATA_DISABLED="true", HOME=str(home), AMAZONEI_SETUP_HOME=str(home / ".aei"),
                   AWS_CONFIG_FILE=str(home / "none"), AWS_SHARED_CREDENTIALS_FILE=str(home / "none"),
                   AWS_DEFAULT_REGION="us-west-2")
        try:
            warm_up(server.url)
            row = timed(cmd, env, cwd, is_ssh)
            requests = server.requests_between(row["t0"], row["t1"])
            row["describes"] = sum(r["action"] in DESCRIBES for r in requests)
            row["calls"] = len(requests)
        finally:
            server.stop()
    return row


def attempt(home: Path, *args) -> dict:
    """measure(*args) on a fresh server and home; a failed round (said on stderr) runs again, up to ATTEMPTS times."""
    for number in range(1, ATTEMPTS + 1):
        try:
            return measure(*args, home=home.with_name(f"{home.name}-{number}"))
        except RunFailed as failure:
            print(f"(attempt {number} failed, {'again' if number < ATTEMPTS else 'giving up'}: "
                  f"{str(failure).splitlines()[-1][:200]})", file=sys.stderr, flush=True)
    raise SystemExit("a run failed every attempt")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each variant with delays; medians")
    parser.add_argument("--zero-repeat", type=int, default=3, help="runs of each variant at zero delay; medians")
    parser.add_argument("--delays", nargs="+", default=["20/40", "30/60", "0/0"],
                        help="instance/endpoint seconds pending, e.g. 20/40")
    parser.add_argument("--before", type=Path, help="a checkout of an earlier version to measure alongside")
    parser.add_argument("--awsim", type=Path, default=ROOT.parent / "shared" / "bench" / "awsim.py")
    args = parser.parse_args()
    py = sys.executable
    setup = ["amazonei_setup.py", "--region", "us-west-2", "--instance-type", "m5.xlarge", "--yes", "--name", "bench",
             "--ssh-cidr", "198.51.100.4/32"]
    variants = [("original (2019 script)", [py, "bench/original_flow.py", "us-west-2", "m5.xlarge"], ROOT,
                 lambda line: line.startswith("ec2-") or line.endswith(".amazonaws.com"))]
    if args.before:
        variants.append(("before", [py, *setup], args.before.resolve(), lambda line: line.startswith("ssh -i ")))
    variants.append(("ours", [py, *setup], ROOT, lambda line: line.startswith("ssh -i ")))

    print(f"latency {args.latency_ms} ms per call; seconds from process start; medians of {args.repeat} run(s) with "
          f"delays, {args.zero_repeat} at zero delay\n")
    header = f"{'instance / endpoint':21}{'':24}{'SSH shown':>10}{'done':>8}{'describes':>11}{'calls':>7}"
    print(header)
    with tempfile.TemporaryDirectory() as home:
        for spec in args.delays:
            delays = tuple(float(x) for x in spec.split("/"))
            repeat = args.zero_repeat if delays == (0.0, 0.0) else args.repeat
            label = f"{delays[0]:.0f} s / {delays[1]:.0f} s"
            for name, cmd, cwd, is_ssh in variants:
                rows = [attempt(Path(home) / f"{name[:6]}-{spec.replace('/', '-')}-{i}", args.awsim, args.latency_ms,
                                delays, cmd, cwd, is_ssh) for i in range(repeat)]
                ssh = statistics.median(r["ssh_s"] for r in rows if r["ssh_s"] is not None)
                done = statistics.median(r["done_s"] for r in rows)
                describes = statistics.median(r["describes"] for r in rows)
                calls = statistics.median(r["calls"] for r in rows)
                print(f"{label:21}{name:24}{ssh:10.2f}{done:8.2f}{describes:11.0f}{calls:7.0f}", flush=True)
                label = ""
            print(f"{'':21}{'floor (the delays)':24}{delays[0]:10.2f}{max(delays):8.2f}\n", flush=True)


if __name__ == "__main__":
    main()
