"""The ``modalfuse`` command line: thin wrappers over the library's public functions.

Bad input (``UserError``) prints one line and exits 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from .errors import UserError

LIST_KINDS = ("models", "fusions", "encoders", "datasets", "metrics", "presets")


def _add_set(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.epochs=5 (repeatable; YAML values)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modalfuse",
        description="Train, evaluate and compare multimodal fusion classifiers on pre-extracted features.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train one model from a config (a YAML file or a preset name)")
    p.add_argument("config", help="config YAML path or preset name (see `modalfuse list presets`)")
    _add_set(p)
    p.add_argument("--out", default="runs", help="folder that receives the new run folder (default: runs)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint; --set may then change only "
                   "train.threads, train.progress, train.num_workers and train.device")

    p = sub.add_parser("evaluate", help="evaluate a run's best checkpoint on a split")
    p.add_argument("run_dir")
    p.add_argument("--split", default="test", choices=["train", "valid", "test"])
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = sub.add_parser("list", help="list registered models, fusions, encoders, datasets, metrics or presets")
    p.add_argument("kind", nargs="?", default="models", choices=LIST_KINDS)
    p.add_argument("--task", help="only entries for this task (e.g. yt8m, sentiment, synthetic)")

    p = sub.add_parser("predict", help="top-k predictions with class names from a run or an exported ONNX model")
    p.add_argument("run_dir", help="run folder (or an exported .onnx file beside its run folder)")
    p.add_argument("--input", nargs="+", required=True, help="input files (TFRecord shards, packed/pickle/csd data)")
    p.add_argument("--out", required=True, help="output file")
    p.add_argument("--top-k", type=int, default=20)
    p.add_argument("--format", dest="fmt", default="csv", choices=["kaggle", "csv", "jsonl"])

    p = sub.add_parser("compare", help="train a comparison under identical conditions and write a report")
    p.add_argument("configs", nargs="*", help="comparison preset(s) or config files (default: the bundled data)")
    p.add_argument("--seeds", type=int, default=None, help="seeds per model (default: the preset's)")
    p.add_argument("--out", default=None, help="comparison folder (default: runs/compare-<name>)")
    _add_set(p)

    p = sub.add_parser("report", help="re-render a report from run folders or a comparison folder")
    p.add_argument("runs", nargs="+", help="run folders or one comparison folder")
    p.add_argument("--out", default=None, help="report folder (default: <comparison>/report)")

    p = sub.add_parser("inspect", help="summarise or dump records of TFRecord, .csd, packed and pickle files")
    p.add_argument("files", nargs="+")
    p.add_argument("--jsonl", action="store_true", help="one JSON object per record/segment")
    p.add_argument("--limit", type=int, default=None, help="at most N records per file")
    p.add_argument("--vocabulary", default=None, help="vocabulary CSV for label names (default: bundled YouTube-8M 2018)")

    p = sub.add_parser("prepare", help="convert raw data into what training reads fast")
    psub = p.add_subparsers(dest="what", required=True, metavar="WHAT")
    q = psub.add_parser("yt8m-frames", help="frame-level YouTube-8M records -> video-level MF+STD shards")
    q.add_argument("inputs", nargs="+")
    q.add_argument("--out", required=True)
    q.add_argument("--workers", type=int, default=1)
    q.add_argument("--skip-corrupt", action="store_true", help="skip (and count) records with bad CRCs")
    q = psub.add_parser("cmu-sdk", help="align CMU-MultimodalSDK .csd sequences and pack them")
    q.add_argument("--sequences", nargs="+", required=True, metavar="NAME=FILE.csd")
    q.add_argument("--labels", required=True)
    q.add_argument("--align-to", required=True, help="a sequence NAME (word level) or 'labels' (utterance level)")
    q.add_argument("--out", required=True)
    q.add_argument("--workers", type=int, default=1)

    p = sub.add_parser("export", help="export a run's best model to ONNX or TorchScript")
    p.add_argument("run_dir")
    p.add_argument("--format", dest="fmt", default="onnx", choices=["onnx", "torchscript"])
    p.add_argument("--out", required=True)
    return parser


def _cmd_train(args: argparse.Namespace) -> int:
    from .training.run import train

    run_dir = train(args.config, overrides=args.overrides, out=args.out, resume=args.resume)
    if run_dir is not None:
        print(run_dir)
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .training.run import evaluate_run

    metrics = evaluate_run(args.run_dir, split=args.split)
    if args.json:
        print(json.dumps(metrics))
    else:
        for k, v in metrics.items():
            if isinstance(v, float):
                print(f"{k:>16}  {v:.4f}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from .listing import list_entries

    for line in list_entries(args.kind, task=args.task):
        print(line)
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from .predict import predict

    n = predict(args.run_dir, args.input, args.out, top_k=args.top_k, fmt=args.fmt)
    print(f"wrote {n} predictions to {args.out}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from .report.compare import compare

    compare(args.configs, seeds=args.seeds, out=args.out, overrides=args.overrides)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .report.render import render_report

    print(render_report(args.runs, out=args.out))
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    from .inspect import inspect_files

    inspect_files(args.files, jsonl=args.jsonl, limit=args.limit, vocabulary=args.vocabulary, out=sys.stdout)
    return 0


def _cmd_prepare(args: argparse.Namespace) -> int:
    if args.what == "yt8m-frames":
        from .prepare.yt8m_frames import prepare_yt8m_frames

        summary = prepare_yt8m_frames(args.inputs, args.out, workers=args.workers, skip_corrupt=args.skip_corrupt)
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


def _cmd_export(args: argparse.Namespace) -> int:
    from .export import export_run

    print(export_run(args.run_dir, fmt=args.fmt, out=args.out))
    return 0


COMMANDS = {
    "train": _cmd_train, "evaluate": _cmd_evaluate, "list": _cmd_list, "predict": _cmd_predict,
    "compare": _cmd_compare, "report": _cmd_report, "inspect": _cmd_inspect, "prepare": _cmd_prepare,
    "export": _cmd_export,
}


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
    Ctrl-C -> 130; a closed output pipe (``modalfuse inspect ... | head``) -> quiet exit."""
    args = build_parser().parse_args(argv)

    def fail(message: str, code: int = 2) -> int:
        if os.environ.get("RANK", "0") == "0":  # under torchrun, one message, not one per process
            line = " ".join(str(message).split("\n"))
            print(f"modalfuse {args.command}: error: {line}", file=sys.stderr)
        return code

    try:
        return COMMANDS[args.command](args)
    except BrokenPipeError:
        # the reader of our output went away (head, less): not an error worth a traceback; point
        # stdout at /dev/null so the interpreter's final flush does not raise again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a process killed by a closed pipe
    except UserError as e:
        if args.debug:
            raise
        return fail(str(e), e.exit_code)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"modalfuse {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as e:  # missing, unreadable or unwritable files, a directory, a full disk
        if args.debug:
            raise
        return fail(_os_error_line(e))
    except MemoryError:
        if args.debug:
            raise
        return fail("out of memory (an input asks for more memory than this machine has)")
    except Exception as e:  # noqa: BLE001 - only errors a reader let through; others keep their traceback
        if args.debug or not _from_reader(e.__traceback__):
            raise
        return fail(f"could not read the input ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                    f"a reader let this through, please report it (--debug shows where)")


if __name__ == "__main__":
    raise SystemExit(main())
