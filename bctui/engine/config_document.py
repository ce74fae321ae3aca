"""`connections.toml` as a front end holds it: the validated model and the exact bytes read, so a
save can refuse to overwrite a file that changed on disk since. The in-place editing that keeps
the user's comments and layout is in `config_edit` (loaded on the first save: it brings tomlkit,
which the UI's start-up does not need)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path

from bctui.engine.config import ConfigError, Issue, parse_config
from bctui.engine.fileio import atomic_write
from bctui.engine.models import Config
from bctui.errors import BctuiError, ExitCode


class ConfigChangedOnDisk(BctuiError):
    """connections.toml changed on disk since it was read; nothing was written."""

    exit_code = ExitCode.CONFIG

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"{path.name} was changed on disk since bctui read it; nothing was saved",
            where=str(path),
            fix="reload it (your edit is lost) and make the change again",
        )


class ConfigDocument:
    """connections.toml as read: the validated model plus the text it came from."""

    def __init__(self, path: Path, config: Config, raw: bytes | None) -> None:
        self.path = Path(path)
        self.config = config
        self._raw = raw  # the exact bytes read; None when there was no file

    @property
    def exists(self) -> bool:
        """False when there was no file yet."""
        return self._raw is not None

    @classmethod
    def load(cls, path: Path) -> ConfigDocument:
        """Read and validate `path`; a missing file gives an empty document."""
        path = Path(path)
        raw = _read(path)
        if raw is None:
            return cls(path, Config(), None)
        return cls(path, parse_config(_decode(raw, path), path), raw)

    def changed_on_disk(self) -> bool:
        """True when the file's bytes differ from those read (or it appeared or vanished)."""
        try:
            return _read(self.path) != self._raw
        except ConfigError:
            return True

    def save(
        self,
        new: Config,
        *,
        renamed_connections: Mapping[str, str] | None = None,
        renamed_goals: Mapping[tuple[str, str], str] | None = None,
        renamed_segments: Mapping[str, str] | None = None,
    ) -> ConfigDocument:
        """Write `new`, changing only what differs from `self.config`; the document written.

        `renamed_connections` and `renamed_segments` map old names to new ones;
        `renamed_goals` maps (new connection name, old goal name) to the new goal name.
        Raises `ConfigChangedOnDisk` (nothing written) when the file changed since it was read,
        and `ConfigError` (nothing written) when the result does not validate.
        """
        from tomlkit.exceptions import TOMLKitError

        from bctui.engine import config_write as cw
        from bctui.engine.config_edit import Unsupported, edit_text

        if self.changed_on_disk():
            raise ConfigChangedOnDisk(self.path)
        text = cw.to_toml(new)
        if self._raw is not None:
            # A layout the in-place edit does not handle gets the documented one instead.
            with contextlib.suppress(Unsupported, TOMLKitError):
                text = edit_text(
                    _decode(self._raw, self.path),
                    self.config,
                    new,
                    renamed_connections=renamed_connections or {},
                    renamed_goals=renamed_goals or {},
                    renamed_segments=renamed_segments or {},
                )
        written = parse_config(text, self.path)
        if written != new and written != parse_config(cw.to_toml(new), self.path):
            # The in-place edit met a layout it does not handle (say, dotted keys): rather
            # than save the wrong settings, write the whole file in the documented layout.
            text = cw.to_toml(new)
            written = parse_config(text, self.path)
        data = text.encode("utf-8")
        if data != self._raw:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, data)
        return ConfigDocument(self.path, written, data)


def _read(path: Path) -> bytes | None:
    """The file's bytes, or None when there is no file."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(
            path,
            [
                Issue(
                    (),
                    f"cannot read the file: {exc.strerror}",
                    "check that it is a readable file (not a directory) and its permissions",
                )
            ],
        ) from None


def _decode(raw: bytes, path: Path) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(
            path, [Issue((), "the file is not UTF-8 text", "save it as UTF-8 and try again")]
        ) from None
