"""How suppliers' systems actually write item names: upper case, accents dropped, abbreviations,
the odd typo. Every function takes the generator's ``random.Random`` so output follows the seed."""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass

#: word -> abbreviations seen on Chilean invoices
ABBREVIATIONS: dict[str, tuple[str, ...]] = {
    "cemento": ("CEM.", "cem"),
    "servicio": ("Serv.", "SERV", "Svc."),
    "servicios": ("Servs.", "SERV."),
    "arriendo": ("Arr.", "ARRDO"),
    "mensual": ("mens.", "MENS"),
    "kilogramos": ("KG", "kg", "kgs"),
    "kilos": ("KG", "kg"),
    "metros": ("MT", "mts", "m"),
    "metro": ("MT", "mt"),
    "unidad": ("UN", "und", "u."),
    "unidades": ("UN", "unds"),
    "litros": ("LT", "lts"),
    "litro": ("LT", "lt"),
    "caja": ("CJ", "cja"),
    "paquete": ("PQT", "paq."),
    "materiales": ("mat.", "MATS"),
    "material": ("mat.", "MAT"),
    "instalacion": ("inst.", "INSTAL."),
    "instalación": ("inst.", "INSTAL."),
    "mantencion": ("mant.", "MANT."),
    "mantención": ("mant.", "MANT."),
    "electrico": ("elect.", "ELEC"),
    "eléctrico": ("elect.", "ELEC"),
    "licencia": ("lic.", "LIC"),
    "licencias": ("lics.", "LIC"),
    "desarrollo": ("desarr.", "DES."),
    "galvanizado": ("galv.", "GALV"),
    "diametro": ("diam.", "D."),
    "diámetro": ("diam.", "D."),
    "transporte": ("transp.", "TRANSP"),
    "congelado": ("cong.", "CONG"),
    "congelada": ("cong.", "CONG"),
    "botella": ("bot.", "BOT"),
    "horas": ("hrs", "HH"),
    "hora": ("hr", "HH"),
    "proyecto": ("proy.", "PRY"),
}

_WORD = re.compile(r"\w+", re.UNICODE)


def strip_accents(text: str) -> str:
    return "".join(
        c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)
    ).replace("\u00d1", "N")


def abbreviate(text: str, rng: random.Random, p: float) -> str:
    def swap(match: re.Match[str]) -> str:
        word = match.group(0)
        options = ABBREVIATIONS.get(word.lower())
        if options and rng.random() < p:
            return rng.choice(options)
        return word

    return _WORD.sub(swap, text)


def typo(text: str, rng: random.Random) -> str:
    """One keyboard slip in a word of five letters or more: a swap, a drop or a double."""
    words = [m for m in _WORD.finditer(text) if len(m.group(0)) >= 5 and m.group(0).isalpha()]
    if not words:
        return text
    m = rng.choice(words)
    word = m.group(0)
    i = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(3)
    if kind == 0:
        new = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    elif kind == 1:
        new = word[:i] + word[i + 1 :]
    else:
        new = word[:i] + word[i] + word[i:]
    return text[: m.start()] + new + text[m.end() :]


@dataclass(frozen=True)
class WritingStyle:
    """A supplier's ERP: fixed habits applied to every item it prints."""

    upper: bool
    drop_accents: bool
    abbreviation_rate: float
    typo_rate: float

    @classmethod
    def draw(cls, rng: random.Random) -> WritingStyle:
        upper = rng.random() < 0.5
        return cls(
            upper=upper,
            drop_accents=upper or rng.random() < 0.5,
            abbreviation_rate=rng.choice((0.0, 0.0, 0.3, 0.7)),
            typo_rate=rng.choice((0.0, 0.03, 0.08)),
        )

    def render(self, text: str, rng: random.Random) -> str:
        if self.abbreviation_rate:
            text = abbreviate(text, rng, self.abbreviation_rate)
        if self.drop_accents:
            text = strip_accents(text)
        if self.upper:
            text = text.upper()
        if self.typo_rate and rng.random() < self.typo_rate:
            text = typo(text, rng)
        return text[:80]  # Detalle/NmbItem holds 80 characters
