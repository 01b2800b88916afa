"""The outbox worker built from the service's settings: SII clients and envelopes per company."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import Engine

from ai_service.outbox import store
from ai_service.outbox.worker import OutboxWorker, WorkerConfig
from ai_service.secrets import SecretBox
from ai_service.settings import Settings


class CompanyMaterial:
    """Certificates and SII clients per company, loaded once per worker process."""

    def __init__(self, settings: Settings, engine: Engine, box: SecretBox) -> None:
        self.settings = settings
        self.engine = engine
        self.box = box
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def certificate(self, company_id: str) -> Any:
        from ai_service.repositories.certificates import load_certificate

        return load_certificate(self.engine, self.box, company_id)

    def client(self, company_id: str) -> Any:
        """The company's SII DTE web-services client (token cached)."""
        return self.channels(company_id).dte

    def channels(self, company_id: str) -> Any:
        """Both SII services of a company behind the outbox's port."""
        from ai_service.outbox.channels import SiiChannels
        from dte_core.sii.boleta import BoletaClient
        from dte_core.sii.client import SiiClient
        from dte_core.sii.codes import Ambiente

        with self._lock:
            if company_id not in self._clients:
                certificate = self.certificate(company_id)
                ambiente = Ambiente(self.settings.sii_environment)
                base = self.settings.sii_base_url
                self._clients[company_id] = SiiChannels(
                    SiiClient(certificate, ambiente=ambiente, base_url=base),
                    BoletaClient(
                        certificate,
                        ambiente=ambiente,
                        # the simulator serves the boleta API under the same host
                        base_url=f"{base.rstrip('/')}/recursos/v1" if base else None,
                    ),
                )
            return self._clients[company_id]

    def envelope(self, company_id: str, dtes: list[bytes]) -> bytes:
        from ai_service.api.deps import chile_now
        from ai_service.repositories.companies import get_company
        from dte_core.envelope import SII_RUT, Caratula, build_envio

        company = get_company(self.engine, company_id)
        assert company is not None
        certificate = self.certificate(company_id)
        resolution = store.resolution(self.engine, company_id)
        caratula = Caratula(
            rut_emisor=company.rut,
            rut_envia=certificate.rut or company.rut,
            rut_receptor=SII_RUT,
            fch_resol=resolution.fch_resol,
            nro_resol=resolution.nro_resol,
        )
        return build_envio(dtes, caratula, certificate, timestamp=chile_now())


def build_worker(settings: Settings, engine: Engine, box: SecretBox) -> OutboxWorker:
    import httpx

    from ai_service.outbox.webhooks import deliver_due

    material = CompanyMaterial(settings, engine, box)
    http = httpx.Client(timeout=10.0, follow_redirects=False)
    return OutboxWorker(
        engine,
        material.channels,
        material.envelope,
        config=WorkerConfig(
            batch_size=settings.outbox_batch_size,
            recovery_grace_seconds=settings.outbox_recovery_grace_seconds,
        ),
        after_pass=lambda: deliver_due(engine, box, http),
    )
