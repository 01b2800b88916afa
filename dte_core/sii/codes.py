"""Codes the SII's web services answer with, each with the meaning its manual gives.

Sources (``../shared/sii/docs``):

* AUT — "Autenticación Automática" OI2007_AUTAUTOM_MDE v1.9, §5.2.2 (figuras 1.6 and 1.7).
* UPL — "Envío Automático de DTE" OI2003_UPDTE_MDE v1.5, §2.1 and §2.2.
* EUP — "Consulta de Estado de Upload DTE" OI2004_CEUPDTE_MDE v1.10, §3.3 and §3.5.
* EDT — "Consulta de Estado DTE" OI2004_CEDTE_MDE v1.10, tablas 3-4, 3-9 and 3-10.
* RCL — "Web Service de Consulta y Registro de Aceptación/Reclamo a DTE recibido" v1.2.
* BOL — the SII's boleta REST API (``boleta.electronica.*``, OpenAPI "API SII - V1"); not in the
  shared manuals, whose boleta document covers only the XML format: its envelope cap (500) is §2.
"""

from __future__ import annotations

from enum import Enum, IntEnum, StrEnum
from typing import Any, Final


class _Glosa:
    """Mixin: every member carries the manual's wording as ``glosa``."""

    glosa: str

    def _init_glosa(self, glosa: str) -> None:
        self.glosa = glosa


class CodedStr(_Glosa, StrEnum):
    def __new__(cls, value: str, glosa: str = "") -> Any:
        member = str.__new__(cls, value)
        member._value_ = value
        member._init_glosa(glosa)
        return member


class CodedInt(_Glosa, IntEnum):
    def __new__(cls, value: int, glosa: str = "") -> Any:
        member = int.__new__(cls, value)
        member._value_ = value
        member._init_glosa(glosa)
        return member


class Ambiente(Enum):
    """SII environments: certificación (maullin) and producción (palena) — AUT chapter 7."""

    CERTIFICACION = "certificacion"
    PRODUCCION = "produccion"

    @property
    def host(self) -> str:
        """Host of the SOAP services (CrSeed, GetTokenFromSeed, QueryEst*) and DTEUpload."""
        return "maullin.sii.cl" if self is Ambiente.CERTIFICACION else "palena.sii.cl"

    @property
    def reclamo_url(self) -> str:
        """RCL "WSDL del Web Service": ws2 for certificación, ws1 for producción."""
        if self is Ambiente.CERTIFICACION:
            return "https://ws2.sii.cl/WSREGISTRORECLAMODTECERT/registroreclamodteservice"
        return "https://ws1.sii.cl/WSREGISTRORECLAMODTE/registroreclamodteservice"

    @property
    def boleta_api_url(self) -> str:
        """BOL: semilla, token and status (apicert / api)."""
        host = "apicert.sii.cl" if self is Ambiente.CERTIFICACION else "api.sii.cl"
        return f"https://{host}/recursos/v1"

    @property
    def boleta_envio_url(self) -> str:
        """BOL: the upload of EnvioBOLETA goes to its own host (pangal / rahue)."""
        host = "pangal.sii.cl" if self is Ambiente.CERTIFICACION else "rahue.sii.cl"
        return f"https://{host}/recursos/v1"


class EstadoSemilla(CodedStr):
    """CrSeed ``ESTADO`` (AUT figura 1.6)."""

    OK = "00", "OK genera Semilla"
    SIN_CONFIGURACION = "-1", "No se registró línea en el Archivo de Configuración"
    ERROR_RETORNO = "-2", "ERROR: RETORNO (ERROR RETORNO / NO PUEDO CREAR O ACT. TOKEN)"


class EstadoToken(CodedStr):
    """GetTokenFromSeed ``ESTADO`` (AUT figura 1.7)."""

    OK = "00", "Token Creado"
    XML_IO = "01", "XML Inválido (IOException), función valSignedXml"
    XML_SAX = "02", "XML Inválido (SAXException), función valSignedXml"
    XML_PARSER = "03", "XML Inválido (ParserConfigurationException), función valSignedXml"
    SIN_SIGNATURE = "04", "XML Inválido, elemento “Signature” no existe, función valSignedXml"
    FIRMA_INVALIDA = "05", "XML Inválido, firma invalida, función valSignedXml"
    SIN_SEMILLA = "06", "XML Inválido, elemento “Semilla” no existe, función getSeed"
    MESSAGE_EXCEPTION = "07", "ERROR (MessageException)"
    ERROR_RETORNO = "08", "ERROR RETORNO (PARAMETROS INCORRECTOS, TIME-OUT DEL SEED…)"
    MESSAGE_EXCEPTION_09 = "09", "ERROR (MessageException)"
    ERROR_RETORNO_DATOS = "10", "ERROR RETORNO DATOS / NO PUEDO CREAR O ACT. TOKEN"
    SIN_CERTIFICADO = "11", "XML Inválido, elemento “Certificate” no existe, función getCertificado"
    ERROR_12 = "12", "ERROR (12) (MessageException)"
    LLAVE_NO_COINCIDE = "21", "Firma invalida (La llave pública no coincide con la del certificado)"
    ERROR_AUTENTICACION = "-3", "Error en Autenticación"
    RUT_NO_REGISTRADO = "-07", "Error en validación del RUT: usuario no registrado con certificado"


class UploadStatus(CodedInt):
    """``RECEPCIONDTE/STATUS`` of DTEUpload (UPL §2.1). Only 0 carries a TRACKID."""

    UPLOAD_OK = 0, "Upload OK"
    SENDER_SIN_PERMISO = 1, "El Sender no tiene permiso para enviar"
    ERROR_TAMANO = 2, "Error en tamaño del archivo (muy grande o muy chico)"
    ARCHIVO_CORTADO = 3, "Archivo cortado (tamaño <> al parámetro size)"
    NO_AUTENTICADO = 5, "No está autenticado"
    EMPRESA_NO_AUTORIZADA = 6, "Empresa no autorizada a enviar archivos"
    ESQUEMA_INVALIDO = 7, "Esquema Invalido"
    FIRMA_DOCUMENTO = 8, "Firma del Documento"
    SISTEMA_BLOQUEADO = 9, "Sistema Bloqueado"
    ERROR_INTERNO = 99, "Otro = Error Interno"

    @classmethod
    def of(cls, value: int) -> UploadStatus:
        """Any status the manual does not list is "Otro = Error Interno"."""
        try:
            member: UploadStatus = cls(value)
        except ValueError:
            member = cls.ERROR_INTERNO
        return member


class EstadoEnvio(CodedStr):
    """QueryEstUp ``ESTADO`` of an envío (EUP §3.3)."""

    RSC = "RSC", "Rechazado por Error en Schema"
    SOK = "SOK", "Schema Validado"
    CRT = "CRT", "Carátula OK"
    RFR = "RFR", "Rechazado por Error en Firma"
    FOK = "FOK", "Firma de Envío Validada"
    PDR = "PDR", "Envío en Proceso"
    RCT = "RCT", "Rechazado por Error en Carátula"
    EPR = "EPR", "Envío Procesado"

    @property
    def final(self) -> bool:
        """No later poll will change it: processed, or rejected as a whole."""
        return self in _FINAL_ENVIO


_FINAL_ENVIO: Final = frozenset(
    {EstadoEnvio.EPR, EstadoEnvio.RSC, EstadoEnvio.RFR, EstadoEnvio.RCT}
)


class EstadoDte(CodedStr):
    """QueryEstDte ``ESTADO`` of one document (EDT tabla 3-4); ``err_code`` from tabla 3-9."""

    DOK = "DOK", "Documento Recibido por el SII. Datos Coinciden con los Registrados."
    DNK = "DNK", "Documento Recibido por el SII pero Datos NO Coinciden con los registrados."
    FAU = "FAU", "Documento No Recibido por el SII."
    FNA = "FNA", "Documento No Autorizado."
    FAN = "FAN", "Documento Anulado."
    EMP = "EMP", "Empresa no autorizada a Emitir Documentos Tributarios Electrónicos"
    TMD = "TMD", "Existe Nota de Debito que Modifica Texto Documento."
    TMC = "TMC", "Existe Nota de Crédito que Modifica Textos Documento."
    MMD = "MMD", "Existe Nota de Debito que Modifica Montos Documento."
    MMC = "MMC", "Existe Nota de Crédito que Modifica Montos Documento."
    AND = "AND", "Existe Nota de Debito que Anula Documento"
    ANC = "ANC", "Existe Nota de Crédito que Anula Documento"

    @property
    def err_code(self) -> int:
        return _ERR_CODES[self]

    @property
    def recibido(self) -> bool:
        """The SII holds the document (the manual's GLOSA_ESTADO "DTE Recibido")."""
        return self not in (EstadoDte.FAU, EstadoDte.FNA, EstadoDte.FAN, EstadoDte.EMP)


_ERR_CODES: Final = {
    EstadoDte.DOK: 0, EstadoDte.DNK: 1, EstadoDte.FAU: 3, EstadoDte.FNA: 4, EstadoDte.FAN: 5,
    EstadoDte.EMP: 6, EstadoDte.TMD: 10, EstadoDte.TMC: 11, EstadoDte.MMD: 12,
    EstadoDte.MMC: 13, EstadoDte.AND: 14, EstadoDte.ANC: 15,
}  # fmt: skip


class EstadoSesion(CodedStr):
    """Authentication errors of QueryEstUp/QueryEstDte (EUP §3.5.2, EDT tabla 3-10)."""

    COOKIE_INACTIVO = "001", "Cookie Inactivo (o Token Inactivo)"
    TOKEN_INACTIVO = "002", "Token Inactivo"
    TOKEN_NO_EXISTE = "003", "Token No Existe"


class AccionDoc(CodedStr):
    """``accionDoc`` of ingresarAceptacionReclamoDoc (RCL parámetro 5)."""

    ACD = "ACD", "Acepta Contenido del Documento"
    RCD = "RCD", "Reclamo al Contenido del Documento"
    ERM = "ERM", "Otorga Recibo de Mercaderías o Servicios"
    RFP = "RFP", "Reclamo por Falta Parcial de Mercaderías"
    RFT = "RFT", "Reclamo por Falta Total de Mercaderías"

    @property
    def reclamo(self) -> bool:
        return self in (AccionDoc.RCD, AccionDoc.RFP, AccionDoc.RFT)


class EventoNoRegistrable(CodedStr):
    """Events listarEventosHistDoc reports that the WS itself does not record (RCL v1.2)."""

    NCA = "NCA", "Recepción de NC de anulación que referencia al documento"
    ENC = "ENC", "Recepción de NC, distinta de anulación, que referencia al documento"


class CodigoReclamo(CodedInt):
    """``codResp`` of the acceptance/claim web service (RCL "Parámetros de salida")."""

    OK = 0, "Acción Completada OK."
    RUT_EMISOR_ERRONEO = 1, "Rut Emisor Erróneo."
    FOLIO_ERRONEO = 2, "Número de Folio Erróneo."
    TIPO_NO_CORRESPONDE = 3, "Tipo de documento no corresponde."
    ACCION_INVALIDA = 4, "Acción inválida."
    YA_RECLAMADO = 5, "DTE ya está reclamado por XXX"
    ERM_TRAS_RECLAMO = (
        6,
        "No se puede acusar recibo de mercadería de DTE previamente reclamado por XXX",
    )
    EVENTO_PREVIO = 7, "Evento registrado previamente."
    PLAZO_VENCIDO = 8, "Pasados 8 días después de la recepción no es posible registrar reclamos"
    SIN_REGISTROS = 9, "No existen registros de acuerdo a los parámetros ingresados."
    ANTERIOR_A_2017 = 10, "Documento no emitido y/o recibido en el SII desde el 14 de Enero de 2017"
    RECLAMO_TRAS_ACEPTACION = 11, "No se puede reclamar DTE previamente aceptado."
    ACEPTACION_TRAS_RECLAMO = 12, "No se puede dar por aceptado DTE previamente rechazado por XXX"
    RECLAMO_TRAS_ERM = 13, "No se puede reclamar DTE previamente registrado como que acuso recibo"
    SOLO_RECEPTOR_O_EMISOR = 14, "Acción autorizada sólo para empresa receptora o emisora."
    LISTADO_EVENTOS = 15, "Listado de eventos del documento."
    SIN_EVENTOS = 16, "Documento no presenta eventos de reclamos o acuse de recibo."
    SOLO_RECEPTOR = 17, "Acción autorizada solo para empresa receptora."
    NO_RECIBIDO = 18, "Documento no ha sido recibido."
    RECLAMO_MERCADERIAS_HECHO = 19, "Reclamo de mercaderías ya realizado."
    NO_CEDIBLE_TIPO = 20, "Tipo de documento no es cedible."
    NO_CEDIBLE_ANULADO = 21, "DTE No cedible, referenciado por nota de crédito de anulación"
    SIN_RECLAMO_NI_RECIBO = 22, "No existe registro de reclamo o de recepción de mercadería"
    CEDIBLE = 23, "DTE Cedible, sin reclamos"
    NO_CEDIBLE_RECLAMADO = 24, "DTE No Cedible, DTE reclamado por el receptor"
    CEDIBLE_PLAZO = 25, "DTE Cedible, habiendo pasado 8 días se entiende dado acuse de recibo"
    ERROR_INTERNO = -1, "Error Interno: reintentar enviar la transacción más tarde."


#: RCL "Tipo de Documento": the only types the acceptance/claim service operates on.
TIPOS_RECLAMABLES: Final = frozenset({33, 34, 43})
#: RCL: events can be registered during the first 8 calendar days after the SII received the DTE.
PLAZO_RECLAMO_DIAS: Final = 8


class EstadoEnvioBoleta(CodedStr):
    """``estado`` of an EnvioBOLETA in the boleta REST API (BOL)."""

    REC = "REC", "Envío Recibido"
    SOK = "SOK", "Schema Validado"
    FOK = "FOK", "Firma de Envío Validada"
    PRD = "PRD", "Envío en Proceso"
    CRT = "CRT", "Carátula OK"
    EPR = "EPR", "Envío Procesado"
    RPR = "RPR", "Aceptado con Reparos"
    RSC = "RSC", "Rechazado por Error en Schema"
    RFR = "RFR", "Rechazado por Error en Firma"
    RCT = "RCT", "Rechazado por Error en Carátula"
    RPT = "RPT", "Repetido Rechazado"
    RCO = "RCO", "Rechazado por Consistencia"
    VOF = "VOF", "No se encontró el archivo .xml"

    @property
    def final(self) -> bool:
        return self not in (
            EstadoEnvioBoleta.REC,
            EstadoEnvioBoleta.SOK,
            EstadoEnvioBoleta.FOK,
            EstadoEnvioBoleta.PRD,
            EstadoEnvioBoleta.CRT,
        )


class EstadoBoleta(CodedStr):
    """``detalle_rep_rech[].estado`` of one boleta in an envío (BOL)."""

    DOK = "DOK", "Documento aceptado"
    RPR = "RPR", "Aceptado con reparos"
    RLV = "RLV", "Aceptado con reparos leves"
    RCH = "RCH", "Documento rechazado"
