"""The `liveq` command line: train, eval, compare, bench, data, eval-offline, ope, serve,
traffic, learn, models.

Usage errors (bad configs, missing or corrupted checkpoints, invalid arguments) print
one line `liveq: error: ...` and exit with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from liveq.core.errors import LiveqError


def seed(text: str) -> int:
    """A `--seed` value: a non-negative integer (numpy's SeedSequence takes no other)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train an agent from a YAML run config")
    p.add_argument("--config", required=True, help="run config YAML")
    p.add_argument("--out", required=True, help="run folder to create (or resume)")
    p.add_argument("--resume", action="store_true", help="continue from checkpoints/latest.pt")
    p.add_argument("--seed", type=seed, help="override the config's seed")
    p.add_argument("--steps", type=int, help="override train.total_env_steps")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a trained run online in its simulator")
    p.add_argument("run", help="run folder written by `liveq train`")
    p.add_argument("--episodes", type=int, default=1000, help="sessions to evaluate")
    p.add_argument("--checkpoint", choices=("best", "latest"), default="best")
    p.add_argument("--seed", type=seed, default=12345, help="evaluation seed")
    p.add_argument("--json", help="write results as JSON")
    p.add_argument("--csv", help="write results as CSV")


def _add_compare(sub) -> None:
    p = sub.add_parser("compare", help="train learners and compare them with baselines")
    p.add_argument("--config", required=True, help="run config YAML (DQN settings and env)")
    p.add_argument("--agents", default="dqn,myopic,oracle,popular,repeat,random",
                   help="comma-separated learners (any registered algorithm: dqn, myopic, "
                        "ppo, linucb, reinforce, bc, ...) and baselines (oracle, popular, "
                        "repeat, random, or the env's own)")
    p.add_argument("--behaviour", default="popular:0.3",
                   help="NAME[:EPSILON] baseline whose log the offline-only learners (bc, "
                        "reinforce) learn from; it joins the table")
    p.add_argument("--episodes", type=int, default=2000, help="sessions per agent")
    p.add_argument("--out", default="runs/compare", help="folder for the learners' runs")
    p.add_argument("--checkpoint", choices=("best", "latest"), default="best",
                   help="each learner's policy: the checkpoint its own evaluations chose "
                        "(best) or the final one (latest)")
    p.add_argument("--seed", type=seed, default=12345, help="evaluation seed (shared)")
    p.add_argument("--steps", type=int, help="override train.total_env_steps")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--json", help="write results as JSON")
    p.add_argument("--csv", help="write results as CSV")


def _add_bench(sub) -> None:
    p = sub.add_parser("bench", help="simulator and training throughput, with SB3 beside it; "
                       "`bench serve`: the recommendation service's latency and rates")
    p.add_argument("mode", nargs="?", choices=["serve", "sb3"],
                   help="serve: start the service and load it; sb3: liveq's DQN against "
                   "SB3's on SB3's defaults and on liveq's own settings, with the time each "
                   "needs to reach the same return (default: the simulator and training "
                   "benchmark)")
    p.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    p.add_argument("--json", help="write figures as JSON")
    p.add_argument("--model", help="bench serve: run folder to serve (default: train a small "
                   "demo run first)")
    p.add_argument("--workers", type=int, default=2, help="bench serve: server worker "
                   "processes (default 2, one per core of the 2-core target)")
    p.add_argument("--steps", type=int, help="bench sb3: env-step budget of each learner "
                   "(default 60,000; 2,560 with --quick)")


def _add_traffic(sub) -> None:
    p = sub.add_parser("traffic", help="drive a running service with the simulator's viewers")
    p.add_argument("--url", default="http://127.0.0.1:8000", help="the service's base URL")
    p.add_argument("--config", default="livestream_small",
                   help="run config (shipped name or YAML path) whose env builds the world")
    p.add_argument("--days", type=float, default=1.0, help="simulated days")
    p.add_argument("--sessions", type=int, help="concurrent viewer sessions (default: the "
                   "config's env.n_envs)")
    p.add_argument("--seed", type=seed, default=0, help="world seed")
    p.add_argument("--api-key", help="sent as X-API-Key")
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight at once")
    p.add_argument("--retrieval", choices=["sim", "service"], default="sim",
                   help="sim: send the simulator's candidate table; service: let the service "
                   "retrieve from the whole live catalogue")
    p.add_argument("--refresh-every", type=int, default=1,
                   help="steps between whole-catalogue refreshes (go-live/offline events "
                   "in between)")
    p.add_argument("--retry-for", type=float, default=120.0,
                   help="seconds a request is retried while the service is unreachable")
    p.add_argument("--truth", help="write the summary and the true per-session returns as JSON")


def _add_log_arguments(p) -> None:
    """The arguments every command that reads an interaction log shares."""
    p.add_argument("log", help="interaction log: a file (Twitch, generic) or a folder (KuaiLive)")
    p.add_argument("--format", choices=("twitch", "kuailive", "generic"), default="twitch",
                   help="log format (default twitch)")
    p.add_argument("--schema", help="YAML column mapping for --format generic")
    p.add_argument("--on-bad-rows", choices=("error", "skip", "report"), default="error",
                   help="malformed rows: stop (default), drop and count, or drop and list them")


def _add_data(sub) -> None:
    p = sub.add_parser("data", help="synthesise, calibrate from and analyse interaction logs")
    data = p.add_subparsers(dest="data_command", required=True)
    s = data.add_parser("synth", help="write a synthetic log from the simulator")
    s.add_argument("--format", choices=("twitch", "kuailive", "generic"), default="twitch")
    s.add_argument("--out", required=True, help="file (twitch, generic) or folder (kuailive)")
    s.add_argument("--policy", choices=("popular", "repeat", "random", "oracle"),
                   default="popular", help="behaviour policy that recommends in the simulator")
    s.add_argument("--epsilon", type=float, default=0.1,
                   help="share of uniformly random recommendations mixed into the policy")
    s.add_argument("--sessions", type=int, default=2000, help="concurrent viewer sessions")
    s.add_argument("--days", type=float, default=7.0, help="simulated days")
    s.add_argument("--return-after-days", type=float, default=1.0,
                   help="days a returning viewer stays away before the next visit")
    s.add_argument("--config", help="simulator config YAML (LiveStreamConfig fields)")
    s.add_argument("--seed", type=seed, default=0)
    s.add_argument("--force", action="store_true", help="overwrite an existing --out")
    c = data.add_parser("calibrate", help="fit a simulator config to a log")
    _add_log_arguments(c)
    c.add_argument("--out", required=True, help="simulator config YAML to write")
    c.add_argument("--seed", type=seed, default=0)
    c.add_argument("--force", action="store_true", help="overwrite an existing --out")
    a = data.add_parser("analyze", help="retention, churn, watch time and repeat consumption")
    _add_log_arguments(a)
    a.add_argument("--out", required=True, help="folder for the PNG plots and summary.json "
                   "(created; files of the same names in it are replaced)")
    a.add_argument("--churn-days", type=float, default=7.0,
                   help="a viewer has churned after this many days without a visit")
    a.add_argument("--seed", type=seed, default=0)


def _add_eval_offline(sub) -> None:
    p = sub.add_parser("eval-offline", help="rank live streamers on a log (LiveRec protocol)")
    _add_log_arguments(p)
    p.add_argument("--protocol", choices=("liverec", "leave-last-out"), default="liverec")
    p.add_argument("--availability", choices=("log", "others"), default="log",
                   help="a streamer is live at t if any row covers t (log, LiveRec's rule) or "
                        "a row of another user than the target's (others)")
    p.add_argument("--models", default="pop,rep,bpr,dqn",
                   help="comma-separated: pop, rep, bpr, dqn, bc, bandit")
    p.add_argument("--model-config",
                   help="YAML: model name -> its settings (bpr: BPRConfig, dqn/bc/bandit: "
                        "LoggedQConfig fields)")
    p.add_argument("--compat", default="liveq",
                   help="liveq (default) or liverec: the LiveRec code's own POP (training "
                        "counts), REP and repeat-target rule, to reproduce the paper")
    p.add_argument("--seed", type=seed, default=0, help="seed for training and tie-breaking")
    p.add_argument("--json", help="write results as JSON")
    p.add_argument("--csv", help="write results as CSV")


def _add_ope(sub) -> None:
    p = sub.add_parser("ope", help="off-policy estimates: on the simulator or Open Bandit data")
    p.add_argument("source", choices=("sim", "obd", "offline-rl", "gate"),
                   help="sim: simulator logs with known truth; obd: Open Bandit sample; "
                   "offline-rl: learn from a simulator log, judge off-policy and online; "
                   "gate: the session-level promotion gate against the online truth")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--json", help="write results as JSON")
    p.add_argument("--csv", help="write results as CSV")
    p.add_argument("--bootstrap", type=int, help="bootstrap replicates per interval "
                   "(default 200 for sim and offline-rl, 1000 for obd)")
    p.add_argument("--clip", type=float, help="cap importance weights of IPS, SNIPS, DR")
    p.add_argument("--switch-tau", type=float, default=10.0,
                   help="switch-DR keeps DR's correction where the weight is <= this")
    p.add_argument("--folds", type=int, default=3, help="reward-model cross-fitting folds")
    p.add_argument("--seeds", type=int, help="sim, gate: independent logs (default 10, 3)")
    p.add_argument("--sessions", type=int, help="sim, offline-rl: concurrent sessions per log "
                   "(default 512, 64); gate: logged sessions per log (1024)")
    p.add_argument("--steps", type=int, help="sim, offline-rl: steps per log (default 16, 1024)")
    p.add_argument("--behaviour", help="sim, offline-rl: logging policy NAME[:EPSILON] "
                   "(popular:0.3)")
    p.add_argument("--targets", help="sim: comma-separated target policies "
                   "(oracle,repeat,popular:0.1,random); offline-rl: baselines judged beside "
                   "the learners (popular,random)")
    p.add_argument("--campaign", choices=("all", "men", "women"),
                   help="obd: ZOZOTOWN campaign (default all)")
    p.add_argument("--n-sim", type=int, help="obd: draws of the BTS distribution (100000)")
    p.add_argument("--obp-check", action="store_true",
                   help="obd: also run obp's estimators on the same inputs and compare")
    p.add_argument("--config", help="offline-rl: run config YAML whose env.kwargs and "
                   "agent.dqn the learners use (default: the small world of "
                   "the shipped livestream_small config)")
    p.add_argument("--learners", help="offline-rl: comma-separated offline learners: dqn, bc, "
                   "bandit, dqn-nocql (default dqn,bc,bandit)")
    p.add_argument("--gradient-steps", type=int,
                   help="offline-rl: gradient steps per learner (3000)")
    p.add_argument("--cql-alpha", type=float, help="offline-rl: CQL weight of dqn and "
                   "bandit (0.1)")
    p.add_argument("--soften", type=float, help="offline-rl: uniform exploration mixed into "
                   "each learned policy for a second OPE target (0.1; 0 = none)")
    p.add_argument("--heldout-steps", type=int,
                   help="offline-rl: steps of the held-out log for OPE (256)")
    p.add_argument("--episodes", type=int, help="offline-rl: sessions per policy online (1024)")
    p.add_argument("--no-online-dqn", action="store_true",
                   help="offline-rl: skip DQN trained online on the same budget")
    p.add_argument("--out", help="gate: folder caching the trained dqn and myopic runs "
                   "(liveq-gate)")
    p.add_argument("--dqn-run", help="gate: a trained dqn run folder to use instead")
    p.add_argument("--myopic-run", help="gate: a trained myopic run folder to use instead")
    p.add_argument("--epsilon", type=float, help="gate: exploration of every served "
                   "policy (0.2)")
    p.add_argument("--small-sessions", type=int, help="gate: sessions of the too-small log "
                   "(48)")
    p.add_argument("--truth-runs", type=int, help="gate: online runs per policy and seed "
                   "for the truth (8)")
    p.add_argument("--decide-by", help="gate: comma-separated estimators that must all clear "
                   "the margin: fqe, pdwis, wdr (fqe)")
    p.add_argument("--train-steps", type=int, help="gate: env steps per learner (60000)")
    p.add_argument("--min-sessions", type=int, help="gate: fewest logged sessions (200)")
    p.add_argument("--margin", type=float, help="gate: gain per session to clear (0)")


def _add_serve(sub) -> None:
    p = sub.add_parser("serve", help="serve a trained run over HTTP with a durable decision log")
    p.add_argument("--model", required=True, help="run folder written by `liveq train`")
    p.add_argument("--db", help="database URL: sqlite:///PATH or postgresql://USER@HOST/DB "
                   "(default: SQLite in --state-dir)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, help="worker processes")
    p.add_argument("--api-key", help="key the admin routes require (X-API-Key header)")
    explore = p.add_mutually_exclusive_group()
    explore.add_argument("--epsilon", type=float, help="epsilon-greedy exploration (0.1)")
    explore.add_argument("--temperature", type=float, help="softmax exploration instead")
    p.add_argument("--state-dir", default="./liveq-serve",
                   help="folder of the default SQLite log and the workers' metrics")
    p.add_argument("--log-sample", type=float, default=1.0,
                   help="share of decisions logged in full (features, distributions)")
    p.add_argument("--myopic", help="run folder of a gamma-0 model: explanations split each "
                   "score into its expected immediate reward and future value")
    p.add_argument("--max-body-bytes", type=int, default=1 << 20,
                   help="largest request body accepted")


def _add_learn(sub) -> None:
    p = sub.add_parser("learn", help="train a candidate model from the service's decision log")
    p.add_argument("--db", required=True, help="the log's database URL (as liveq serve --db)")
    p.add_argument("--out", required=True, help="run folder to create")
    p.add_argument("--learner", default="cql", help="an offline learner: dqn, myopic, cql, "
                   "bandit, bc, reinforce; slateq for a log of slates, k > 1 (default cql)")
    p.add_argument("--config", help="run config YAML or shipped name (default: the live "
                   "model's config.yaml)")
    p.add_argument("--gradient-steps", type=int, default=2000)
    p.add_argument("--join", help="JoinConfig YAML (attribution window, reward weights, ...)")
    p.add_argument("--min-decisions", type=int, default=100,
                   help="refuse a log with fewer usable decisions (100)")
    p.add_argument("--seed", type=seed, help="override the run config's seed")


def _add_models(sub) -> None:
    p = sub.add_parser("models", help="list, register, promote (behind the gate), roll back")
    models = p.add_subparsers(dest="models_command", required=True)
    parsers = {name: models.add_parser(name, help=text) for name, text in (
        ("list", "versions, status, timestamps and the last gate verdict"),
        ("register", "register a run folder as a candidate"),
        ("promote", "promote a run or version when the session-level gate says so"),
        ("rollback", "make the previously live model live again"))}
    for q in parsers.values():
        q.add_argument("--db", required=True, help="the log's database URL")
    parsers["register"].add_argument("run", help="run folder")
    g = parsers["promote"]
    g.add_argument("run", help="run folder or registered version")
    g.add_argument("--min-sessions", type=int, default=200, help="fewest sessions (200)")
    g.add_argument("--margin", type=float, default=0.0, help="gain per session to clear (0)")
    g.add_argument("--decide-by", default="fqe", help="estimators that must all clear the "
                   "margin: fqe, pdwis, wdr (fqe)")
    g.add_argument("--bootstrap", type=int, default=100, help="bootstrap replicates (100)")
    g.add_argument("--target", choices=("served", "greedy"), default="served",
                   help="judge the policies with the logged exploration (served) or greedy")
    g.add_argument("--join", help="JoinConfig YAML")
    g.add_argument("--seed", type=seed, default=0, help="bootstrap seed")


def _add_ab(sub) -> None:
    p = sub.add_parser("ab", help="simulated A/B test of two policies over several days")
    p.add_argument("--control", required=True, help="baseline name or run folder")
    p.add_argument("--treatment", required=True, help="baseline name or run folder")
    p.add_argument("--config", default="livestream_default", help="world config (name or YAML)")
    p.add_argument("--viewers", type=int, default=10000, help="simulated viewers, both arms")
    p.add_argument("--days", type=int, default=7, help="days (one session a viewer a day)")
    p.add_argument("--share", type=float, default=0.5, help="treatment share of viewers")
    p.add_argument("--mde", type=float, default=0.02,
                   help="minimum detectable effect, relative to control return per viewer")
    p.add_argument("--seed", type=seed, default=0, help="world and bootstrap seed")
    p.add_argument("--json", help="write the full result here")


def _add_tune(sub) -> None:
    p = sub.add_parser("tune", help="hyperparameter search over a family of worlds "
                       "(Optuna; --backend ray: Ray Tune), resumable")
    p.add_argument("--config", default="livestream_default", help="run config the search "
                   "starts from (shipped name or YAML)")
    p.add_argument("--space", default="space_dqn", help="search space YAML (shipped name or "
                   "path; default space_dqn)")
    p.add_argument("--worlds", help="comma-separated worlds of the world family to average "
                   "over, e.g. default,clicks_only,large (default: the config alone)")
    p.add_argument("--trials", type=int, default=20, help="finished trials the study should "
                   "hold; re-running continues an interrupted search to this total")
    p.add_argument("--out", default="runs/tune", help="folder of the study, the trials' runs "
                   "and the reports")
    p.add_argument("--storage", help="Optuna storage URL (default sqlite:///OUT/study.db)")
    p.add_argument("--study-name", default="liveq-tune", help="study name in the storage")
    p.add_argument("--seed", type=seed, help="seed of every trial and the sampler "
                   "(default: the config's)")
    p.add_argument("--steps", type=int, help="override train.total_env_steps of each trial")
    p.add_argument("--backend", choices=("optuna", "ray"), default="optuna",
                   help="optuna: trials one by one here; ray: the same trials on Ray Tune")
    p.add_argument("--address", help="--backend ray: cluster address, auto or HOST:PORT "
                   "(default: a local Ray instance)")
    p.add_argument("--no-prune", action="store_true", help="train every trial in every world "
                   "(no median pruning)")


def _add_report(sub) -> None:
    p = sub.add_parser("report", help="an HTML report of runs; `report ab --db`: the A/B "
                       "statistics of the arms the service logged",
                       usage="liveq report RUN [RUN ...] --out FILE [options]\n"
                             "       liveq report ab --db URL [options]")
    p.add_argument("targets", nargs="+", metavar="RUN", help="run folders, folders of runs "
                   "or compare.json files; or the word `ab` (a folder named ab: ./ab)")
    runs = p.add_argument_group("liveq report RUN ...")
    runs.add_argument("--out", help="HTML file to write (figures go to <stem>_files/)")
    runs.add_argument("--force", action="store_true", help="overwrite an existing --out")
    runs.add_argument("--ope", help="JSON of `liveq ope ... --json`: estimates beside truth")
    runs.add_argument("--ab", help="JSON of `liveq ab --json` or `liveq report ab --json`")
    runs.add_argument("--episodes", type=int, default=512,
                      help="sessions each run's policy plays for the online metrics (0: none)")
    p.add_argument("--seed", type=seed, help="evaluation seed (12345); report ab: bootstrap "
                   "seed (0)")
    ab = p.add_argument_group("liveq report ab")
    ab.add_argument("--db", help="the decision log's database URL (as liveq serve --db)")
    ab.add_argument("--since", help="start of the test: UNIX seconds or ISO time (UTC unless "
                    "given); default: when the newest split with arms was set")
    ab.add_argument("--metric", choices=("return", "clicks", "watch_minutes"),
                    default="return", help="the outcome CUPED and the power check use")
    ab.add_argument("--control", help="control arm (default: the arm named control, else "
                    "the split's first)")
    ab.add_argument("--treatment", help="treatment arm (default: the split's other arm)")
    ab.add_argument("--mde", type=float, default=0.02,
                    help="minimum detectable effect, relative to the control mean")
    ab.add_argument("--join", help="JoinConfig YAML: attribution window and reward weights")
    ab.add_argument("--json", help="write the full result here")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="liveq", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an unexpected error")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_train, _add_eval, _add_compare, _add_bench, _add_data, _add_eval_offline,
                _add_ope, _add_serve, _add_traffic, _add_learn, _add_models,
                _add_ab, _add_tune, _add_report):
        add(sub)
    return parser


# command (or "data <sub>") -> "module:function"; imported only when that command runs.
_COMMANDS = {
    "train": "liveq.cli.commands:train_command",
    "eval": "liveq.cli.commands:eval_command",
    "compare": "liveq.cli.commands:compare_command",
    "bench": "liveq.cli.commands:bench_command",
    "data synth": "liveq.cli.data:synth_command",
    "data calibrate": "liveq.cli.data:calibrate_command",
    "data analyze": "liveq.cli.data:analyze_command",
    "eval-offline": "liveq.cli.offline:eval_offline_command",
    "ope": "liveq.cli.ope:ope_command",
    "serve": "liveq.cli.serve:serve_command",
    "learn": "liveq.cli.learn:learn_command",
    "models": "liveq.cli.learn:models_command",
    "traffic": "liveq.cli.traffic:traffic_command",
    "bench serve": "liveq.cli.traffic:bench_serve_command",
    "bench sb3": "liveq.cli.bench:bench_sb3_command",
    "ab": "liveq.cli.ab:ab_command",
    "tune": "liveq.cli.tune:tune_command",
    "report": "liveq.cli.report:report_command",
}


def _command(args: argparse.Namespace) -> Callable[[argparse.Namespace], int]:
    name = args.command
    if name == "data":
        name = f"data {args.data_command}"
    if name == "bench" and args.mode:
        name = f"bench {args.mode}"
    module, function = _COMMANDS[name].split(":")
    return getattr(importlib.import_module(module), function)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _command(args)(args)
    except (LiveqError, FileNotFoundError, IsADirectoryError, NotADirectoryError,
            FileExistsError) as exc:
        if args.debug:
            raise
        print(f"liveq: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("liveq: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001  (an unexpected failure: one line, not a traceback)
        if args.debug:
            raise
        print(f"liveq: error: unexpected {type(exc).__name__}: {exc} (this is a bug in "
              "liveq; run again with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
