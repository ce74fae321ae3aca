"""The secrets file (0600, beside the state) and the `secret:NAME` / `env:VAR` references to it."""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Final

import tomli_w

from bctui.engine.fileio import atomic_write
from bctui.errors import BctuiError, ExitCode
from bctui.secret import Secret

NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_HEADER: Final = (
    "# bctui secrets — keep this file private (mode 0600). Edit with `bctui secrets`.\n"
)


class SecretError(BctuiError):
    """A secret cannot be read, or a reference cannot be resolved."""

    exit_code = ExitCode.CONFIG


class SecretNameError(SecretError):
    """A name that a `secret:NAME` reference could not spell (a usage error)."""

    exit_code = ExitCode.USAGE


class SecretsFile:
    """Named secret values in a private TOML file; never logged, never shown."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, str]:
        return {k: v for k, v in self._read_all().items() if isinstance(v, str)}

    def _read_all(self) -> dict[str, object]:
        """Everything in the file, hand-written entries of other types included (kept on write)."""
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise SecretError(
                f"cannot read the secrets file: {exc.strerror}",
                where=str(self.path),
                fix="check its permissions",
            ) from None
        if not stat.S_ISREG(info.st_mode):
            raise SecretError(
                "the secrets file is not a regular file",
                where=str(self.path),
                fix="move it away; `bctui secrets set NAME` creates a new one",
            )
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise SecretError(
                f"the secrets file is readable by others (mode {mode:04o})",
                where=str(self.path),
                fix=f"run `chmod 600 {self.path}` (and consider rotating the keys in it)",
            )
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SecretError(
                f"cannot read the secrets file: {exc.strerror}",
                where=str(self.path),
                fix="check its owner and permissions",
            ) from None
        try:
            raw = tomllib.loads(text)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            # The decoder's message quotes no values, only positions.
            reason = str(exc) if isinstance(exc, tomllib.TOMLDecodeError) else "not UTF-8"
            raise SecretError(
                f"the secrets file is malformed: {reason}",
                where=str(self.path),
                fix="fix or delete it, then `bctui secrets set NAME` again",
            ) from None
        return raw

    def names(self) -> list[str]:
        """The names of the stored secrets, sorted."""
        return sorted(self._read())

    def get(self, name: str) -> Secret | None:
        """The secret called `name`, or None."""
        value = self._read().get(name)
        return None if value is None else Secret(value)

    def set(self, name: str, value: Secret) -> None:
        """Store `value` under `name` (the file is created 0600 and replaced atomically)."""
        check_name(name)
        values = self._read_all()
        values[name] = value.reveal()
        self._write(values)

    def delete(self, name: str) -> bool:
        """Remove `name`; False when there was no such secret."""
        values = self._read_all()
        if not isinstance(values.get(name), str):
            return False
        del values[name]
        self._write(values)
        return True

    def _write(self, values: Mapping[str, object]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        text = _HEADER + tomli_w.dumps(dict(sorted(values.items())))
        atomic_write(self.path, text.encode("utf-8"), mode=0o600)


def check_name(name: str) -> None:
    """Refuse names that a `secret:NAME` reference could not spell."""
    if not NAME.match(name):
        raise SecretNameError(
            f'"{name}" is not a valid secret name',
            fix="use letters, digits, _ . - (starting with a letter or _)",
        )


def secret_name_for(connection: str, what: str, taken: Collection[str] = ()) -> str:
    """The secret name the UI stores a connection's key under: ('Braze main', 'braze') →
    'braze-main-braze', or 'braze-main-braze-2' (-3, …) when that one is `taken` (used by another
    connection, or left in the secrets file by one that was deleted)."""
    slug = re.sub(r"[^a-z0-9]+", "-", connection.casefold()).strip("-") or "connection"
    if not slug[0].isalpha():  # a reference name starts with a letter
        slug = f"c-{slug}"
    name, number = f"{slug}-{what}", 1
    while name in taken:
        number += 1
        name = f"{slug}-{what}-{number}"
    return name


def resolve(reference: str, secrets: SecretsFile, *, where: str = "") -> Secret:
    """The value behind `secret:NAME` or `env:VAR` (a plain value is returned as it is)."""
    kind, sep, name = reference.partition(":")
    if sep and kind == "secret":
        found = secrets.get(name)
        if found is None:
            raise SecretError(
                f'no secret named "{name}" in {secrets.path}',
                where=where,
                fix=f"run `bctui secrets set {name}` and paste the value",
            )
        return found
    if sep and kind == "env":
        value = os.environ.get(name)
        if value is None:
            raise SecretError(
                f"environment variable {name} is not set",
                where=where,
                fix=f"export {name}=… before running bctui",
            )
        return Secret(value)
    return Secret(reference)
