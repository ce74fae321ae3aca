"""connections.toml: strict validation with file, line, key and fix; the example parses."""

from __future__ import annotations

from pathlib import Path

import pytest

from bctui.engine.config import ConfigError, Issue, cron_problem, load_config, parse_config
from bctui.engine.models import ExportGoal, ImportGoal

ROOT = Path(__file__).resolve().parents[2]

BASE = """\
[[segment]]
name = "vip"
rules = [{ property = "ltv", op = "gte", value = 1000 }]

[[connection]]
name = "Main"

[connection.braze]
endpoint = "https://rest.iad-01.braze.com"
api_key = "secret:braze-main"

[connection.s3]
access_key_id = "AKIAEXAMPLE"
secret_access_key = "env:S3_SECRET"
bucket = "exports"

[[connection.goal]]
type = "import"
name = "In"
audience = { segment_id = "seg-1" }
identifiers = [[{ braze = "external_id", property = "ext" }]]
mappings = [
  { braze = "first_name", property = "first_name", strategy = "set" },
  { braze = "custom_attributes.points", property = "points", strategy = "sum" },
]

[[connection.goal]]
type = "export"
name = "Out"
segment = "vip"
identifiers = [[{ property = "ext", braze = "external_id" }]]
mappings = [
  { source = "property", value = "email", braze = "email" },
  { source = "static", value = "bctui", braze = "source" },
]
"""


def issues_of(text: str) -> list[Issue]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "conf.toml")
    return caught.value.issues


def only_issue(text: str) -> Issue:
    issues = issues_of(text)
    assert len(issues) == 1, [i.render("conf.toml") for i in issues]
    return issues[0]


def test_base_config_parses_into_the_model() -> None:
    config = parse_config(BASE)
    (conn,) = config.connections
    assert conn.name == "Main" and conn.enabled is False
    imp, exp = conn.goals
    assert isinstance(imp, ImportGoal) and isinstance(exp, ExportGoal)
    assert imp.mappings[1].strategy == "sum"
    assert imp.identifiers[0][0].braze == "external_id"
    assert exp.segment == "vip" and exp.mappings[1].value == "bctui"
    assert config.segment("VIP") is not None
    assert config.connection("main") is conn


def test_the_repository_example_is_valid() -> None:
    config = load_config(ROOT / "connections.toml")
    assert [c.name for c in config.connections] == ["Braze main"]
    assert {s.name for s in config.segments} == {"vip", "newsletter"}


def test_syntax_error_names_the_line() -> None:
    issue = only_issue('[[connection]]\nname = "x"\nenabled = tru\n')
    assert issue.line == 3
    assert "not valid TOML" in issue.message and issue.fix


@pytest.mark.parametrize(
    ("old", "new", "key", "fix_words"),
    [
        # unknown keys, with a suggestion when one is close
        ('name = "Main"', 'name = "Main"\nenabeld = true', "connection[0].enabeld", "enabled"),
        (
            'bucket = "exports"',
            'bucket = "exports"\nregoin = "x"',
            "connection[0].s3.regoin",
            "region",
        ),
        (
            'strategy = "sum" }',
            'strategy = "sum", weight = 2 }',
            "connection[0].goal[0].mappings[1].weight",
            "remove it",
        ),
        # wrong types
        ('name = "Main"', 'name = "Main"\nenabled = "yes"', "connection[0].enabled", "true"),
        ('name = "Main"', 'name = "Main"\nlabels = "prod"', "connection[0].labels", "["),
        # unknown strategy, op, source, identifier
        (
            'strategy = "sum"',
            'strategy = "summ"',
            "connection[0].goal[0].mappings[1].strategy",
            "set, add, sum",
        ),
        ('op = "gte"', 'op = "greater"', "segment[0].rules[0].op", "eq, ne, in"),
        (
            'source = "static"',
            'source = "constant"',
            "connection[0].goal[1].mappings[1].source",
            "static",
        ),
        (
            'braze = "external_id", property = "ext" }',
            'braze = "uid", property = "ext" }',
            "connection[0].goal[0].identifiers[0][0].braze",
            "external_id",
        ),
        # goals naming a missing segment
        ('segment = "vip"', 'segment = "vips"', "connection[0].goal[1].segment", "[[segment]]"),
        # http endpoints only on loopback
        (
            '"https://rest.iad-01.braze.com"',
            '"http://rest.iad-01.braze.com"',
            "connection[0].braze.endpoint",
            "https",
        ),
        # a literal secret
        (
            'api_key = "secret:braze-main"',
            'api_key = "0123456789abcdef-real-key"',
            "connection[0].braze.api_key",
            "bctui secrets set",
        ),
        (
            '"env:S3_SECRET"',
            '"wJalrXUtnFEMI/K7MDENG"',
            "connection[0].s3.secret_access_key",
            "secret:",
        ),
        # an export mapping naming an unknown Braze field, a rule without its value
        (
            'braze = "first_name", property',
            'braze = "frist_name", property',
            "connection[0].goal[0].mappings[0].braze",
            "first_name",
        ),
        ('op = "gte", value = 1000', 'op = "gte"', "segment[0].rules[0].value", "value"),
        (
            'op = "gte", value = 1000',
            'op = "exists", value = 1000',
            "segment[0].rules[0].value",
            "remove",
        ),
    ],
)
def test_each_invalid_value_is_refused_with_key_and_fix(
    old: str, new: str, key: str, fix_words: str
) -> None:
    assert old in BASE
    issue = only_issue(BASE.replace(old, new, 1))
    assert issue.key == key
    assert fix_words in issue.fix or fix_words in issue.message
    assert issue.line is not None
    rendered = issue.render("conf.toml")
    assert rendered.startswith(f"conf.toml:{issue.line}: {key}: ")


def test_lines_point_at_the_offending_key() -> None:
    text = BASE.replace('strategy = "sum"', 'strategy = "summ"')
    issue = only_issue(text)
    assert (
        text.splitlines()[issue.line - 1]
        .lstrip()
        .startswith(  # type: ignore[operator]
            '{ braze = "custom_attributes.points"'
        )
    )


def test_a_literal_secret_is_never_echoed() -> None:
    leaked = "sk-live-0123456789abcdef0123456789"
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE.replace('"secret:braze-main"', f'"{leaked}"'), "conf.toml")
    assert leaked not in str(caught.value)


def test_duplicate_connection_names_are_refused() -> None:
    second = BASE[BASE.index("[[connection]]") :].replace('name = "Main"', 'name = "main"', 1)
    # Keep the second copy's goals out of the way: only the connection part.
    second = second[: second.index("[[connection.goal]]")]
    issue = only_issue(BASE + "\n" + second)
    assert issue.key == "connection[1].name"
    assert "duplicate connection name" in issue.message and "unique" in issue.fix


def test_duplicate_goal_and_segment_names_are_refused() -> None:
    text = BASE.replace('name = "Out"', 'name = "in"')
    assert "duplicate goal name" in only_issue(text).message
    text = BASE + '\n[[segment]]\nname = "VIP"\n'
    issue = only_issue(text)
    assert issue.key == "segment[1].name" and "duplicate segment" in issue.message


def test_every_problem_is_reported_at_once() -> None:
    text = BASE.replace('strategy = "sum"', 'strategy = "x"').replace('op = "gte"', 'op = "y"')
    text = text.replace('segment = "vip"', 'segment = "nope"')
    keys = {i.key for i in issues_of(text)}
    assert {
        "connection[0].goal[0].mappings[1].strategy",
        "segment[0].rules[0].op",
        "connection[0].goal[1].segment",
    } <= keys


def test_loopback_http_endpoints_are_allowed() -> None:
    for host in ("http://127.0.0.1:9000", "http://localhost:9000", "http://[::1]:9000"):
        config = parse_config(BASE.replace("https://rest.iad-01.braze.com", host))
        assert config.connections[0].braze.endpoint.startswith("http://")


def test_import_goal_without_s3_settings() -> None:
    start = BASE.index("[connection.s3]")
    end = BASE.index("[[connection.goal]]")
    issue = only_issue(BASE[:start] + BASE[end:])
    assert issue.key == "connection[0].goal[0]" and "[connection.s3]" in issue.fix


def test_identifier_groups_with_two_primary_identifiers_are_refused() -> None:
    text = BASE.replace(
        '[[{ property = "ext", braze = "external_id" }]]',
        '[[{ property = "ext", braze = "external_id" }, { property = "bid", braze = "braze_id" }]]',
    )
    issue = only_issue(text)
    assert issue.key == "connection[0].goal[1].identifiers[0]" and "separate groups" in issue.fix


def test_user_alias_needs_a_label() -> None:
    text = BASE.replace(
        '{ braze = "external_id", property = "ext" }',
        '{ braze = "user_alias", property = "alias" }',
    )
    assert only_issue(text).key == "connection[0].goal[0].identifiers[0][0].label"
    text = BASE.replace(
        '{ braze = "external_id", property = "ext" }',
        '{ braze = "user_alias", label = "crm", property = "alias" }',
    )
    goal = parse_config(text).connections[0].goals[0]
    assert goal.identifiers[0][0].label == "crm"


@pytest.mark.parametrize(
    ("schedule", "key"),
    [
        ('{ kind = "weekly" }', "connection[0].schedule.kind"),
        (
            '{ kind = "days_of_week", days = ["mon", "fry"], at = "01:30" }',
            "connection[0].schedule.days[1]",
        ),
        ('{ kind = "days_of_week", days = ["mon"], at = "25:00" }', "connection[0].schedule.at"),
        ('{ kind = "times_per_day", times = 0 }', "connection[0].schedule.times"),
        ('{ kind = "day_of_month", day = 32, at = "01:00" }', "connection[0].schedule.day"),
        (
            '{ kind = "weekday_of_month", week = 6, day = "tue", at = "01:00" }',
            "connection[0].schedule.week",
        ),
        ('{ kind = "cron", expr = "61 * * * *" }', "connection[0].schedule.expr"),
        ('{ kind = "manual", at = "01:00" }', "connection[0].schedule.at"),
        (
            '{ kind = "times_per_day", times = 4, timezone = "Mars/Base" }',
            "connection[0].schedule.timezone",
        ),
        (  # a folder of the zone database, not a zone
            '{ kind = "times_per_day", times = 4, timezone = "Europe" }',
            "connection[0].schedule.timezone",
        ),
    ],
)
def test_schedules_are_validated(schedule: str, key: str) -> None:
    issue = only_issue(BASE.replace('name = "Main"', f'name = "Main"\nschedule = {schedule}'))
    assert issue.key == key and issue.fix


def test_valid_schedules() -> None:
    for schedule in (
        '{ kind = "days_of_week", days = ["mon", "fri"], at = "01:30" }',
        '{ kind = "weekday_of_month", week = "last", day = "tue", at = "06:00" }',
        '{ kind = "cron", expr = "*/15 8-18 * * mon-fri", timezone = "Europe/Amsterdam" }',
    ):
        parse_config(BASE.replace('name = "Main"', f'name = "Main"\nschedule = {schedule}'))


def test_cron_problem() -> None:
    assert cron_problem("30 1 * * mon,fri") == ""
    assert cron_problem("0 0 1 jan *") == ""
    assert "5 fields" in cron_problem("* * *")
    assert "step" in cron_problem("*/0 * * * *")


def test_a_postgres_store_with_its_password_reference() -> None:
    config = parse_config('[store]\nurl = "postgresql://bctui@db:5432/bctui"\n'
                          'password = "secret:pg"\n')
    assert (config.store.url, config.store.password) == ("postgresql://bctui@db:5432/bctui",
                                                         "secret:pg")
    bare = parse_config('[store]\nurl = "postgres://bctui@db/bctui"\n').store
    assert bare.password == ""  # PGPASSWORD or ~/.pgpass then


@pytest.mark.parametrize(
    ("store", "key", "message", "fix"),
    [
        ('url = "postgresql://bob:hunter2@db/bctui"', "store.url", "contains a password",
         'password = "secret:pg"'),
        ('url = "postgresql://db:5432"', "store.url", "names no database", "/database"),
        ('url = "postgresql://db:port/x"', "store.url", "cannot be read", "postgresql://"),
        ('url = "postgresql://db/x"\npassword = "hunter2"', "store.password",
         "a literal secret is not allowed", "secret:pg"),
        ('url = "sqlite:///p.db"\npassword = "secret:pg"', "store.password",
         "a password for a SQLite store", "remove password"),
        ('url = "mysql://db/x"', "store.url", 'unsupported store URL scheme "mysql"',
         "postgresql://"),
    ],
)
def test_bad_store_settings_are_refused_clearly(store: str, key: str, message: str,
                                                fix: str) -> None:
    issue = only_issue(f"[store]\n{store}\n")
    assert issue.key == key and message in issue.message and fix in issue.fix
    assert "hunter2" not in issue.render("conf.toml")


def test_missing_file() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(Path("/nonexistent/connections.toml"))
    assert "does not exist" in str(caught.value) and "BCTUI_CONFIG" in str(caught.value)


def test_non_finite_rule_values_are_refused() -> None:
    issue = only_issue(BASE.replace("value = 1000", "value = nan"))
    assert issue.key == "segment[0].rules[0].value" and "finite" in issue.fix


@pytest.mark.parametrize(
    ("old", "new", "key", "words"),
    [
        ('audience = { segment_id = "seg-1" }',
         'audience = { segment_id = "seg-1" }\nwait = { poll_seconds = nan }',
         "connection[0].goal[0].wait.poll_seconds", "from 0.05"),
        ('audience = { segment_id = "seg-1" }',
         'audience = { segment_id = "seg-1" }\nwait = { timeout_minutes = inf }',
         "connection[0].goal[0].wait.timeout_minutes", "1440"),
        ('bucket = "exports"', 'bucket = "exports"\nendpoint_url = "http://s3.example.com"',
         "connection[0].s3.endpoint_url", "loopback"),
        ('bucket = "exports"',
         'bucket = "exports"\nendpoint_url = "https://AKIA:pw@s3.example.com"',
         "connection[0].s3.endpoint_url", "secret_access_key"),
        ('bucket = "exports"', 'bucket = "s3://exports/folder"', "connection[0].s3.bucket", "root"),
        ('"https://rest.iad-01.braze.com"', '"https://rest.iad-01.braze.com/users/track"',
         "connection[0].braze.endpoint", "only the REST endpoint"),
        ('braze = "first_name", property', 'braze = "custom_attributes.", property',
         "connection[0].goal[0].mappings[0].braze", "custom_attributes.loyalty_points"),
    ],
)
def test_ranges_urls_and_names_are_checked(old: str, new: str, key: str, words: str) -> None:
    assert old in BASE
    issue = only_issue(BASE.replace(old, new, 1))
    assert issue.key == key
    assert words in issue.fix or words in issue.message
    assert "pw" not in issue.message


def test_single_bracket_tables_get_the_double_bracket_fix() -> None:
    issue = only_issue('[connection]\nname = "x"\n')
    assert issue.key == "connection" and "[[connection]]" in issue.fix


def test_a_byte_order_mark_is_ignored() -> None:
    assert parse_config("\ufeff" + BASE).connections[0].name == "Main"


def test_store_url_must_name_a_file() -> None:
    for url in ("sqlite:///", "sqlite:///:memory:"):
        issue = only_issue(f'[store]\nurl = "{url}"\n')
        assert issue.key == "store.url" and "sqlite:///profiles.db" in issue.fix


def test_repeated_days_and_issues_in_line_order() -> None:
    text = BASE.replace('name = "Main"', 'name = "Main"\nschedule = { kind = "days_of_week", '
                        'days = ["mon", "mon"], at = "01:30" }')
    text = text.replace('op = "gte"', 'op = "nope"')
    issues = issues_of(text)
    assert [i.line for i in issues] == sorted(i.line or 0 for i in issues)
    assert any(i.key == "connection[0].schedule.days[1]" and "twice" in i.message
               for i in issues)


def test_an_export_mapping_may_name_its_json_type() -> None:
    text = BASE.replace('braze = "email" }', 'braze = "email", type = "string" }').replace(
        'braze = "source" }', 'braze = "source" },\n  { source = "property", value = "tags", '
        'braze = "bc_tags", type = "array" },\n  { source = "segments", braze = "segs", '
        'type = "array" }')
    goal = parse_config(text, "conf.toml").connections[0].goals[1]
    assert isinstance(goal, ExportGoal)
    assert [m.type for m in goal.mappings] == ["string", "", "array", "array"]


@pytest.mark.parametrize(
    ("mapping", "words", "fix"),
    [
        ('{ source = "property", value = "email", braze = "email", type = "text" }',
         'unknown type "text" for mapping "email" of goal "Out"',
         "string, number, boolean, time, array"),
        ('{ source = "segments", braze = "segs", type = "string" }',
         'mapping "segs" of goal "Out": source "segments" always sends an array',
         'type = "array"'),
        ('{ source = "static", value = "bctui", braze = "source", type = "number" }',
         'source "static" always sends a string, not a number', 'type = "string"'),
        ('{ source = "property", value = "email", braze = "email", type = 3 }',
         "expected", '"string"'),
    ],
)
def test_an_export_type_is_validated(mapping: str, words: str, fix: str) -> None:
    text = BASE.replace('{ source = "property", value = "email", braze = "email" }', mapping)
    if "static" in mapping:
        text = BASE.replace('{ source = "static", value = "bctui", braze = "source" }', mapping)
    issue = only_issue(text)
    assert issue.key.startswith("connection[0].goal[1].mappings[")
    assert issue.key.endswith("].type")
    assert words in issue.message and fix in issue.fix, (issue.message, issue.fix)
def test_budgets_parse_on_connections_and_export_goals() -> None:
    text = BASE.replace('name = "Main"', 'name = "Main"\nmax_data_points = 1000\n'
                        'on_budget = "partial"')
    text = text.replace('name = "Out"', 'name = "Out"\nmax_data_points = 50')
    conn = parse_config(text).connections[0]
    assert (conn.max_data_points, conn.on_budget) == (1000, "partial")
    out = conn.goal("Out")
    assert isinstance(out, ExportGoal)
    assert (out.max_data_points, out.on_budget) == (50, "refuse")
    plain = parse_config(BASE).connections[0]
    assert plain.max_data_points is None and plain.on_budget == "refuse"


@pytest.mark.parametrize(
    ("addition", "key", "words"),
    [
        ("max_data_points = 0", "max_data_points", 'export goal "Out": max_data_points must be '
         "a positive whole number, got 0"),
        ("max_data_points = -5", "max_data_points", "got -5"),
        ("max_data_points = 2.5", "max_data_points", "got 2.5"),
        ('max_data_points = "lots"', "max_data_points", "got a string"),
        ("max_data_points = true", "max_data_points", "positive whole number"),
        ('max_data_points = 10\non_budget = "some"', "on_budget", 'unknown value "some"'),
        ('on_budget = "partial"', "on_budget", "no max_data_points beside it"),
    ],
)
def test_invalid_budgets_name_the_goal_key_and_fix(addition: str, key: str, words: str) -> None:
    issue = only_issue(BASE.replace('name = "Out"', f'name = "Out"\n{addition}'))
    assert issue.key == f"connection[0].goal[1].{key}"
    assert words in issue.message
    assert issue.fix


def test_an_invalid_connection_budget_names_the_connection() -> None:
    issue = only_issue(BASE.replace('name = "Main"', 'name = "Main"\nmax_data_points = 0'))
    assert issue.key == "connection[0].max_data_points"
    assert issue.message.startswith('connection "Main": ') and "max_data_points = " in issue.fix


def test_an_import_goal_takes_no_budget() -> None:
    issue = only_issue(BASE.replace('name = "In"', 'name = "In"\nmax_data_points = 10'))
    assert issue.key == "connection[0].goal[0].max_data_points"
