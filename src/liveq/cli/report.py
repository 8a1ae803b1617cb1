"""`liveq report RUN [RUN ...] --out report.html` and `liveq report ab --db URL`.

One `report` parser takes positional targets: when the first is the word `ab`, the
command analyses the A/B arms the service logged (`--db`, `--since`, `--metric`, ...);
otherwise the targets are run folders, folders of runs or compare.json files (a run
folder really named `ab` is given as `./ab`). Options of the other form are refused.
"""

from __future__ import annotations

import argparse

from liveq.core.errors import UsageError

RUN_ONLY = ("out", "ope", "ab", "episodes", "force")
AB_ONLY = ("db", "since", "metric", "control", "treatment", "mde", "json", "join")
DEFAULTS = {"episodes": 512, "metric": "return", "mde": 0.02, "force": False}


def _refuse(args: argparse.Namespace, names: tuple[str, ...], form: str) -> None:
    given = [n for n in names if getattr(args, n) not in (None, DEFAULTS.get(n))]
    if given:
        flags = ", ".join("--" + n.replace("_", "-") for n in given)
        raise UsageError(f"{flags}: not an option of {form}")


def report_command(args: argparse.Namespace) -> int:
    if args.targets[0] == "ab":
        return _ab(args)
    _refuse(args, AB_ONLY, "`liveq report RUN ...` (they belong to `liveq report ab`)")
    if args.out is None:
        raise UsageError("--out: give the HTML file to write, e.g. --out report.html")
    from liveq.experiments.report import ReportConfig, build_report

    report = build_report(ReportConfig(runs=list(args.targets), out=args.out, ope=args.ope,
                                       ab=args.ab, episodes=args.episodes,
                                       seed=12345 if args.seed is None else args.seed,
                                       force=args.force))
    where = f" in {report.figures[0].parent}" if report.figures else ""
    print(f"wrote {report.out} and {len(report.figures)} figures{where}")
    return 0


def _ab(args: argparse.Namespace) -> int:
    from liveq.core.report import check_output_file, save_json
    from liveq.experiments.report_ab import ABLogConfig, ab_from_log, report_lines

    if len(args.targets) > 1:
        raise UsageError(f"`liveq report ab` takes no run folders, got {args.targets[1:]}")
    _refuse(args, RUN_ONLY, "`liveq report ab`")
    if args.db is None:
        raise UsageError("`liveq report ab` needs --db URL (the service's decision log)")
    check_output_file(args.json, "--json", force=True, make_parents=True)
    result = ab_from_log(ABLogConfig(db=args.db, since=args.since, metric=args.metric,
                                     control=args.control, treatment=args.treatment,
                                     mde=args.mde, seed=args.seed or 0, join=args.join))
    print("\n".join(report_lines(result)), flush=True)
    if args.json:
        save_json(result, args.json)
    return 0
