"""Errors that end a command with exit code 2 and a one-line message (a traceback only with --debug)."""


class AuditError(Exception):
    """A usage, configuration or environment problem the user can fix; exit code 2."""


class UsageError(AuditError):
    """The command line itself is wrong."""


class ConfigError(AuditError):
    """The kumo-audit configuration is invalid."""
