"""The ``modalfuse`` command line: thin wrappers over the library's public functions.

Bad input (``UserError``) prints one line and exits 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from .errors import UserError

LIST_KINDS = ("models", "fusions", "encoders", "heads", "datasets", "metrics", "presets", "claims")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows every option's default in ``--help``, except ``None``/``False`` (the help text then
    says what happens without the option)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False) or isinstance(action.default, list) and not action.default:
            return action.help or ""
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """Every (sub)command's parser: subparsers are made with the parent's class, so all share this."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)


def _add_set(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.epochs=5 (repeatable; YAML values)",
    )


def _add_wait(p: argparse.ArgumentParser) -> None:
    p.add_argument("--wait", type=float, default=None, metavar="SECONDS",
                   help="when another process holds the folder's lock, wait up to SECONDS for it (inf: for ever) "
                        "instead of stopping at once (default: $MODALFUSE_LOCK_WAIT, else 0)")


def _add_train(sub: Any) -> None:
    p = sub.add_parser("train", help="train one model from a config (a YAML file or a preset name)")
    p.add_argument("config", nargs="?", default=None,
                   help="config YAML path or preset name (see `modalfuse list presets`); optional with --resume, "
                        "which uses the run's own config")
    _add_set(p)
    p.add_argument("--out", default="runs", help="folder that receives the new run folder")
    _add_wait(p)
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint; --set may then change only "
                   "train.threads, train.progress, train.num_workers and train.device")
    p.add_argument("--smoke", action="store_true",
                   help="check the config quickly instead of training: build data and model, one batch per split "
                        "(forward, loss, backward, one step on train), nothing written")


def _add_evaluate(sub: Any) -> None:
    p = sub.add_parser("evaluate", help="evaluate a run's best checkpoint on a split")
    p.add_argument("run_dir")
    p.add_argument("--split", default="test", choices=["train", "valid", "test"], help="split to evaluate")
    p.add_argument("--json", action="store_true", help="print one JSON object (the split and checkpoint go to stderr)")


def _add_list(sub: Any) -> None:
    p = sub.add_parser("list", help="list registered models, fusions, encoders, datasets, metrics or presets")
    p.add_argument("kind", nargs="?", default="models", choices=LIST_KINDS, help="what to list")
    p.add_argument("--task", help="only entries for this task: a domain (sentiment, yt8m, synthetic) or a task kind "
                                  "(multiclass, multilabel, regression)")
    p.add_argument("--paths", action="store_true", help="with 'datasets': the bundled data files, one path a line")


def _add_predict(sub: Any) -> None:
    p = sub.add_parser("predict", help="top-k predictions with class names from a run or an exported model (.pt2, .onnx)")
    p.add_argument("run_dir", help="run folder, or a model exported by `modalfuse export` (.onnx or .pt2)")
    p.add_argument("--input", nargs="+", required=True, help="input files (TFRecord shards, packed/pickle/csd data)")
    p.add_argument("--out", required=True, help="output file")
    p.add_argument("--top-k", type=int, default=20, help="classes per sample")
    p.add_argument("--format", dest="fmt", default="csv", choices=["kaggle", "csv", "jsonl"], help="output format")


def _add_compare(sub: Any) -> None:
    p = sub.add_parser("compare", help="train a comparison under identical conditions and write a report")
    p.add_argument("configs", nargs="*", help="comparison preset(s) or config files (default: the bundled data)")
    p.add_argument("--seeds", default=None, metavar="N|auto",
                   help="seeds per model (default: the preset's); auto: seeds in rounds (3, 5, 10, ...) until every "
                        "primary comparison is decided, alpha split over the rounds (docs/statistics.md)")
    p.add_argument("--max-seeds", type=int, default=10, metavar="N", help="with --seeds auto: the last round's seeds")
    p.add_argument("--min-effect", type=float, default=None, metavar="D",
                   help="with --seeds auto: a comparison is settled once it could detect a difference of D")
    p.add_argument("--out", default=None, help="comparison folder (default: runs/compare-<name>)")
    _add_set(p)
    _add_wait(p)
    p.add_argument("--jobs", default="auto", metavar="N|auto",
                   help="runs trained at once, one process and one CPU thread each (default auto: the CPU cores "
                        "available); results are identical to --jobs 1")
    p.add_argument("--reference", default=None, metavar="MODEL",
                   help="the model every other is compared with (default: the best unimodal model)")
    p.add_argument("--tune", type=int, default=None, metavar="N",
                   help="first give every model the same N-trial Optuna search (the preset's 'tune:' space) "
                        "on validation, then train the seeds with each model's best trial (needs the [tune] extra)")
    p.add_argument("--tune-storage", default=None, metavar="URL",
                   help="Optuna RDB storage for the studies (sqlite:///f.db, postgresql://...): several machines "
                        "share one search (default: <comparison>/tuning.db)")
    p.add_argument("--robustness", action="store_true",
                   help="after training, draw robustness curves (`modalfuse robustness` with its defaults) into "
                        "<comparison>/robustness; the report includes them")
    _add_launcher(p)


def _add_launcher(p: argparse.ArgumentParser) -> None:
    """compare's launcher flags (comparison.slurm.SlurmOptions validates them; docs/cluster.md)."""
    g = p.add_argument_group("cluster", "train the runs as Slurm job-array tasks (the [slurm] extra; docs/cluster.md)")
    g.add_argument("--launcher", choices=["local", "slurm"], default="local",
                   help="local: --jobs processes here; slurm: one array task per pending run (or tuning trial), "
                        "the comparison folder on a file system every node sees")
    g.add_argument("--partition", default=None, help="Slurm partition (default: the cluster's default)")
    g.add_argument("--gpus-per-run", type=int, default=None, metavar="N", help="GPUs per task (default 0)")
    g.add_argument("--cpus-per-run", type=int, default=None, metavar="N", help="CPUs (and torch threads) per task (default 1)")
    g.add_argument("--time-limit", type=int, default=None, metavar="MINUTES",
                   help="Slurm time limit per task (default 60); a task that runs out resumes on its next attempt")
    g.add_argument("--array-parallelism", type=int, default=None, metavar="N", help="tasks of one array running at once (default 64)")
    g.add_argument("--setup", action="append", default=None, metavar="CMD",
                   help="a shell line each task runs first, e.g. 'source /shared/venv/bin/activate' (repeatable)")
    g.add_argument("--detach", action="store_true", help="submit and return; the same command later follows the jobs, "
                                                        "resubmits failed or pre-empted runs and writes the report")
    g.add_argument("--retries", type=int, default=None, metavar="N",
                   help="resubmissions per run (or per tuning model) after a failed, cancelled or pre-empted task (default 2)")


def _add_report(sub: Any) -> None:
    p = sub.add_parser("report", help="re-render a report from run folders or a comparison folder")
    p.add_argument("runs", nargs="+", help="run folders or one comparison folder")
    p.add_argument("--out", default=None, help="report folder (default: <comparison>/report)")
    p.add_argument("--reference", default=None, metavar="MODEL",
                   help="the model every other is compared with (default: the best unimodal model)")


def _add_claims(sub: Any) -> None:
    p = sub.add_parser("claims", help="check a paper's published claims against comparisons: a verdict per claim "
                                      "(supported, contradicted, inconclusive, not comparable) -> claims.csv, claims.md")
    p.add_argument("claims", metavar="CLAIMS", help="a claims file (YAML) or a shipped one (`modalfuse list claims`)")
    p.add_argument("compare_dirs", nargs="+", metavar="COMPARE_DIR", help="comparison folders (compare --out)")
    p.add_argument("--out", default=None, help="output folder (default: <first COMPARE_DIR>/claims-<claims name>)")
    p.add_argument("--reference", default=None, metavar="MODEL",
                   help="the report's reference, whose comparisons share the claims' Holm family (default: the best "
                        "unimodal model)")


def _add_ensemble(sub: Any) -> None:
    p = sub.add_parser("ensemble", help="average finished runs' predicted probabilities into an ensemble run folder")
    p.add_argument("runs", nargs="+", help="run folders, or one comparison folder (its finished runs)")
    p.add_argument("--label", action="append", default=None, metavar="MODEL",
                   help="with a comparison folder: only this model's runs (repeatable)")
    p.add_argument("--out", default=None, help="the ensemble's run folder (default: ensemble-<time> beside the runs)")


def _add_robustness(sub: Any) -> None:
    p = sub.add_parser("robustness", help="robustness curves: the test split under graded corruptions of each "
                                          "modality and of all (noise, missing, shift, dropped steps, quantization)")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="finished run folders or one comparison folder")
    p.add_argument("--out", default=None, help="output folder (default: <comparison>/robustness)")
    p.add_argument("--corruption", dest="corruptions", action="append", default=[], metavar="NAME[=L1,L2,...]",
                   help="a corruption and optionally its levels (repeatable): noise=SNR dB, missing=fraction, "
                        "shift=steps, drop=fraction, quantize=bits, dims=fraction (default: by data)")
    p.add_argument("--modality", dest="modalities", action="append", default=[], metavar="M",
                   help="a modality to corrupt, or 'all' (repeatable; default: each modality, then all)")
    p.add_argument("--reference", default=None, metavar="MODEL",
                   help="the model verdicts compare with (default: the best unimodal model)")
    p.add_argument("--metric", dest="metrics", action="append", default=[], help="metric (repeatable; default: the runs' monitor)")
    p.add_argument("--seed", type=int, default=0, help="corruption and bootstrap seed")
    p.add_argument("--resamples", type=int, default=None,
                   help="example resamples for the test-set variance (default: 2000, as reports)")
    p.add_argument("--batch-size", type=int, default=1024, help="evaluation batch, the same for every model")
    p.add_argument("--device", default=None, choices=["cpu", "cuda"], help="default: CUDA when present")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's; 1 is fastest "
                                                             "for small models on a busy machine)")


def _add_analyze(sub: Any) -> None:
    p = sub.add_parser("analyze", help="analyse finished runs: efficiency, modality ablation, attention "
                                       "(writes analysis.json in each run folder; compare does this itself)")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="finished run folders")
    p.add_argument("--device", default=None, choices=["cpu", "cuda"], help="default: the run's train.device")


def _add_inspect(sub: Any) -> None:
    p = sub.add_parser("inspect", help="summarise or dump records of TFRecord, .csd, packed and pickle files")
    p.add_argument("files", nargs="+")
    p.add_argument("--jsonl", action="store_true", help="one JSON object per record/segment")
    p.add_argument("--limit", type=int, default=None, help="at most N records per file")
    p.add_argument("--vocabulary", default=None, help="vocabulary CSV for label names (default: bundled YouTube-8M 2018)")


def _add_prepare(sub: Any) -> None:
    p = sub.add_parser("prepare", help="convert raw data into what training reads fast")
    psub = p.add_subparsers(dest="what", required=True, metavar="WHAT")
    q = psub.add_parser("yt8m-frames", help="frame-level YouTube-8M records -> video-level MF+STD shards")
    q.add_argument("inputs", nargs="+")
    q.add_argument("--out", required=True)
    q.add_argument("--workers", type=int, default=1, help="processes converting input files in parallel")
    q.add_argument("--skip-corrupt", action="store_true", help="skip (and count) records with bad CRCs")
    q = psub.add_parser("cmu-sdk", help="align CMU-MultimodalSDK .csd sequences and pack them")
    q.add_argument("--sequences", nargs="+", required=True, metavar="NAME=FILE.csd")
    q.add_argument("--labels", required=True)
    q.add_argument("--align-to", required=True, help="a sequence NAME (word level) or 'labels' (utterance level)")
    q.add_argument("--out", required=True)
    q.add_argument("--workers", type=int, default=1, help="processes reading videos in parallel")
    q = psub.add_parser("features", help="the bundled YouTube-8M shards or MOSI word sequences as Parquet feature "
                                         "tables (data.name: features)")
    q.add_argument("source", choices=["yt8m", "mosi-words"])
    q.add_argument("--out", required=True, help="the folder to write")
    for split in ("train", "valid", "test"):
        q.add_argument(f"--{split}", nargs="+", default=None, metavar="SHARD",
                       help=f"yt8m: the {split} split's TFRecord shards (default: the bundled sample)")


def _add_init(sub: Any) -> None:
    p = sub.add_parser("init", help="look at your feature table (Parquet, Arrow, NumPy, HDF5) and write a comparison "
                                    "preset for it; then `modalfuse compare comparison.yaml`")
    p.add_argument("data", nargs="+", metavar="DATA", help="a feature table: file(s) or a folder")
    p.add_argument("--out", default="comparison.yaml", help="the comparison preset to write (its training config "
                                                            "goes beside it, as <name>-train.yaml)")
    p.add_argument("--label", default="label", help="the label column")
    p.add_argument("--force", action="store_true", help="overwrite existing files")


def _add_export(sub: Any) -> None:
    p = sub.add_parser("export", help="export a run's best model (torch.export .pt2, or ONNX)")
    p.add_argument("run_dir")
    p.add_argument("--format", dest="fmt", default=None, choices=["pt2", "onnx", "torchscript"],
                   help="pt2: a torch.export ExportedProgram; onnx; torchscript: deprecated, use pt2 "
                        "(default: from the --out suffix, .pt2 or .onnx)")
    p.add_argument("--out", required=True, help="the file to write")


# One function per subcommand adds its parser, in the order `--help` lists them; a new command adds
# its `_add_<name>` here and its `_cmd_<name>` to COMMANDS below.
SUBCOMMAND_PARSERS = (
    _add_train, _add_evaluate, _add_list, _add_predict, _add_compare, _add_report, _add_claims, _add_robustness,
    _add_analyze, _add_inspect, _add_prepare, _add_init, _add_export, _add_ensemble,
)


def build_parser() -> argparse.ArgumentParser:
    from ._version import __version__
    from .plugins import ENTRY_POINT_GROUP, ENV_VAR

    parser = _Parser(
        prog="modalfuse",
        description="Train, evaluate and compare multimodal fusion classifiers on pre-extracted features.",
        epilog=f"Plugins (user code registering encoders, fusions, heads, models, datasets, metrics) load from the "
               f"'{ENTRY_POINT_GROUP}' entry points of installed packages, the {ENV_VAR} environment variable "
               f"(comma-separated modules) and --import.",
    )
    parser.add_argument("--version", action="version", version=f"modalfuse {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    parser.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                        help="import a plugin module first (repeatable); run folders record the plugins they need")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in SUBCOMMAND_PARSERS:
        add(sub)
    return parser


def _print_metrics(metrics: dict, indent: str = "") -> None:
    for k, v in metrics.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            print(f"{indent}{k:>16}  {v:.4f}")


def _cmd_train(args: argparse.Namespace) -> int:
    if args.config is None and not args.resume:
        raise UserError("train needs a CONFIG (a YAML file or a preset name), or --resume RUN_DIR")
    if args.smoke:
        from .api import smoke

        if args.resume:
            raise UserError("--smoke checks a config; it cannot be combined with --resume")
        for line in smoke(args.config, overrides=args.overrides):
            print(line)
        return 0
    from .training.run import train
    from .training.runfolder import RunFolder

    run_dir = train(args.config, overrides=args.overrides, out=args.out, resume=args.resume)
    if run_dir is not None:
        # The final metrics of each evaluated split (the best checkpoint's), as `evaluate` prints them.
        for split, metrics in RunFolder(run_dir).read_metrics().items():
            print(f"{split}:")
            _print_metrics(metrics, "  ")
        print(run_dir)
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .training.run import evaluate_run
    from .training.runfolder import RunFolder

    metrics = evaluate_run(args.run_dir, split=args.split)
    run = RunFolder(args.run_dir)
    epoch = (run.read_completion() or {}).get("best_epoch")
    where = (f"{args.run_dir}: split {args.split}, checkpoint {run.checkpoint_path('best')}"
             + (f" (epoch {epoch})" if epoch is not None else ""))
    if args.json:
        print(where, file=sys.stderr)
        print(json.dumps(metrics))
    else:
        print(where)
        _print_metrics(metrics)
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from .listing import bundled_paths, list_entries

    if args.paths:
        if args.kind != "datasets":
            raise UserError(f"--paths lists the bundled data files: use `modalfuse list datasets --paths`, not {args.kind}")
        lines = bundled_paths(task=args.task)
    else:
        lines = list_entries(args.kind, task=args.task)
    for line in lines:
        print(line)
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from .serving.predict import predict

    n = predict(args.run_dir, args.input, args.out, top_k=args.top_k, fmt=args.fmt)
    print(f"wrote {n} predictions to {args.out}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from .comparison import compare

    if args.jobs == "auto":
        jobs = None
    else:
        try:
            jobs = int(args.jobs)
        except ValueError:
            raise UserError(f"--jobs {args.jobs!r}: expected a number of processes or 'auto'") from None
        if jobs < 1:
            raise UserError(f"--jobs {jobs}: expected at least 1")
    if args.seeds == "auto":  # seeds in rounds: comparison/adaptive.py
        from .comparison.adaptive import compare_auto

        if args.tune or args.robustness or args.launcher != "local":
            raise UserError("--seeds auto: give --tune, --robustness or --launcher slurm with a fixed --seeds N instead")
        compare_auto(args.configs, max_seeds=args.max_seeds, min_effect=args.min_effect, out=args.out,
                     overrides=args.overrides, jobs=jobs, reference=args.reference)
        return 0
    if args.seeds is not None and not args.seeds.isdigit():
        raise UserError(f"--seeds {args.seeds!r}: expected a number of seeds or 'auto'")
    compare(args.configs, seeds=None if args.seeds is None else int(args.seeds), out=args.out,
            overrides=args.overrides, jobs=jobs, reference=args.reference, tune=args.tune,
            tune_storage=args.tune_storage, robustness=args.robustness, launcher=_launcher(args))
    return 0


def _cmd_claims(args: argparse.Namespace) -> int:
    from .claims import default_out, run_claims, write_claims

    rows, md = run_claims(args.claims, args.compare_dirs, reference=args.reference)
    print("\n".join(md))
    print(write_claims(rows, md, args.out or default_out(args.claims, args.compare_dirs[0])))
    return 0


def _launcher(args: argparse.Namespace) -> Any:
    """--launcher slurm's launcher, or None for local runs (where the Slurm flags are refused)."""
    from .comparison.slurm import FLAGS, SlurmOptions
    from .comparison.slurm_runs import SlurmLauncher

    given = {k: getattr(args, k.removeprefix("--").replace("-", "_")) for k in FLAGS.values()}
    given = {k: v for k, v in given.items() if v not in (None, False)}
    if args.launcher == "local":
        if given:
            raise UserError(f"{next(iter(given))} applies to --launcher slurm (this compare runs locally)")
        return None
    return SlurmLauncher(SlurmOptions.build(**{field: given.get(flag) for field, flag in FLAGS.items()}))


def _cmd_report(args: argparse.Namespace) -> int:
    from .report import render_report

    print(render_report(args.runs, out=args.out, reference=args.reference))
    return 0


def _cmd_ensemble(args: argparse.Namespace) -> int:
    from .ensemble import build_ensemble_run

    build_ensemble_run(args.runs, out=args.out, labels=args.label)
    return 0


def _cmd_analyze(args: argparse.Namespace) -> int:
    from .analysis import analyze_run
    from .training.runfolder import ANALYSIS, RunFolder

    for run in args.runs:
        analyze_run(run, device=args.device)
        print(RunFolder(run).file(ANALYSIS))
    return 0


def _cmd_robustness(args: argparse.Namespace) -> int:
    from .robustness import robustness

    robustness(args.runs, out=args.out, corruptions=args.corruptions or None, modalities=args.modalities or None,
               reference=args.reference, metrics=args.metrics or None, seed=args.seed, resamples=args.resamples,
               batch_size=args.batch_size, device=args.device, threads=args.threads)
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    from .inspect import inspect_files

    inspect_files(args.files, jsonl=args.jsonl, limit=args.limit, vocabulary=args.vocabulary, out=sys.stdout)
    return 0


def _cmd_prepare(args: argparse.Namespace) -> int:
    if args.what == "yt8m-frames":
        from .prepare.yt8m_frames import prepare_yt8m_frames

        summary = prepare_yt8m_frames(args.inputs, args.out, workers=args.workers, skip_corrupt=args.skip_corrupt)
    elif args.what == "features":
        from .prepare.features import prepare_features

        summary = prepare_features(args.source, args.out, train=args.train, valid=args.valid, test=args.test)
    else:
        from .prepare.cmu_sdk import prepare_cmu_sdk

        sequences = {}
        for item in args.sequences:
            name, sep, path = item.partition("=")
            if not sep or not name or not path:
                raise UserError(f"--sequences {item!r}: expected NAME=FILE.csd, e.g. text=glove.csd")
            sequences[name] = path
        summary = prepare_cmu_sdk(sequences, args.labels, args.align_to, args.out, workers=args.workers)
    print(json.dumps(summary, default=str))
    return 0


def _cmd_init(args: argparse.Namespace) -> int:
    from .init import init

    preset, train = init(args.data, args.out, label=args.label, force=args.force)
    print(f"wrote {preset} and {train}")
    print(f"next: modalfuse compare {preset}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .serving.export import export_run

    print(export_run(args.run_dir, fmt=args.fmt, out=args.out))
    return 0


COMMANDS = {
    "train": _cmd_train, "evaluate": _cmd_evaluate, "list": _cmd_list, "predict": _cmd_predict,
    "compare": _cmd_compare, "report": _cmd_report, "claims": _cmd_claims, "analyze": _cmd_analyze, "inspect": _cmd_inspect, "prepare": _cmd_prepare,
    "export": _cmd_export, "robustness": _cmd_robustness, "init": _cmd_init, "ensemble": _cmd_ensemble,
}


def _import_plugins(modules: list[str]) -> None:
    from .plugins import import_plugin

    for module in modules:
        import_plugin(module, source=f"--import {module}")


def _os_error_line(e: OSError) -> str:
    """One line for an operating-system error on a file: what happened, naming the file."""
    import errno

    name = e.filename if e.filename is not None else ""
    if isinstance(e, FileNotFoundError):
        what = "file not found"
    elif isinstance(e, IsADirectoryError):
        what = "is a directory, expected a file"
    elif isinstance(e, NotADirectoryError):
        what = "a part of this path is not a directory"
    elif isinstance(e, PermissionError):
        what = "permission denied"
    elif e.errno in (errno.ENOSPC, errno.EDQUOT):
        what = "no space left on the device"
    else:
        what = e.strerror or str(e)
    return f"{name}: {what}" if name else what


def _from_reader(tb: Any) -> bool:
    """True when a traceback passes through ``modalfuse/readers``: a library error a reader let out."""
    readers = os.path.join("modalfuse", "readers") + os.sep
    while tb is not None:
        if readers in tb.tb_frame.f_code.co_filename:
            return True
        tb = tb.tb_next
    return False


def main(argv: list[str] | None = None) -> int:
    """Run one command. Bad input -> one line on stderr and exit 2 (``--debug``: the traceback);
    Ctrl-C -> 130; a closed output pipe (``modalfuse inspect ... | head``) -> quiet exit.

    A torchrun worker ends here, with its exit code, without the interpreter's finalization (which
    can race gloo's threads and abort: ``training.distributed.exit_worker``)."""
    code = _main(argv)
    if "WORLD_SIZE" in os.environ:  # set by torchrun; torch is imported only then
        from .training import distributed

        if distributed.launched():
            distributed.exit_worker(code)
    return code


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)

    def fail(message: str, code: int = 2) -> int:
        """One line (and with --debug the traceback first); the same exit code either way."""
        if args.debug:
            import traceback

            traceback.print_exc()
        if os.environ.get("RANK", "0") == "0":  # under torchrun, one message, not one per process
            line = " ".join(str(message).split("\n"))
            print(f"modalfuse {args.command}: error: {line}", file=sys.stderr)
        return code

    if getattr(args, "wait", None) is not None:
        # the folder locks read it (training.runfolder.folder_lock); here, in subprocesses too
        os.environ["MODALFUSE_LOCK_WAIT"] = str(args.wait)
    try:
        _import_plugins(args.imports)
        return COMMANDS[args.command](args)
    except BrokenPipeError:
        # the reader of our output went away (head, less): not an error worth a traceback; point
        # stdout at /dev/null so the interpreter's final flush does not raise again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a process killed by a closed pipe
    except UserError as e:
        return fail(str(e), e.exit_code)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"modalfuse {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as e:  # missing, unreadable or unwritable files, a directory, a full disk
        return fail(_os_error_line(e))
    except MemoryError:
        return fail("out of memory (an input asks for more memory than this machine has)")
    except Exception as e:  # noqa: BLE001 - only errors a reader let through; others keep their traceback
        if not _from_reader(e.__traceback__):
            raise
        return fail(f"could not read the input ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                    f"a reader let this through, please report it (--debug shows where)")


if __name__ == "__main__":
    raise SystemExit(main())
