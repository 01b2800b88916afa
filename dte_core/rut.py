"""RUT (Rol Único Tributario): the Chilean tax id, a value object that validates itself."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from dte_core.errors import FieldError, InvalidRutError

_RUT_RE = re.compile(r"^(\d{1,3}(?:\.\d{3})*|\d+)-?([\dkK])$")


def check_digit(number: int) -> str:
    """Mod-11 check digit of a RUT body: ``"0"``–``"9"`` or ``"K"``."""
    total, factor = 0, 2
    while number:
        number, digit = divmod(number, 10)
        total += digit * factor
        factor = 2 if factor == 7 else factor + 1
    value = 11 - total % 11
    return {11: "0", 10: "K"}.get(value, str(value))


@dataclass(frozen=True, slots=True)
class Rut:
    """A valid RUT. ``str(rut)`` is the SII canonical form ``12345678-5`` (no dots, upper K)."""

    number: int
    dv: str

    def __post_init__(self) -> None:
        if not 1 <= self.number <= 99_999_999 or check_digit(self.number) != self.dv:
            raise InvalidRutError(
                f"RUT {self.number}-{self.dv} has a wrong check digit; expected "
                f"{self.number}-{check_digit(self.number)}",
                fields=[FieldError("rut", "invalid_rut", "wrong check digit")],
            )

    @classmethod
    def parse(cls, value: str | Rut, field: str = "rut") -> Rut:
        """Accept ``12.345.678-5``, ``12345678-5`` or ``123456785`` (k or K)."""
        if isinstance(value, Rut):
            return value
        text = str(value).strip().replace(" ", "")
        match = _RUT_RE.match(text)
        if not match:
            raise InvalidRutError(
                f"{value!r} is not a RUT; write it as 12345678-5",
                fields=[FieldError(field, "invalid_rut", "not a RUT: write it as 12345678-5")],
            )
        number = int(match.group(1).replace(".", ""))
        dv = match.group(2).upper()
        if not 1 <= number <= 99_999_999:
            raise InvalidRutError(
                f"{value!r} is out of the RUT range 1-99.999.999",
                fields=[FieldError(field, "invalid_rut", "out of range")],
            )
        expected = check_digit(number)
        if dv != expected:
            raise InvalidRutError(
                f"RUT {value!r} has a wrong check digit: {number}-{expected} would be valid",
                fields=[
                    FieldError(
                        field, "invalid_rut", f"wrong check digit; {number}-{expected} is valid"
                    )
                ],
            )
        return cls(number, dv)

    @classmethod
    def canonical(cls, value: str | None) -> str | None:
        """``12345678-5`` for any accepted spelling of a valid RUT; None for anything else."""
        if not value:
            return None
        try:
            return str(cls.parse(value))
        except InvalidRutError:
            return None

    @classmethod
    def is_valid(cls, value: str) -> bool:
        try:
            cls.parse(value)
        except InvalidRutError:
            return False
        return True

    def __str__(self) -> str:
        return f"{self.number}-{self.dv}"

    def formatted(self) -> str:
        """Human form with thousands dots: ``12.345.678-5``."""
        return f"{self.number:,}".replace(",", ".") + f"-{self.dv}"

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        def validate(value: Any) -> Rut:
            try:
                return cls.parse(value)
            except InvalidRutError as exc:
                raise ValueError(exc.message) from exc

        return core_schema.no_info_plain_validator_function(
            validate, serialization=core_schema.plain_serializer_function_ser_schema(str)
        )
