"""Reading the XML files of an uploaded zip without trusting it.

Refused, each with its own code: a file that is not a zip, too many entries, an entry (or the
whole) that would inflate past the limits or by a ratio only a zip bomb reaches, names that climb
out of the archive (``../``, absolute paths, drive letters), links and encrypted entries. Sizes
are enforced while inflating, never taken from the headers, which an attacker writes.
"""

from __future__ import annotations

import io
import stat
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath

from ai_service.api.errors import BadRequest
from dte_core.xmlsafe import DEFAULT_MAX_BYTES

MAX_ENTRIES = 5000
MAX_ENTRY_BYTES = DEFAULT_MAX_BYTES  # a bigger entry the XML parser would refuse anyway
MAX_TOTAL_BYTES = 256 * 1024 * 1024
#: XML compresses well (10-30x); past this an entry is a bomb, not an invoice
MAX_RATIO = 200
_READ_BLOCK = 64 * 1024


class ZipRefused(BadRequest):
    """The zip is refused as a whole; nothing in it was ingested."""


@dataclass(frozen=True)
class ZipLimits:
    max_entries: int = MAX_ENTRIES
    max_entry_bytes: int = MAX_ENTRY_BYTES
    max_total_bytes: int = MAX_TOTAL_BYTES
    max_ratio: int = MAX_RATIO


@dataclass(frozen=True)
class ZipContents:
    files: list[tuple[str, bytes]]  # (name inside the zip, bytes) of every *.xml entry
    skipped: list[str]  # other entries, not ingested


def is_zip(raw: bytes) -> bool:
    return raw[:4] in (b"PK\x03\x04", b"PK\x05\x06")


def _check_name(name: str) -> None:
    if "\\" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise ZipRefused(
            f"zip entry {name!r} has an absolute or Windows path; store relative paths only",
            code="zip_path_traversal",
        )
    if ".." in PurePosixPath(name).parts or "\x00" in name:
        raise ZipRefused(
            f"zip entry {name!r} points outside the archive; remove '..' from its path",
            code="zip_path_traversal",
        )


def _skipped(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return any(p.startswith(".") or p == "__MACOSX" for p in parts) or not name.lower().endswith(
        ".xml"
    )


def read_zip(raw: bytes, limits: ZipLimits | None = None) -> ZipContents:
    limits = limits or ZipLimits()
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
    except (zipfile.BadZipFile, OSError) as exc:
        raise ZipRefused(f"the upload is not a readable zip: {exc}", code="zip_unreadable") from exc
    with archive:
        entries = archive.infolist()
        if len(entries) > limits.max_entries:
            raise ZipRefused(
                f"the zip has {len(entries)} entries, over the limit of {limits.max_entries}; "
                "split it into several jobs",
                code="zip_too_many_entries",
            )
        files: list[tuple[str, bytes]] = []
        skipped: list[str] = []
        total = 0
        for info in entries:
            _check_name(info.filename)
            if info.is_dir():
                continue
            if stat.S_ISLNK(info.external_attr >> 16):
                raise ZipRefused(
                    f"zip entry {info.filename!r} is a symbolic link; store the file itself",
                    code="zip_link",
                )
            if info.flag_bits & 0x1:
                raise ZipRefused(
                    f"zip entry {info.filename!r} is encrypted; send it unencrypted",
                    code="zip_encrypted",
                )
            if _skipped(info.filename):
                skipped.append(info.filename)
                continue
            data = _inflate(archive, info, limits, total)
            total += len(data)
            files.append((info.filename, data))
    return ZipContents(files, skipped)


def _inflate(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: ZipLimits, total: int
) -> bytes:
    # never more than the limit + 1 byte: the declared file_size may lie
    cap = min(limits.max_entry_bytes, limits.max_total_bytes - total)
    by_ratio = max(info.compress_size, 1) * limits.max_ratio
    out = bytearray()
    try:
        with archive.open(info) as member:
            while chunk := member.read(_READ_BLOCK):
                out += chunk
                if len(out) > cap:
                    which = "entry" if cap == limits.max_entry_bytes else "zip"
                    limit = limits.max_entry_bytes if which == "entry" else limits.max_total_bytes
                    raise ZipRefused(
                        f"zip {which} inflates past {limit} bytes (at {info.filename!r}); "
                        "send fewer or smaller files",
                        code="zip_too_large",
                    )
                if len(out) > by_ratio and len(out) > _READ_BLOCK:
                    raise ZipRefused(
                        f"zip entry {info.filename!r} inflates more than {limits.max_ratio} "
                        "times its compressed size: refused as a zip bomb",
                        code="zip_bomb",
                    )
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise ZipRefused(
            f"zip entry {info.filename!r} cannot be read: {exc}", code="zip_unreadable"
        ) from exc
    except NotImplementedError as exc:
        raise ZipRefused(
            f"zip entry {info.filename!r} uses an unsupported compression: {exc}",
            code="zip_unreadable",
        ) from exc
    return bytes(out)
