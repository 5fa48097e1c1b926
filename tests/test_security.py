"""Secrets never leave where they belong: the private key only in its 0400 .pem file, the
secret access key nowhere but the SDK. Checked in everything the tool writes: the AWS call log,
stdout (JSON) and stderr (the screen)."""
from __future__ import annotations

import stat

import pytest

from tests.conftest import setup_args

SECRET = "s3cret-Only-In-The-Sdk-7f3a"


@pytest.fixture
def distinct_secret(monkeypatch):
    """Requested before `account`, so the session the CLI uses is built with it."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)


def test_key_material_and_credentials_appear_only_in_the_pem_file(distinct_secret, cli, account, isolated_env):
    made = cli(*setup_args("sec"), "--output", "json")
    assert made.code == 0, made.stderr
    pem = isolated_env / ".ssh" / "amazonei-setup-sec.pem"
    key_body = pem.read_text().splitlines()[1]  # a line of the base64 key itself
    assert stat.S_IMODE(pem.stat().st_mode) == 0o400

    logs = list((isolated_env / ".amazonei-setup" / "logs").glob("*.log"))
    assert logs, "every run writes an AWS call log"
    log_text = "".join(p.read_text() for p in logs)
    assert "CreateKeyPair" in log_text  # the call is logged ...
    # ... with the names of the API parameters it was given (not the HTTP request's parts), never their values
    assert "call ec2.RunInstances params=[" in log_text and "'ImageId'" in log_text and "'url_path'" not in log_text
    for where, text in (("log", log_text), ("stdout", made.stdout), ("stderr", made.stderr)):
        assert key_body not in text, where  # ... but never what it returned
        assert "PRIVATE KEY" not in text, where
        assert SECRET not in text, where


def test_a_requests_call_to_an_aws_url_inside_the_mock_never_leaves_the_machine(account):
    """conftest trims what mock_aws registers for the `requests` library to one catch-all per method: an AWS URL
    must still be answered locally (moto's "not implemented"), never passed through to the network."""
    import requests

    reply = requests.get("https://ec2.us-west-2.amazonaws.com/?Action=DescribeRegions", timeout=1)
    assert reply.status_code == 400
    assert reply.text == "The method is not implemented"
