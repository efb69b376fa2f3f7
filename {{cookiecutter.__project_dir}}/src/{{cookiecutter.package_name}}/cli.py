"""Command line: ``train``, ``evaluate``, ``predict``, ``serve`` and ``export``.

Bad input ends with a one-line message on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterable
from dataclasses import MISSING, fields
from pathlib import Path
from typing import IO, Any, NoReturn

from . import DESCRIPTION, NAME
from .config import PREDICT_BATCH, ServeConfig, TrainConfig
from .data import TRAINING_DEFAULTS as DEFAULTS
from .data import read_inputs
from .threads import set_threads

# Set by torchrun in every process it starts: such a process leaves by ``leave_now``.
TORCHRUN = "TORCHELASTIC_RUN_ID"
# What the `serve` extra installs (and what those import): missing, `serve` says how to get them.
# What runs the model for evaluate, predict and serve: torch, or ONNX Runtime on an export.
BACKENDS = ("torch", "onnx")
SERVE_MODULES = {"fastapi", "starlette", "pydantic", "uvicorn", "h11", "click", "anyio", "python_multipart"}


def _add_config_arguments(parser: argparse.ArgumentParser, config: type = TrainConfig) -> None:
    """One option per field of the config dataclass, so the config is the single source of the defaults."""
    for f in fields(config):
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not MISSING else None
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=f.metadata["help"])
        elif f.metadata.get("recipe"):
            described = f"{f.metadata['help']} (default: the model's registered recipe, else {DEFAULTS[f.name]})"
            parser.add_argument(flag, type=f.metadata["type"], default=None, help=described)
        else:
            kind = type(default) if default is not None else f.metadata.get("type", str)
            parser.add_argument(flag, type=kind, default=default, help=f.metadata["help"] + " (default: %(default)s)")


def _add_threads_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for the model's maths (default: OMP_NUM_THREADS where set, else half the CPUs "
        "this process may use, shared among torchrun's processes on this machine)",
    )


def build_parser() -> argparse.ArgumentParser:
    about = f"{NAME}: {DESCRIPTION}"
    if "%(prog)" in about:  # argparse would read the text as a %-template: show it as written
        about = about.replace("%", "%%")
    parser = argparse.ArgumentParser(prog="{{ cookiecutter.project_slug }}", description=about)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train on labelled data (default: the embedded dataset)")
    train.add_argument(
        "--config",
        default=None,
        help="a run's config.json: train with its settings again (options given here override them)",
    )
    _add_config_arguments(train)
    train.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar (default: only on a terminal)",
    )

    evaluate = commands.add_parser("evaluate", help="accuracy of a checkpoint on labelled data")
    evaluate.add_argument("--checkpoint", required=True, help="checkpoint written by train")
    evaluate.add_argument(
        "--data", default=None, help="labelled data to score in full (default: the checkpoint's own test split)"
    )
    evaluate.add_argument(
        "--batch-size", type=int, default=PREDICT_BATCH, help="examples scored at a time (default: %(default)s)"
    )

    predict = commands.add_parser("predict", help="label and confidence for every input")
    predict.add_argument("--checkpoint", required=True, help="checkpoint written by train")
    predict.add_argument("--input", required=True, help=(read_inputs.__doc__ or "inputs to predict").splitlines()[0])
    predict.add_argument(
        "--output", default=None, help="CSV to write (default: standard output); never a file that predict reads"
    )
    predict.add_argument("--overwrite", action="store_true", help="replace the --output file if it exists")
    predict.add_argument(
        "--batch-size",
        type=int,
        default=PREDICT_BATCH,
        help="inputs read and predicted at a time; memory holds one batch (default: %(default)s)",
    )
    predict.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar (default: only on a terminal)",
    )

    serve = commands.add_parser(
        "serve", help="answer predictions over HTTP: POST /predict, GET /health, GET /metadata (the serve extra)"
    )
    serve.add_argument("--checkpoint", required=True, help="checkpoint written by train")
    _add_config_arguments(serve, ServeConfig)
    for command in (evaluate, predict, serve):
        command.add_argument(
            "--backend",
            choices=BACKENDS,
            default="torch",
            help="what runs the model: torch, or onnx (ONNX Runtime on the file `export` wrote beside the "
            "checkpoint; the export extra) (default: %(default)s)",
        )

    export = commands.add_parser(
        "export", help="write the model as a torch.export program and an ONNX model, checked (the export extra)"
    )
    export.add_argument("--checkpoint", required=True, help="checkpoint written by train")
    export.add_argument("--output-dir", default=None, help="folder to write (default: export/ beside the checkpoint)")
    export.add_argument(
        "--data",
        default=None,
        help="labelled data whose first examples the files are checked on (default: the checkpoint's test split)",
    )
    export.add_argument("--overwrite", action="store_true", help="replace the output folder if it exists")
    for command in (train, evaluate, predict, serve, export):
        _add_threads_argument(command)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "train" and args.config is not None:
            args = _with_stored_settings(parser, argv, args.config)
        set_threads(args.threads)
        code = COMMANDS[args.command](args)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"error: {error_message(err)}", file=sys.stderr)
        code = 2
    except BrokenPipeError:  # output piped into a reader that stopped early, e.g. `| head`
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (keeps the interpreter from failing at exit)
        code = 0
    if TORCHRUN in os.environ:
        leave_now(code)
    return code


def leave_now(code: int) -> NoReturn:
    """End a process torchrun started, its process group left: temporary files removed and output
    flushed, then ``os._exit``, without the interpreter's teardown. At teardown, threads that
    torch's distributed backends leave behind could abort a process after a good run
    ("terminate called without an active exception"), and torchrun would report it as failed."""
    from .store import remove_temporary_files

    remove_temporary_files()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed, or a reader gone
            stream.flush()
    os._exit(code)


def error_message(err: BaseException) -> str:
    """What went wrong, in one line. An error raised while a DataLoader worker process read a batch
    (a file that cannot be decoded) reaches this process wrapped in the worker's traceback: its
    own message is the traceback's last line."""
    message = str(err)
    if "\nOriginal Traceback" in message:
        last = message.strip().splitlines()[-1]
        message = last.partition(f"{type(err).__name__}: ")[2] or last
    return message


def _with_stored_settings(parser: argparse.ArgumentParser, argv: list[str] | None, path: str) -> argparse.Namespace:
    """Parse again with a stored config.json as the defaults of ``train``; a new folder, not the old one."""
    try:
        stored = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a JSON config ({err})") from None
    if not isinstance(stored, dict):
        raise ValueError(f"{path}: not a JSON object of settings")
    unknown = sorted(set(stored) - {f.name for f in fields(TrainConfig)})
    if unknown:
        raise ValueError(f"{path}: unknown settings {unknown}")
    settings = TrainConfig.from_dict({**stored, "output_dir": None, "name": None, "resume": None}).to_dict()
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    subcommands.choices["train"].set_defaults(**settings)
    return parser.parse_args(argv)


def _train(args: argparse.Namespace) -> int:
    from .training import fit
    from .training.distributed import is_main_process
    from .training.metrics import SCORES

    config = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    result = fit(config, show_progress=args.progress)
    if not is_main_process():  # under torchrun, rank 0 reports
        return 0
    metrics = result.metrics
    test, val = (", ".join(f"{name} {metrics[f'{part}_{name}']:.4f}" for name in SCORES) for part in ("test", "val"))
    print(
        f"test {test} on {metrics['rows']['test']} held-out examples "
        f"(validation {val}), weights of epoch {metrics['kept_epoch']} of {metrics['epochs']} "
        f"(--keep {config.keep}); {metrics['seconds']:.1f} s; "
        f"checkpoint {result.checkpoint_path}"
    )
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from .training.runs import examples_to_score

    predictor = _predictor(args)
    examples, source = examples_to_score(args.checkpoint, args.data)
    print(json.dumps({"source": source, **predictor.score(examples, _batch_size(args))}))
    return 0


def _predict(args: argparse.Namespace) -> int:
    from .files import atomic_open, check_output
    from .progress import progress

    batch_size = _batch_size(args)
    if args.output is not None:  # before any work: a refused output costs nothing
        check_output(args.output, [args.checkpoint, args.input], overwrite=args.overwrite)
    predictor = _predictor(args)
    items = read_inputs(args.input)
    batches = progress(
        predictor.predict_batches(items, batch_size),
        total=-(-len(items) // batch_size),
        desc="predict",
        enabled=args.progress,
    )
    if args.output is None:
        _write_predictions(batches, sys.stdout)
        return 0
    # Written as the batches come, into a temporary file that takes the output's name once complete.
    with atomic_open(args.output, "w", overwrite=args.overwrite) as handle:
        rows = _write_predictions(batches, handle)
    print(f"{rows} predictions written to {args.output}")
    return 0


def _write_predictions(batches: Iterable[Any], handle: IO[str]) -> int:
    """Write each batch of predictions as CSV rows (the header once), the input's id first where
    the inputs have one (a row or line number, a file name); return the number of rows written."""
    rows = 0
    for predictions in batches:
        if predictions.index.name:  # the id of each input: keep it beside its prediction
            predictions = predictions.reset_index()
        predictions.to_csv(handle, index=False, header=rows == 0)
        rows += len(predictions)
    return rows


def _batch_size(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
    return args.batch_size


def _serve(args: argparse.Namespace) -> int:
    config = ServeConfig(**{f.name: getattr(args, f.name) for f in fields(ServeConfig)})
    try:
        from .inference import server
    except ModuleNotFoundError as err:
        if (err.name or "").split(".")[0] not in SERVE_MODULES:
            raise
        raise ValueError(
            f"serve needs the serve extra ({err.name} is not installed): "
            "pip install '{{ cookiecutter.project_slug }}[serve]', or pip install -e '.[serve]' in the project folder"
        ) from None
    server.serve(_predictor(args), config)
    return 0


def _predictor(args: argparse.Namespace) -> Any:
    """The checkpoint's Predictor, run by the backend asked for."""
    if args.backend == "onnx":
        from .inference.exported import ExportedPredictor, export_folder

        return ExportedPredictor(export_folder(args.checkpoint), checkpoint=args.checkpoint)
    from .inference import Predictor

    return Predictor.from_checkpoint(args.checkpoint)


def _export(args: argparse.Namespace) -> int:
    from .export import export_checkpoint

    report = export_checkpoint(args.checkpoint, args.output_dir, args.data, overwrite=args.overwrite)
    within = " and ".join(f"{difference:.1e} ({file})" for file, difference in report.differences.items())
    print(
        f"{' and '.join(report.differences)} written to {report.folder}: probabilities within {within} of the "
        f"model's on {report.rows} examples and on one alone, the same labels"
    )
    return 0


COMMANDS = {"train": _train, "evaluate": _evaluate, "predict": _predict, "serve": _serve, "export": _export}
