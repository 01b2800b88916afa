"""``dte-ai index ...``: build, rebuild, query and measure a company's embeddings index.

Documents come as JSON Lines (``-`` reads stdin), one ``{"id", "text", "metadata"?}`` per
line. Results are JSON on stdout; errors are JSON on stderr with exit code 2 for bad input and
1 when the model or the index cannot be used.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False)

EXIT_UNAVAILABLE = 1
EXIT_BAD_INPUT = 2

CompanyOption = Annotated[str, typer.Option("--company", help="the company id (companies.id)")]
InputOption = Annotated[
    str, typer.Option("--input", "-i", help="JSON Lines file of documents, or - for stdin")
]
ChromaPath = Annotated[
    Path | None,
    typer.Option(
        "--chroma-path",
        envvar="DTE_AI_CHROMA_PATH",
        help="embedded index directory [default: $DTE_AI_DATA_DIR/chroma]",
    ),
]
ChromaHost = Annotated[
    str | None,
    typer.Option("--chroma-host", envvar="DTE_AI_CHROMA_HOST", help="use a Chroma server"),
]
ChromaPort = Annotated[int, typer.Option("--chroma-port", envvar="DTE_AI_CHROMA_PORT")]
ModelPath = Annotated[
    Path | None,
    typer.Option(
        "--model-path",
        envvar="DTE_AI_EMBEDDING_MODEL_PATH",
        help="local sentence-transformers model [default: bundled all-MiniLM-L6-v2]",
    ),
]
CachePath = Annotated[
    Path | None,
    typer.Option(
        "--vector-cache",
        envvar="DTE_AI_EMBEDDING_CACHE_PATH",
        help="persistent vector cache [default: $DTE_AI_DATA_DIR/embedding-cache.sqlite3]",
    ),
]


def _fail(
    code: str, message: str, exit_code: int, fields: list[dict[str, str]] | None = None
) -> NoReturn:
    payload = {"error": {"code": code, "message": message, "fields": fields or []}}
    sys.stderr.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
    raise typer.Exit(exit_code)


def _emit(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")


def _data_dir() -> Path:
    return Path(os.environ.get("DTE_AI_DATA_DIR", "./data"))


def _run(action: Any) -> Any:
    from embeddings.errors import EmbeddingError, InvalidInputError

    try:
        return action()
    except InvalidInputError as exc:
        _fail(exc.code, exc.message, EXIT_BAD_INPUT)
    except EmbeddingError as exc:
        _fail(exc.code, exc.message, EXIT_UNAVAILABLE)


def _store(
    chroma_path: Path | None,
    chroma_host: str | None,
    chroma_port: int,
    model_path: Path | None,
    cache_path: Path | None,
) -> Any:
    from embeddings.cache import LRUVectorCache, SqliteVectorCache, TieredVectorCache
    from embeddings.encoder import SentenceTransformerEncoder
    from embeddings.store import StoreConfig, VectorStore

    def open_store() -> VectorStore:
        persistent = SqliteVectorCache(cache_path or _data_dir() / "embedding-cache.sqlite3")
        encoder = SentenceTransformerEncoder(
            model_path, cache=TieredVectorCache(LRUVectorCache(), persistent)
        )
        config = StoreConfig(
            path=chroma_path or _data_dir() / "chroma", host=chroma_host or None, port=chroma_port
        )
        return VectorStore(encoder, config)

    return _run(open_store)


def read_documents(source: str) -> list[Any]:
    """Documents of a JSON Lines file; every bad line is reported at once, by line number."""
    from embeddings.store import Document

    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        _fail("unreadable_input", f"cannot read {source}: {exc}", EXIT_BAD_INPUT)
    documents: list[Document] = []
    problems: list[dict[str, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        field = f"line {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append({"field": field, "code": "invalid_json", "message": str(exc)})
            continue
        if not isinstance(row, dict):
            problems.append({"field": field, "code": "not_an_object", "message": "expected {}"})
            continue
        doc_id, doc_text, metadata = row.get("id"), row.get("text"), row.get("metadata", {})
        if isinstance(doc_id, int) and not isinstance(doc_id, bool):
            doc_id = str(doc_id)
        if not isinstance(doc_id, str) or not doc_id:
            problems.append({"field": field, "code": "missing_id", "message": "needs an id"})
        elif not isinstance(doc_text, str) or not doc_text.strip():
            problems.append({"field": field, "code": "missing_text", "message": "needs a text"})
        elif not isinstance(metadata, dict):
            problems.append({"field": field, "code": "bad_metadata", "message": "not an object"})
        else:
            documents.append(Document(doc_id, doc_text, metadata))
    if problems:
        _fail(
            "invalid_documents",
            f"{len(problems)} bad line(s) in {source}",
            EXIT_BAD_INPUT,
            problems,
        )
    return documents


@app.command("build")
def build(
    company: CompanyOption,
    source: InputOption,
    chroma_path: ChromaPath = None,
    chroma_host: ChromaHost = None,
    chroma_port: ChromaPort = 8000,
    model_path: ModelPath = None,
    cache_path: CachePath = None,
) -> None:
    """Add or update documents in the company's index (unchanged ones are skipped)."""
    documents = read_documents(source)
    store = _store(chroma_path, chroma_host, chroma_port, model_path, cache_path)
    result = _run(lambda: store.upsert(company, documents))
    count = _run(lambda: store.count(company))
    _emit(
        {
            "company_id": company,
            "written": result.written,
            "unchanged": result.unchanged,
            "count": count,
        }
    )


@app.command("rebuild")
def rebuild(
    company: CompanyOption,
    source: InputOption,
    chroma_path: ChromaPath = None,
    chroma_host: ChromaHost = None,
    chroma_port: ChromaPort = 8000,
    model_path: ModelPath = None,
    cache_path: CachePath = None,
) -> None:
    """Replace the company's index with exactly these documents (the old one serves until done)."""
    documents = read_documents(source)
    store = _store(chroma_path, chroma_host, chroma_port, model_path, cache_path)
    result = _run(lambda: store.rebuild(company, documents))
    count = _run(lambda: store.count(company))
    _emit({"company_id": company, "written": result.written, "count": count})


@app.command("delete")
def delete(
    company: CompanyOption,
    ids: Annotated[list[str], typer.Option("--id", help="a document id; repeat for more")],
    chroma_path: ChromaPath = None,
    chroma_host: ChromaHost = None,
    chroma_port: ChromaPort = 8000,
    model_path: ModelPath = None,
    cache_path: CachePath = None,
) -> None:
    """Delete documents of the company by id (missing ids are ignored)."""
    store = _store(chroma_path, chroma_host, chroma_port, model_path, cache_path)
    _run(lambda: store.delete(company, ids))
    _emit({"company_id": company, "deleted": ids, "count": _run(lambda: store.count(company))})


@app.command("query")
def query(
    company: CompanyOption,
    text: Annotated[str, typer.Argument(help="e.g. an invoice line description")],
    k: Annotated[int, typer.Option("-k", min=1, max=100, help="how many matches")] = 5,
    chroma_path: ChromaPath = None,
    chroma_host: ChromaHost = None,
    chroma_port: ChromaPort = 8000,
    model_path: ModelPath = None,
    cache_path: CachePath = None,
) -> None:
    """The best matches in the company's index, with their hybrid and component scores."""
    store = _store(chroma_path, chroma_host, chroma_port, model_path, cache_path)
    matches = _run(lambda: store.query(company, text, k=k))
    _emit(
        {
            "company_id": company,
            "engine": f"hybrid:{store.encoder.model_id}+char_wb",
            "matches": [
                {
                    "id": m.id,
                    "text": m.text,
                    "metadata": m.metadata,
                    "score": round(m.score, 6),
                    "embedding_score": round(m.embedding_score, 6),
                    "lexical_score": round(m.lexical_score, 6),
                }
                for m in matches
            ],
        }
    )


@app.command("evaluate")
def evaluate(
    model_path: ModelPath = None,
    idf: Annotated[
        bool, typer.Option("--idf", help="fit n-gram IDF on each candidate set")
    ] = False,
) -> None:
    """Top-1 and MRR on the bundled Spanish set: embedding-only, lexical-only and hybrid."""
    from embeddings.encoder import SentenceTransformerEncoder
    from embeddings.hybrid import HybridScorer, measure

    scorer = HybridScorer(SentenceTransformerEncoder(model_path))
    result = _run(lambda: measure(scorer, idf=idf))

    def table(rows: dict[str, Any]) -> dict[str, Any]:
        return {
            label: {"top1": round(m.top1, 4), "mrr": round(m.mrr, 4), "queries": m.queries}
            for label, m in rows.items()
        }

    _emit(
        {
            "default_embedding_weight": scorer.embedding_weight,
            "chosen_weight_on_dev": result.chosen_weight,
            "dev": table(result.dev),
            "test": table(result.test),
            "full": table(result.full),
            "dev_sweep": {str(w): round(m.mrr, 4) for w, m in result.sweep.items()},
        }
    )
