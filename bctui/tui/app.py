"""The bctui application: one workspace, the screens over it, a poll of running runs, and a watch on
connections.toml. Screens own their widgets; the app owns what every screen shares."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.signal import Signal
from textual.worker import Worker, WorkerState

from bctui.engine.config import ConfigError, Issue
from bctui.engine.config_document import ConfigChangedOnDisk
from bctui.engine.models import Config
from bctui.engine.paths import Paths
from bctui.engine.runs import history
from bctui.engine.runs import state as st
from bctui.engine.runs.lock import Holder
from bctui.engine.scheduler import SchedulerStatus, scheduler_status
from bctui.engine.workspace import StaleEdit, Workspace
from bctui.errors import BctuiError
from bctui.tui.messages import ConfigReloaded, RunsPolled


@dataclass(frozen=True)
class RunsSnapshot:
    """What runs look like right now: each connection's newest run, and who is running."""

    latest: Mapping[str, st.RunRecord] = field(default_factory=dict)
    running: Mapping[str, Holder] = field(default_factory=dict)
    scheduler: SchedulerStatus | None = None
    """What keeps the schedules (a `bctui scheduler` daemon or cron's `bctui tick`), if anything."""

    def status(self, connection: str) -> str:
        """RUNNING, INTERRUPTED, a final state, or '' when the connection never ran."""
        record = self.latest.get(connection)
        if connection in self.running:
            return history.RunStatus.RUNNING
        if record is None:
            return ""
        if record.state == st.RUNNING:
            return history.RunStatus.INTERRUPTED
        return record.state


class BctuiApp(App[None]):
    """The terminal UI of bctui."""

    CSS_PATH = "app.tcss"
    TITLE = "bctui"
    # A mode (not the default screen) so that the first screen's own stylesheet is loaded.
    MODES: ClassVar[dict[str, str | Callable[[], Screen[Any]]]] = {
        "connections": lambda: _connections_screen()
    }
    DEFAULT_MODE = "connections"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "help", "Help", id="help", tooltip="The keys of this screen"),
    ]

    def __init__(
        self,
        paths: Paths,
        *,
        clock: Callable[[], float] = time.time,
        poll_seconds: float = 1.0,
        demo: bool = False,
    ) -> None:
        super().__init__()
        self.paths = paths
        self.demo = demo
        """Runs go against a sandbox that stops when the UI quits."""
        self.clock = clock
        """Seconds since the epoch; tests pin it so relative times are stable."""
        self.poll_seconds = poll_seconds
        self.workspace: Workspace | None = None
        self._reported_invalid: bytes | None = None  # the invalid file already reported
        self.startup_error: ConfigError | None = None
        self.runs = RunsSnapshot()
        self.config_changed: Signal[Config] = Signal(self, "config-changed")
        """Published after every save and reload, with the config now in force."""
        self.runs_changed: Signal[RunsSnapshot] = Signal(self, "runs-changed")
        """Published after every poll of run history and locks."""
        try:
            self.workspace = Workspace.open(paths)
        except ConfigError as exc:
            self.startup_error = exc

    @property
    def config(self) -> Config:
        """The config in force (empty while the file is invalid)."""
        return self.workspace.config if self.workspace else Config()

    def on_mount(self) -> None:
        if self.startup_error is not None:
            from bctui.tui.screens.config_problem import ConfigProblemScreen

            self.push_screen(ConfigProblemScreen(self.startup_error))
            return
        self.start_polling()

    def start_polling(self) -> None:
        """Poll runs (and the config file) from now on."""
        self.poll_runs()
        self.set_interval(self.poll_seconds, self.poll_runs)

    def workspace_opened(self, workspace: Workspace) -> None:
        """The config file became valid: use it from now on."""
        self.workspace = workspace
        self.startup_error = None
        self.config_changed.publish(workspace.config)
        self.start_polling()

    # -- config ------------------------------------------------------------------------------

    def try_save(
        self,
        base: Config,
        new: Config,
        *,
        renamed_connections: Mapping[str, str] | None = None,
        renamed_goals: Mapping[tuple[str, str], str] | None = None,
        renamed_segments: Mapping[str, str] | None = None,
        done: str = "",
    ) -> list[Issue]:
        """Save an edit of `base`; [] on success, else the problems (already shown to the user).

        A file changed on disk is never overwritten: it is reloaded, and the edit must be made
        again on what is shown then.
        """
        assert self.workspace is not None
        try:
            config = self.workspace.save(
                base,
                new,
                renamed_connections=renamed_connections,
                renamed_goals=renamed_goals,
                renamed_segments=renamed_segments,
            )
        except ConfigError as exc:
            shown = "\n".join(f"{i.key}: {i.message}" for i in exc.issues[:4])
            self.notify(shown, title="Not saved", severity="error", timeout=10)
            return list(exc.issues)
        except (ConfigChangedOnDisk, StaleEdit) as exc:
            self.notify(exc.render(), title="Not saved", severity="error", timeout=10)
            self.reload_config(announce=False)
            return [Issue((), exc.message, exc.fix)]
        except BctuiError as exc:  # the file could not be written
            self.notify(exc.render(), title="Not saved", severity="error", timeout=10)
            return [Issue((), exc.message, exc.fix)]
        if done:
            self.notify(done, timeout=3)
        self.config_changed.publish(config)
        return []

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Notifications quote names, keys and Braze's messages: never read them as markup."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    def reload_config(self, *, announce: bool = True) -> None:
        """Read connections.toml again; an invalid file is reported (once per version of the
        file) and the last good one kept."""
        if self.workspace is None:
            return
        try:
            config = self.workspace.reload()
        except ConfigError as exc:
            version = self.workspace.disk_version()
            if version != self._reported_invalid:
                self._reported_invalid = version
                self.notify(
                    exc.render()[:600],
                    title="connections.toml is invalid; still showing the last valid version",
                    severity="error",
                    timeout=15,
                )
            return
        self._reported_invalid = None
        if announce:
            self.notify("connections.toml changed on disk and was reloaded", timeout=5)
        self.config_changed.publish(config)

    @on(ConfigReloaded)
    def _config_reloaded(self, message: ConfigReloaded) -> None:
        self.reload_config()

    # -- runs --------------------------------------------------------------------------------

    def poll_runs(self) -> None:
        """Refresh what is running and each connection's last run (in a worker)."""
        self._poll_runs()

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def _poll_runs(self) -> None:
        workspace = self.workspace
        assert workspace is not None
        names = [c.name for c in workspace.config.connections]
        with workspace.store() as store:
            latest = history.latest_runs(store)
            running = history.running(self.paths, names, store)
        scheduler = scheduler_status(self.paths)
        self.post_message(RunsPolled(RunsSnapshot(latest, running, scheduler)))
        if workspace.changed_on_disk():
            self.post_message(ConfigReloaded())

    @on(RunsPolled)
    def _runs_polled(self, message: RunsPolled) -> None:
        self.runs = message.snapshot
        self.runs_changed.publish(message.snapshot)

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        """One place where a failed worker becomes a message to the user, never a crash."""
        if event.state is not WorkerState.ERROR:
            return
        error = event.worker.error
        text = (
            error.render() if isinstance(error, BctuiError) else f"{type(error).__name__}: {error}"
        )
        if event.worker.group == "poll":
            self.log.warning(f"run poll failed: {text}")
            return
        self.notify(text, title="Something went wrong", severity="error", timeout=10)

    async def action_quit(self) -> None:
        """Quit; runs keep going — except in the demo, whose sandbox stops with the UI."""
        if self.demo and self.runs.running:
            self._quit_demo()
        else:
            self.exit()

    @work(exit_on_error=False)
    async def _quit_demo(self) -> None:
        """Ask about the demo's running runs, cancel them, then quit."""
        if self.runs.running:
            from bctui.tui.screens.confirm import ConfirmModal

            names = ", ".join(f'"{name}"' for name in self.runs.running)
            sure = await self.push_screen_wait(
                ConfirmModal(
                    f"A run of {names} is still going",
                    "The demo's Braze simulator stops when bctui quits, so the run would fail. "
                    "Cancel it and quit? (No: keep bctui open and let it finish.)",
                    yes="Cancel it and quit",
                )
            )
            if not sure:
                return
            for name in list(self.runs.running):
                with contextlib.suppress(BctuiError):
                    history.cancel_run(self.paths, name)
                    for _ in range(100):  # let it record CANCELLED before its Braze goes away
                        if not history.running(self.paths, [name]):
                            break
                        await asyncio.sleep(0.1)
        self.exit()

    # -- keys, help and the palette ----------------------------------------------------------

    def action_help(self) -> None:
        """Show the keys of the current screen."""
        from bctui.tui.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss()
            return
        self.push_screen(HelpScreen(self.screen))

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """Every action of the current screen, from the same bindings as its footer and help."""
        seen: set[str] = set()
        titles: set[str] = set()
        for active in screen.active_bindings.values():
            binding = active.binding
            # Only our own actions (they carry ids); widgets' cursor keys are not commands.
            if (
                not binding.id
                or not binding.description
                or not active.enabled
                or binding.action in seen
                or binding.action in ("help", "command_palette")
            ):
                continue
            seen.add(binding.action)
            titles.add(binding.description)
            node = active.node

            def run(action: str = binding.action, target: object = node) -> None:
                self.call_later(self.run_action, action, target)

            key_text = self.get_key_display(binding)
            yield SystemCommand(
                binding.description, f"{binding.tooltip or binding.description} ({key_text})", run
            )
        for command in self._navigation_commands(screen):
            if command.title not in titles:
                yield command
        if "Quit" not in titles:
            yield SystemCommand(
                "Quit",
                "Quit bctui (runs keep going)",
                lambda: self.call_later(self.run_action, "quit"),
            )

    def _palette_quit(self) -> None:
        self.call_later(self.run_action, "quit")

    def _navigation_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        if self.workspace is None:
            return
        from bctui.tui.screens.profiles import ProfilesScreen
        from bctui.tui.screens.segments import SegmentsScreen

        if not isinstance(screen, SegmentsScreen):
            yield SystemCommand(
                "Segments", "Local segments with live member counts", self.action_open_segments
            )
        if not isinstance(screen, ProfilesScreen):
            yield SystemCommand(
                "Profiles", "Find a profile by any value", self.action_open_profiles
            )
        yield SystemCommand(
            "Reload connections.toml", "Read the config file again", self.reload_config
        )

    def action_open_segments(self) -> None:
        """Push the segments screen."""
        from bctui.tui.screens.segments import SegmentsScreen

        self.push_screen(SegmentsScreen())

    def action_open_profiles(self) -> None:
        """Push the profile finder."""
        from bctui.tui.screens.profiles import ProfilesScreen

        self.push_screen(ProfilesScreen())


def _connections_screen() -> Screen[None]:
    from bctui.tui.screens.connections import ConnectionsScreen

    return ConnectionsScreen()
