"""Turning uploads into a job's items: every file goes through the ingestion (stored raw before
it is parsed); each document it carried becomes an item, and a refused file or an unidentifiable
document becomes an item that failed with the ingestion's error."""

from __future__ import annotations

from collections.abc import Sequence

from ai_service.ingest.service import Ingestor
from ai_service.jobs.models import NewItem


def ingest_files(
    ingestor: Ingestor, company_id: str, files: Sequence[tuple[str, bytes]], *, source: str
) -> list[NewItem]:
    items: list[NewItem] = []
    for name, raw in files:
        if not raw:
            items.append(
                NewItem(None, filename=name, error_code="empty_file", error_message="empty file")
            )
            continue
        result = ingestor.ingest(company_id, raw, source=source, filename=name)
        error = result.error()
        if error is not None:
            items.append(
                NewItem(
                    None,
                    file_id=result.file.id,
                    filename=name,
                    error_code=error.code,
                    error_message=error.message,
                )
            )
            continue
        if not result.documents:
            items.append(
                NewItem(
                    None,
                    file_id=result.file.id,
                    filename=name,
                    error_code="no_documents",
                    error_message="the file carries no DTE",
                )
            )
        for doc in result.documents:
            if doc.id is None:
                items.append(
                    NewItem(
                        None,
                        file_id=result.file.id,
                        filename=name,
                        error_code="unidentified_document",
                        error_message="a DTE without RUT emisor, tipo or folio cannot be recorded",
                    )
                )
            else:
                items.append(NewItem(doc.id, file_id=result.file.id, filename=name))
    return items
