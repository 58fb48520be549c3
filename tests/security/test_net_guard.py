"""The outbound guard's pure checks: every spelling of an address is seen for what it is,
and the policy follows the settings. Network behaviour is in test_ssrf.py."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from plinth.errors import UsageError
from plinth.guards.net import OutboundPolicy, address_kind, check_host, redact_url, split_url
from plinth.settings import load_settings

TEAM = OutboundPolicy(allow_loopback=False, allow_private=False)
OPEN = OutboundPolicy(allow_loopback=True, allow_private=True)

METADATA_FORMS = [
    "169.254.169.254",
    "100.100.100.200",
    "fd00:ec2::254",
    "::ffff:169.254.169.254",  # IPv4-mapped
    "::ffff:a9fe:a9fe",
    "::169.254.169.254",  # IPv4-compatible
    "::ffff:0:a9fe:a9fe",  # SIIT IPv4-translated
    "64:ff9b::169.254.169.254",  # NAT64 well-known prefix
    "64:ff9b::a9fe:a9fe",
    "64:ff9b:1::a9fe:a9fe",  # local-use NAT64, /96
    "64:ff9b:1:a9fe:a9:fe00::",  # local-use NAT64, RFC 6052 /48 layout
    "2002:a9fe:a9fe::",  # 6to4
    "2002:a9fe:a9fe:1234::1",
    "2001:0:4136:e378:8000:63bf:5601:5601",  # Teredo, client 169.254.169.254 obfuscated
    "::ffff:100.100.100.200",
]


@pytest.mark.parametrize("address", METADATA_FORMS)
def test_metadata_address_in_any_ipv6_wrapping_is_metadata(address: str) -> None:
    assert address_kind(address) == "metadata"


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("::ffff:169.254.3.4", "link-local"),
        ("64:ff9b::169.254.3.4", "link-local"),
        ("2002:a9fe:0304::", "link-local"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 - an address checked, not bound
        ("0.1.2.3", "unspecified"),
        ("::", "unspecified"),
        ("::ffff:0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("255.255.255.255", "reserved"),
        ("240.0.0.1", "reserved"),
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::127.0.0.1", "loopback"),
        ("64:ff9b::7f00:1", "loopback"),
        ("2002:7f00:1::", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "private"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("::ffff:10.0.0.1", "private"),
        ("64:ff9b:1::808:808", "private"),  # local-use NAT64: a private network's
        ("64:ff9b:1:808:8:800::", "private"),
        ("8.8.8.8", None),
        ("172.32.0.1", None),
        ("2606:4700::1111", None),
        ("64:ff9b::8.8.8.8", None),
    ],
)
def test_every_address_form_is_classified(address: str, kind: str | None) -> None:
    assert address_kind(address) == kind


@pytest.mark.parametrize(
    ("spelling", "real"),
    [
        ("2130706433", "127.0.0.1"),  # decimal
        ("0177.0.0.1", "127.0.0.1"),  # octal
        ("0x7f.0.0.1", "127.0.0.1"),  # hex
        ("0x7f000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),  # short form
        ("2852039166", "169.254.169.254"),
        ("0251.0376.0251.0376", "169.254.169.254"),
        ("0xa9fea9fe", "169.254.169.254"),
        ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254"),
    ],
)
def test_odd_ipv4_spellings_are_checked_as_the_address_they_mean(
    spelling: str, real: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lookups: list[Any] = []
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: lookups.append(a) or [])
    kind = address_kind(real)
    with pytest.raises(UsageError, match=kind or "") as info:
        check_host(spelling, 80, TEAM, where="test")
    assert real in str(info.value)
    assert lookups == []  # never handed to DNS as a name
    if kind == "loopback":
        assert check_host(spelling, 80, OPEN, where="test") == [real]


@pytest.mark.parametrize(
    "host",
    ["metadata", "METADATA", "metadata.google.internal", "metadata.google.internal.", "[::]"],
)
def test_metadata_names_are_refused_before_any_lookup(
    host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lookups: list[Any] = []
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: lookups.append(a) or [])
    with pytest.raises(UsageError, match=r"metadata|unspecified") as info:
        check_host(host, 80, OPEN, where="route 'x'", field="url")
    assert info.value.field == "url"
    assert "never reached" in info.value.hint
    assert lookups == []


def test_a_name_with_one_bad_address_among_good_ones_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, 80)) for a in ("8.8.8.8", "10.0.0.5")
    ]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: answers)
    with pytest.raises(UsageError, match=r"hooks\.example resolves to 10\.0\.0\.5, a private"):
        check_host("hooks.example", 80, TEAM, where="test")
    assert check_host("hooks.example", 80, OPEN, where="test") == ["8.8.8.8", "10.0.0.5"]


def test_metadata_is_refused_even_when_loopback_and_private_are_allowed() -> None:
    for address in ("169.254.169.254", "::ffff:169.254.169.254", "fe80::1", "0.0.0.0"):  # noqa: S104
        assert not OPEN.allows(address_kind(address))
    assert OPEN.allows(address_kind("127.0.0.1"))
    assert OPEN.allows(address_kind("10.0.0.1"))


def test_loopback_is_allowed_on_the_embedded_default_and_refused_in_a_team_setup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    embedded = OutboundPolicy.from_settings(load_settings(tmp_path, discover=False))
    assert embedded == OutboundPolicy(allow_loopback=True, allow_private=False)
    team_url = "postgresql+psycopg://ml@db.internal:5432/plinth"
    team = load_settings(tmp_path, discover=False, overrides={"metadata": team_url})
    assert OutboundPolicy.from_settings(team) == TEAM
    opted = load_settings(
        tmp_path,
        discover=False,
        overrides={"metadata": team_url, "outbound_allow_loopback": True},
    )
    assert OutboundPolicy.from_settings(opted).allow_loopback
    monkeypatch.setenv("PLINTH_OUTBOUND_ALLOW_LOOPBACK", "0")
    monkeypatch.setenv("PLINTH_OUTBOUND_ALLOW_PRIVATE", "1")
    closed = OutboundPolicy.from_settings(load_settings(tmp_path, discover=False))
    assert closed == OutboundPolicy(allow_loopback=False, allow_private=True)


def test_refusal_hints_name_the_setting_that_allows_the_range() -> None:
    with pytest.raises(UsageError) as info:
        check_host("127.0.0.1", 80, TEAM, where="test")
    assert "outbound_allow_loopback" in info.value.hint
    with pytest.raises(UsageError) as info:
        check_host("192.168.0.10", 80, TEAM, where="test")
    assert "outbound_allow_private" in info.value.hint


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "gopher://127.0.0.1/", "ftp://h/x", "dict://h:11211/", "//h/x"]
)
def test_schemes_outside_the_allow_list_are_refused(url: str) -> None:
    with pytest.raises(UsageError, match="scheme") as info:
        split_url(url, where="route 'x'")
    assert info.value.field == "url"


def test_redacted_urls_keep_only_scheme_host_and_port() -> None:
    assert redact_url("https://u:p@h.example:8443/a/b?c=d") == "https://h.example:8443/…"
    assert redact_url("http://[::1]:8000/metrics") == "http://[::1]:8000/…"
    assert redact_url("http://h:notaport/") == "<url>"
