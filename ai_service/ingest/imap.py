"""Fetch DTE attachments from an IMAP mailbox (the "casilla de intercambio" emisores send to).

Each unseen message is read with ``BODY.PEEK[]`` (which does not set ``\\Seen``); every XML
attachment goes to ``ingest(raw, filename)``, which stores it before anything else. Only when
all of a message's attachments are stored is the message flagged ``\\Seen`` (and copied to
``processed_mailbox`` if set): a failure leaves it unseen, to be fetched again, and ingesting
twice is idempotent.
"""

from __future__ import annotations

import contextlib
import email
import imaplib
import ipaddress
import logging
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

from ai_service.ingest.service import IngestResult

log = logging.getLogger(__name__)

_XML_TYPES = frozenset({"application/xml", "text/xml"})


class ImapError(Exception):
    """The mailbox could not be read; the message says what to check."""

    code = "imap_error"


@dataclass(frozen=True)
class ImapConfig:
    host: str
    user: str
    password: str = field(repr=False)
    port: int = 993
    mailbox: str = "INBOX"
    #: "ssl" (IMAPS, port 993), "starttls" (port 143, upgraded) or "plain" (loopback/tests only)
    security: str = "ssl"
    processed_mailbox: str | None = None
    timeout: float = 60.0
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class FetchedAttachment:
    uid: int
    filename: str
    result: IngestResult


Ingest = Callable[[bytes, str], IngestResult]


def xml_attachments(message: EmailMessage) -> Iterator[tuple[str, bytes]]:
    """``(filename, bytes)`` of every part that is an XML file (by type or by name)."""
    for index, part in enumerate(message.walk()):
        if part.is_multipart():
            continue
        filename = part.get_filename() or ""
        if part.get_content_type() not in _XML_TYPES and not filename.lower().endswith(".xml"):
            continue
        if part.get_content_disposition() not in ("attachment", "inline", None):
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes) and payload.strip():
            yield filename or f"part-{index}.xml", payload


class ImapFetcher:
    def __init__(self, config: ImapConfig, ingest: Ingest) -> None:
        self.config = config
        self.ingest = ingest

    def _connect(self) -> imaplib.IMAP4:
        cfg = self.config
        try:
            if cfg.security == "ssl":
                return imaplib.IMAP4_SSL(
                    cfg.host,
                    cfg.port,
                    ssl_context=cfg.ssl_context or ssl.create_default_context(),
                    timeout=cfg.timeout,
                )
            if cfg.security == "plain" and not _is_loopback(cfg.host):
                raise ImapError(
                    f"refusing to send the IMAP password in clear to {cfg.host}: use ssl or "
                    "starttls (plain is for a server on this machine only)"
                )
            conn = imaplib.IMAP4(cfg.host, cfg.port, timeout=cfg.timeout)
            if cfg.security == "starttls":
                conn.starttls(cfg.ssl_context or ssl.create_default_context())
            elif cfg.security != "plain":
                raise ImapError(f"unknown IMAP security {cfg.security!r}: ssl, starttls or plain")
            return conn
        except (OSError, imaplib.IMAP4.error) as exc:
            raise ImapError(f"cannot connect to {cfg.host}:{cfg.port}: {exc}") from exc

    def fetch(self) -> list[FetchedAttachment]:
        """One pass over the unseen messages; returns what was ingested."""
        conn = self._connect()
        try:
            try:
                conn.login(self.config.user, self.config.password)
            except imaplib.IMAP4.error as exc:
                raise ImapError(
                    f"the IMAP server refused the login of {self.config.user}: check the user "
                    "and password"
                ) from exc
            status, _ = conn.select(_quoted(self.config.mailbox))
            if status != "OK":
                raise ImapError(f"mailbox {self.config.mailbox!r} cannot be opened")
            return self._fetch_unseen(conn)
        finally:
            with contextlib.suppress(OSError, imaplib.IMAP4.error):
                conn.logout()

    def _fetch_unseen(self, conn: imaplib.IMAP4) -> list[FetchedAttachment]:
        status, data = conn.uid("SEARCH", "UNSEEN")
        if status != "OK":
            raise ImapError(f"SEARCH UNSEEN failed: {data!r}")
        uids = [int(u) for u in (data[0] or b"").split()]
        fetched: list[FetchedAttachment] = []
        for uid in uids:
            message = self._message(conn, uid)
            if message is None:
                continue
            try:
                stored = [
                    FetchedAttachment(uid, name, self.ingest(raw, name))
                    for name, raw in xml_attachments(message)
                ]
            except Exception:
                log.exception("ingesting message %s failed; it stays unseen", uid)
                continue
            fetched.extend(stored)
            if self.config.processed_mailbox:
                conn.uid("COPY", str(uid), _quoted(self.config.processed_mailbox))
            conn.uid("STORE", str(uid), "+FLAGS", "(\\Seen)")
        return fetched

    def _message(self, conn: imaplib.IMAP4, uid: int) -> EmailMessage | None:
        status, data = conn.uid("FETCH", str(uid), "(BODY.PEEK[])")
        if status != "OK":
            log.warning("FETCH of message %s failed: %r", uid, data)
            return None
        raw = _literal(data)
        if raw is None:
            return None  # deleted meanwhile
        parsed: Any = email.message_from_bytes(raw, policy=default_policy)
        return parsed if isinstance(parsed, EmailMessage) else None


def _literal(data: list[Any]) -> bytes | None:
    for item in data:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
            return item[1]
    return None


def _quoted(mailbox: str) -> str:
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
