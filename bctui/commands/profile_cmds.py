"""`bctui profiles load|show|dump|count`."""

from __future__ import annotations

import argparse
import sys

from bctui.commands.context import Context
from bctui.commands.output import note, print_json
from bctui.engine.models import Config
from bctui.errors import ExitCode, NotFoundError
from bctui.store import STRATEGIES, Profile, iter_dump, load_file
from bctui.store.dump import dump_line
from bctui.store.search import find_profile
from bctui.store.segments import SegmentDef


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `profiles` and its sub-commands."""
    p = commands.add_parser("profiles", help="load, look up, dump and count local profiles")
    sub = p.add_subparsers(dest="profiles_command", metavar="ACTION", required=True)

    s = sub.add_parser(
        "load",
        help="merge profiles from a JSON-lines or CSV file",
        description="Each JSON line (or CSV row) is one profile: property names to "
        "values (a scalar or a list). Reserved keys: _id, _permission_level, "
        "_interactions_viewed. Bad lines are reported with their line number and "
        "skipped; the rest loads. FILE may be - for stdin.",
    )
    s.add_argument("file", metavar="FILE")
    s.add_argument(
        "--match",
        metavar="PROP",
        help="the property that identifies an existing profile (e.g. email)",
    )
    s.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="set",
        help="merge strategy for every property (default: set)",
    )
    s.add_argument("--json", action="store_true", help="print the load report as JSON on stdout")
    s.set_defaults(handler=load)

    s = sub.add_parser(
        "show",
        help="show one profile",
        description="ID is a profile id, or PROPERTY=VALUE to look a profile up by "
        "any identifying property (e.g. email=jane@example.com).",
    )
    s.add_argument("id", metavar="ID|PROP=VALUE")
    s.add_argument("--json", action="store_true", help="print the profile as a dump line")
    s.set_defaults(handler=show)

    s = sub.add_parser("dump", help="write every profile to stdout")
    s.add_argument(
        "--json",
        action="store_true",
        help="JSON lines that `profiles load` reads back (default: readable text)",
    )
    s.add_argument("--segment", metavar="NAME", help="only the members of this local segment")
    s.set_defaults(handler=dump)

    s = sub.add_parser("count", help="count profiles, or the members of a segment")
    s.add_argument("--segment", metavar="NAME", help="a local segment from connections.toml")
    s.set_defaults(handler=count)


def load(ctx: Context, args: argparse.Namespace) -> int:
    """Stream the file into the store in batched transactions."""
    report = load_file(ctx.store, args.file, match=args.match, strategy=args.strategy)
    name = "stdin" if args.file == "-" else args.file
    for line, reason in report.errors:
        note(f"{name}:{line}: {reason} — skipped")
    if report.errors_omitted:
        note(f"… and {report.errors_omitted:,} more rejected lines")
    if args.json:
        print_json(report.as_dict())
    note(
        f"loaded {name}: {report.lines:,} records — {report.created:,} created, "
        f"{report.updated:,} updated, {report.unchanged:,} unchanged, {report.rejected:,} rejected"
        + (f", {report.ambiguous:,} matched several profiles" if report.ambiguous else "")
        + f" ({report.elapsed:.1f} s)"
    )
    return ExitCode.INPUT if report.rejected else ExitCode.OK


def show(ctx: Context, args: argparse.Namespace) -> int:
    """One profile, found by id or by PROPERTY=VALUE."""
    profile = _find(ctx, args.id)
    segments = _segments(ctx)
    names = [s.name for s in segments if ctx.store.in_segment(profile.id, s)]
    if args.json:
        print_json(dump_line(profile, names))
        return ExitCode.OK
    rows: list[tuple[str, str]] = [
        ("id", profile.id),
        ("permission level", profile.permission_level),
        ("created", profile.created_at.isoformat(timespec="seconds")),
        ("updated", profile.updated_at.isoformat(timespec="seconds")),
        ("change sequence", str(profile.seq)),
        ("segments", ", ".join(names) or "—"),
        ("interactions viewed", ", ".join(profile.interactions_viewed) or "—"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key.ljust(width)}  {value}")
    print("properties")
    if not profile.properties:
        print("  —")
    pwidth = max((len(k) for k in profile.properties), default=0)
    for name in sorted(profile.properties):
        values = " | ".join(_text(v) for v in profile.properties[name])
        print(f"  {name.ljust(pwidth)}  {values}")
    return ExitCode.OK


def dump(ctx: Context, args: argparse.Namespace) -> int:
    """Every profile (or a segment's members), streamed."""
    segments = _segments(ctx)
    only = _segment(ctx.config, args.segment) if args.segment else None
    out = sys.stdout
    for line in iter_dump(ctx.store, segments, segment=only):
        if args.json:
            print_json(line)
            continue
        props = "  ".join(
            f"{k}={'|'.join(_text(v) for v in vs)}" for k, vs in sorted(line["properties"].items())
        )
        out.write(f"{line['id']}  {line['permission_level']}  {props}\n")
    return ExitCode.OK


def count(ctx: Context, args: argparse.Namespace) -> int:
    """The number of profiles, or of a segment's members."""
    segment = _segment(ctx.config, args.segment) if args.segment else None
    print(ctx.store.count(segment))
    return ExitCode.OK


def _find(ctx: Context, key: str) -> Profile:
    """The profile `key` names (see bctui.store.search), noting when several match."""
    profile, search = find_profile(ctx.store, key)
    if len(search.matches) > 1:
        note(f"{search.message}; showing the oldest")
    return profile


def _segments(ctx: Context) -> tuple[SegmentDef, ...]:
    """The config's segments; none when there is no config file yet."""
    if not ctx.paths.config.exists():
        return ()
    return ctx.config.segments


def _segment(config: Config, name: str) -> SegmentDef:
    segment = config.segment(name)
    if segment is None:
        known = ", ".join(s.name for s in config.segments) or "none are defined"
        raise NotFoundError(
            f'no segment named "{name}"',
            fix=f"use one of the [[segment]] names in connections.toml ({known})",
        )
    return segment


def _text(value: object) -> str:
    return str(value)
