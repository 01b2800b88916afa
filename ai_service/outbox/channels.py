"""The SII as the outbox worker sees it: the DTE web services and the boleta REST API behind
one port, with each service's answers mapped to the outbox's states.

DTE (QueryEstUp): RSC, RFR, RCT reject the whole envío; EPR with nothing rejected or with
reparos accepts every document; otherwise each document is asked for (QueryEstDte).
Boletas: RSC, RFR, RCT, RPT, RCO, VOF reject the envío; EPR/RPR list the boletas that were
rejected (RCH) or accepted with reparos (RPR, RLV) in ``detalle_rep_rech``; the others passed.
"""

from __future__ import annotations

from typing import Any

from ai_service.outbox.worker import ACCEPTED, OBJECTIONS, REJECTED, Key, Outcome

_BOLETA_REJECTS = frozenset({"RSC", "RFR", "RCT", "RPT", "RCO", "VOF"})
_DTE_REJECTS = frozenset({"RSC", "RFR", "RCT"})


class SiiChannels:
    def __init__(self, dte: Any, boleta: Any) -> None:
        """``dte`` a :class:`dte_core.sii.client.SiiClient`, ``boleta`` a
        :class:`dte_core.sii.boleta.BoletaClient`, both for the same company."""
        self.dte = dte
        self.boleta = boleta

    def upload(self, envio: bytes, *, boleta: bool) -> str:
        receipt = (self.boleta if boleta else self.dte).upload(envio)
        return str(receipt.track_id)

    def outcome(self, track_id: str, envio: bytes, *, boleta: bool, rut_company: str) -> Outcome:
        return (
            self._boleta(track_id, rut_company)
            if boleta
            else self._dte(track_id, envio, rut_company)
        )

    def _dte(self, track_id: str, envio: bytes, rut_company: str) -> Outcome:
        status = self.dte.estado_envio(track_id, rut_company=rut_company)
        estado = str(status.estado.value)
        if not status.estado.final:
            return Outcome(final=False, estado=estado)
        if estado in _DTE_REJECTS:
            return Outcome(final=True, estado=estado, rejected=True, glosa=status.glosa)
        if status.rechazados == 0:
            state = OBJECTIONS if status.reparos else ACCEPTED
            keys = _keys(envio)
            return Outcome(
                final=True, estado=estado, results={k: (state, estado, None) for k in keys}
            )
        results: dict[Key, tuple[str, str | None, Any]] = {}
        for key, doc_status in self.dte.documents_status(envio):
            code = str(doc_status.estado.value)
            detail = {"documento": code, "glosa": doc_status.glosa}
            if not doc_status.estado.recibido:
                results[(key.tipo_dte, key.folio)] = (REJECTED, code, detail)
            else:
                state = OBJECTIONS if status.reparos else ACCEPTED
                results[(key.tipo_dte, key.folio)] = (state, code, detail)
        return Outcome(final=True, estado=estado, results=results)

    def _boleta(self, track_id: str, rut_company: str) -> Outcome:
        status = self.boleta.estado_envio(track_id, rut_emisor=rut_company)
        estado = str(status.estado.value)
        if not status.final:
            return Outcome(final=False, estado=estado)
        if estado in _BOLETA_REJECTS:
            return Outcome(final=True, estado=estado, rejected=True)
        results: dict[Key, tuple[str, str | None, Any]] = {}
        for item in status.detalle:
            code = str(item.estado.value)
            detail = {
                "boleta": code,
                "descripcion": item.descripcion,
                "errores": list(item.errores),
            }
            state = REJECTED if code == "RCH" else OBJECTIONS
            results[(item.tipo, item.folio)] = (state, code, detail)
        return Outcome(final=True, estado=estado, results=results)

    def held(self, envio: bytes, *, boleta: bool) -> dict[Key, str | None]:
        if boleta:
            from dte_core.sii.client import caratula_ruts

            rut_emisor, _ = caratula_ruts(envio)
            found = {}
            for tipo, folio in _keys(envio):
                estado = self.boleta.estado_boleta(rut_emisor, tipo, folio)
                found[(tipo, folio)] = str(estado.value) if estado is not None else None
            return found
        return {
            (key.tipo_dte, key.folio): (
                str(status.estado.value) if status.estado.recibido else None
            )
            for key, status in self.dte.documents_status(envio)
        }


def _keys(envio: bytes) -> list[Key]:
    from dte_core.sii.client import documents_in

    return [(k.tipo_dte, k.folio) for k in documents_in(envio)]
