"""The tool's own exceptions. Each carries one sentence for the user and the exit code."""


class ToolError(Exception):
    """A failure the user can act on: `str(err)` is the sentence to print."""

    exit_code = 1
    code = "error"  # stable machine-readable code for --output json
    suggested_command: str | None = None  # a command to copy that gets the user further (printed whole)

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
    exit_code = 130
    code = "interrupted"
