import pytest

from dte_core.errors import InvalidRutError
from dte_core.rut import Rut, check_digit


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("12.345.678-5", "12345678-5"),
        ("12345678-5", "12345678-5"),
        ("123456785", "12345678-5"),
        ("76354771-k", "76354771-K"),
        ("76.354.771-K", "76354771-K"),
        ("60910000-1", "60910000-1"),
        (" 97975000-5 ", "97975000-5"),
    ],
)
def test_parse_accepts_sii_spellings(text: str, canonical: str) -> None:
    assert str(Rut.parse(text)) == canonical


def test_check_digit_covers_k_and_zero() -> None:
    assert check_digit(76354771) == "K"
    assert check_digit(60803000) == "K"
    assert check_digit(11111111) == "1"
    assert check_digit(5126663) == "3"
    assert check_digit(1000013) == "0"


@pytest.mark.parametrize("bad", ["12345678-9", "abc", "", "12.34.5678-5", "0-0", "123456789-0"])
def test_invalid_input_raises_clear_error(bad: str) -> None:
    with pytest.raises(InvalidRutError) as info:
        Rut.parse(bad, field="Emisor.RUTEmisor")
    assert info.value.fields[0].field == "Emisor.RUTEmisor"
    assert info.value.code == "invalid_rut"


def test_wrong_digit_message_names_the_valid_one() -> None:
    with pytest.raises(InvalidRutError, match="12345678-5 would be valid"):
        Rut.parse("12.345.678-9")


def test_formatted_and_value_semantics() -> None:
    rut = Rut.parse("123456785")
    assert rut.formatted() == "12.345.678-5"
    assert rut == Rut(12345678, "5")
    assert len({rut, Rut.parse("12.345.678-5")}) == 1


def test_canonical_form_or_none() -> None:
    assert Rut.canonical("12.345.678-5") == "12345678-5"
    assert Rut.canonical("123456785") == "12345678-5"
    assert Rut.canonical("12345678-4") is None  # wrong check digit
    assert Rut.canonical("not a rut") is None
    assert Rut.canonical(None) is None and Rut.canonical("") is None
