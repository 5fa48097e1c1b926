"""One botocore Config for every client the tool builds, and it really reaches the wire."""
from __future__ import annotations

from amazonei_setup import __version__


def test_every_client_has_adaptive_retries_timeouts_and_the_tools_user_agent(account):
    for aws in (account, account.in_region("eu-west-1")):
        for service in ("ec2", "iam", "sts"):
            config = aws.client(service).meta.config
            assert config.retries["mode"] == "adaptive"
            assert config.retries["total_max_attempts"] == 5
            assert (config.connect_timeout, config.read_timeout) == (5, 60)
            assert f"amazonei-setup/{__version__}" in config.user_agent_extra


def test_the_user_agent_is_sent_with_each_request(account):
    seen: list[str] = []
    account.sts.meta.events.register("before-send.sts.GetCallerIdentity",  # reads only; moto still answers
                                     lambda request, **_: seen.append(request.headers["User-Agent"].decode()))
    account.sts.get_caller_identity()
    assert len(seen) == 1 and f"amazonei-setup/{__version__}" in seen[0]


def test_aws_max_attempts_from_the_environment_wins(monkeypatch):
    """An explicit Config would silently override AWS_MAX_ATTEMPTS; users expect the variable to work."""
    from amazonei_setup.aws import _max_attempts

    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    assert _max_attempts() == 2
    for junk in ("not-a-number", "0", "-3", ""):
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", junk)
        assert _max_attempts() == 5
