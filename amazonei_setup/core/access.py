"""How ssh gets in: straight to port 22 (`--access ssh`), or through AWS Systems Manager (`--access ssm`).

With ssm the security group opens no inbound port: ssh runs `aws ssm start-session` as its ProxyCommand, which
tunnels the connection through the SSM agent on the instance (AWS's AWS-StartSSHSession document). The agent
reaches AWS outbound (the instance's public IP here), the role carries AWS's AmazonSSMManagedInstanceCore, and
this machine needs the AWS CLI and its Session Manager plugin. Pure: no AWS SDK.
"""
from __future__ import annotations

import shlex
import shutil

SSH, SSM = "ssh", "ssm"
MODES = (SSH, SSM)
SSM_CORE_POLICY = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
SSH_DOCUMENT = "AWS-StartSSHSession"
ONLINE = "Online"  # DescribeInstanceInformation's PingStatus once the agent is registered and connected
SANDBOX_REFUSAL = ("--access ssm goes through AWS Systems Manager, which the sandbox does not emulate: drop --sandbox "
                   "to use it on AWS, or drop --access ssm to try the sandbox over SSH.")
TOOLS = ("aws", "session-manager-plugin")
INSTALL = ("https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html",
           "https://docs.aws.amazon.com/systems-manager/latest/userguide/session-manager-working-with-install-plugin"
           ".html")


SSM_ENDPOINT_SERVICES = ("ssm", "ssmmessages", "ec2messages")  # what the agent of a private instance talks to
# Where a subnet's default route goes (resources/network.subnet_ways_out): an internet gateway (a public subnet), a
# NAT gateway, or nowhere. Plan.outbound: how the agent reaches AWS (public-ip, nat, or the VPC's endpoints).
INTERNET, NAT, NO_WAY_OUT = "internet", "nat", "none"
PUBLIC_IP, ENDPOINTS = "public-ip", "endpoints"


def missing_tools(which=shutil.which) -> list[str]:
    """What ssh's ProxyCommand needs on this machine and PATH lacks."""
    return [tool for tool in TOOLS if not which(tool)]


def missing_tools_sentence(missing: list[str]) -> str:
    return (f"--access ssm needs the AWS CLI and its Session Manager plugin on this machine, and PATH has no "
            f"{' and no '.join(missing)}: install the AWS CLI ({INSTALL[0]}) and the plugin ({INSTALL[1]}), "
            "or pass --access ssh.")


def proxy_command(region: str, profile: str | None = None) -> str:
    """ssh's ProxyCommand through Session Manager. %h is the Host block's HostName (the instance id) and %p its
    port; ssh expands `%` tokens in the rest too, so a `%` of a profile name is written `%%`. Each word is
    shell-quoted (ssh runs the line with the user's shell)."""
    words = ["aws", "ssm", "start-session", "--target", "%h", "--document-name", SSH_DOCUMENT,
             "--parameters", "portNumber=%p", "--region", region]
    if profile:
        words += ["--profile", profile]
    fixed = {"%h", "portNumber=%p"}
    return " ".join(w if w in fixed else shlex.quote(w).replace("%", "%%") for w in words)
