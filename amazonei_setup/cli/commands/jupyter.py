"""`connect --jupyter`: a notebook in your browser. One spelling, on `connect`, because it is a way of connecting (the
tunnel is an ssh connection held open) and `connect --jupyter` already existed as "print the forward command".

On the instance (one `bash -s` over ssh, the script on stdin so the token is in no command line): if our server runs
(`~/.amazonei-setup/jupyter/pid`), reuse it; else find Jupyter (PATH with ~/.local/bin, the DLAMI's /opt/conda and
~/anaconda3), else install JupyterLab into ~/.amazonei-setup/jupyter/venv (said on stderr first), and start it in
~/workdir bound to 127.0.0.1 on a free port with a token this tool generated (JUPYTER_TOKEN: no log scraping). Here:
`ssh -N -L LOCAL:127.0.0.1:PORT NAME` (8888 when free), the URL on stdout once it answers through the tunnel, the
browser opened where there is one, and the tunnel held until Ctrl-C (exit 0; the server keeps running for next
time; `--stop` stops it). With --print or --output json: the server is started and the URL and tunnel command are
the result, nothing is held."""
from __future__ import annotations

import secrets
import shlex
import socket
import subprocess
import time

STATE = ".amazonei-setup/jupyter"
START_TIMEOUT_S = 60.0  # the server must answer this soon after it started (an install comes before it)
TUNNEL_TIMEOUT_S = 30.0

_START = r'''
set -u
state="$HOME/%(state)s"
mkdir -p "$state" && chmod 700 "$state"
if [ -f "$state/pid" ] && kill -0 "$(cat "$state/pid")" 2>/dev/null && [ -f "$state/port" ]; then
  echo "RUNNING $(cat "$state/port") $(cat "$state/token")"; exit 0
fi
export PATH="$HOME/.local/bin:$PATH"
jupyter=""
for candidate in "$(command -v jupyter 2>/dev/null)" /opt/conda/bin/jupyter "$HOME/anaconda3/bin/jupyter" \
                 "$HOME/miniconda3/bin/jupyter" "$state/venv/bin/jupyter"; do
  if [ -n "$candidate" ] && [ -x "$candidate" ]; then jupyter="$candidate"; break; fi
done
if [ -z "$jupyter" ]; then
  echo "INSTALLING"
  { python3 -m venv "$state/venv" && "$state/venv/bin/pip" install -q jupyterlab; } >"$state/install.log" 2>&1 \
    || { echo "FAILED install: $(tail -n 3 "$state/install.log" | tr '\n' ' ')"; exit 3; }
  jupyter="$state/venv/bin/jupyter"
fi
port=""
for candidate in 8888 8889 8890 8891 8892 8893 8894 8895 8896 8897; do
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then port=$candidate; break; fi
done
[ -n "$port" ] || { echo "FAILED no free port from 8888 to 8897 on the instance"; exit 3; }
mkdir -p "$HOME/workdir" && cd "$HOME/workdir"
( umask 077; printf %%s "$TOKEN" > "$state/token"; echo "$port" > "$state/port" )
JUPYTER_TOKEN="$TOKEN" nohup "$jupyter" lab --no-browser --ip=127.0.0.1 --port="$port" \
  --ServerApp.port_retries=0 >"$state/log" 2>&1 </dev/null &
pid=$!
echo "$pid" > "$state/pid"
for _ in $(seq 1 %(tries)d); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "STARTED $port $TOKEN"; exit 0; fi
  if ! kill -0 "$pid" 2>/dev/null; then
    rm -f "$state/pid"; echo "FAILED exited: $(tail -n 3 "$state/log" | tr '\n' ' ')"; exit 4
  fi
  sleep 0.2
done
kill "$pid" 2>/dev/null; rm -f "$state/pid"
echo "FAILED did not listen within %(timeout)d s: $(tail -n 3 "$state/log" | tr '\n' ' ')"; exit 4
'''

_STOP = r'''
state="$HOME/%(state)s"
if [ -f "$state/pid" ] && kill "$(cat "$state/pid")" 2>/dev/null; then rm -f "$state/pid"; echo STOPPED
else rm -f "$state/pid"; echo NONE; fi
'''

_RUNNING = r'''
state="$HOME/%(state)s"
if [ -f "$state/pid" ] && kill -0 "$(cat "$state/pid")" 2>/dev/null; then echo "RUNNING $(cat "$state/port")"
else echo NONE; fi
'''


def _script(template: str, target, body: bytes = b"", timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*target.ssh[:-1], "-T", target.ssh[-1], "bash -s"], input=body or template.encode(),
                          capture_output=True, timeout=timeout)


def running(target) -> int | None:
    """The remote port of our Jupyter server on `target`, or None (not running, or SSH did not answer)."""
    try:
        done = _script(_RUNNING % {"state": STATE}, target, timeout=20)
    except subprocess.TimeoutExpired:
        return None
    words = done.stdout.decode(errors="replace").split()
    return int(words[1]) if done.returncode == 0 and words[:1] == ["RUNNING"] else None


def free_local_port(preferred: int = 8888) -> int:
    for port in (preferred, 0):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise OSError("no free local port")  # pragma: no cover


def _answers(port: int, token: str) -> bool:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
    try:
        connection.request("GET", f"/api/status?token={token}")
        return connection.getresponse().status < 500
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def run(args, env, ui, target, instance, data: dict):
    """Start (or find) the server, then the tunnel; see the module's docstring. Returns the Result."""
    from amazonei_setup.cli.commands import Result
    from amazonei_setup.core.errors import ToolError
    from amazonei_setup.core.events import Event

    label = target.label
    if args.stop:
        done = _script(_STOP % {"state": STATE}, target)
        if done.returncode == 255:
            raise ToolError(f"ssh to {label} failed: {done.stderr.decode(errors='replace').strip()}", code="ssh")
        stopped = done.stdout.decode().strip() == "STOPPED"
        data.update(jupyter="stopped" if stopped else "not-running")
        return Result("connect", data, view="message",
                      message=f"Stopped Jupyter on {label}." if stopped else f"No Jupyter of ours ran on {label}.")
    token = secrets.token_urlsafe(24)
    script = f"TOKEN={shlex.quote(token)}\n" + _START % {"state": STATE, "tries": int(START_TIMEOUT_S / 0.2),
                                                         "timeout": START_TIMEOUT_S}
    with ui.status(f"Starting Jupyter on {label}"):
        child = subprocess.Popen([*target.ssh[:-1], "-T", target.ssh[-1], "bash -s"], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        child.stdin.write(script.encode())
        child.stdin.close()
        answer = ""
        for line in iter(child.stdout.readline, b""):
            answer = line.decode(errors="replace").strip()
            if answer == "INSTALLING":
                ui.progress(Event("start", "jupyter", f"No Jupyter on {label}: installing JupyterLab into "
                                                       f"~/{STATE}/venv (a minute or two)...", instance.id))
        errors = child.stderr.read().decode(errors="replace").strip()
        code = child.wait()
    words = answer.split(" ", 2)
    if code == 255 and not answer:
        raise ToolError(f"ssh to {label} failed: {errors or 'no answer'}; check that `ssh {label} true` works.",
                        code="ssh")
    if words[0] not in ("RUNNING", "STARTED") or len(words) < 3:
        why = answer.split(" ", 1)[1] if answer.startswith("FAILED ") else (errors or answer or f"exit {code}")
        raise ToolError(f"Jupyter would not start on {label} ({why}); its log is ~/{STATE}/log there (see it with "
                        f"`exec --name {args.name} -- cat ~/{STATE}/log`). The deployment is unchanged.",
                        code="jupyter")
    remote_port, token = int(words[1]), words[2]
    if words[0] == "STARTED":
        ui.progress(Event("done", "jupyter", f"Jupyter started on {label} (127.0.0.1:{remote_port} there)",
                          instance.id))
    local = free_local_port()
    url = f"http://localhost:{local}/lab?token={token}"
    tunnel = [*target.ssh[:-1], "-N", "-o", "ExitOnForwardFailure=yes", "-L",
              f"{local}:127.0.0.1:{remote_port}", target.ssh[-1]]
    data.update(jupyter="running", url=url, tunnel_command=shlex.join(tunnel), local_port=local,
                remote_port=remote_port)
    if args.print or args.output == "json":
        return Result("connect", data, view="message", message=f"{url}\n{shlex.join(tunnel)}")
    ui.stop_status()
    forward = subprocess.Popen(tunnel, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + TUNNEL_TIMEOUT_S
        while not _answers(local, token):
            if forward.poll() is not None or time.monotonic() > deadline:
                why = forward.stderr.read().decode(errors="replace").strip() if forward.poll() is not None else ""
                raise ToolError(f"The tunnel to Jupyter on {label} did not answer on localhost:{local}"
                                f"{' (' + why + ')' if why else ''}: check that `ssh {label} true` works, then run "
                                "the same command again (the server keeps running there).", code="tunnel")
            time.sleep(0.1)
        env.stdout.write(url + "\n")
        env.stdout.flush()
        ui.info(f"Jupyter on {label} is at localhost:{local} (Ctrl-C closes the tunnel; the server keeps running; "
                "`connect --jupyter --stop` stops it).")
        _open_browser(url)
        forward.wait()
        raise ToolError(f"The tunnel to {label} closed: {forward.stderr.read().decode(errors='replace').strip()}"
                        "; run the same command again.", code="tunnel")
    except KeyboardInterrupt:
        ui.info("Tunnel closed; Jupyter keeps running on the instance.")
        return Result("connect", data, view="silent")
    finally:
        if forward.poll() is None:
            forward.terminate()
            forward.wait(timeout=10)


def _open_browser(url: str) -> None:
    """Where a browser exists (a desktop session, or $BROWSER): tests and SSH sessions have none, and stay quiet."""
    import os
    import sys
    import webbrowser

    if os.environ.get("BROWSER") or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or \
            sys.platform == "darwin":
        try:
            webbrowser.open(url)
        except Exception:  # noqa: BLE001,S110 - the URL is printed; a browser that will not open changes nothing
            pass
