"""Ready means the accelerator answers: after SSH answers, one probe over ssh asks the machine about its accelerator
(`nvidia-smi -L` for gpu, `neuron-ls` for inf2, the DLAMI's EISetupValidator.py for EI) and the ready summary says
what answered ("GPU: NVIDIA A10G", "Neuron: 2 cores") or what did not, as a warning: the machine runs either way, so
nothing is rolled back. The sandbox has no accelerator (its instances are shells on this machine): it says so and
runs no probe (this machine's own GPU, if any, would be a false answer)."""
from __future__ import annotations

import re
import subprocess

PROBE = r'''
if command -v nvidia-smi >/dev/null 2>&1; then out=$(nvidia-smi -L 2>&1); echo "GPU $?"; echo "$out"; exit 0; fi
if command -v neuron-ls >/dev/null 2>&1; then out=$(neuron-ls 2>&1); echo "NEURON $?"; echo "$out"; exit 0; fi
for v in "$HOME/anaconda3/bin/EISetupValidator.py" /opt/conda/bin/EISetupValidator.py; do
  if [ -f "$v" ]; then out=$(python "$v" 2>&1); echo "EI $?"; echo "$out" | tail -n 3; exit 0; fi
done
echo "NONE 0"
'''
EXPECTED = {"gpu": "GPU", "inf2": "NEURON"}  # anything else with an EI type: "EI"
TOOL = {"GPU": "nvidia-smi -L", "NEURON": "neuron-ls", "EI": "EISetupValidator.py"}
SANDBOX = {"status": "none", "detail": "none in the sandbox (its instances are shells on this machine)"}


def expected_kind(family: str | None, accelerator_type: str | None) -> str | None:
    if family:
        return EXPECTED.get(family)
    return "EI" if accelerator_type else None


def summarize(output: str, expected: str | None) -> dict:
    """The probe's output as {status: answers|failed, kind, detail}."""
    lines = output.strip().splitlines()
    head = (lines[0].split() if lines else ["NONE", "0"]) + ["1"]
    kind, code, rest = head[0], head[1], lines[1:]
    if kind == "NONE":
        tool = TOOL.get(expected or "", "nvidia-smi, neuron-ls or EISetupValidator.py")
        return {"status": "failed", "kind": None, "detail": f"no accelerator answered ({tool} not found)"}
    if code != "0":
        last = rest[-1].strip() if rest else f"exit {code}"
        return {"status": "failed", "kind": kind, "detail": f"{TOOL[kind]} failed: {last}"}
    if kind == "GPU":
        names = [re.sub(r"^GPU \d+:\s*|\s*\(UUID:.*$", "", line).strip() for line in rest if line.startswith("GPU ")]
        if not names:
            return {"status": "failed", "kind": kind, "detail": "nvidia-smi -L listed no GPU"}
        detail = f"GPU: {names[0]}" if len(set(names)) == 1 and len(names) == 1 else \
            f"GPU: {len(names)} x {names[0]}" if len(set(names)) == 1 else "GPU: " + ", ".join(names)
    elif kind == "NEURON":
        cores = sum(int(m.group(1)) for line in rest if (m := re.match(r"^\|\s*\d+\s*\|\s*(\d+)\s*\|", line)))
        if not cores:
            return {"status": "failed", "kind": kind, "detail": "neuron-ls listed no Neuron core"}
        detail = f"Neuron: {cores} core{'s' if cores != 1 else ''}"
    else:
        detail = "EI: the validator passed"
    status = "answers"
    if expected and kind != expected:
        status, detail = "failed", f"{detail}, but this deployment expected {TOOL[expected]} to answer"
    return {"status": status, "kind": kind, "detail": detail}


def probe(target, expected: str | None, timeout: float = 60.0) -> dict:
    try:
        done = subprocess.run([*target.ssh[:-1], "-T", target.ssh[-1], "bash -s"], input=PROBE.encode(),
                              capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": "failed", "kind": None, "detail": f"the accelerator probe did not finish in {timeout:g} s"}
    if done.returncode == 255:
        return {"status": "failed", "kind": None,
                "detail": f"ssh failed: {done.stderr.decode(errors='replace').strip()[-200:]}"}
    return summarize(done.stdout.decode(errors="replace"), expected)


def check_all(args, ui, instances: list, access, family: str | None, accelerator_type: str | None,
              warnings: list[str]) -> dict | None:
    """The result's `accelerator_check` for the deployment's running instances (the first failure as a warning)."""
    from amazonei_setup.cli.commands import remote
    from amazonei_setup.core.events import Event
    from amazonei_setup.flows import provision

    running = [i for i in instances if i.state == "running" and i.host]
    if not running:
        return None
    if all(provision.is_sandboxed(i) for i in running):
        return dict(SANDBOX)
    expected = expected_kind(family, accelerator_type)
    found = {}
    for target in remote.targets(args, instances, access):
        if target.instance_id not in {i.id for i in running}:
            continue
        found[target.label] = answer = probe(target, expected)
        if answer["status"] == "answers":
            ui.progress(Event("done", "instance", f"{target.label}: {answer['detail']}", target.instance_id))
        else:
            warnings.append(f"The accelerator on {target.label} did not answer as expected ({answer['detail']}); the "
                            f"machine runs and is billed. Look with `ssh {target.label} "
                            f"{TOOL.get(expected or '', 'nvidia-smi -L')}`.")
    statuses = {a["status"] for a in found.values()}
    first = next(iter(found.values()))
    detail = first["detail"] if len(found) == 1 else "; ".join(f"{k}: {v['detail']}" for k, v in found.items())
    return {"status": "answers" if statuses == {"answers"} else "failed", "detail": detail, "instances": found}
