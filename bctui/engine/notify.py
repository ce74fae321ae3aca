"""Run notification e-mails: after a run, per the connection's `notify`, one mail through `[smtp]`.

The run's own process sends it (whatever started the run), so a scheduled run and a run started
from the UI notify alike. A mail that cannot be sent is reported back, never raised: it must not
change the run's outcome.
"""

from __future__ import annotations

import collections
import os
import smtplib
import socket
import ssl
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any, Final

from bctui.engine.models import Config, Connection, Notify, SmtpSettings
from bctui.engine.runs.context import COUNT_NAMES
from bctui.engine.runs.describe import STARTERS, describe
from bctui.engine.runs.events import RunFinished, parse_event
from bctui.engine.runs.state import CANCELLED, FAILED
from bctui.engine.secrets import SecretError, SecretsFile, resolve
from bctui.errors import BctuiError
from bctui.secret import MASK, Secret

LOG_TAIL_LINES: Final = 20
FAILURE_STATES: Final = (FAILED, CANCELLED)  # what `when = "failure"` covers
_TAIL_BYTES: Final = 256 * 1024  # enough for the last lines; a long run's log is never read whole


class NotifyError(BctuiError):
    """A notification e-mail could not be sent."""


@dataclass(frozen=True)
class RunReport:
    """What a notification tells about one run."""

    connection: str
    run_id: str
    state: str
    error: str
    started_by: str
    summary: Mapping[str, Any]  # the run summary `bctui run --json` prints
    log_tail: Sequence[str] = ()


@dataclass(frozen=True)
class NotifyResult:
    """What `notify_run` did: `due` when the run's state called for a mail, `sent_to` the
    recipients that got it, `problem` why it (or part of it) did not go ('' when it all went)."""

    due: bool
    sent_to: tuple[str, ...] = ()
    problem: str = ""


def asks_for_mail(notify: Notify) -> bool:
    """Whether these settings ever send a mail."""
    return bool(notify.emails) and notify.when != "never"


def wants_mail(notify: Notify, state: str) -> bool:
    """Whether a run that ended in `state` gets a mail under these settings."""
    if not asks_for_mail(notify):
        return False
    return notify.when == "always" or state in FAILURE_STATES


def config_warnings(config: Config) -> list[str]:
    """Notification settings that cannot work as written (for `bctui validate`)."""
    if config.smtp is not None:
        return []
    return [
        f'connection "{conn.name}" asks for notification e-mails ({conn.notify.when}) but '
        "connections.toml has no [smtp] table, so none are sent — add [smtp] with host and "
        'sender (see the README), or set notify.when = "never"'
        for conn in config.connections
        if asks_for_mail(conn.notify)
    ]


def notify_run(
    config: Config, conn: Connection, report: RunReport, secrets: SecretsFile
) -> NotifyResult | None:
    """Send the run's mail if its state calls for one; None when the connection asks for none.

    Never raises for a mail problem: it is returned in `problem` for the run to record.
    """
    if not asks_for_mail(conn.notify):
        return None
    due = wants_mail(conn.notify, report.state)
    smtp = config.smtp
    if smtp is None:
        return NotifyResult(
            due,
            problem="connections.toml has no [smtp] table, so no notification e-mail can be "
            "sent — add one (see the README)",
        )
    if not due:
        return NotifyResult(False)
    hidden = secret_values(conn, smtp, secrets)
    try:
        password = _password(smtp, secrets)
        message = compose(smtp, conn.notify.emails, report, hidden=hidden)
        refused = send(smtp, message, password)
    except NotifyError as exc:
        return NotifyResult(True, problem=_scrub(exc.render(), hidden))
    sent = tuple(e for e in conn.notify.emails if e not in refused)
    if refused:
        listed = ", ".join(f"{addr} ({why})" for addr, why in refused.items())
        return NotifyResult(True, sent, _scrub(f"the SMTP server refused {listed}", hidden))
    return NotifyResult(True, sent)


# -- the message -------------------------------------------------------------------------------


def subject(report: RunReport) -> str:
    """`bctui: "Braze main" FAILED`."""
    return f'bctui: "{report.connection}" {report.state}'


def body(report: RunReport) -> str:
    """The mail's plain text: the run, its goals with their counts, the error, the log's end."""
    summary = report.summary
    who = STARTERS.get(report.started_by, report.started_by) or "unknown"
    lines = [
        f"Connection:  {report.connection}",
        f"Run:         {report.run_id}",
        f"State:       {report.state}",
        f"Started by:  {who}",
        f"Started:     {_when(summary.get('started_at'))}",
        f"Ended:       {_when(summary.get('ended_at'))}",
        f"Duration:    {_duration(summary.get('seconds'))}",
        f"Data points: {_int(summary.get('data_points')):,}",
    ]
    if report.error:
        lines.append(f"Error:       {report.error}")
    goals = summary.get("goals")
    if isinstance(goals, Mapping) and goals:
        lines += ["", "Goals:"]
        for name, goal in goals.items():
            if not isinstance(goal, Mapping):
                continue
            counts = ", ".join(f"{_int(goal.get(k)):,} {k}" for k in COUNT_NAMES)
            lines.append(
                f'  {goal.get("type", "goal")} "{name}": {goal.get("state", "?")} in '
                f"{_duration(goal.get('seconds'))}"
            )
            lines.append(f"    {counts}, {_int(goal.get('data_points')):,} data points")
            if goal.get("error"):
                lines.append(f"    error: {goal['error']}")
    if report.log_tail:
        lines += ["", f"Last {len(report.log_tail)} lines of the run log:"]
        lines += [f"  {line}" for line in report.log_tail]
    log = summary.get("log")
    lines += ["", f"Run log: {log} on {socket.gethostname()}" if log else ""]
    lines.append(f'Run history: bctui runs "{report.connection}"')
    return "\n".join(lines).rstrip() + "\n"


def compose(
    smtp: SmtpSettings,
    recipients: Iterable[str],
    report: RunReport,
    *,
    hidden: Iterable[str] = (),
) -> EmailMessage:
    """The notification mail; any of the `hidden` values found in it is masked."""
    hidden = tuple(hidden)
    message = EmailMessage()
    message["Subject"] = _scrub(subject(report), hidden)
    message["From"] = smtp.sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain=_domain(smtp.sender))
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a robot
    message.set_content(_scrub(body(report), hidden))
    return message


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> list[str]:
    """The last `lines` lines a person reads of a run log (describe()'s words)."""
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - _TAIL_BYTES))
            raw = handle.read().split(b"\n")
            if size > _TAIL_BYTES:
                raw = raw[1:]  # the first line was cut by the seek
    except OSError:
        return []
    tail: collections.deque[str] = collections.deque(maxlen=lines)
    for line in raw:
        event = parse_event(line) if line else None
        text = describe(event) if event is not None else None
        if text:
            tail.append(text)
    return list(tail)


def finished_line(run_id: str, state: str, error: str) -> str:
    """The log line of the RunFinished event a mail is sent just before."""
    return describe(RunFinished(run_id=run_id, state=state, error=error)) or ""


# -- sending -----------------------------------------------------------------------------------


def send(smtp: SmtpSettings, message: EmailMessage, password: Secret | None) -> dict[str, str]:
    """Deliver `message`; the recipients the server refused (others got it), or NotifyError."""
    where = f"SMTP server {smtp.host}:{smtp.port}"
    context = ssl.create_default_context()
    client: smtplib.SMTP
    try:
        if smtp.security == "ssl":
            client = smtplib.SMTP_SSL(
                smtp.host, smtp.port, timeout=smtp.timeout_seconds, context=context
            )
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_seconds)
        with client:
            if smtp.security == "starttls":
                client.starttls(context=context)
            if smtp.user:
                client.login(smtp.user, password.reveal() if password else "")
            refused = client.send_message(message)
    except smtplib.SMTPAuthenticationError as exc:
        raise NotifyError(
            f"the server refused the login of user {smtp.user!r} ({_reply(exc)})",
            where=where,
            fix="check [smtp] user and the secret its password names",
        ) from None
    except smtplib.SMTPNotSupportedError as exc:
        if "AUTH" in str(exc):
            fix = (
                "the server offers no login here (many offer it only over TLS): set [smtp] "
                "security, or remove user for a server that needs no login"
            )
        else:
            fix = 'use security = "ssl" (port 465) for TLS from the start, or "starttls" where '
            fix += "the server offers it (port 587)"
        raise NotifyError(f"the server refused: {exc}", where=where, fix=fix) from None
    except smtplib.SMTPRecipientsRefused as exc:
        listed = ", ".join(f"{addr} ({_reply_of(*why)})" for addr, why in exc.recipients.items())
        raise NotifyError(
            f"the server refused every recipient: {listed}",
            where=where,
            fix="check the connection's notify.emails",
        ) from None
    except smtplib.SMTPSenderRefused as exc:
        raise NotifyError(
            f"the server refused the sender {smtp.sender!r} ({_reply(exc)})",
            where=where,
            fix="use an [smtp] sender address the server accepts for this login",
        ) from None
    except smtplib.SMTPResponseException as exc:
        raise NotifyError(f"the server answered {_reply(exc)}", where=where) from None
    except ssl.SSLError as exc:
        raise NotifyError(
            f"TLS failed: {exc.reason or exc}",
            where=where,
            fix="check [smtp] security and port (STARTTLS is usually 587, SSL 465) and the "
            "server's certificate",
        ) from None
    except (smtplib.SMTPException, OSError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise NotifyError(
            f"cannot reach the server: {reason}",
            where=where,
            fix="check [smtp] host, port and security, and that this machine may connect to it",
        ) from None
    return {addr: _reply_of(*why) for addr, why in refused.items()}


def _password(smtp: SmtpSettings, secrets: SecretsFile) -> Secret | None:
    if not smtp.user:
        return None
    try:
        return resolve(smtp.password, secrets, where="[smtp] password")
    except SecretError as exc:
        raise NotifyError(exc.message, where=exc.where, fix=exc.fix) from None


def secret_values(conn: Connection, smtp: SmtpSettings, secrets: SecretsFile) -> list[str]:
    """The values behind the connection's and the server's secret references (to mask)."""
    refs = [conn.braze.api_key, smtp.password]
    if conn.s3 is not None:
        refs += [conn.s3.secret_access_key, conn.s3.access_key_id]
    values = []
    for ref in refs:
        if not ref or ":" not in ref:
            continue
        try:
            value = resolve(ref, secrets).reveal()
        except SecretError:
            continue
        if len(value) >= 4:  # masking a shorter string would garble ordinary words
            values.append(value)
    return values


def _scrub(text: str, hidden: Iterable[str]) -> str:
    for value in hidden:
        text = text.replace(value, MASK)
    return text


def _reply(exc: smtplib.SMTPResponseException) -> str:
    return _reply_of(exc.smtp_code, exc.smtp_error)


def _reply_of(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {' '.join(text.split())}"


def _domain(sender: str) -> str:
    """The sender's domain, for the Message-ID."""
    return sender.rsplit("@", 1)[-1].rstrip(">").strip() or "bctui.invalid"


def _when(iso: object) -> str:
    """`2026-01-27T01:30:00Z` as `2026-01-27 01:30:00 UTC`."""
    if not isinstance(iso, str) or not iso:
        return "?"
    return iso.replace("T", " ").removesuffix("Z") + (" UTC" if iso.endswith("Z") else "")


def _duration(seconds: object) -> str:
    if not isinstance(seconds, int | float):
        return "?"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min {secs} s" if hours else f"{minutes} min {secs} s"


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
