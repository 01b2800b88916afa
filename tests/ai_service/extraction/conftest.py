"""Tesseract's OpenMP threads fight over the two shared cores and run several times slower
than one thread: the suite runs it single-threaded (set the same in production)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _tesseract_single_thread(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("OMP_THREAD_LIMIT", "1")
    yield
