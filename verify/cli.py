"""The ``nnspec`` command line.

::

    nnspec verify [IMPL ...] [--profile P] [--report DIR] [-n N] [--clause ID] [--seed S]
    nnspec list [--topic T] [--json]
    nnspec show ID
    nnspec report compare A.json B.json ... -o DIR
    nnspec --version

``nnspec verify`` runs pytest programmatically with the nnspec plugin on the clauses alone (it
ignores the current directory's tests and configuration). Without IMPL it verifies the bundled torch
implementation on the CPU (``torch``, i.e. ``torch:cpu:float32``). Exit codes: 0 every applicable
clause passed, 1 an implementation does not conform (or a clause broke), 2 usage error, 3 the run
did not finish what it was asked (interrupted, pytest's internal error, the report not written).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import shlex
import sys
import tempfile
import textwrap
from importlib.metadata import version
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_NONCONFORMING, EXIT_USAGE, EXIT_UNFINISHED = 0, 1, 2, 3
# The names of nnspec.verify.profiles.PROFILES (not imported here: that would import Hypothesis
# before pytest starts); tests/test_cli.py checks the two agree.
PROFILES = ("quick", "default", "thorough", "ci")


def _verify(args: argparse.Namespace) -> int:
    import pytest

    if args.profile not in PROFILES:
        print(f"nnspec verify: unknown profile {args.profile!r}; use one of {', '.join(PROFILES)}",
              file=sys.stderr)
        return EXIT_USAGE
    if args.n is not None and args.n not in ("auto", "logical") and not args.n.isdigit():
        print(f"nnspec verify: -n {args.n!r}: give a number of worker processes, or auto",
              file=sys.stderr)
        return EXIT_USAGE
    impls = args.impl or ["torch"]
    with tempfile.TemporaryDirectory(prefix="nnspec-verify-") as tmp:
        # An empty project: no tests, no conftest, no ini of the caller's directory.
        ini = Path(tmp) / "pytest.ini"
        # This process imported nnspec before pytest started, so loading the plugin by name (below)
        # warns that pytest cannot rewrite its asserts; nnspec's clauses report with their own text.
        ini.write_text(
            "[pytest]\nfilterwarnings =\n"
            "    ignore:Module already imported so cannot be rewritten; nnspec:pytest.PytestAssertRewriteWarning\n"
        )
        # -rfE, not -rfEs: why a clause was not applicable is in nnspec's summary, once per reason
        # pytest-benchmark, when installed, warns under -n that it is off: nnspec runs no benchmark
        argv = ["-c", str(ini), "--rootdir", tmp, "-p", "no:cacheprovider", "-p", "no:randomly",
                "-p", "no:benchmark", "-rfE"]
        # By entry-point name, so the run works with PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 too (with
        # autoloading on, a plugin already loaded by its name is not loaded again).
        argv += ["-p", "nnspec"]
        argv += [f"--nnspec-impl={name}" for name in impls]
        argv += [f"--nnspec-profile={args.profile}", f"--nnspec-seed={args.seed}"]
        argv += [f"--nnspec-clause={c}" for c in args.clause]
        argv += [f"--nnspec-catalogue={c}" for c in args.catalogue]
        if args.report:
            argv.append(f"--nnspec-report={Path(args.report).resolve()}")
        command = ["nnspec", "verify", *impls, "--profile", args.profile, "--seed", str(args.seed)]
        command += [f"--clause={c}" for c in args.clause]
        command += [f"--catalogue={c}" for c in args.catalogue]
        if args.time_limit is not None:
            seconds = f"{args.time_limit:g}"
            seconds = seconds if float(seconds) == args.time_limit else repr(args.time_limit)
            argv.append(f"--nnspec-time-limit={seconds}")
            command.append(f"--time-limit={seconds}")
        if args.n is not None:
            argv += ["-p", "xdist", "-n", str(args.n)]
            command += ["-n", str(args.n)]
        if args.k:
            argv += ["-k", args.k]
            command += ["-k", args.k]
        if args.report:  # as typed: run again from the same directory, it rewrites the same report
            command += ["--report", args.report]
        # what the report says was run: every choice that shapes its rows, quoted for a shell
        argv.append("--nnspec-command=" + shlex.join(command))
        argv += ["-v"] * args.verbose + ["-q"] * args.quiet
        argv.append(tmp)
        # like `python -m`: implementations named package.module:object import from the cwd
        cwd = os.getcwd()
        sys.path.insert(0, cwd)
        os.chdir(tmp)  # node ids print as `nnspec::ID[impl]`, not as a path to the temp dir
        # the caller's PYTEST_ADDOPTS belongs to its own test runs, like its ini: it could add
        # implementations or options that the report's command would not show
        addopts = os.environ.pop("PYTEST_ADDOPTS", None)
        try:
            code = int(pytest.main(argv))
        finally:
            os.chdir(cwd)
            sys.path.remove(cwd)
            if addopts is not None:
                os.environ["PYTEST_ADDOPTS"] = addopts
    return _exit_code(code)


def _exit_code(code: int) -> int:
    """pytest's exit status as nnspec's: 0 conforms, 1 does not, 2 usage error, 3 unfinished."""
    if code == 0:
        return EXIT_OK
    if code == 1:
        return EXIT_NONCONFORMING
    if code == 5:
        print("nnspec verify: no clause was selected (check --clause and -k)", file=sys.stderr)
        return EXIT_USAGE
    if code == 4:  # pytest.UsageError: the plugin named the bad value already
        return EXIT_USAGE
    # 2 interrupted (Ctrl-C), 3 pytest's internal error or the report not written
    return EXIT_UNFINISHED


def _clauses(catalogues: list[str]) -> dict:
    from . import catalogue

    return catalogue.catalogue(catalogues)


def _informative(catalogues: list[str]) -> dict:
    """The documents' claims that cannot be checked as stated (with the installed catalogue only:
    a catalogue named by --catalogue has its own)."""
    if catalogues:
        return {}
    from nnspec.spec import INFORMATIVE

    return dict(INFORMATIVE)


def _list(args: argparse.Namespace) -> int:
    clauses = _clauses(args.catalogue)
    claims = _informative(args.catalogue)
    topics = sorted({c.topic for c in clauses.values()} | {i.topic for i in claims.values()})
    if args.topic and args.topic not in topics:
        print(f"nnspec list: unknown topic {args.topic!r}; the topics are {', '.join(topics)}",
              file=sys.stderr)
        return EXIT_USAGE
    rows = [c for c in clauses.values() if not args.topic or c.topic == args.topic]
    untestable = [i for i in claims.values() if not args.topic or i.topic == args.topic]
    if args.json:
        print(json.dumps([
            *({"id": c.id, "statement": c.statement, "source": str(c.source), "needs": list(c.needs),
               "uses": list(c.uses), "topic": c.topic, "level": c.level, "cost": c.cost}
              for c in rows),
            *({"id": i.id, "statement": i.statement, "source": str(i.source), "topic": i.topic,
               "level": "INFORMATIVE", "reason": i.reason}
              for i in untestable),
        ], indent=1))
        return EXIT_OK
    for c in rows:
        uses = f", uses {', '.join(c.uses)} if offered" if c.uses else ""
        print(f"{c.id}  [{c.level}, {c.topic}, needs {', '.join(c.needs) or '-'}{uses}, cost {c.cost}]")
        print(textwrap.fill(c.statement, 100, initial_indent="    ", subsequent_indent="    "))
        print(f"    source: {c.source}")
    if untestable:
        print("\nInformative: claims of the documents that cannot be checked as stated")
    for i in untestable:
        print(f"{i.id}  [INFORMATIVE, {i.topic}]")
        _print_claim(i, indent="    ")
    counts = f"{len(rows)} clauses" + (f", {len(untestable)} informative claims" if untestable else "")
    print(counts, file=sys.stderr)
    return EXIT_OK


def _print_claim(claim: Any, indent: str = "") -> None:
    """An informative claim's statement, source and why it is not a clause."""
    print(textwrap.fill(claim.statement, 100, initial_indent=indent, subsequent_indent=indent))
    print(f"{indent}source: {claim.source}")
    print(textwrap.fill(f"why not a clause: {claim.reason}", 100, initial_indent=indent,
                        subsequent_indent=indent))


def _show(args: argparse.Namespace) -> int:
    from . import catalogue

    clauses = _clauses(args.catalogue)
    c = clauses.get(args.id) or clauses.get(args.id.upper())
    claims = _informative(args.catalogue)
    claim = claims.get(args.id) or claims.get(args.id.upper())
    if c is None and claim is not None:
        print(f"{claim.id} (INFORMATIVE, topic {claim.topic}): not checked as stated")
        _print_claim(claim)
        return EXIT_OK
    if c is None:
        try:
            matches = catalogue.select(clauses, [args.id])
            problem = f"{args.id!r} is a pattern matching {len(matches)} clauses; give one clause id"
        except catalogue.CatalogueError as exc:
            problem = str(exc)
        print(f"nnspec show: {problem}", file=sys.stderr)
        return EXIT_USAGE
    print(f"{c.id} ({c.level}, topic {c.topic}, cost {c.cost})")
    print(textwrap.fill(c.statement, 100))
    print(f"source: {c.source}")
    print(f"needs: {', '.join(c.needs) or '-'}")
    if c.uses:
        print(f"uses, if offered: {', '.join(c.uses)}")
    if c.optional:
        print(
            "an implementation that lacks some of "
            f"{', '.join(c.optional)} has the parts that need them unchecked (its report row says so)"
        )
    print(f"runs under Hypothesis: {'yes' if c.hypothesis else 'no (once)'}")
    if c.note:
        print(f"note: {c.note}")
    for erratum in c.errata:
        print(f"erratum: {erratum}")
    try:
        code = inspect.getsource(c.prop)
        print("\nproperty:\n" + textwrap.indent(code, "    "))
    except (OSError, TypeError):
        pass
    return EXIT_OK


def _report_compare(args: argparse.Namespace) -> int:
    import jsonschema
    from nnspec.report import ReportDirError, write_comparison

    try:
        written = write_comparison(args.reports, args.output)
    except (OSError, ValueError, jsonschema.ValidationError, ReportDirError) as exc:
        problem = exc.message if isinstance(exc, jsonschema.ValidationError) else str(exc)
        print(f"nnspec report compare: {problem}", file=sys.stderr)
        return EXIT_USAGE
    for path in written.values():
        print(path)
    for warning in json.loads(written["json"].read_text()).get("warnings", []):
        print(f"nnspec report compare: not like for like: {warning}", file=sys.stderr)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nnspec",
        description="Executable specifications of neural networks and transformers.",
    )
    parser.add_argument("--version", action="version", version=f"nnspec {version('nnspec')}")
    sub = parser.add_subparsers(dest="command")

    verify = sub.add_parser(
        "verify", help="check implementations against the clauses",
        description="Check implementations against every clause (pytest + the nnspec plugin).",
    )
    verify.add_argument(
        "impl", nargs="*",
        help="numpy, torch[:device[:dtype]], package.module:object or an entry-point name "
        "(default: torch = torch:cpu:float32)",
    )
    verify.add_argument("--profile", default="default",
                        help="quick, default, thorough or ci (default: default)")
    verify.add_argument("--report", metavar="DIR",
                        help="write the report (results.json, report.md, report.html) to DIR: a new or "
                        "empty directory, or an earlier report, which is replaced whole")
    verify.add_argument("-n", metavar="N", help="pytest-xdist workers (a number or auto; default: none, one process)")
    verify.add_argument("--clause", action="append", default=[], metavar="ID",
                        help="only these clause ids or globs (repeatable or comma-separated)")
    verify.add_argument("-k", metavar="EXPR", help="pytest -k expression on clause ids, implementations, "
                        "topics, levels (MUST) and costs (network, training)")
    verify.add_argument("--seed", type=int, default=0,
                        help="seed of the run: with the profile, it fixes every example (default: 0)")
    verify.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                        help="per-clause time limit (default: the profile's)")
    verify.add_argument("-v", "--verbose", action="count", default=0, help="one line per clause")
    verify.add_argument("-q", "--quiet", action="count", default=0)
    verify.add_argument("--catalogue", action="append", default=[], help=argparse.SUPPRESS)
    verify.set_defaults(run=_verify)

    listing = sub.add_parser("list", help="list the clauses")
    listing.add_argument("--topic", help="only this topic")
    listing.add_argument("--json", action="store_true", help="machine-readable")
    listing.add_argument("--catalogue", action="append", default=[], help=argparse.SUPPRESS)
    listing.set_defaults(run=_list)

    show = sub.add_parser("show", help="show one clause: sentence, source, needs, property")
    show.add_argument("id", help="a clause id (ATT-MASK-ZERO) or an informative claim's id, as nnspec list prints them")
    show.add_argument("--catalogue", action="append", default=[], help=argparse.SUPPRESS)
    show.set_defaults(run=_show)

    report = sub.add_parser("report", help="work with reports: compare several runs")
    report_sub = report.add_subparsers(dest="report_command", required=True)
    compare = report_sub.add_parser(
        "compare", help="a clauses x implementations matrix of several reports",
        description="Put several reports (results.json files or their directories) side by side, "
        "highlighting the clauses where implementations disagree. Writes compare.md, compare.html "
        "and compare.json to DIR.",
    )
    compare.add_argument("reports", nargs="+", metavar="REPORT", help="results.json or a report directory")
    compare.add_argument("-o", "--output", required=True, metavar="DIR", help="where to write the comparison")
    compare.set_defaults(run=_report_compare)

    # `nnspec mutants ...` is handed whole to nnspec.verify.mutants.main (see main below); this
    # entry only lists it in `nnspec --help`.
    sub.add_parser(
        "mutants", add_help=False,
        help="run the catalogue of planted faults and print the kill matrix (nnspec mutants --help)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["mutants"]:
        from .mutants import main as mutants_main

        return mutants_main(argv[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 0 for --help/--version, 2 for usage errors
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.run(args)
    except BrokenPipeError:  # `nnspec list | head`
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
