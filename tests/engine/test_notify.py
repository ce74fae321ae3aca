"""Notification e-mails after a run, sent to a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import socket
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from run_helpers import (
    BRAZE_SECRET,
    CONNECTION,
    Workspace,
    export_goal,
    fast_settings,
    import_goal,
    member,
    source,
)

from bctui.engine import notify
from bctui.engine.config import ConfigError, parse_config
from bctui.engine.config_write import to_toml
from bctui.engine.notify import config_warnings
from bctui.engine.runs.context import CancelToken
from bctui.engine.runs.events import LogLine, RunFinished
from bctui.engine.runs.runner import RunOptions, run_connection
from bctui.engine.secrets import SecretsFile
from bctui.sandbox import Sandbox
from bctui.secret import Secret

RECIPIENTS = ("ops@example.com", "oncall@example.com")
SMTP_USER = "mailer"
SMTP_PASSWORD = "s3cret-smtp-pass-word"


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Mailbox:
    """What the test SMTP server received."""

    port: int
    envelopes: list[Envelope] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_RCPT(
        self,
        server: SMTPServer,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 OK"

    def messages(self) -> list[EmailMessage]:
        """The received mails, parsed."""
        out = []
        for envelope in self.envelopes:
            raw = envelope.original_content or envelope.content
            assert isinstance(raw, bytes)
            parsed = message_from_bytes(raw, policy=policy.default)
            assert isinstance(parsed, EmailMessage)
            out.append(parsed)
        return out


def _start(mailbox: Mailbox, **kwargs: Any) -> Controller:
    controller = Controller(mailbox, hostname="127.0.0.1", port=mailbox.port, **kwargs)
    controller.start()
    return controller


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    """A plain SMTP server on loopback that keeps every mail."""
    box = Mailbox(free_port())
    controller = _start(box)
    try:
        yield box
    finally:
        controller.stop()


@pytest.fixture
def auth_mailbox() -> Iterator[Mailbox]:
    """An SMTP server on loopback that takes mail only after AUTH with the test login."""
    box = Mailbox(free_port())

    def authenticator(
        server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == SMTP_USER
            and auth_data.password.decode() == SMTP_PASSWORD
        )
        if ok:
            box.logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)

    controller = _start(
        box, authenticator=authenticator, auth_required=True, auth_require_tls=False
    )
    try:
        yield box
    finally:
        controller.stop()


@pytest.fixture
def box(make_sandbox: Callable[..., Sandbox]) -> Sandbox:
    """An empty simulated workspace with quick exports."""
    return make_sandbox(users=0, settings=fast_settings())


EXPORT = export_goal(mappings=[source("property", "first_name", "first")])


def workspace(
    tmp_path: Path,
    box: Sandbox,
    *,
    when: str,
    port: int | None,
    goals: Sequence[Mapping[str, Any]] = (EXPORT,),
    emails: Sequence[str] = RECIPIENTS,
    smtp: Mapping[str, Any] | None = None,
) -> Workspace:
    """A workspace with three profiles to export, `notify` set, and `[smtp]` on `port`."""
    ws = Workspace.create(tmp_path, box, goals)
    ws.load([member(f"p{i}", ext=f"u{i}", first=f"Ann{i}") for i in range(3)])
    doc = tomllib.loads(ws.paths.config.read_text(encoding="utf-8"))
    doc["connection"][0]["notify"] = {"emails": list(emails), "when": when}
    if port is not None:
        doc["smtp"] = {
            "host": "127.0.0.1",
            "port": port,
            "security": "none",
            "sender": "bctui <bctui@example.com>",
            "timeout_seconds": 5,
            **(smtp or {}),
        }
    ws.paths.config.write_text(tomli_w.dumps(doc), encoding="utf-8")
    return ws


def failing_goals(box: Sandbox) -> list[dict[str, Any]]:
    """An export that works, then an import of a segment Braze does not have (it fails)."""
    return [EXPORT, import_goal("no-such-segment", name="import")]


def logged(ws: Workspace, run_id: str) -> list[LogLine]:
    """The run log's LogLines."""
    return [e for e in ws.events(run_id) if isinstance(e, LogLine)]


# -- when a mail goes ------------------------------------------------------------------------


def test_always_mails_a_finished_run(tmp_path: Path, box: Sandbox, mailbox: Mailbox) -> None:
    ws = workspace(tmp_path, box, when="always", port=mailbox.port)

    result = ws.run()

    assert result.state == "FINISHED"
    [mail] = mailbox.messages()
    assert mail["Subject"] == f'bctui: "{CONNECTION}" FINISHED'
    assert mailbox.envelopes[0].rcpt_tos == list(RECIPIENTS)
    assert mailbox.envelopes[0].mail_from == "bctui@example.com"
    assert "notify_error" not in result.summary
    sent = [line for line in logged(ws, result.run_id) if "e-mail sent" in line.message]
    assert sent and sent[0].level == "info"


def test_failure_mails_a_failed_run_and_not_a_finished_one(
    tmp_path: Path, box: Sandbox, mailbox: Mailbox
) -> None:
    ws = workspace(tmp_path, box, when="failure", port=mailbox.port)

    finished = ws.run()
    assert finished.state == "FINISHED"
    assert mailbox.envelopes == []

    ws = workspace(
        tmp_path / "failing", box, when="failure", port=mailbox.port, goals=failing_goals(box)
    )
    failed = ws.run()

    assert failed.state == "FAILED"
    [mail] = mailbox.messages()
    assert mail["Subject"] == f'bctui: "{CONNECTION}" FAILED'


def test_failure_mails_a_cancelled_run(tmp_path: Path, box: Sandbox, mailbox: Mailbox) -> None:
    ws = workspace(tmp_path, box, when="failure", port=mailbox.port)
    cancel = CancelToken()
    cancel.cancel()  # stops before the first goal

    result = run_connection(ws.config, ws.paths, CONNECTION, RunOptions(), cancel=cancel)

    assert result.state == "CANCELLED"
    [mail] = mailbox.messages()
    assert mail["Subject"] == f'bctui: "{CONNECTION}" CANCELLED'


def test_never_and_dry_runs_send_nothing(tmp_path: Path, box: Sandbox, mailbox: Mailbox) -> None:
    never = workspace(
        tmp_path / "never", box, when="never", port=mailbox.port, goals=failing_goals(box)
    )
    assert never.run().state == "FAILED"

    always = workspace(
        tmp_path / "always", box, when="always", port=mailbox.port, goals=failing_goals(box)
    )
    dry = always.run(dry_run=True)
    assert dry.state == "FAILED" and dry.summary["dry_run"]

    nobody = workspace(tmp_path / "nobody", box, when="always", port=mailbox.port, emails=())
    assert nobody.run().state == "FINISHED"

    assert mailbox.envelopes == []
    # Sending works (the same server, a run that asks for a mail).
    assert always.run().state == "FAILED"
    assert len(mailbox.envelopes) == 1


# -- what a mail says --------------------------------------------------------------------------


def test_the_mail_has_counts_state_error_and_log_tail_and_no_secret(
    tmp_path: Path, box: Sandbox, mailbox: Mailbox
) -> None:
    ws = workspace(tmp_path, box, when="always", port=mailbox.port, goals=failing_goals(box))

    result = run_connection(
        ws.config, ws.paths, CONNECTION, RunOptions(concurrency=4, started_by="scheduler")
    )

    assert result.state == "FAILED"
    [mail] = mailbox.messages()
    raw = mailbox.envelopes[0].original_content or b""
    text = mail.get_content().replace("\r\n", "\n")
    assert isinstance(text, str)
    assert f"Connection:  {CONNECTION}" in text
    assert f"Run:         {result.run_id}" in text
    assert "State:       FAILED" in text
    assert "Started by:  the scheduler" in text
    assert f"Started:     {result.summary['started_at'].replace('T', ' ')[:-1]} UTC" in text
    assert "Duration:" in text and "Ended:" in text
    assert f"Error:       {result.error}" in text and "import" in result.error
    export = result.summary["goals"]["export"]
    assert export["created"] == 3
    assert (
        f"{export['checked']:,} checked, {export['created']:,} created, 0 updated, "
        f"0 unchanged, 0 skipped, 0 failed, {export['data_points']:,} data points"
    ) in text
    assert f"Data points: {result.summary['data_points']:,}" in text
    assert 'export "export": FINISHED' in text and 'import "import": FAILED' in text
    # The log's last lines, ending with the run's final line.
    assert "Last " in text and "lines of the run log:" in text
    tail = text.split("lines of the run log:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert 2 <= len(tail) <= 20
    assert tail[-1].strip() == f"run {result.run_id} FAILED: {result.error}"
    assert any("[export] FINISHED" in line for line in tail)
    # Never a secret: not the Braze key, not the S3 secret, in any encoding of the mail.
    for secret in (box.api_key, box.aws_secret_access_key):
        assert secret not in text and secret.encode() not in raw


def test_the_mail_masks_a_secret_that_reached_the_log(
    tmp_path: Path, box: Sandbox, mailbox: Mailbox
) -> None:
    ws = workspace(tmp_path, box, when="always", port=mailbox.port)
    config = ws.config
    conn = config.connection(CONNECTION)
    assert conn is not None and config.smtp is not None
    leaky = f"the key is {box.api_key}"  # as if a bug had logged the key
    report = notify.RunReport(
        CONNECTION, "20260127-013000-3f9a1c", "FAILED", leaky, "cli", {"goals": {}}, [leaky]
    )

    hidden = notify.secret_values(conn, config.smtp, SecretsFile(ws.paths.secrets))
    mail = notify.compose(config.smtp, RECIPIENTS, report, hidden=hidden)
    text = str(mail["Subject"]) + mail.get_content()

    assert box.api_key in hidden and box.aws_secret_access_key in hidden
    assert box.api_key not in text
    assert text.count("the key is ••••••") == 2  # the error and the log line


# -- when a mail cannot go ---------------------------------------------------------------------


def test_an_unreachable_server_does_not_fail_the_run(tmp_path: Path, box: Sandbox) -> None:
    ws = workspace(tmp_path, box, when="always", port=free_port())  # nothing listens there

    result = ws.run()

    assert result.state == "FINISHED"
    problem = result.summary["notify_error"]
    assert "cannot reach the server" in problem and "127.0.0.1" in problem
    [run] = ws.runs()
    assert run.state == "FINISHED" and run.summary["notify_error"] == problem
    events = ws.events(result.run_id)
    assert isinstance(events[-1], RunFinished)
    assert events[-1].summary["notify_error"] == problem
    warning = events[-2]
    assert isinstance(warning, LogLine) and warning.level == "warning"
    assert problem in warning.message


def test_the_cli_exits_0_when_the_mail_fails(tmp_path: Path, box: Sandbox) -> None:
    ws = workspace(tmp_path, box, when="always", port=free_port())

    done = ws.cli("run", CONNECTION, "--json")

    assert done.returncode == 0, done.stderr
    assert '"notify_error"' in done.stdout and '"FINISHED"' in done.stdout


def test_a_refused_recipient_is_recorded_and_the_others_get_the_mail(
    tmp_path: Path, box: Sandbox, mailbox: Mailbox
) -> None:
    ws = workspace(
        tmp_path,
        box,
        when="always",
        port=mailbox.port,
        emails=("ops@example.com", "nobody@example.com"),
    )

    result = ws.run()

    assert result.state == "FINISHED"
    assert mailbox.envelopes[0].rcpt_tos == ["ops@example.com"]
    assert "nobody@example.com (550" in result.summary["notify_error"]


def test_starttls_against_a_server_without_it_is_recorded(
    tmp_path: Path, box: Sandbox, mailbox: Mailbox
) -> None:
    ws = workspace(tmp_path, box, when="always", port=mailbox.port, smtp={"security": "starttls"})

    result = ws.run()

    assert result.state == "FINISHED"
    assert "STARTTLS" in result.summary["notify_error"]
    assert 'security = "ssl"' in result.summary["notify_error"]
    assert mailbox.envelopes == []


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_login_with_user_and_password(tmp_path: Path, box: Sandbox, auth_mailbox: Mailbox) -> None:
    smtp = {"user": SMTP_USER, "password": "secret:smtp"}
    ws = workspace(tmp_path, box, when="always", port=auth_mailbox.port, smtp=smtp)

    missing = ws.run()  # the secret is not stored yet
    assert missing.state == "FINISHED"
    assert 'no secret named "smtp"' in missing.summary["notify_error"]
    validated = ws.cli("validate")
    assert validated.returncode == 0 and "[smtp] password" in validated.stderr

    SecretsFile(ws.paths.secrets).set("smtp", Secret("wrong-password"))
    refused = ws.run()
    assert "refused the login" in refused.summary["notify_error"]
    assert "wrong-password" not in refused.summary["notify_error"]
    assert auth_mailbox.envelopes == []

    SecretsFile(ws.paths.secrets).set("smtp", Secret(SMTP_PASSWORD))
    sent = ws.run()
    assert "notify_error" not in sent.summary
    assert auth_mailbox.logins == [SMTP_USER] and len(auth_mailbox.envelopes) == 1
    assert SMTP_PASSWORD not in auth_mailbox.messages()[0].as_string()


def test_no_smtp_table_warns_in_the_run_and_in_validate(tmp_path: Path, box: Sandbox) -> None:
    ws = workspace(tmp_path, box, when="failure", port=None)

    result = ws.run()

    assert result.state == "FINISHED"
    assert "notify_error" not in result.summary  # no mail was due
    warnings = [line for line in logged(ws, result.run_id) if "[smtp]" in line.message]
    assert len(warnings) == 1 and warnings[0].level == "warning"
    [warning] = config_warnings(ws.config)
    assert f'"{CONNECTION}"' in warning and "[smtp]" in warning
    done = ws.cli("validate")
    assert done.returncode == 0
    assert "[smtp]" in done.stderr


# -- the [smtp] table --------------------------------------------------------------------------

SMTP_OK = '[smtp]\nhost = "smtp.example.com"\nsender = "bctui@example.com"\n'


def issues(text: str) -> list[str]:
    """The rendered issues of a config text (empty when it is valid)."""
    try:
        parse_config(text)
    except ConfigError as exc:
        return [i.render("connections.toml") for i in exc.issues]
    return []


def test_smtp_defaults_and_round_trip() -> None:
    config = parse_config(SMTP_OK)
    assert config.smtp is not None
    assert (config.smtp.port, config.smtp.security, config.smtp.timeout_seconds) == (
        587,
        "starttls",
        15.0,
    )
    ssl = parse_config(SMTP_OK + 'security = "ssl"\nuser = "me"\npassword = "env:SMTP_PW"\n')
    assert ssl.smtp is not None and ssl.smtp.port == 465 and ssl.smtp.password == "env:SMTP_PW"
    assert parse_config(to_toml(ssl)) == ssl
    assert parse_config(to_toml(config)) == config
    assert parse_config("").smtp is None


@pytest.mark.parametrize(
    ("extra", "key", "words"),
    [
        ('password = "hunter2-literal"\nuser = "me"\n', "smtp.password", "literal secret"),
        ('user = "me"\n', "smtp.user", "a user needs a password"),
        ('password = "secret:smtp"\n', "smtp.password", "without a user"),
        ('security = "none"\n', "smtp.security", "only allowed on loopback"),
        ('security = "tls"\n', "smtp.security", 'unknown value "tls"'),
        ("port = 70000\n", "smtp.port", "out of range"),
        ("timeout_seconds = 0\n", "smtp.timeout_seconds", "out of range"),
        ("hots = 1\n", "smtp.hots", 'did you mean "host"'),
    ],
)
def test_smtp_problems_name_line_key_and_fix(extra: str, key: str, words: str) -> None:
    [problem] = issues(SMTP_OK + extra)
    # The extra key is on line 4.
    assert problem.startswith(f"connections.toml:4: {key}: "), problem
    assert words in problem and " — " in problem
    assert "hunter2" not in problem


def test_smtp_host_and_sender_are_checked() -> None:
    text = '[smtp]\nhost = "smtp://mail.example.com:25"\nsender = "not an address"\n'
    found = issues(text)
    assert any("connections.toml:2: smtp.host:" in p and "not a host name" in p for p in found)
    assert any("connections.toml:3: smtp.sender:" in p and "not an e-mail" in p for p in found)
    assert issues('[smtp]\nsender = "a@example.com"\n') == [
        'connections.toml:1: smtp.host: "host" is required — add host = "smtp.example.com"'
    ]
    assert (
        issues(
            '[smtp]\nhost = "localhost"\nsecurity = "none"\nport = 25\nsender = "a@example.com"\n'
        )
        == []
    )


def test_api_key_secret_is_the_sandbox_one(box: Sandbox, tmp_path: Path) -> None:
    # The secret-absence assertions above look for this exact key.
    ws = Workspace.create(tmp_path, box, [EXPORT])
    stored = SecretsFile(ws.paths.secrets).get(BRAZE_SECRET)
    assert stored is not None and stored.reveal() == box.api_key and len(box.api_key) > 8
