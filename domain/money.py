"""Money: amounts as `Decimal`, exact to their currency's ISO 4217 minor unit.

A price, a line total, an order total and a payment are all amounts of one currency. Each is
quantised to that currency's minor unit (JPY has none, EUR two, KWD three), so yen never carry
cents and a total is the exact sum of its lines. Nothing here rounds: an amount that needs more
decimals than its currency has is refused, because rounding money silently is a bug.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

_ISO_4217 = """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP
    BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP
    GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR
    KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK
    MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR
    SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS
    UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
"""
CURRENCIES = frozenset(_ISO_4217.split())
"""ISO 4217 list one (2025), only currencies a price can be in: no fund codes (BOV, CLF, ...),
precious metals, SDR or test codes, and none withdrawn (HRK, SLL, ZWL)."""

_NO_MINOR_UNIT = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF"
_THREE_DECIMALS = "BHD IQD JOD KWD LYD OMR TND"
MINOR_UNITS: dict[str, int] = {
    **dict.fromkeys(CURRENCIES, 2),
    **dict.fromkeys(_NO_MINOR_UNIT.split(), 0),
    **dict.fromkeys(_THREE_DECIMALS.split(), 3),
}
"""Decimals per currency, from ISO 4217's minor-unit column."""

MAX_AMOUNT = Decimal("999999999999")
"""The largest amount of any currency, in major units: 12 digits before the point. An order
whose total would exceed it is refused with a reason; it never reaches the database."""


class MoneyError(ValueError):
    """An amount that its currency cannot represent."""


def decimals(currency: str) -> int:
    """How many decimals amounts in `currency` have."""
    try:
        return MINOR_UNITS[currency]
    except KeyError:
        raise MoneyError(f"currency {currency!r} is not an active ISO 4217 code") from None


def quantum(currency: str) -> Decimal:
    """The smallest amount of `currency`: 1 for JPY, 0.01 for EUR, 0.001 for KWD."""
    return Decimal(1).scaleb(-decimals(currency))


def amount(value: Decimal | str | int, currency: str) -> Decimal:
    """`value` as an exact amount of `currency`, spelt with the currency's decimals.

    Refuses (MoneyError) what is not a finite number, negative, beyond `MAX_AMOUNT`, or has more
    decimals than the currency has: 12.345 EUR or 1.5 JPY are not amounts, whatever a file says.
    """
    try:
        number = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise MoneyError(f"{value!r} is not a number") from None
    if not number.is_finite():
        raise MoneyError(f"{value!r} is not a finite number")
    if number < 0:
        raise MoneyError(f"amount {number} is negative")
    if number > MAX_AMOUNT:
        raise MoneyError(f"amount {number} {currency} exceeds the limit of {MAX_AMOUNT}")
    problem = _decimals_problem(number, currency)
    if problem:
        raise MoneyError(problem)
    return number.quantize(quantum(currency))


def _decimals_problem(number: Decimal, currency: str) -> str | None:
    places = decimals(currency)
    if -number.normalize().as_tuple().exponent <= places:
        return None
    if places:
        return f"{number} has more decimals than {currency} allows ({places})"
    return f"{number} is not a whole amount of {currency}, which has no minor unit"


def excess_decimals(value: str | None, currency: str | None) -> str | None:
    """Why a catalog price spelt `value` has more decimals than `currency` allows, or None.

    Only the decimals are judged here; the price's format and range are the GX suite's.
    """
    if value is None or currency not in MINOR_UNITS:
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        return None
    return _decimals_problem(number, currency) if number.is_finite() else None
