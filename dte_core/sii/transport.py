"""HTTP to the SII: timeouts on every call, retries where repeating is safe, a circuit breaker.

Retries (tenacity, exponential backoff with jitter) cover transport errors, HTTP 5xx and
unreadable answers — for idempotent operations only. A non-idempotent operation (the upload)
is repeated only when the connection was never established, i.e. no byte left this machine.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import httpx
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from dte_core.sii.errors import (
    SiiError,
    SiiProtocolError,
    SiiServerError,
    SiiTimeoutError,
    SiiTransportError,
    SiiUnavailableError,
)

T = TypeVar("T")

#: UPL §2 (figura 2.3): "PROG 1.0" in the User-Agent makes DTEUpload answer in XML.
USER_AGENT: Final = "Mozilla/4.0 (compatible; PROG 1.0; Windows NT 5.0; YComp 5.0.2.4)"


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` in total (1 = no retry); waits grow from ``initial`` up to ``maximum``."""

    attempts: int = 4
    initial: float = 0.5
    maximum: float = 8.0
    jitter: float = 0.5


class CircuitBreaker:
    """Closed → open after ``failure_threshold`` consecutive failures; after ``reset_timeout``
    one trial call is let through (half-open): success closes it, failure reopens it."""

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> str:
        with self._lock:
            if self._opened_at is None:
                return "closed"
            elapsed = self._clock() - self._opened_at
            return "half_open" if elapsed >= self.reset_timeout else "open"

    def before_call(self) -> None:
        with self._lock:
            if self._opened_at is None:
                return
            remaining = self.reset_timeout - (self._clock() - self._opened_at)
            if remaining > 0 or self._trial_running:
                raise SiiUnavailableError(
                    f"the SII failed {self._failures} times in a row; calls are paused for "
                    f"{max(remaining, 0):.0f} s more (circuit breaker open)",
                    retry_after=max(remaining, 0.0),
                )
            self._trial_running = True

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial_running = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._trial_running or self._failures >= self.failure_threshold:
                self._opened_at = self._clock()
            self._trial_running = False


def _breaks_circuit(exc: SiiError) -> bool:
    return isinstance(exc, (SiiTransportError, SiiServerError, SiiProtocolError))


class NotSentError(SiiTransportError):
    """The connection was never established: the request certainly did not reach the SII."""


class SiiTransport:
    """One ``httpx.Client`` with a timeout, a retry policy and a breaker, shared by clients."""

    def __init__(
        self,
        *,
        client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float | httpx.Timeout = 30.0,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client or httpx.Client(
            transport=transport, timeout=timeout, headers={"User-Agent": USER_AGENT}
        )
        self.retry = retry or RetryPolicy()
        self.breaker = breaker or CircuitBreaker()
        self._sleep = sleep

    def close(self) -> None:
        self.client.close()

    def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One HTTP exchange; transport failures and 5xx become :class:`SiiError`."""
        try:
            response = self.client.request(method, url, headers=headers, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise NotSentError(f"cannot connect to {url}: {exc}") from exc
        except httpx.TimeoutException as exc:
            raise SiiTimeoutError(f"{method} {url} timed out: {exc}") from exc
        except httpx.TransportError as exc:
            raise SiiTransportError(f"{method} {url} failed: {exc}") from exc
        if response.status_code >= 500:
            raise SiiServerError(
                f"{method} {url} answered HTTP {response.status_code}",
                status_code=response.status_code,
            )
        return response

    def run(self, operation: Callable[[], T], *, idempotent: bool) -> T:
        """Run ``operation`` (HTTP plus parsing) under the breaker, retrying where safe."""

        def should_retry(exc: BaseException) -> bool:
            if isinstance(exc, SiiUnavailableError):
                return False  # the breaker is open: waiting here would only hide it
            if not idempotent:
                return isinstance(exc, NotSentError)
            return isinstance(exc, SiiError) and exc.retryable and _breaks_circuit(exc)

        def attempt() -> T:
            self.breaker.before_call()
            try:
                result = operation()
            except SiiError as exc:
                if _breaks_circuit(exc):
                    self.breaker.record_failure()
                else:
                    self.breaker.record_success()  # the SII is up; it just said no
                raise
            self.breaker.record_success()
            return result

        policy = self.retry
        retrying = Retrying(
            stop=stop_after_attempt(max(policy.attempts, 1)),
            wait=wait_exponential_jitter(
                multiplier=policy.initial, max=policy.maximum, jitter=policy.jitter
            ),
            retry=retry_if_exception(should_retry),
            sleep=self._sleep,
            reraise=True,
        )
        return retrying(attempt)
