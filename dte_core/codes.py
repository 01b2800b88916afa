"""SII codes used by DTE documents, each with the schema type or manual field that defines it.

Sources: ``schemas/dte/DTE_v10.xsd`` + ``SiiTypes_v10.xsd`` (facturas, guías, notas),
``schemas/boleta/EnvioBOLETA_v11.xsd`` (boletas), the format manuals
"Formato Documentos Tributarios Electrónicos" v2.4.2 and "Formato Boletas Electrónicas" v4.1.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import IntEnum, StrEnum
from typing import Final


class TipoDTE(IntEnum):
    """Document types: SiiTypes_v10 ``DTEType`` (+ EnvioBOLETA_v11 ``DTEType`` for 39/41)."""

    FACTURA = 33
    FACTURA_EXENTA = 34
    BOLETA = 39
    BOLETA_EXENTA = 41
    FACTURA_COMPRA = 46
    GUIA_DESPACHO = 52
    NOTA_DEBITO = 56
    NOTA_CREDITO = 61


#: Boletas travel in an EnvioBOLETA and follow EnvioBOLETA_v11.xsd, not DTE_v10.xsd.
BOLETA_TIPOS: Final = frozenset({TipoDTE.BOLETA, TipoDTE.BOLETA_EXENTA})
#: Exentas carry only MntExe: no MntNeto, TasaIVA or IVA
#: (manual DTE fields 107/111/112; boleta 32/34).
EXENTA_TIPOS: Final = frozenset({TipoDTE.FACTURA_EXENTA, TipoDTE.BOLETA_EXENTA})
#: Notas must reference the document they modify with a CodRef (manual DTE, Referencia field 8).
NOTA_TIPOS: Final = frozenset({TipoDTE.NOTA_DEBITO, TipoDTE.NOTA_CREDITO})


class CodRef(IntEnum):
    """``Referencia/CodRef`` (DTE_v10.xsd): why a nota references a document."""

    ANULA = 1  # anula documento de referencia
    CORRIGE_TEXTO = 2  # corrige texto: no monetary effect, MontoItem must be 0
    CORRIGE_MONTOS = 3


class TpoMov(StrEnum):
    """``DscRcgGlobal/TpoMov`` (DTE_v10.xsd, EnvioBOLETA_v11.xsd)."""

    DESCUENTO = "D"
    RECARGO = "R"


class TpoValor(StrEnum):
    """``DineroPorcentajeType`` (SiiTypes_v10.xsd): a percentage or an amount in pesos."""

    PORCENTAJE = "%"
    MONTO = "$"


class IndExe(IntEnum):
    """``Detalle/IndExe`` (DTE_v10.xsd; boletas only allow 1, 2 and 6)."""

    EXENTO = 1  # no afecto o exento de IVA
    NO_FACTURABLE = 2
    GARANTIA_ENVASES = 3  # garantía por depósito de envases: goes to Totales/GrntDep
    NO_VENTA = 4  # MontoItem must be 0
    A_REBAJAR = 5  # guías NO VENTA that reduce an earlier guía; MontoItem must be 0
    NO_FACTURABLE_NEGATIVO = 6


#: Boletas allow only these IndExe values (EnvioBOLETA_v11.xsd, Detalle/IndExe).
INDEXE_BOLETA: Final = frozenset(
    {IndExe.EXENTO, IndExe.NO_FACTURABLE, IndExe.NO_FACTURABLE_NEGATIVO}
)


class IndExeDR(IntEnum):
    """``DscRcgGlobal/IndExeDR``: which lines a global discount or surcharge applies to."""

    EXENTO = 1
    NO_FACTURABLE = 2


class IndServicio(IntEnum):
    """``IdDoc/IndServicio`` in facturas (DTE_v10.xsd)."""

    SERVICIOS_PERIODICOS_DOMICILIARIOS = 1
    OTROS_SERVICIOS_PERIODICOS = 2
    FACTURA_DE_SERVICIO = 3


class IndServicioBoleta(IntEnum):
    """``IdDoc/IndServicio`` in boletas (EnvioBOLETA_v11.xsd; mandatory there)."""

    SERVICIOS_PERIODICOS = 1
    SERVICIOS_PERIODICOS_DOMICILIARIOS = 2
    VENTAS_Y_SERVICIOS = 3
    ESPECTACULO_POR_TERCEROS = 4


class IndMntNeto(IntEnum):
    """``IdDoc/IndMntNeto`` (EnvioBOLETA_v11.xsd): boleta lines are net, not IVA-included."""

    MONTOS_NETOS = 2


class IndTraslado(IntEnum):
    """``IdDoc/IndTraslado`` (DTE_v10.xsd): mandatory in guías de despacho (52)."""

    VENTA = 1
    VENTA_POR_EFECTUAR = 2
    CONSIGNACION = 3
    ENTREGA_GRATUITA = 4
    TRASLADO_INTERNO = 5
    OTROS_NO_VENTA = 6
    GUIA_DEVOLUCION = 7
    TRASLADO_EXPORTACION = 8
    VENTA_EXPORTACION = 9


class TipoDespacho(IntEnum):
    """``IdDoc/TipoDespacho`` (DTE_v10.xsd)."""

    POR_CUENTA_RECEPTOR = 1
    POR_EMISOR_A_INSTALACIONES_RECEPTOR = 2
    POR_EMISOR_A_OTRAS_INSTALACIONES = 3


class FmaPago(IntEnum):
    """``IdDoc/FmaPago`` (DTE_v10.xsd)."""

    CONTADO = 1
    CREDITO = 2
    SIN_COSTO = 3


class MedioPago(StrEnum):
    """``MedioPagoType`` (SiiTypes_v10.xsd)."""

    CHEQUE = "CH"
    LETRA = "LT"
    EFECTIVO = "EF"
    PAGO_A_CTA_CORRIENTE = "PE"
    TARJETA_CREDITO = "TC"
    CHEQUE_A_FECHA = "CF"
    OTRO = "OT"


class TpoImpresion(StrEnum):
    """``IdDoc/TpoImpresion`` (DTE_v10.xsd)."""

    NORMAL = "N"
    TICKET = "T"


#: IVA rate in percent (DL 825 art. 14); Totales/TasaIVA carries it.
TASA_IVA: Final = Decimal(19)
#: Max Detalle lines: 60 in DTE_v10.xsd (and manual §B), 1000 in EnvioBOLETA_v11.xsd.
MAX_DETALLE: Final = 60
MAX_DETALLE_BOLETA: Final = 1000
#: The SII's generic receptor for anonymous final consumers on boletas.
RUT_CONSUMIDOR_FINAL: Final = "66666666-6"
#: FechaType (SiiTypes_v10.xsd) bounds; the manual narrows FchEmis to 2003-04-01 onwards.
FECHA_MIN: Final = date(2000, 1, 1)
FECHA_MAX: Final = date(2050, 12, 31)
FCHEMIS_MIN: Final = date(2003, 4, 1)
