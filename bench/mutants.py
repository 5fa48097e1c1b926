"""A small mutation check: does the suite notice a deliberate one-line bug?

Each MUTANT is (file, exact old text, new text, what a user would suffer, tests that must catch it). For each, the
worktree is copied (without .git and caches) to a temporary directory, the one edit is applied there (the old text
must occur exactly once), and only the named tests run (`-x`: the first failure is enough). A mutant whose tests
all pass SURVIVED: the suite does not guard that behaviour. The tests are named per mutant to keep the run short
(the whole suite per mutant would take hours on a small machine); a survivor may still be caught elsewhere, so
before adding a test for one, check with the whole suite.

Usage (from the worktree):
  python bench/mutants.py                  # every mutant
  python bench/mutants.py lock-release ... # only these (by id)
  python bench/mutants.py --baseline       # the named tests on the unmutated copy (they must pass)
  python bench/mutants.py --list
Exit status 1 when a mutant survived. docs/TESTING.md lists what the mutants cover.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PKG = "amazonei_setup/"


@dataclass(frozen=True)
class Mutant:
    id: str
    file: str
    old: str
    new: str
    harm: str
    tests: tuple[str, ...]


def m(id_, file, old, new, harm, *tests):
    return Mutant(id_, PKG + file, old, new, harm, tests)


T_QUOTA = "tests/test_mutation_guards.py::TestQuota"
T_FAILOVER = "tests/test_mutation_guards.py::TestFailover"
T_LOCK = "tests/test_mutation_guards.py::TestLock"
T_ALARM = "tests/test_mutation_guards.py::TestIdleAlarm"
T_FLEET = "tests/test_mutation_guards.py::TestFleet"
T_OUTPUT = "tests/test_mutation_guards.py::TestOutput"
T_SSH = "tests/test_mutation_guards.py::TestSshConfig"
T_SSM = "tests/test_ssm_access.py"
T_WORKDIR = "tests/test_workdir.py"

MUTANTS = (
    # ---- quotas -------------------------------------------------------------------------------------------------
    m("quota-code-g", "core/capacity.py", '"L-DB2E81BA"', '"L-DB2E81B4"',
      "the preflight reads the wrong quota for every g4dn/g5/g6 launch", T_QUOTA),
    m("quota-code-inf", "core/capacity.py", '"L-1945791B"', '"L-1945791C"',
      "the preflight reads the wrong quota for every inf2 launch", T_QUOTA),
    m("quota-spot-counted", "aws/resources/quota.py", 'instance.get("InstanceLifecycle") == "spot"))', 'False))',
      "Spot instances counted against the On-Demand quota: a false refusal", T_QUOTA),
    m("quota-threads", "aws/resources/quota.py", 'cpu["CoreCount"] * cpu.get("ThreadsPerCore", 1)', 'cpu["CoreCount"]',
      "in-use vCPUs halved: the preflight passes, AWS refuses late", T_QUOTA),
    m("quota-start-unchecked", "cli/commands/setup.py", 'return sum(1 for state in states if state == "stopped")',
      "return 0", "a re-run that starts stopped instances is not checked against the quota", T_QUOTA),
    # ---- failover -----------------------------------------------------------------------------------------------
    m("failover-serves-by-subnet", "flows/provision.py", "if zone.az in {az_of.get(s) for s in endpoint.subnet_ids}:",
      "if zone.subnet_id in set(endpoint.subnet_ids):",
      "a second subnet of one AZ added to the endpoint: AWS refuses, failover breaks", T_FAILOVER),
    m("failover-no-endpoint-wait", "flows/provision.py", "if run.endpoint_changed and run.wait != WAIT_RUNNING:",
      "if False:", "'EI ready' while the endpoint is pending again after a zone was added", T_FAILOVER),
    m("failover-fullest-subnet", "core/capacity.py", "best = max(alike, key=lambda s: (s.free_ips, s.id))",
      "best = min(alike, key=lambda s: (s.free_ips, s.id))", "launch refused for lack of addresses", T_FAILOVER),
    # ---- the lock (a lease) -------------------------------------------------------------------------------------
    m("lock-lease-6s", "aws/resources/lock.py", "LEASE_S = 60.0", "LEASE_S = 6.0",
      "the lease lapses between renewals: a live run is taken over, two writers", T_LOCK),
    m("lock-renewal-ignored", "aws/resources/lock.py", "if seen.run != first.run or seen.version != first.version:",
      "if seen.run != first.run:", "a live holder that renews is taken over", T_LOCK),
    m("lock-local-live-taken", "aws/resources/lock.py", "if holder.age is not None and holder.age >= holder.lease:",
      "if holder.age is not None:", "a live holder on this machine is taken over", T_LOCK),
    m("lock-release-others", "aws/resources/lock.py", "if holder is not None and holder.run == run:",
      "if holder is not None:", "release deletes the lock another run now holds", T_LOCK),
    # ---- the idle alarm -----------------------------------------------------------------------------------------
    m("alarm-threshold-0", "aws/resources/alarm.py", '"Threshold": 1,', '"Threshold": 0,',
      "every period counts as idle: busy instances stopped", T_ALARM),
    m("alarm-or", "aws/resources/alarm.py", "IF(cpu < {IDLE_CPU_PERCENT} AND", "IF(cpu < {IDLE_CPU_PERCENT} OR",
      "an EI host busy over the network is stopped", T_ALARM),
    m("alarm-greater-than", "aws/resources/alarm.py", '"GreaterThanOrEqualToThreshold"', '"GreaterThanThreshold"',
      "the alarm can never fire", T_ALARM),
    m("alarm-average-cpu", "aws/resources/alarm.py", 'stat("cpu", "CPUUtilization", "Maximum")',
      'stat("cpu", "CPUUtilization", "Average")', "a bursty busy box looks idle and is stopped", T_ALARM),
    m("alarm-missing-breaching", "aws/resources/alarm.py", '"TreatMissingData": "notBreaching"',
      '"TreatMissingData": "breaching"', "missing data (a stopped box) counts as idle", T_ALARM),
    m("alarm-one-period", "aws/resources/alarm.py", '"DatapointsToAlarm": periods(minutes),', '"DatapointsToAlarm": 1,',
      "one quiet period of many stops the box", T_ALARM),
    m("idle-stop-args-region", "cli/commands/idle_stop.py",
      "alarm.put_alarm(cloudwatch, name, each.id, aws.region, minutes, tag_list)",
      "alarm.put_alarm(cloudwatch, name, each.id, args.region, minutes, tag_list)",
      "without --region the stop action names no region: an alarm that cannot act", T_ALARM),
    m("idle-stop-no-region-tag", "cli/commands/idle_stop.py", "tag_list = tags.tag_list(name, owner, aws.region)",
      "tag_list = tags.tag_list(name, owner)", "the alarm lacks the region tag", T_ALARM),
    # ---- ssh config ---------------------------------------------------------------------------------------------
    m("ssh-symlink-replaced", "local/sshconfig.py", "return path.resolve() if path.is_symlink() else path",
      "return path", "a dotfiles symlink replaced by a plain file", T_SSH),
    m("ssh-lowercase-host", "local/sshconfig.py", 'if len(words) == 2 and words[0].lower() == "host":',
      'if len(words) == 2 and words[0] == "Host":', "the user's own `host demo` overridden", T_SSH),
    m("teardown-gone-keeps-block", "cli/commands/teardown.py",
      "forget_ssh_entry(args)  # a block left by a deployment removed some other way", "pass  #",
      "`ssh demo` goes to a released address", T_SSH),
    m("fleet-aliases-unchecked", "cli/commands/setup.py",
      "taken = [a for e in entries for a in e.aliases if not args.sandbox and sshconfig.user_defines(a)]",
      "taken = [a for e in entries[:1] for a in e.aliases if not args.sandbox and sshconfig.user_defines(a)]",
      "the user's own host name overridden by a fleet's later alias", T_SSH),
    # ---- stop/start and costs -----------------------------------------------------------------------------------
    m("stop-endpoint-one-zone", "cli/commands/power.py", "ENDPOINT_HOURLY_USD * len(endpoint.subnet_ids or (1,))",
      "ENDPOINT_HOURLY_USD", "the bill after stop understated", T_FLEET),
    m("stop-unpriced-volume", "cli/commands/power.py", "            known = False\n        else:",
      "            pass\n        else:", "a total that looks complete without a volume", T_FLEET),
    m("start-any-running", "cli/commands/power.py", 'already = all(i.state == "running" for i in inventory.instances)',
      'already = any(i.state == "running" for i in inventory.instances)',
      "the stopped instances of a fleet are never started", T_FLEET),
    m("plan-cost-one", "cli/ui.py", "total = plan.hourly_usd * plan.count if", "total = plan.hourly_usd if",
      "the plan's cost for --count N understated", T_FLEET),
    m("ready-cost-one", "cli/ui.py", "${d['hourly_usd'] * max(len(fleet), 1):.3f}", "${d['hourly_usd']:.3f}",
      "the ready panel's cost for a fleet understated", T_FLEET),
    m("status-cost-last", "cli/commands/status.py", "total_so_far += cost", "total_so_far = cost",
      "status's cost so far for a fleet: the last instance's", T_FLEET),
    # ---- output, printed commands, policy, teardown -------------------------------------------------------------
    m("start-connect-stderr", "cli/render.py",
      '    ui.result(Copyable(_caption("Connect (the public address is new after a start):"',
      '    ui.show(Copyable(_caption("Connect (the public address is new after a start):"',
      "a script reading start's stdout never sees the new address", T_OUTPUT),
    m("profile-unquoted", "cli/commands/printed.py", 'flags += f" --profile {shlex.quote(args.profile)}"',
      'flags += f" --profile {args.profile}"', "a pasted command splits or runs what the name holds", T_OUTPUT),
    m("policy-no-lock-delete", "core/permissions.py",
      'Grant("DeploymentLock", ("ssm:PutParameter", "ssm:GetParameter", "ssm:DeleteParameter")',
      'Grant("DeploymentLock", ("ssm:PutParameter", "ssm:GetParameter")',
      "the printed policy cannot release the lock", T_OUTPUT),
    m("teardown-terminated-early", "flows/teardown.py", 'done={"terminated"}, what=f"Instance {item.id}"',
      'done={"shutting-down", "terminated"}, what=f"Instance {item.id}"',
      "'Terminated' said before it is true", T_OUTPUT),
    # ---- no public IP: Session Manager's endpoints, private subnets; Spot cancels -------------------------------
    m("ssm-endpoints-unseen-by-teardown", "flows/deployments.py",
      '"endpoints": lambda: network.find_tool_endpoints(ec2, aws.region),',
      '"endpoints": lambda: network.find_ei_endpoints(ec2, aws.region),',
      "teardown leaves Session Manager's endpoints billing ($22/month) after the last private deployment",
      T_SSM + "::test_session_managers_endpoints_are_shared_and_leave_with_the_last_deployment"),
    m("ssm-endpoint-shared-not-joined", "flows/provision.py",
      "_join(run, current, group_id, add_subnet=None, enable_private_dns=enable_dns, service=service)",
      "pass",
      "a deployment using another's endpoint is not attached to it: the other's teardown deletes it from under it",
      T_SSM + "::test_session_managers_endpoints_are_shared_and_leave_with_the_last_deployment"),
    m("private-subnet-unseen", "cli/wizard.py",
      "return way in (access.NAT, access.NO_WAY_OUT) and not subnet.public_ip_on_launch",
      "return False",
      "an instance in a private subnet gets a public IP that reaches nothing, and port 22 there is not refused",
      T_SSM + "::test_port_22_in_a_private_subnet_is_refused_before_anything_is_created"),
    m("private-rerun-not-converged", "cli/wizard.py",
      'elif instance and not instance.public_ip and access_mode == "ssm":', "elif False:",
      "a private deployment whose endpoint was deleted stays unreachable after a re-run",
      T_SSM + "::test_a_rerun_of_a_private_deployment_makes_a_deleted_endpoint_again"),
    m("ssm-endpoint-race-lost", "flows/provision.py",
      "ids.append(_join_the_winner(run, group_id, service))", "raise",
      "two private setups in one VPC at once: the second fails and rolls back",
      T_SSM + "::test_a_setup_that_loses_the_race_for_an_endpoint_joins_the_winners"),
    m("spot-cancel-trusted", "aws/resources/instance.py",
      "return [r for r in request_ids if spot_request_live(ec2, r)]", "return []",
      "teardown terminates the instance of a Spot request EC2 did not cancel, and EC2 launches it again",
      "tests/test_spot.py::test_a_spot_request_ec2_does_not_cancel_keeps_its_instance_and_teardown_says_so"),
    # ---- the work directory ---------------------------------------------------------------------------------------
    m("workdir-rsync-all", "cli/commands/workdir.py", 'argv = ["rsync", "-a", "--stats",',
      'argv = ["rsync", "-a", "--ignore-times", "--stats",',
      "every re-copy sends the whole directory again",
      T_WORKDIR + "::test_a_second_copy_with_rsync_sends_only_the_changed_file"),
    m("workdir-size-unchecked", "cli/commands/workdir.py", "if total <= SIZE_LIMIT or args.yes:", "if True:",
      "a 20 GB data directory is copied to every instance without a question",
      T_WORKDIR + "::test_over_the_size_limit_without_a_terminal_or_yes_is_one_sentence_and_copies_nothing"),
    m("workdir-ctrl-c-ignored", "cli/commands/workdir.py", "            if stop.wait(0.2):", "            if False:",
      "Ctrl-C during setup's copy is ignored until the copy ends",
      T_WORKDIR + "::test_ctrl_c_during_setups_copy_stops_it_and_the_script_and_says_how_to_copy_again"),
)


def copy_tree(dest: Path) -> None:
    shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns(".git", "__pycache__", ".pytest_cache", ".ruff_cache",
                                                               ".hypothesis", ".venv", "results"))


def apply(tree: Path, mutant: Mutant) -> None:
    path = tree / mutant.file
    text = path.read_text()
    found = text.count(mutant.old)
    if found != 1:
        raise SystemExit(f"{mutant.id}: the old text occurs {found} times in {mutant.file}, not once")
    path.write_text(text.replace(mutant.old, mutant.new))


def run_tests(tree: Path, tests: tuple[str, ...], timeout: float) -> tuple[bool, str]:
    """(passed, the first failing test's id or the tail of the output)."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    # The named tests run whatever their marks (a slow one is named because it is the one that guards).
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-n", "0", "-o", "addopts=", *tests]
    try:
        done = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return False, "timed out (counted as caught: the mutant hangs a test)"
    if done.returncode == 0:
        return True, ""
    if done.returncode == 5:  # nothing ran: no verdict, not a catch
        raise SystemExit(f"no test ran for {' '.join(tests)}: check the names (and that they are not skipped)")
    failed = [line for line in done.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    return False, (failed[0] if failed else done.stdout.strip().splitlines()[-1] if done.stdout.strip() else
                   done.stderr.strip()[-300:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ids", nargs="*")
    parser.add_argument("--baseline", action="store_true")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--tests", nargs="+", help="run these tests for every chosen mutant instead of its own")
    args = parser.parse_args(argv)
    chosen = [mu for mu in MUTANTS if not args.ids or mu.id in args.ids]
    if args.list:
        for mu in chosen:
            print(f"{mu.id:28} {mu.file:32} {mu.harm}")
        return 0
    survived = []
    with tempfile.TemporaryDirectory(prefix="amazonei-mutants-") as tmp:
        if args.baseline:
            tree = Path(tmp) / "baseline"
            copy_tree(tree)
            tests = tuple(dict.fromkeys(t for mu in chosen for t in mu.tests))
            ok, why = run_tests(tree, tests, args.timeout * 3)
            print(f"baseline: {'passed' if ok else 'FAILED ' + why}")
            return 0 if ok else 1
        for mu in chosen:
            tree = Path(tmp) / mu.id
            copy_tree(tree)
            apply(tree, mu)
            started = time.monotonic()
            ok, why = run_tests(tree, tuple(args.tests or mu.tests), args.timeout)
            took = time.monotonic() - started
            print(f"{'SURVIVED' if ok else 'caught  '} {mu.id:28} {took:5.1f}s  {why}", flush=True)
            if ok:
                survived.append(mu.id)
            shutil.rmtree(tree, ignore_errors=True)
    print(f"{len(chosen) - len(survived)}/{len(chosen)} caught" + (f"; survived: {', '.join(survived)}"
                                                                   if survived else ""))
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
