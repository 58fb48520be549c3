"""Recorded environments: validated against the packaging grammar, quoted when written out.

An environment record (Python version, platform, packages, hardware) may have been written by
anyone with write access to the ledger, so it is checked when it is stored *and* when it is
turned into a Dockerfile, requirements or lock file. Every field must be single-line printable
text; package names follow PEP 508, versions PEP 440 (``packaging.version``)::

    >>> requirement_line("numpy", "1.26.4", where="environment e1")
    'numpy==1.26.4'
    >>> python_major_minor("3.12.0rc1")
    '3.12'

Every refusal is a :class:`~plinth.errors.UsageError` whose ``field`` names the field
(``python``, ``platform``, ``packages``, ``packages.NAME``, ``extra.KEY``, ``image``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from plinth.errors import UsageError

__all__ = [
    "MAX_TEXT_LENGTH",
    "check_environment",
    "check_image_reference",
    "check_package",
    "check_python_version",
    "check_text_field",
    "comment_line",
    "dockerfile_string",
    "invalid_version_reason",
    "python_major_minor",
    "requirement_line",
]

#: The longest python, platform, name or version string accepted, in characters.
MAX_TEXT_LENGTH = 255
#: Nesting allowed inside ``extra`` (lists of GPU names and the like need two levels).
_MAX_DEPTH = 4
_MAX_EXTRA_TEXT = 1024

_DIGEST = re.compile(r"[0-9a-f]{64}")
# CPython's platform.python_version(): 3.11.9, 3.12.0rc1, 3.13.0a2, 3.14.0+ (a source build).
_PYTHON = re.compile(r"(?P<mm>[0-9]{1,3}\.[0-9]{1,3})(?:\.[0-9]{1,4})?(?:(?:a|b|rc)[0-9]{1,4})?\+?")
# PEP 508 names (also valid PEP 503 normalised names).
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,198}[A-Za-z0-9])?")
_CUDA = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}")
_DRIVER = re.compile(r"[0-9]{1,5}(?:\.[0-9]{1,5}){0,3}")
_MACHINE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_IMPLEMENTATION = re.compile(r"[a-z][a-z0-9_]{0,31}")
# The distribution reference grammar (docker/distribution/reference), without IPv6 hosts.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_DOMAIN = rf"{_LABEL}(?:\.{_LABEL})*(?::[0-9]{{1,5}})?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE = re.compile(
    rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?"
)

_HINT = (
    "the record was not written by plinth's environment capture; record the run again "
    "in a clean environment, or ask whoever can write the ledger to remove the record"
)


def _refuse(where: str, field: str, problem: str) -> UsageError:
    return UsageError(f"{where}: field {field!r} {problem}", hint=_HINT, field=field)


def check_text_field(
    value: object, field: str, *, where: str, max_length: int = MAX_TEXT_LENGTH
) -> str:
    """``value`` if it is a non-empty, single-line, printable string of bounded length."""
    if not isinstance(value, str) or not value:
        raise _refuse(where, field, f"must be a non-empty string, got {value!r:.60}")
    if len(value) > max_length:
        raise _refuse(where, field, f"is {len(value)} characters long; the limit is {max_length}")
    if not value.isprintable():
        # isprintable() is False for \n, \r, NUL, other C0/C1 controls, U+2028/2029 and
        # zero-width format characters: anything that could start a new line or hide text.
        raise _refuse(where, field, f"contains a control or non-printable character: {value!r:.80}")
    return value


def check_python_version(value: object, *, where: str, field: str = "python") -> str:
    """``value`` if it is a Python version such as ``3.11.9`` or ``3.12.0rc1``."""
    text = check_text_field(value, field, where=where)
    if not _PYTHON.fullmatch(text):
        raise _refuse(where, field, f"is {text!r}, not a Python version like 3.11.9 or 3.12.0rc1")
    return text


def python_major_minor(python: str, *, where: str = "environment") -> str:
    """``3.11`` from ``3.11.9``: the tag of the official ``python`` image, after validation."""
    match = _PYTHON.fullmatch(check_python_version(python, where=where))
    assert match is not None  # checked just above
    return match.group("mm")


def invalid_version_reason(version: object) -> str | None:
    """Why ``version`` is not a clean PEP 440 version string, or None when it is one."""
    from packaging.version import InvalidVersion, Version

    if not isinstance(version, str) or not version:
        return f"is not a non-empty string: {version!r:.60}"
    if len(version) > 128:
        return f"is {len(version)} characters long; the limit is 128"
    if not version.isprintable() or version != "".join(version.split()):
        # Version() itself strips surrounding whitespace, newlines included: refuse them first.
        return f"contains whitespace or a control character: {version!r:.80}"
    try:
        Version(version)
    except InvalidVersion:
        return f"is {version!r:.80}, not a PEP 440 version like 1.26.4"
    return None


def check_package(name: object, version: object, *, where: str) -> tuple[str, str]:
    """``(name, version)`` if the name is a PEP 508 name and the version is PEP 440."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise _refuse(
            where,
            "packages",
            f"has a package name {name!r:.80} that is not a PEP 508 name "
            "(letters, digits, '.', '_' and '-', starting and ending with a letter or digit)",
        )
    reason = invalid_version_reason(version)
    if reason is not None:
        raise _refuse(where, f"packages.{name}", f"(the version) {reason}")
    assert isinstance(version, str)
    return name, version


def requirement_line(name: str, version: str, *, where: str) -> str:
    """``name==version`` for a requirements or lock file, only after both are validated."""
    checked_name, checked_version = check_package(name, version, where=where)
    return f"{checked_name}=={checked_version}"


def check_environment(
    *,
    digest: object,
    python: object,
    platform: object,
    packages: object,
    extra: object,
    where: str = "environment",
) -> None:
    """Refuse an environment record any of whose fields breaks the grammar."""
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise _refuse(where, "digest", f"is {digest!r:.80}, not 64 lower-case hex digits")
    check_python_version(python, where=where)
    check_text_field(platform, "platform", where=where)
    if not isinstance(packages, Mapping):
        raise _refuse(
            where, "packages", f"must be a mapping of name to version, got {packages!r:.60}"
        )
    for name, version in packages.items():
        check_package(name, version, where=where)
    if not isinstance(extra, Mapping):
        raise _refuse(where, "extra", f"must be a mapping, got {extra!r:.60}")
    _check_extra(extra, where)


def _check_extra(extra: Mapping[Any, Any], where: str) -> None:
    for key, value in extra.items():
        field = f"extra.{key}" if isinstance(key, str) and key.isprintable() else "extra"
        check_text_field(key, field, where=where, max_length=64)
        _check_json_value(value, field, where, depth=1)
    formats = {"cuda": _CUDA, "driver": _DRIVER, "machine": _MACHINE}
    formats["implementation"] = _IMPLEMENTATION
    for key, pattern in formats.items():
        value = extra.get(key)
        if value is not None and not (isinstance(value, str) and pattern.fullmatch(value)):
            raise _refuse(where, f"extra.{key}", f"is {value!r:.60}, not a valid {key} string")
    editable = extra.get("editable")
    if editable is not None:
        if not isinstance(editable, list):
            raise _refuse(where, "extra.editable", "must be a list of package names")
        for name in editable:
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                raise _refuse(
                    where, "extra.editable", f"has {name!r:.60}, which is not a package name"
                )


def _check_json_value(value: object, field: str, where: str, *, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise _refuse(where, field, f"is nested more than {_MAX_DEPTH} levels deep")
    if isinstance(value, str):
        # An empty string is harmless here (e.g. an unknown CPU model); length and lines are not.
        if value:
            check_text_field(value, field, where=where, max_length=_MAX_EXTRA_TEXT)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            check_text_field(key, field, where=where, max_length=64)
            _check_json_value(item, field, where, depth=depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_json_value(item, field, where, depth=depth + 1)
    elif value is not None and not isinstance(value, bool | int | float):
        raise _refuse(where, field, f"holds a {type(value).__name__}, not JSON data")


def comment_line(text: str, *, where: str, field: str) -> str:
    """``# text`` for a Dockerfile, requirements or lock file; refuses anything multi-line."""
    return "# " + check_text_field(text, field, where=where, max_length=1024)


def dockerfile_string(value: str, *, where: str, field: str) -> str:
    """``value`` as one double-quoted word for ``ENV``, ``ARG`` or ``LABEL``.

    Backslashes and quotes are escaped and ``$`` too, so no variable is substituted.
    """
    text = check_text_field(value, field, where=where, max_length=1024)
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'


def check_image_reference(image: object, *, field: str = "image") -> str:
    """``image`` if it is a container image reference such as ``registry:5000/team/app:1.2``."""
    if not isinstance(image, str) or len(image) > MAX_TEXT_LENGTH or not _IMAGE.fullmatch(image):
        raise UsageError(
            f"{image!r:.80} is not a container image reference",
            hint="use [REGISTRY[:PORT]/]NAME[:TAG][@sha256:DIGEST] with a lower-case NAME, "
            "e.g. registry.example.com/team/delays:1.2",
            field=field,
        )
    return image
