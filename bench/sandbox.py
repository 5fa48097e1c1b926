"""Benchmark: how long each `--sandbox` command takes, as a new user runs them one after another.

Each command is a separate process in a fresh home (nothing cached). In the same run, as baselines:
  * `--help` (the interpreter plus the CLI's own imports: the floor of any command), and
  * `python -c "import boto3"` (the SDK's import: paid by every command that talks to AWS);
  * the sandbox as it was before the background server (one in-process moto per command, opened and saved
    around the command), when `--before PATH` names a checkout of that version (e.g. a `git worktree` at
    f1c868b).
Prints the median wall time (and CPU time) of each command over `--repeat` rounds, and its ratio to `--help`.

  python bench/sandbox.py [--repeat 3] [--before /path/to/old/checkout]
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-west-2"
STEPS = [  # (label, argv): the README's sandbox walk-through, plus the commands a user repeats
    ("setup (first command: starts the sandbox)", ["--sandbox", "--region", REGION, "--instance-type", "m5.xlarge",
                                                    "--yes", "--name", "bench"]),
    ("list", ["list", "--sandbox", "--region", REGION]),
    ("list (again)", ["list", "--sandbox", "--region", REGION]),
    ("setup --dry-run", ["--sandbox", "--region", REGION, "--instance-type", "m5.xlarge", "--yes", "--dry-run"]),
    ("setup (a second deployment)", ["--sandbox", "--region", REGION, "--instance-type", "m5.xlarge", "--yes",
                                     "--name", "bench2"]),
    ("teardown", ["teardown", "--sandbox", "--region", REGION, "--name", "bench", "--yes"]),
    ("teardown (the second)", ["teardown", "--sandbox", "--region", REGION, "--name", "bench2", "--yes"]),
]


def timed(argv: list[str], env: dict, cwd: Path) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def fresh_env(home: Path) -> dict:
    # As on a user's machine: no AWS settings, and Python caches compiled bytecode (this workplace turns that off,
    # which would add ~0.1 s of compiling to every command of the checkout being measured).
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(HOME=str(home), AMAZONEI_SETUP_HOME=str(home / ".amazonei-setup"), NO_COLOR="1",
               AWS_EC2_METADATA_DISABLED="true")
    return env


def stop_server(home: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from amazonei_setup.sandbox import server as sandbox_server

    sandbox_server.stop(home / ".amazonei-setup" / "sandbox")


def round_of(checkout: Path) -> dict[str, tuple[float, float]]:
    home = Path(tempfile.mkdtemp(prefix="bench-sandbox-"))
    env = fresh_env(home)
    times = {"--help": timed([sys.executable, "amazonei_setup.py", "--help"], env, checkout),
             "import boto3": timed([sys.executable, "-c", "import boto3"], env, checkout)}
    try:
        for label, argv in STEPS:
            times[label] = timed([sys.executable, "amazonei_setup.py", *argv], env, checkout)
        # A later session: the server stopped (idle), caches warm. The command starts a new server.
        stop_server(home)
        times["list (server restarted, caches warm)"] = timed(
            [sys.executable, "amazonei_setup.py", "list", "--sandbox", "--region", REGION], env, checkout)
    finally:
        stop_server(home)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--before", type=Path, help="a checkout of the version to compare with")
    options = parser.parse_args()
    checkouts = {"now": ROOT} | ({"before": options.before} if options.before else {})
    rounds: dict[str, list[dict]] = {name: [] for name in checkouts}
    for _ in range(options.repeat):
        for name, checkout in checkouts.items():  # interleaved: both see the same machine load
            rounds[name].append(round_of(checkout))
    labels = list(rounds["now"][0])
    print(f"median of {options.repeat} rounds, {os.cpu_count()} CPUs; wall s (CPU s), ratio to --help")
    header = f"{'command':44}" + "".join(f"{name:>22}" for name in checkouts)
    print(header)
    for label in labels:
        cells = []
        for name in checkouts:
            wall = statistics.median(r[label][0] for r in rounds[name])
            cpu = statistics.median(r[label][1] for r in rounds[name])
            base = statistics.median(r["--help"][0] for r in rounds[name])
            cells.append(f"{wall:6.2f} ({cpu:5.2f}) x{wall / base:4.1f}")
        print(f"{label:44}" + "".join(f"{c:>22}" for c in cells))


if __name__ == "__main__":
    main()
