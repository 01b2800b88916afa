"""A tiny IMAP4rev1 server on loopback, for the fetcher's tests (no IMAP daemon is installed).

It speaks the real wire protocol (RFC 3501) for the commands an inbox reader needs — CAPABILITY,
LOGIN, SELECT, UID SEARCH/FETCH/STORE/COPY, LOGOUT — with literals, tags and untagged responses,
so ``imaplib`` talks to it exactly as to Dovecot. Messages live in memory.
"""

from __future__ import annotations

import re
import socketserver
import threading
from dataclasses import dataclass, field
from typing import Any

_TOKEN = re.compile(rb'"((?:[^"\\]|\\.)*)"|\(([^)]*)\)|(\S+)')


@dataclass
class StoredMessage:
    uid: int
    raw: bytes
    flags: set[str] = field(default_factory=set)


@dataclass
class Mailbox:
    user: str
    password: str
    messages: list[StoredMessage] = field(default_factory=list)
    copied: dict[str, list[int]] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)
    _next_uid: int = 100

    def add(self, raw: bytes) -> int:
        self._next_uid += 1
        self.messages.append(StoredMessage(self._next_uid, raw))
        return self._next_uid

    def seen(self, uid: int) -> bool:
        return any(m.uid == uid and "\\Seen" in m.flags for m in self.messages)


def _args(line: bytes) -> list[str]:
    out = []
    for quoted, listed, atom in _TOKEN.findall(line):
        if quoted:
            out.append(re.sub(rb"\\(.)", rb"\1", quoted).decode())
        elif listed:
            out.append(f"({listed.decode()})")
        else:
            out.append(atom.decode())
    return out


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def _send(self, text: str | bytes) -> None:
        self.wfile.write(text if isinstance(text, bytes) else text.encode())

    def handle(self) -> None:
        box = self.server.mailbox
        authenticated = False
        self._send("* OK [CAPABILITY IMAP4rev1 LOGIN] test server ready\r\n")
        while True:
            line = self.rfile.readline()
            if not line:
                return
            words = _args(line.rstrip(b"\r\n"))
            if len(words) < 2:
                self._send("* BAD empty command\r\n")
                continue
            tag, command, args = words[0], words[1].upper(), words[2:]
            box.commands.append(" ".join([command, *args[:1]]))
            if command == "CAPABILITY":
                self._send(f"* CAPABILITY IMAP4rev1 LOGIN\r\n{tag} OK done\r\n")
            elif command == "LOGIN":
                authenticated = args[:2] == [box.user, box.password]
                verdict = "OK LOGIN completed" if authenticated else "NO [AUTHENTICATIONFAILED] no"
                self._send(f"{tag} {verdict}\r\n")
            elif command == "LOGOUT":
                self._send(f"* BYE logging out\r\n{tag} OK LOGOUT completed\r\n")
                return
            elif not authenticated:
                self._send(f"{tag} BAD log in first\r\n")
            elif command == "SELECT":
                self._send(
                    f"* {len(box.messages)} EXISTS\r\n* 0 RECENT\r\n"
                    "* OK [UIDVALIDITY 1] UIDs valid\r\n* FLAGS (\\Seen \\Deleted)\r\n"
                    f"{tag} OK [READ-WRITE] SELECT completed\r\n"
                )
            elif command == "UID":
                self._uid(tag, [a.upper() if i == 0 else a for i, a in enumerate(args)])
            else:
                self._send(f"{tag} BAD unknown command {command}\r\n")

    def _uid(self, tag: str, args: list[str]) -> None:
        box = self.server.mailbox
        sub = args[0] if args else ""
        if sub == "SEARCH":
            wanted = [m.uid for m in box.messages if "\\Seen" not in m.flags]
            self._send(f"* SEARCH {' '.join(map(str, wanted))}\r\n{tag} OK SEARCH completed\r\n")
            return
        found = [(i, m) for i, m in enumerate(box.messages, 1) if str(m.uid) == args[1]]
        if sub == "FETCH":
            for seq, msg in found:
                self._send(f"* {seq} FETCH (UID {msg.uid} BODY[] {{{len(msg.raw)}}}\r\n".encode())
                self._send(msg.raw + b")\r\n")
            self._send(f"{tag} OK FETCH completed\r\n")
        elif sub == "STORE":
            for seq, msg in found:
                msg.flags |= set(args[3].strip("()").split())
                self._send(
                    f"* {seq} FETCH (UID {msg.uid} FLAGS ({' '.join(sorted(msg.flags))}))\r\n"
                )
            self._send(f"{tag} OK STORE completed\r\n")
        elif sub == "COPY":
            box.copied.setdefault(args[2], []).extend(m.uid for _, m in found)
            self._send(f"{tag} OK COPY completed\r\n")
        else:
            self._send(f"{tag} BAD unknown UID command\r\n")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, mailbox: Mailbox) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mailbox = mailbox


class ImapTestServer:
    def __init__(self, mailbox: Mailbox) -> None:
        self._server = _Server(mailbox)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def __enter__(self) -> ImapTestServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
