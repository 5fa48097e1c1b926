"""Issue 14: a run that is cut short (an error while explaining an error, a signal, a local path that
cannot be written) still ends in one sentence, leaves nothing behind, and prints follow-up commands that
reach the same account.

Every test asserts what the user sees (exit code, the `error:` sentence, no traceback) and what the
account holds afterwards (`snapshot`), never on our own functions.
"""
from __future__ import annotations

import pytest
from botocore.parsers import ResponseParserError

from tests.conftest import inject, setup_args, snapshot
from tests.test_faults import assert_clean_failure

ENCODED_REFUSAL = ("You are not authorized to perform this operation. Encoded authorization failure message: "
                   "XYZ-encoded-blob")


# ---- (11) explaining an error never skips the rollback ------------------------------------------------

def _raising(error: BaseException):
    def hook(**_):
        raise error
    return hook


@pytest.mark.parametrize("decode_failure", [
    ResponseParserError("Unable to parse response (not XML): <html>captive portal</html>"),  # an unreadable reply
    RuntimeError("something nobody expected"),
], ids=["unreadable-reply", "unexpected-exception"])
def test_a_failure_to_decode_the_refusal_still_rolls_back(cli, account, decode_failure):
    before = snapshot(account)
    account.sts.meta.events.register("before-call.sts.DecodeAuthorizationMessage", _raising(decode_failure))
    inject(account.ec2, "RunInstances", "UnauthorizedOperation", ENCODED_REFUSAL)

    result = cli(*setup_args("denied"))

    message = assert_clean_failure(result)
    assert snapshot(account) == before  # role, profile, key pair, group and endpoint were all removed
    assert "ec2:RunInstances" in message  # the sentence still names the refused permission
    assert "Everything this run created was removed" in message
    assert "Unexpected error" not in message
