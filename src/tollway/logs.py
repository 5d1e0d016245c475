"""The gateway's log set-up: one line format, and malformed HTTP kept to one line of its own.

aiohttp answers a request it cannot parse (an over-long header, a bad Content-Length, TLS spoken to the
plain port) with a 400, then logs it at ERROR with a traceback and the first bytes of the offending line:
anyone who can reach the port could fill the log with tracebacks, and an over-long `Authorization` header
would put the start of a key in it. Such a record becomes one WARNING line naming the error's kind.
"""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError

from tollway.errors import is_store_outage

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class MalformedRequestFilter(logging.Filter):
    """Rewrites aiohttp's record of an unparsable request; passes every other record as it is."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            record.msg = "malformed HTTP request refused with %s: %s"
            record.args = (error.code, type(error).__name__)
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def configure(level: str) -> None:
    """Once per process: `tollway serve`, and each worker it spawns (which inherits nothing)."""
    logging.basicConfig(level=level.upper(), format=FORMAT)
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, MalformedRequestFilter) for f in server.filters):
        server.addFilter(MalformedRequestFilter())


def warn_failure(logger: logging.Logger, event: str, error: BaseException) -> None:
    """A background retry's failure: one line when a store is away (`errors.is_store_outage`: retried
    every few hundred ms, a traceback each time would bury the log), the traceback otherwise (a bug)."""
    if is_store_outage(error):
        logger.warning("%s: %s: %s", event, type(error).__name__, error)
    else:
        logger.warning(event, exc_info=error)
