"""Secrets: redacted before anything reaches the ledger, scrubbed from a rerun's environment.

A run records its command line and params in the shared ledger, where every teammate can read
them. Before they are stored, :func:`redact_argv` and :func:`redact_params` replace with
``***``: URL passwords (``postgresql://u:***@h/db``), the value of a secret-looking flag
(``--token=***``, ``--api-key ***``), ``key=value`` arguments and params whose key looks like
a secret (``password``, ``api_key``, ``token``...) and any text equal to the value of an
environment variable that holds a secret (``GITHUB_TOKEN``, ``PGPASSWORD``...; values of 6
characters or more)::

    >>> redact_argv(["train.py", "--db", "postgresql://u:pw@h/db", "--api-key=abc"], env={})
    ['train.py', '--db', 'postgresql://u:***@h/db', '--api-key=***']

:func:`scrub_environment` is the environment a rerun of someone else's code gets.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from plinth.settings import redact

__all__ = [
    "REDACTED",
    "SECRET_ENV_MIN_LENGTH",
    "is_redacted",
    "is_secret_name",
    "redact_argv",
    "redact_entry_point",
    "redact_params",
    "redact_text",
    "scrub_environment",
    "secret_env_values",
]

#: What a redacted value is replaced with.
REDACTED = "***"
#: Shorter values of secret environment variables are not searched for: too many false hits.
SECRET_ENV_MIN_LENGTH = 6

# Words (of a flag, param key or variable name split at '-', '_', '.' and case changes)
# that mark what follows as a secret. "tokens" is left out on purpose: --max-tokens is not.
_SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "passphrase",
        "pwd",
        "token",
        "secret",
        "secrets",
        "apikey",
        "credential",
        "credentials",
    }
)
_SECRET_PAIRS = frozenset(
    {("api", "key"), ("access", "key"), ("private", "key"), ("secret", "key"), ("auth", "key")}
)
#: Prefixes of variables a rerun never inherits: database and cloud credentials live there.
_SCRUBBED_PREFIXES = ("PG", "AWS_")
#: Variables plinth sets itself or that may point a child at a ledger or store with a password.
_PLINTH_URL_SETTINGS = frozenset(
    {"PLINTH_METADATA", "PLINTH_ARTIFACTS", "PLINTH_ONLINE_STORE", "PLINTH_EXECUTOR"}
)
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_SPLIT = re.compile(r"[^a-z0-9]+")
_FLAG_VALUE = re.compile(r"^(-{0,2})([A-Za-z_][\w.\-]*)=(.*)$", re.DOTALL)
_FLAG = re.compile(r"^-{1,2}([A-Za-z_][\w.\-]*)$")


def _words(name: str) -> list[str]:
    return [w for w in _SPLIT.split(_CAMEL.sub(r"\1_\2", name).lower()) if w]


def is_secret_name(name: str, *, env: bool = False) -> bool:
    """Whether a flag, param key or (``env=True``) environment variable name holds a secret.

    >>> [is_secret_name(n) for n in ("--api-key", "db_password", "max_tokens", "lr")]
    [True, True, False, False]
    """
    return _is_secret_name(name, env)


@functools.lru_cache(maxsize=4096)
def _is_secret_name(name: str, env: bool) -> bool:
    # Cached: every run start checks the name of each environment variable and param.
    words = _words(name)
    if not words:
        return False
    if env and words == ["pwd"]:  # the shell's working directory
        return False
    for word in words:
        if word in _SECRET_WORDS or word.endswith(("password", "passwd")):
            return True
    if any(pair in _SECRET_PAIRS for pair in itertools.pairwise(words)):
        return True
    # FOO_KEY in the environment is a key; a --key flag or sort_key param usually is not.
    return env and len(words) > 1 and words[-1] == "key"


def secret_env_values(env: Mapping[str, str] | None = None) -> list[str]:
    """Values of secret-named variables in ``env`` (default ``os.environ``), longest first."""
    source = os.environ if env is None else env
    values = {
        value
        for name, value in source.items()
        if is_secret_name(name, env=True) and len(value) >= SECRET_ENV_MIN_LENGTH
    }
    return sorted(values, key=len, reverse=True)


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with URL passwords, secret query values and each of ``secrets`` redacted."""
    out = redact(text)
    for value in secrets:
        if value and value in out:
            out = out.replace(value, REDACTED)
    return out


def redact_argv(argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> list[str]:
    """``argv`` as it may be stored: see the module docstring for what is redacted.

    Arguments without a secret come back unchanged, so a redacted command line that held none
    reruns exactly.
    """
    secrets = secret_env_values(env)
    out: list[str] = []
    value_is_secret = False
    for raw in argv:
        arg = str(raw)
        if value_is_secret and not arg.startswith("--"):
            out.append(REDACTED)
            value_is_secret = False
            continue
        value_is_secret = False
        flag = _FLAG.match(arg)
        pair = _FLAG_VALUE.match(arg)
        if flag is not None and is_secret_name(flag[1]):
            value_is_secret = True  # --token VALUE: the next argument is the secret
            out.append(arg)
        elif pair is not None and is_secret_name(pair[2]):
            out.append(f"{pair[1]}{pair[2]}={REDACTED}")
        else:
            out.append(redact_text(arg, secrets))
    return out


def redact_entry_point(entry: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A recorded entry point with its ``args`` redacted by :func:`redact_argv`."""
    if entry is None:
        return None
    out = dict(entry)
    if isinstance(out.get("args"), list):
        out["args"] = redact_argv([str(a) for a in out["args"]])
    return out


def redact_params(
    params: Mapping[str, object], *, env: Mapping[str, str] | None = None
) -> dict[str, object]:
    """``params`` with secret-keyed values and secrets inside text values redacted."""
    secrets = secret_env_values(env)
    out: dict[str, object] = {}
    for key, value in params.items():
        if is_secret_name(str(key)) and value is not None:
            out[key] = REDACTED
        elif isinstance(value, str):
            out[key] = redact_text(value, secrets)
        else:
            out[key] = value
    return out


def is_redacted(arg: str) -> bool:
    """Whether a stored argument had a secret taken out of it."""
    return REDACTED in arg


def scrub_environment(
    env: Mapping[str, str], pass_env: Iterable[str] = ()
) -> tuple[dict[str, str], list[str]]:
    """``env`` without credentials, and the sorted names dropped.

    Dropped: ``PG*``, ``AWS_*``, secret-named variables (``*_TOKEN``, ``*_PASSWORD``,
    ``*SECRET*``, ``*_KEY``...), plinth's URL settings (``PLINTH_METADATA``...) and any variable
    whose value holds a URL with a password. Names in ``pass_env`` are kept whatever they are.
    """
    keep = set(pass_env)
    kept: dict[str, str] = {}
    dropped: list[str] = []
    for name, value in env.items():
        if name not in keep and _is_credential(name, value):
            dropped.append(name)
        else:
            kept[name] = value
    return kept, sorted(dropped)


def _is_credential(name: str, value: str) -> bool:
    upper = name.upper()
    if upper.startswith(_SCRUBBED_PREFIXES) or upper in _PLINTH_URL_SETTINGS:
        return True
    return is_secret_name(name, env=True) or redact(value) != value
