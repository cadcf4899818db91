"""Outgoing email over SMTP, configured by one URL (``PV_SMTP_URL``).

URL forms::

    smtp://host[:port]?from=noreply@example.org                  plain SMTP (port 25)
    smtp://user:pass@host:587?starttls=1&from=noreply@example.org  upgraded with STARTTLS
    smtps://user:pass@host[:port]?from=noreply@example.org        implicit TLS (port 465)

``from`` (the sender address) is required; ``timeout`` (seconds, default 10) is optional.
User and password are percent-decoded, so ``%40`` spells an ``@`` in a user name.

The stdlib `smtplib` does the protocol, in a worker thread so the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import parse_qs, unquote, urlsplit

import structlog

log = structlog.get_logger(__name__)

DEFAULT_TIMEOUT_S = 10.0
_TRUE = {"1", "true", "yes", "on"}


class MailConfigError(ValueError):
    """``PV_SMTP_URL`` cannot be understood."""


class MailDeliveryError(RuntimeError):
    """The SMTP server could not be reached or refused the message."""


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to hand messages to an SMTP server.

    Attributes:
        host: Server name or address.
        port: Server port.
        sender: The ``From`` address (and envelope sender).
        username: Login name; empty: no authentication.
        password: Login password (kept out of ``repr``).
        implicit_tls: TLS from the first byte (``smtps://``).
        starttls: Upgrade a plain connection with STARTTLS before anything else.
        timeout_s: Socket timeout of every SMTP operation.
    """

    host: str
    port: int
    sender: str
    username: str = ""
    password: str = field(default="", repr=False)
    implicit_tls: bool = False
    starttls: bool = False
    timeout_s: float = DEFAULT_TIMEOUT_S


def parse_smtp_url(url: str) -> SmtpConfig:
    """Read an ``smtp://`` or ``smtps://`` URL (see the module docstring).

    Raises:
        MailConfigError: Unknown scheme, no host, no ``from`` or a malformed port or timeout.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise MailConfigError("PV_SMTP_URL must start with smtp:// or smtps://")
    try:
        port = parts.port
    except ValueError:
        # from None: the parser's own message may quote part of the password.
        raise MailConfigError("PV_SMTP_URL has a malformed port") from None
    if not parts.hostname:
        raise MailConfigError("PV_SMTP_URL names no host")
    query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    sender = query.get("from", "")
    if "@" not in sender:
        raise MailConfigError("PV_SMTP_URL needs a sender address: ?from=noreply@example.org")
    try:
        timeout_s = float(query.get("timeout", DEFAULT_TIMEOUT_S))
    except ValueError as exc:
        raise MailConfigError("PV_SMTP_URL has a malformed timeout") from exc
    implicit_tls = parts.scheme == "smtps"
    starttls = query.get("starttls", "").lower() in _TRUE
    if implicit_tls and starttls:
        raise MailConfigError("smtps:// is already TLS; drop starttls")
    return SmtpConfig(
        host=parts.hostname,
        port=port or (465 if implicit_tls else 25),
        sender=sender,
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        implicit_tls=implicit_tls,
        starttls=starttls,
        timeout_s=timeout_s,
    )


class Mailer:
    """Sends plain-text email through the configured SMTP server.

    Without a configuration (``PV_SMTP_URL`` empty, meant for development) nothing is sent:
    each message, body included, is written to the log (structlog event ``mail.not_sent``)
    so a developer can follow the links in it. Callers outside development must refuse to
    depend on that: check `configured` first.
    """

    def __init__(self, config: SmtpConfig | None, tls_context: ssl.SSLContext | None = None):
        """Args:
        config: The server; None logs messages instead of sending them.
        tls_context: Verifies the server for TLS; default: the system's trusted CAs.
        """
        self.config = config
        self._tls_context = tls_context

    @classmethod
    def from_url(cls, url: str) -> Mailer:
        """A mailer for ``PV_SMTP_URL`` (empty: the logging stand-in).

        Raises:
            MailConfigError: ``url`` is set but malformed.
        """
        return cls(parse_smtp_url(url) if url else None)

    @property
    def configured(self) -> bool:
        """Whether messages really leave the process."""
        return self.config is not None

    def message(self, to: str, subject: str, text: str) -> EmailMessage:
        """A plain-text message from the configured sender to ``to``."""
        message = EmailMessage()
        message["From"] = self.config.sender if self.config else "polyvision@localhost"
        message["To"] = to
        message["Subject"] = subject
        message["Message-ID"] = make_msgid(domain=message["From"].split("@")[-1])
        message.set_content(text)
        return message

    async def send(self, to: str, subject: str, text: str) -> None:
        """Deliver one message to ``to`` (or log it when not configured).

        Raises:
            MailDeliveryError: The server could not be reached or refused the message.
        """
        if self.config is None:
            log.info("mail.not_sent", to=to, subject=subject, body=text)
            return
        message = self.message(to, subject, text)
        try:
            await asyncio.to_thread(self._send_sync, self.config, message)
        except (OSError, smtplib.SMTPException) as exc:  # socket, TLS and protocol failures
            raise MailDeliveryError(f"could not send mail via {self.config.host}: {exc}") from exc
        log.info("mail.sent", to=to, subject=subject, message_id=message["Message-ID"])

    def _send_sync(self, config: SmtpConfig, message: EmailMessage) -> None:
        context = self._tls_context or ssl.create_default_context()
        smtp: smtplib.SMTP
        if config.implicit_tls:
            smtp = smtplib.SMTP_SSL(
                config.host, config.port, timeout=config.timeout_s, context=context
            )
        else:
            smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout_s)
        with smtp:
            if config.starttls:
                smtp.starttls(context=context)
            if config.username:
                smtp.login(config.username, config.password)
            smtp.send_message(message)
