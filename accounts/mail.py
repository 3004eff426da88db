"""Sending mail without letting a mail server's failure become the user's error.

An unreachable or refusing SMTP server must not turn an invitation or a sign-up into a 500
after the rows are written: the invitation's link is shown to whoever sent it, and a
verification mail can be sent again from the sign-in page. The failure is logged (never the
message, which may carry a sign-in or invitation link) for the operator to fix.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Callable

log = logging.getLogger(__name__)


def deliver(send: Callable[[], object], what: str) -> bool:
    """Run ``send``; on a mail-server failure log it and return False instead of raising."""
    try:
        send()
    except (smtplib.SMTPException, OSError) as exc:
        log.warning("could not send %s: %s (check the EMAIL_* settings)", what, type(exc).__name__)
        return False
    return True
