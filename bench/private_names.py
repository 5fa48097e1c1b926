"""Benchmark: what each use of botocore's insides saves a command on the real-AWS path.

Each speed-up in aws.py / botocore_data.py uses an underscore name of botocore and gives way to botocore's public
behaviour when that name moves (botocore_data.GAVE_WAY). Here each is switched off the same way, one at a time, in a
fresh process that does what a command does with botocore (no AWS call: building clients is the part they speed
up), and compared in the same run with all of them on and all of them off:
  * `command`: one region's clients as setup's discovery builds them (ec2, iam, sts, ssm, cloudwatch);
  * `all-regions`: ec2, iam and cloudwatch clients in every region of the partition, as `list --all-regions` does.
`alias-answers` is the event-alias cache the tool no longer applies (the tests still do, tests/conftest.py): it is
applied here as the tests apply it, to show what it would save a command.
The pickled models are warm (a second command); `--cold` clears them before every process.
Prints the median CPU time (user + system) of each variant's process over `--repeat` rounds, and its difference to
`all on`: CPU, not wall time, so a busy machine blurs the comparison less (a command's wall time is about its CPU time
on an idle machine: it makes no AWS call here).

  python bench/private_names.py [--repeat 5] [--cold]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEED_UPS = ["one-service-listing", "pickled-models", "client-classes", "service-models"]

CHILD = r"""
import json, sys
off, scenario, alias = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
from amazonei_setup.aws import botocore_data
botocore_data.GAVE_WAY.update(dict.fromkeys(off, "bench"))
from amazonei_setup.aws import client as aws
ENABLED = ["us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "eu-west-1", "eu-west-2", "eu-west-3",
           "eu-central-1", "eu-north-1", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-southeast-1",
           "ap-southeast-2", "ap-south-1", "sa-east-1"]  # an account's regions enabled by default
if alias:  # tests/conftest.share_event_alias_answers, as the tool had it (conftest itself imports pytest and moto)
    import copy, botocore.hooks
    aliaser, answers, init = botocore.hooks.EventAliaser, {}, botocore.hooks.EventAliaser.__init__
    def __init__(self, event_emitter, event_aliases=None):
        init(self, event_emitter, event_aliases)
        if self._event_aliases == botocore.hooks.EVENT_ALIASES:
            self._alias_name_cache = answers
    def __copy__(self):
        clone = self.__class__(copy.copy(self._emitter), copy.copy(self._event_aliases))
        clone._alias_name_cache = self._alias_name_cache
        return clone
    aliaser.__init__, aliaser.__copy__ = __init__, __copy__
if scenario == "command":
    a = aws.Aws("us-west-2", credentials={"aws_access_key_id": "x", "aws_secret_access_key": "y"})
    a.preload("ec2", "iam", "sts", "ssm", "cloudwatch")
else:
    a = aws.Aws("us-west-2", credentials={"aws_access_key_id": "x", "aws_secret_access_key": "y"})
    for region in ENABLED:
        a.in_region(region).preload("ec2", "iam", "cloudwatch")
"""


def run(off: list[str], scenario: str, alias: bool, env: dict, cold: bool, cache: Path) -> float:
    if cold:
        shutil.rmtree(cache, ignore_errors=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", CHILD, json.dumps(off), scenario, "1" if alias else "0"], cwd=ROOT,
                   env=env, check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cold", action="store_true")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-private-"))
    cache = home / "cache"
    env = {**os.environ, "HOME": str(home), "AMAZONEI_SETUP_HOME": str(home / ".a"), "XDG_CACHE_HOME": str(cache)}
    env.pop("AWS_ENDPOINT_URL", None)
    variants = [("all on", [], False), ("all off (botocore's public behaviour)", SPEED_UPS, False)]
    variants += [(f"{name} off", [name], False) for name in SPEED_UPS]
    variants += [("all on + alias-answers", [], True)]
    for scenario in ("command", "all-regions"):
        run([], scenario, False, env, False, cache)  # fills the pickles
        times: dict[str, list[float]] = {label: [] for label, _, _ in variants}
        for _ in range(args.repeat):
            for label, off, alias in variants:
                times[label].append(run(off, scenario, alias, env, args.cold, cache))
        base = statistics.median(times["all on"])
        print(f"\n{scenario} ({'cold' if args.cold else 'warm'} pickles), median of {args.repeat}:")
        for label, _, _ in variants:
            median = statistics.median(times[label])
            print(f"  {label:42s} {median * 1000:7.0f} ms   {(median - base) * 1000:+6.0f} ms   x{median / base:.2f}")
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
