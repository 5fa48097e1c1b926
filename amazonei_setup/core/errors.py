"""The tool's own exceptions. Each carries one sentence for the user and the exit code."""


class ToolError(Exception):
    """A failure the user can act on: `str(err)` is the sentence to print."""

    exit_code = 1
    code = "error"  # stable machine-readable code for --output json
    suggested_command: str | None = None  # a command to copy that gets the user further (printed whole)
    suggested_caption: str | None = None  # the line above it (default: the Inferentia2 alternative's)

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        if code:
            self.code = code


class UsageError(ToolError):
    """Bad or missing input: fix a flag and run again (exit 2)."""

    exit_code = 2
    code = "usage"


class AwsError(ToolError):
    """AWS refused or failed a call (exit 1)."""

    code = "aws"


class Interrupted(ToolError):
    """Ctrl-C, SIGTERM or SIGHUP. The CLI exits 128 + the signal's number (130, 143, 129)."""

    exit_code = 130
    code = "interrupted"


class Signalled(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread as Ctrl-C raises KeyboardInterrupt: every path that cleans
    up after Ctrl-C (rollback, the sandbox's save, teardown's stop) then cleans up after them too."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def stopped_by(interrupt: BaseException) -> str:
    """'Interrupted' for Ctrl-C, 'Stopped by SIGTERM' for a signal the CLI turned into Signalled."""
    signum = getattr(interrupt, "signum", None)
    if signum is None:
        return "Interrupted"
    import signal

    try:
        return f"Stopped by {signal.Signals(signum).name}"
    except ValueError:
        return f"Stopped by signal {signum}"


# botocore's ClientError read here, at the bottom, so that modules which only name AWS errors (resources/, and
# through them the wizard and the template builder) need not load boto3 by importing aws.py.
def error_code(err: BaseException) -> str:
    from botocore.exceptions import ClientError  # what raised err has loaded botocore already

    return err.response.get("Error", {}).get("Code", "") if isinstance(err, ClientError) else ""


def error_message(err: BaseException) -> str:
    return err.response.get("Error", {}).get("Message", "")
