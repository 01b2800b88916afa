"""The IMAP fetcher against an IMAP4rev1 server on loopback: attachments ingested, messages
flagged \\Seen only once stored, failures left for the next pass."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from ai_service.ingest.imap import ImapConfig, ImapError, ImapFetcher, xml_attachments
from ai_service.ingest.service import Ingestor, IngestResult
from ai_service.repositories import received as repo
from ai_service.repositories.companies import create_company
from ai_service.secrets import SecretBox
from tests.ai_service.ingest.imap_server import ImapTestServer, Mailbox
from tests.ai_service.ingest.material import EnvioFactory, keyring_trusting
from tests.issuing_kit import RECEPTOR

BOX = SecretBox(b"secret-key-used-only-by-the-test-suite-0123456789")
USER, PASSWORD = "dte@receptora.cl", 'pa ss"word'


@pytest.fixture(scope="module")
def factory(sii_key: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EnvioFactory]:
    made = EnvioFactory(sii_key, tmp_path_factory.mktemp("emisor"))
    yield made
    made.close()


def _mail(*attachments: tuple[str, bytes, str], body: str = "Adjunto DTE") -> bytes:
    message = EmailMessage()
    message["From"] = "facturacion@emisor.cl"
    message["To"] = USER
    message["Subject"] = "Envio de DTE"
    message.set_content(body)
    for filename, data, mime in attachments:
        maintype, subtype = mime.split("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes()


@pytest.fixture
def mailbox() -> Mailbox:
    return Mailbox(user=USER, password=PASSWORD)


@pytest.fixture
def server(mailbox: Mailbox) -> Iterator[ImapTestServer]:
    with ImapTestServer(mailbox) as running:
        yield running


def _config(server: ImapTestServer, **kw: Any) -> ImapConfig:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": server.port,
        "user": USER,
        "password": PASSWORD,
        "security": "plain",
    }
    return ImapConfig(**(values | kw))


def test_xml_attachments_are_ingested_and_messages_marked_seen(
    migrated_engine: Engine,
    sii_key: Any,
    mailbox: Mailbox,
    server: ImapTestServer,
    factory: EnvioFactory,
    shared_sii: Path,
) -> None:
    company = create_company(migrated_engine, BOX, rut=RECEPTOR, name="Receptora")[0].id
    envio = factory.envio(1)
    hostile = (
        shared_sii / "samples" / "xml-attacks" / "external-entity-expansion-remote.xml"
    ).read_bytes()
    first = mailbox.add(
        _mail(
            ("envio.xml", envio, "application/xml"), ("factura.pdf", b"%PDF-1.4", "application/pdf")
        )
    )
    second = mailbox.add(_mail(("ataque.xml", hostile, "text/xml")))
    third = mailbox.add(_mail(body="sin adjuntos"))
    ingestor = Ingestor(migrated_engine, keyring_trusting(sii_key))

    def ingest(raw: bytes, name: str) -> IngestResult:
        return ingestor.ingest(company, raw, source="imap", filename=name)

    fetched = ImapFetcher(_config(server, processed_mailbox="DTE/Procesados"), ingest).fetch()
    assert [(f.uid, f.filename) for f in fetched] == [(first, "envio.xml"), (second, "ataque.xml")]
    ok, refused = (f.result for f in fetched)
    assert not ok.refused and ok.documents[0].authentic and ok.documents[0].outcome == "new"
    assert repo.get_file_raw(migrated_engine, company, ok.file.id) == envio
    assert refused.refused and refused.file.error_code == "hostile_xml"
    assert repo.get_file_raw(migrated_engine, company, refused.file.id) == hostile
    assert all(mailbox.seen(uid) for uid in (first, second, third))
    assert mailbox.copied == {"DTE/Procesados": [first, second, third]}
    # nothing unseen remains: a second pass fetches nothing
    fetches = mailbox.commands.count("UID FETCH")
    assert ImapFetcher(_config(server), ingest).fetch() == []
    assert mailbox.commands.count("UID FETCH") == fetches == 3


def test_a_failing_ingestion_leaves_the_message_unseen(
    mailbox: Mailbox, server: ImapTestServer
) -> None:
    uid = mailbox.add(_mail(("envio.xml", b"<EnvioDTE/>", "application/xml")))
    calls: list[str] = []

    def broken(raw: bytes, name: str) -> IngestResult:
        calls.append(name)
        raise ConnectionError("database unreachable")

    assert ImapFetcher(_config(server), broken).fetch() == []
    assert calls == ["envio.xml"] and not mailbox.seen(uid)
    assert ImapFetcher(_config(server), broken).fetch() == []
    assert calls == ["envio.xml", "envio.xml"]  # fetched again on the next pass


def test_wrong_password_is_a_clear_error(mailbox: Mailbox, server: ImapTestServer) -> None:
    with pytest.raises(ImapError, match="refused the login"):
        ImapFetcher(_config(server, password="wrong"), lambda r, n: None).fetch()  # type: ignore[arg-type,return-value]


def test_clear_text_password_only_to_loopback() -> None:
    config = ImapConfig(host="imap.example.cl", user=USER, password=PASSWORD, security="plain")
    with pytest.raises(ImapError, match="in clear"):
        ImapFetcher(config, lambda r, n: None).fetch()  # type: ignore[arg-type,return-value]


def test_unreachable_server_is_a_clear_error() -> None:
    import socket

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = ImapConfig(host="127.0.0.1", port=port, user=USER, password=PASSWORD, security="plain")
    with pytest.raises(ImapError, match="cannot connect"):
        ImapFetcher(config, lambda r, n: None).fetch()  # type: ignore[arg-type,return-value]


def test_attachments_are_found_by_type_or_name() -> None:
    import email
    from email.policy import default

    raw = _mail(
        ("a.xml", b"<DTE/>", "application/octet-stream"),
        ("b.bin", b"<EnvioDTE/>", "text/xml"),
        ("c.pdf", b"%PDF", "application/pdf"),
        ("empty.xml", b"  ", "application/xml"),
    )
    message = email.message_from_bytes(raw, policy=default)
    assert isinstance(message, EmailMessage)
    assert list(xml_attachments(message)) == [("a.xml", b"<DTE/>"), ("b.bin", b"<EnvioDTE/>")]
