"""The PII scanner: each kind found and verified, look-alikes rejected, examples masked."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from plinth import datasets
from plinth.context import Context
from plinth.errors import UsageError
from plinth.validation import pii
from plinth.validation.pii import PiiFinding

PEOPLE = pa.table(
    {
        "email": ["john@example.com", "a.b+c@mail.co.uk", None, "zoe@example.org"],
        "phone": ["+44 20 7946 0958", "(555) 123-4567", "555-123-4567", "020 7946 0958"],
        "card": [
            "4111 1111 1111 1111",
            "5500-0000-0000-0004",
            "378282246310005",
            "6011111111111117",
        ],
        "iban": [
            "DE89 3704 0044 0532 0130 00",
            "GB82WEST12345698765432",
            "fr1420041010050500013m02606",
            "NL91ABNA0417164300",
        ],
        "ipv4": ["192.168.1.1", "10.0.0.254", "8.8.8.8", "172.16.0.1"],
        "ipv6": ["2001:db8::1", "fe80::1ff:fe23:4567:890a", "::1", "2001:0db8:0:0:0:0:2:1"],
        "ssn": ["123-45-6789", "078-05-1120", "219-09-9999", "536-22-1234"],
        "dni": ["12345678Z", "X1234567L", "00000000T", "Y0000000Z"],
        "note": ["contact: john@example.com", "nothing here", "call later", "n/a"],
        "n": [1, 2, 3, 4],
    }
)


def by_column(findings: list[PiiFinding]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for f in findings:
        out.setdefault(f.column, set()).add(f.kind)
    return out


def test_every_kind_is_found_in_its_column_and_nowhere_else() -> None:
    found = by_column(pii.scan(PEOPLE))
    assert found == {
        "email": {"email"},
        "phone": {"phone"},
        "card": {"card"},
        "iban": {"iban"},
        "ipv4": {"ipv4"},
        "ipv6": {"ipv6"},
        "ssn": {"us_ssn"},
        "dni": {"es_dni"},
        "note": {"email"},
    }


def test_counts_and_fractions_are_over_sampled_non_null_values() -> None:
    (email,) = [f for f in pii.scan(PEOPLE) if f.column == "email"]
    assert (email.matches, email.sampled, email.fraction) == (3, 3, 1.0)
    (note,) = [f for f in pii.scan(PEOPLE) if f.column == "note"]
    assert (note.matches, note.sampled, note.fraction) == (1, 4, 0.25)
    assert [f.column for f in pii.scan(PEOPLE, threshold=0.5)].count("note") == 0


LOOK_ALIKES = pa.table(
    {
        # 16 digits that fail Luhn, and a Luhn-valid number with no issuer prefix.
        "card": ["4111 1111 1111 1112", "1234567812345678", "9999999999999995", "5500000000000005"],
        # Each IBAN with one check digit off.
        "iban": [
            "DE88 3704 0044 0532 0130 00",
            "GB83WEST12345698765432",
            "NL90ABNA0417164300",
            "FR1520041010050500013M02606",
        ],
        "ip": ["999.1.1.1", "256.256.256.256", "1.2.3", "12:30:00"],
        "ssn": ["000-12-3456", "666-12-3456", "900-12-3456", "123-00-4567"],
        "dni": ["12345678A", "X1234567Z", "87654321A", "Y1234567A"],
        "dates": ["2024-01-15", "01-02-2024", "2024-01-15 10:30:00", "0000012345"],
        "words": ["user at example dot com", "a@b", "x@@y.com", "@example.com"],
    }
)


def test_look_alikes_are_rejected() -> None:
    assert pii.scan(LOOK_ALIKES) == []


def test_examples_are_masked_and_at_most_three() -> None:
    found = {f.column: f for f in pii.scan(PEOPLE)}
    assert found["email"].examples == (
        "a***@mail.co.uk",
        "j***@example.com",
        "z***@example.org",
    )
    assert "**** **** **** 1111" in found["card"].examples
    assert all(e.startswith("**** **** **** ") for e in found["card"].examples)
    assert "DE89**************3000" in found["iban"].examples
    assert "192.*.*.*" in found["ipv4"].examples
    assert "***-**-6789" in found["ssn"].examples
    assert "********Z" in found["dni"].examples
    assert "+** ** **** **58" in found["phone"].examples
    for f in found.values():
        assert 1 <= len(f.examples) <= 3
    shown = " ".join(e for f in found.values() for e in f.examples)
    for secret in ("john@", "4111 1111 1111 1111", "123-45-6789", "3704 0044", "168.1.1"):
        assert secret not in shown


def test_sampling_is_seeded_and_bounded() -> None:
    emails = [f"user{i}@example.com" if i % 2 else "none" for i in range(50_000)]
    table = pa.table({"contact": emails, "other": ["x"] * 50_000})
    (first,) = pii.scan(table, sample=1_000, seed=7)
    assert first.sampled == 1_000
    assert 0.4 < first.fraction < 0.6
    assert pii.scan(table, sample=1_000, seed=7) == [first]


def test_dictionary_and_chunked_string_columns_are_scanned() -> None:
    column = pa.chunked_array([["a@example.com", "b@example.com"], ["c@example.com"]])
    table = pa.table({"plain": column, "dict": column.dictionary_encode()})
    assert by_column(pii.scan(table)) == {"plain": {"email"}, "dict": {"email"}}


def test_bad_arguments_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="sample must be a positive integer"):
        pii.scan(PEOPLE, sample=0)
    with pytest.raises(UsageError, match="threshold must be in"):
        pii.scan(PEOPLE, threshold=0)
    with pytest.raises(UsageError, match="unknown PII kind 'passport'"):
        pii.scan(PEOPLE, kinds=("passport",))
    assert {f.kind for f in pii.scan(PEOPLE, kinds=("iban",))} == {"iban"}


def test_cli_scan_reports_and_exits_0(project_dir: Path, cli: Callable[..., Any]) -> None:
    assert cli("init").code == 0
    with Context.open(project_dir) as ctx:
        datasets.save(PEOPLE.select(["email", "card", "n"]), "people", "raw", ctx=ctx)
    r = cli("data", "scan", "people")
    assert r.code == 0, r.err
    assert "people@1: 4 rows sampled; 2 findings" in r.out
    assert "j***@example.com" in r.out
    assert "john@example.com" not in r.out
    r = cli("data", "scan", "people@1", "--json", "--sample", "2", "--threshold", "0.5")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert (out["version"]["ref"], out["sampled_rows"], out["threshold"]) == ("people@1", 2, 0.5)
    assert {(f["column"], f["kind"]) for f in out["findings"]} == {
        ("email", "email"),
        ("card", "card"),
    }
    assert set(out["findings"][0]) == {
        "column", "kind", "matches", "sampled", "fraction", "examples"
    }  # fmt: skip
    with Context.open(project_dir) as ctx:
        datasets.save(PEOPLE.select(["n"]), "numbers", ctx=ctx)
    r = cli("data", "scan", "numbers")
    assert (r.code, "no personal data found" in r.out) == (0, True)
    for args in (
        ["people", "--sample", "0"],
        ["ghost"],
        ["people@9"],
        ["people", "--threshold", "0"],
    ):
        r = cli("data", "scan", *args)
        assert r.code == 2, (args, r.err)
    assert "plinth data scan" in cli("data", "scan", "--help").out
