"""The one module that knows where bctui keeps its files."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from bctui.errors import BctuiError, UsageError

APP_NAME = "bctui"
CONFIG_ENV = "BCTUI_CONFIG"
STATE_ENV = "BCTUI_STATE_DIR"
CONFIG_FILE = "connections.toml"
SECRETS_FILE = "secrets.toml"


@dataclass(frozen=True)
class Paths:
    """Where the config file and the state directory are for this invocation."""

    config: Path
    state_dir: Path

    @classmethod
    def resolve(
        cls, config: str | Path | None = None, state_dir: str | Path | None = None
    ) -> Paths:
        """Flags win over environment variables, which win over the platform defaults.

        An empty value is refused rather than ignored: `--state-dir "$UNSET"` must not quietly
        fall back to the user's real store.
        """
        for flag, env, value in (
            ("--config", CONFIG_ENV, config),
            ("--state-dir", STATE_ENV, state_dir),
        ):
            given = value if value is not None else os.environ.get(env)
            if given is not None and not str(given).strip():
                raise UsageError(
                    f"{flag} (or {env}) is empty",
                    fix=f"give a path, or leave both {flag} and {env} unset",
                )
        config_path = config or os.environ.get(CONFIG_ENV) or default_config_path()
        state_path = state_dir or os.environ.get(STATE_ENV) or default_state_dir()
        return cls(Path(config_path).expanduser(), Path(state_path).expanduser())

    @property
    def secrets(self) -> Path:
        """The 0600 file that holds `secret:NAME` values."""
        return self.state_dir / SECRETS_FILE

    @property
    def runs_dir(self) -> Path:
        """Run logs (one JSON-lines file per run)."""
        return self.state_dir / "runs"

    @property
    def locks_dir(self) -> Path:
        """Per-connection run locks."""
        return self.state_dir / "locks"

    def ensure_state_dir(self) -> Path:
        """Create the state directory (private to the user) if it does not exist."""
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except (FileExistsError, NotADirectoryError):
            raise BctuiError(
                "the state directory is a file",
                where=str(self.state_dir),
                fix="point --state-dir / BCTUI_STATE_DIR at a directory",
            ) from None
        except OSError as exc:
            raise BctuiError(
                f"cannot create the state directory: {exc.strerror}",
                where=str(self.state_dir),
                fix="check the permissions of its parent, or use --state-dir",
            ) from None
        return self.state_dir


def default_config_path() -> Path:
    """`connections.toml` in the user's config directory."""
    return Path(platformdirs.user_config_dir(APP_NAME)) / CONFIG_FILE


def default_state_dir() -> Path:
    """The user's state directory for bctui."""
    return Path(platformdirs.user_state_dir(APP_NAME))
