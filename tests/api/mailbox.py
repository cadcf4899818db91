"""An SMTP server on a free port (aiosmtpd) that keeps every message it accepts, for the tests
of the mail the API sends (email verification, password reset)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from polyvision.ports import free_port


@dataclass
class SmtpSink:
    """An aiosmtpd handler that keeps every message it accepts.

    Attributes:
        sender: The ``from`` of `url`.
        userinfo: ``user:password@`` (percent-encoded) for a server that asks for AUTH.
    """

    sender: str
    userinfo: str = ""
    port: int = field(default_factory=free_port)
    envelopes: list[Envelope] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"smtp://{self.userinfo}127.0.0.1:{self.port}?from={self.sender}"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self) -> list[EmailMessage]:
        """Every message delivered, oldest first."""
        found = []
        for envelope in self.envelopes:
            assert isinstance(envelope.content, bytes)
            message = message_from_bytes(envelope.content, policy=default_policy)
            assert isinstance(message, EmailMessage)
            found.append(message)
        return found

    def messages_to(self, address: str, subject: str | None = None) -> list[EmailMessage]:
        """The messages delivered to ``address`` (with ``subject``, when given), oldest first."""
        return [
            message
            for envelope, message in zip(self.envelopes, self.messages(), strict=True)
            if address in envelope.rcpt_tos and subject in (None, message["Subject"])
        ]


@contextmanager
def serving(sink: SmtpSink, **controller: Any) -> Iterator[SmtpSink]:
    """``sink`` listening on its port while the block runs (``controller``: aiosmtpd options)."""
    server = Controller(sink, hostname="127.0.0.1", port=sink.port, **controller)
    server.start()
    try:
        yield sink
    finally:
        server.stop()
