"""Keys out of the server's log, whoever writes the line.

Our own code never logs a key, but others log what they are given: jupyter_server's gateway kernel
manager logs the server's whole environment at INFO when it starts a remote kernel, and an SDK's
debug logging may print a request's headers. The filter below replaces every configured key value
in each record that reaches the server's log handlers, before it is formatted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable


class SecretFilter(logging.Filter):
    """A logging filter that rewrites a record whose message contains a secret (never drops one)."""

    def __init__(self, redact: Callable[[str], str]) -> None:
        super().__init__()
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is the logging module's to report
            return True
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


def install(redact: Callable[[str], str], loggers: list[logging.Logger]) -> Callable[[], None]:
    """Filter ``loggers`` (records logged on them) and their handlers (records that propagate to
    them from any logger: tornado's, the SDKs'). Returns the function that takes the filter off."""
    secret_filter = SecretFilter(redact)
    targets: list[logging.Logger | logging.Handler] = []
    for logger in loggers:
        targets.append(logger)
        targets.extend(logger.handlers)
    for target in targets:
        target.addFilter(secret_filter)

    def uninstall() -> None:
        for target in targets:
            target.removeFilter(secret_filter)

    return uninstall
