"""A mailbox folder: files dropped in a directory are ingested, then moved aside.

``<dir>/processed/`` receives every file that was stored and judged (whatever the verdict: a
forged document is still recorded, with its findings); ``<dir>/failed/`` receives files refused
as files (hostile, unreadable, not a DTE delivery), each with a ``.error.json`` beside it. A file
is moved only after the database holds it, so a crash or a database outage leaves it in place
for the next scan — nothing is lost, and re-ingesting is idempotent.

Polling rather than inotify: mailbox folders are often network shares, where change events are
unreliable; a scan is one ``listdir``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ai_service.ingest.service import IngestResult
from dte_core.xmlsafe import DEFAULT_MAX_BYTES

log = logging.getLogger(__name__)

PROCESSED = "processed"
FAILED = "failed"
#: Files larger than this are refused unread: the XML parser would refuse them anyway.
MAX_FILE_BYTES = DEFAULT_MAX_BYTES


@dataclass(frozen=True)
class FolderOutcome:
    name: str
    moved_to: Path | None  # None: left in place (still being written, or ingestion failed)
    result: IngestResult | None
    error: str | None = None


Ingest = Callable[[bytes, str], IngestResult]


class FolderWatcher:
    """Scan ``directory`` and hand each settled file to ``ingest(raw, filename)``.

    ``settle_seconds``: a file modified more recently than this may still be being written
    (a mail client saving an attachment) and waits for the next scan.
    """

    def __init__(
        self,
        directory: Path,
        ingest: Ingest,
        *,
        settle_seconds: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = directory
        self.ingest = ingest
        self.settle_seconds = settle_seconds
        self.clock = clock
        for sub in (PROCESSED, FAILED):
            (directory / sub).mkdir(parents=True, exist_ok=True)

    def pending(self) -> list[Path]:
        now = self.clock()
        found = []
        for entry in sorted(os.scandir(self.directory), key=lambda e: e.name):
            # dot-files are partial downloads / editor temporaries by convention
            if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                continue
            if now - entry.stat().st_mtime < self.settle_seconds:
                continue
            found.append(Path(entry.path))
        return found

    def scan_once(self) -> list[FolderOutcome]:
        return [self._one(path) for path in self.pending()]

    def _one(self, path: Path) -> FolderOutcome:
        try:
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                return self._move_failed(
                    path, None, f"{size} bytes is over the limit of {MAX_FILE_BYTES}"
                )
            raw = path.read_bytes()
        except FileNotFoundError:  # taken by another watcher on the same folder
            return FolderOutcome(path.name, None, None, "vanished")
        try:
            result = self.ingest(raw, path.name)
        except Exception as exc:  # the database or the service failed, not the file: retry later
            log.exception("ingesting %s failed; it stays in %s", path.name, self.directory)
            return FolderOutcome(path.name, None, None, f"{type(exc).__name__}: {exc}")
        if result.refused:
            error = result.error()
            return self._move_failed(path, result, error.message if error else "refused")
        return FolderOutcome(path.name, _move(path, self.directory / PROCESSED), result)

    def _move_failed(self, path: Path, result: IngestResult | None, message: str) -> FolderOutcome:
        target = _move(path, self.directory / FAILED)
        details: dict[str, object] = {"file": path.name, "message": message}
        if result is not None:
            details |= {"code": result.file.error_code or "", "received_file_id": result.file.id}
        sidecar = target.with_name(target.name + ".error.json")
        sidecar.write_text(json.dumps(details, ensure_ascii=False, indent=2) + "\n", "utf-8")
        return FolderOutcome(path.name, target, result, message)

    def run(self, stop: threading.Event, interval: float = 5.0) -> None:
        """Scan until ``stop`` is set."""
        while True:
            self.scan_once()
            if stop.wait(interval):
                return


def _move(path: Path, folder: Path) -> Path:
    """Move without overwriting: a second ``factura.xml`` becomes ``factura.1.xml``."""
    target = folder / path.name
    counter = 0
    while True:
        try:
            # link + unlink: fails instead of overwriting (os.replace would clobber)
            os.link(path, target)
        except FileExistsError:
            counter += 1
            target = folder / f"{path.stem}.{counter}{path.suffix}"
            continue
        except OSError:  # no hard links here (some network shares): check, then rename
            if target.exists():
                counter += 1
                target = folder / f"{path.stem}.{counter}{path.suffix}"
                continue
            path.rename(target)
            return target
        path.unlink()
        return target
