"""PII scanner: which string columns of a table hold personal data, with masked examples.

Each string column is sampled (the same rows for every column), every kind's regular
expression is applied once with ``pyarrow.compute.extract_regex`` (the first candidate of
each value), and only the candidates are verified: Luhn for card numbers, ISO 13616
mod-97 for IBANs, ``ipaddress`` for IP addresses, the SSA's area/group/serial rules for
US social security numbers, the mod-23 control letter for Spanish DNI/NIE numbers. A
column is reported for a kind when at least ``threshold`` of its sampled non-null values
match. Examples are masked; the scanner never returns a value in full::

    from plinth.validation import pii
    for f in pii.scan(table):
        print(f.column, f.kind, f"{f.fraction:.0%}", f.examples)  # email 98% ('j***@x.org',)
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plinth.errors import UsageError

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

__all__ = ["DEFAULT_THRESHOLD", "KINDS", "PiiFinding", "scan"]

#: A column is reported when at least this fraction of its sampled non-null values match.
DEFAULT_THRESHOLD = 0.1
#: Examples kept per finding, each masked.
MAX_EXAMPLES = 3


@dataclass(frozen=True)
class PiiFinding:
    """One kind of personal data found in one column of a sample."""

    column: str
    kind: str
    #: Sampled non-null values that hold a verified match.
    matches: int
    #: Sampled non-null values of the column.
    sampled: int
    fraction: float
    #: Up to three matches, masked (``j***@example.com``, ``**** **** **** 1111``).
    examples: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "kind": self.kind,
            "matches": self.matches,
            "sampled": self.sampled,
            "fraction": self.fraction,
            "examples": list(self.examples),
        }


# -- verification (vectorised over the candidates of one column) -------------------------


def _fixed_width(values: pa.Array, width: int) -> np.ndarray:
    """The UTF-8 bytes of ``values`` (ASCII, each left-padded to ``width``) as an n x width
    uint8 matrix."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    packed = pc.utf8_lpad(values, width=width, padding="0").cast(pa.binary())
    _, offsets_buffer, data = packed.buffers()
    if data is None or len(packed) == 0:
        return np.zeros((0, width), dtype=np.uint8)
    offsets = np.frombuffer(offsets_buffer, dtype=np.int32)
    start, end = offsets[packed.offset], offsets[packed.offset + len(packed)]
    return np.frombuffer(data, dtype=np.uint8)[start:end].reshape(-1, width)


def _luhn_ok(digits: pa.Array) -> np.ndarray:
    """Whether each digit string (13-19 digits) passes the Luhn check."""
    import numpy as np

    d = _fixed_width(digits, 19).astype(np.int64) - 48  # leading zeros do not change Luhn
    doubled = d[:, -2::-2] * 2
    total = d[:, ::-2].sum(axis=1) + (doubled - 9 * (doubled > 9)).sum(axis=1)
    ok: np.ndarray = total % 10 == 0
    return ok


def _iban_ok(ibans: pa.Array) -> np.ndarray:
    """ISO 13616: the country and check digits moved to the end, letters as 10-35, the
    number is 1 modulo 97."""
    import numpy as np
    import pyarrow.compute as pc

    moved = pc.binary_join_element_wise(
        pc.utf8_slice_codeunits(ibans, 4), pc.utf8_slice_codeunits(ibans, 0, 4), ""
    )
    chars = _fixed_width(moved, 34).astype(np.int64)  # a leading "0" leaves the remainder 0
    letter = chars >= 65
    value = np.where(letter, chars - 55, chars - 48)
    rest = np.zeros(len(chars), dtype=np.int64)
    for col in range(chars.shape[1]):
        rest = np.where(letter[:, col], rest * 100, rest * 10) + value[:, col]
        rest %= 97
    ok: np.ndarray = rest == 1
    return ok


def _in_range(values: pa.Array, low: int, high: int) -> Any:
    import pyarrow.compute as pc

    n = pc.utf8_length(values)
    return pc.and_(pc.greater_equal(n, low), pc.less_equal(n, high))


def _digits(values: pa.Array) -> pa.Array:
    import pyarrow.compute as pc

    result: pa.Array = pc.replace_substring_regex(values, r"\D", "")
    return result


def _verify_card(found: pa.StructArray) -> Any:
    import numpy as np
    import pyarrow.compute as pc

    digits = _digits(found.field("m"))
    ok = np.asarray(_in_range(digits, 13, 19).to_numpy(zero_copy_only=False), dtype=bool)
    # Issuer numbers start with 2-6 (Mastercard 2/5, Amex/Diners/JCB 3, Visa 4, Discover 6).
    ok &= np.asarray(pc.match_substring_regex(digits, "^[2-6]").to_numpy(zero_copy_only=False))
    if ok.any():
        ok[ok] = _luhn_ok(digits.filter(ok))
    return ok


def _verify_iban(found: pa.StructArray) -> Any:
    import numpy as np
    import pyarrow.compute as pc

    compact = pc.replace_substring(found.field("m"), " ", "")
    ok = np.asarray(_in_range(compact, 15, 34).to_numpy(zero_copy_only=False), dtype=bool)
    if ok.any():
        ok[ok] = _iban_ok(compact.filter(ok))
    return ok


def _verify_phone(found: pa.StructArray) -> Any:
    import numpy as np
    import pyarrow.compute as pc

    text = found.field("m")
    ok = pc.and_(
        _in_range(_digits(text), 9, 15),
        pc.invert(pc.match_substring_regex(text, r"^\d{3}-\d{2}-\d{4}$")),  # an SSN's shape
    )
    return np.asarray(ok.to_numpy(zero_copy_only=False), dtype=bool)


def _verify_ssn(found: pa.StructArray) -> Any:
    import numpy as np
    import pyarrow.compute as pc

    area, group, serial = (found.field(n) for n in ("a", "g", "s"))
    # Never issued: area 000, 666 or 900-999; group 00; serial 0000.
    ok = pc.and_(
        pc.and_(pc.not_equal(area, "000"), pc.not_equal(area, "666")),
        pc.and_(
            pc.less(area, "900"),
            pc.and_(pc.not_equal(group, "00"), pc.not_equal(serial, "0000")),
        ),
    )
    return np.asarray(ok.to_numpy(zero_copy_only=False), dtype=bool)


_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def _verify_dni(found: pa.StructArray) -> Any:
    import numpy as np
    import pyarrow.compute as pc

    number = found.field("n")
    for prefix, digit in (("X", "0"), ("Y", "1"), ("Z", "2")):  # NIE: X/Y/Z stand for 0/1/2
        number = pc.replace_substring(number, prefix, digit)
    n = number.cast("int64").to_numpy(zero_copy_only=False)
    expected = np.frombuffer(_DNI_LETTERS.encode(), dtype=np.uint8)[n % 23]
    letters = _fixed_width(found.field("l"), 1)[:, 0]
    ok: np.ndarray = expected == letters
    return ok


def _verify_ip(version: int) -> Callable[[pa.StructArray], Any]:
    def verify(found: pa.StructArray) -> Any:
        import numpy as np

        # Few candidates per column (dotted quads / colon groups): the ipaddress module
        # parses them one by one.
        out = []
        for text in found.field("m").to_pylist():
            try:
                out.append(ipaddress.ip_address(text).version == version)
            except ValueError:
                out.append(False)
        return np.asarray(out, dtype=bool)

    return verify


# -- masking -----------------------------------------------------------------------------


def _mask_digits(text: str, keep: int) -> str:
    """Every digit but the last ``keep`` replaced by '*'; separators kept."""
    total = sum(c.isdigit() for c in text)
    out, seen = [], 0
    for c in text:
        if c.isdigit():
            seen += 1
            out.append(c if seen > total - keep else "*")
        else:
            out.append(c)
    return "".join(out)


def _mask_email(text: str) -> str:
    local, _, domain = text.partition("@")
    return f"{local[:1]}***@{domain}"


def _mask_card(text: str) -> str:
    digits = re.sub(r"\D", "", text)
    return "**** **** **** " + digits[-4:]


def _mask_iban(text: str) -> str:
    compact = text.replace(" ", "")
    return compact[:4] + "*" * (len(compact) - 8) + compact[-4:]


def _mask_ipv4(text: str) -> str:
    return text.split(".", 1)[0] + ".*.*.*"


def _mask_ipv6(text: str) -> str:
    return text.split(":", 1)[0] + ":****"


def _mask_dni(text: str) -> str:
    return "*" * (len(text) - 1) + text[-1]


@dataclass(frozen=True)
class _Kind:
    name: str
    #: RE2 pattern; the named group ``m`` is the whole match (others feed the check).
    pattern: str
    verify: Callable[[pa.StructArray], Any]
    mask: Callable[[str], str]
    upper: bool = False


_KINDS = (
    _Kind(
        "email",
        r"(?P<m>[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,})",
        lambda found: None,
        _mask_email,
    ),
    _Kind(
        "phone",
        # International (+CC ...), North American ((555) 123-4567, 555-123-4567) or, as the
        # whole value, a national number starting with 0 (020 7946 0958).
        r"(?P<m>\+\d{1,3}[ .\-]?(?:\(\d{1,4}\)[ .\-]?)?\d{1,4}(?:[ .\-]?\d{1,4}){1,5}"
        r"|\(?\b\d{3}\)?[ .\-]?\d{3}[ .\-]\d{4}\b"
        r"|^\s*0\d{1,4}(?:[ .\-]\d{2,4}){2,4}\s*$)",
        _verify_phone,
        lambda text: _mask_digits(text.strip(), 2),
    ),
    _Kind("card", r"\b(?P<m>\d(?:[ \-]?\d){12,18})\b", _verify_card, _mask_card),
    _Kind(
        "iban",
        r"\b(?P<m>[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?)\b",
        _verify_iban,
        _mask_iban,
        upper=True,
    ),
    _Kind("ipv4", r"\b(?P<m>\d{1,3}(?:\.\d{1,3}){3})\b", _verify_ip(4), _mask_ipv4),
    _Kind(
        "ipv6",
        r"(?P<m>[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}[0-9A-Fa-f])",
        _verify_ip(6),
        _mask_ipv6,
    ),
    _Kind(
        "us_ssn",
        r"\b(?P<m>(?P<a>\d{3})-(?P<g>\d{2})-(?P<s>\d{4}))\b",
        _verify_ssn,
        lambda text: "***-**-" + text[-4:],
    ),
    _Kind(
        "es_dni",
        r"\b(?P<m>(?P<n>[XYZ]\d{7}|\d{8})-?(?P<l>[A-Z]))\b",
        _verify_dni,
        _mask_dni,
        upper=True,
    ),
)

#: Every kind the scanner reports, in the order it reports them.
KINDS: tuple[str, ...] = tuple(k.name for k in _KINDS)


def _string_columns(table: pa.Table) -> list[tuple[str, pa.Array]]:
    import pyarrow as pa

    out = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        kind = column.type
        if pa.types.is_dictionary(kind) and (
            pa.types.is_string(kind.value_type) or pa.types.is_large_string(kind.value_type)
        ):
            column = column.cast(kind.value_type)
            kind = column.type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            values = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
            out.append((name, values.drop_null()))
    return out


def _sample(table: pa.Table, sample: int, seed: int) -> pa.Table:
    import numpy as np

    if table.num_rows <= sample:
        return table
    rows = np.random.default_rng(seed).choice(table.num_rows, size=sample, replace=False)
    return table.take(np.sort(rows))


def _find(kind: _Kind, name: str, values: pa.Array, threshold: float) -> PiiFinding | None:
    import numpy as np
    import pyarrow.compute as pc

    source = pc.utf8_upper(values) if kind.upper else values
    extracted = pc.extract_regex(source, kind.pattern)
    hit = extracted.is_valid()
    if not pc.any(hit).as_py():
        return None
    found = extracted.filter(hit)
    ok = kind.verify(found)
    matched = found.field("m") if ok is None else found.field("m").filter(ok)
    matches = len(matched)
    fraction = matches / len(values)
    if matches == 0 or fraction < threshold:
        return None
    examples: list[str] = []
    for text in np.unique(matched.slice(0, 64).to_numpy(zero_copy_only=False)):
        masked = kind.mask(str(text))
        if masked not in examples:
            examples.append(masked)
        if len(examples) == MAX_EXAMPLES:
            break
    return PiiFinding(name, kind.name, matches, len(values), fraction, tuple(examples))


def scan(
    table: pa.Table,
    *,
    sample: int = 10_000,
    seed: int = 0,
    threshold: float = DEFAULT_THRESHOLD,
    kinds: tuple[str, ...] | None = None,
) -> list[PiiFinding]:
    """The personal data found in a sample of ``sample`` rows of ``table``'s string columns.

    One finding per (column, kind) whose share of matching non-null values is at least
    ``threshold``, in column order. The same ``seed`` samples the same rows.
    """
    if isinstance(sample, bool) or not isinstance(sample, int) or sample < 1:
        raise UsageError(f"sample must be a positive integer, got {sample!r}", field="sample")
    if not 0 < threshold <= 1:
        raise UsageError(
            f"threshold must be in (0, 1], got {threshold!r}",
            hint="it is the share of sampled values that must match, e.g. 0.1",
            field="threshold",
        )
    unknown = sorted(set(kinds or ()) - set(KINDS))
    if unknown:
        raise UsageError(
            f"unknown PII kind {unknown[0]!r}", hint=f"use {', '.join(KINDS)}", field="kinds"
        )
    chosen = [k for k in _KINDS if kinds is None or k.name in kinds]
    findings = []
    for name, values in _string_columns(_sample(table, sample, seed)):
        if len(values) == 0:
            continue
        for kind in chosen:
            finding = _find(kind, name, values, threshold)
            if finding is not None:
                findings.append(finding)
    return findings
