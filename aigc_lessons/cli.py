"""The ``aigc-lessons`` command-line tool.

Subcommands (``aigc-lessons COMMAND --help`` for each)::

    aigc-lessons doctor                      check Python, torch, device, data, book dependencies
    aigc-lessons data [--download]           verify (or download) the MNIST data folder
    aigc-lessons list                        models the tool trains, pretrained weights, runs
    aigc-lessons train MODEL [options]       train into a run folder, with checkpoints
    aigc-lessons train MODEL --run-dir DIR --resume --epochs N    continue a stopped run
    aigc-lessons sample RUN [--out PNG]      an image grid from a run
    aigc-lessons eval RUN                    the evaluation chapter's metrics for a run
    aigc-lessons student                     build the student versions of the notebooks
    aigc-lessons grade SUBMISSIONS           grade submitted notebooks into a CSV file
    aigc-lessons serve [options]             the shipped models over HTTP, with a web page

The module imports nothing heavy at the top (no torch), so ``--help`` is fast;
each command imports what it needs. Exit codes: 0 success, 1 the command
failed (message on stderr), 2 bad usage, 130 interrupted with Ctrl-C.

Example:
    >>> main(["--version"])  # doctest: +SKIP
    aigc-lessons 0.1.0
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

PROG = "aigc-lessons"


class CommandError(Exception):
    """A command failed for a reason the user can fix; the message says how."""


# --------------------------------------------------------------------------- argument types


def _whole_number(text: str, minimum: int, rule: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{rule}, got {value}")
    return value


def _positive_int(text: str) -> int:
    return _whole_number(text, 1, "must be a positive whole number")


def _integer(text: str) -> int:
    """A whole number, range unchecked: ``train`` checks every setting once, in ``runs.config.prepare``."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number such as 2e-4, got {text!r}") from None


def _non_negative_int(text: str) -> int:
    return _whole_number(text, 0, "must be 0 or more")


def _key_value(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (for example latent_dim=64), got {text!r}")
    key, value = text.split("=", 1)
    return key.strip(), value.strip()


def _model_list() -> str:
    from .trainers import trainable_families

    return "\n".join(f"  {name:<8} {family.description}" for name, family in trainable_families().items())


class _Parser(argparse.ArgumentParser):
    """An argument parser whose epilog may be a function, called only when the help is shown.

    ``train --help`` lists the models, which needs the family declarations (and
    torch); building the parser, and every other command, must not pay for that.
    """

    def format_help(self) -> str:
        if callable(self.epilog):
            self.epilog = self.epilog()
        return super().format_help()


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used by the tests and the documentation)."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Train, sample and evaluate the AIGC Lessons models; check your setup; build and grade exercises.",
        epilog=f"Run '{PROG} COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    doctor = commands.add_parser("doctor", help="check Python, torch, the device, the data and the book tools",
                                 description="Report what this machine has: Python, torch, CUDA or CPU, the MNIST "
                                             "data (found and checksummed), pretrained weights and the packages the "
                                             "book needs. Exits with 1 when something required is missing.")
    doctor.add_argument("--data-root", help="data folder to check (default: $AIGC_LESSONS_DATA or the cache folder)")
    doctor.set_defaults(handler=cmd_doctor)

    data = commands.add_parser("data", help="verify (or download) the MNIST data folder",
                               description="Find the four MNIST files, extract .gz files into the cache if needed, "
                                           "and check their SHA-256. With --download, fetch missing files first.")
    data.add_argument("--root", help="data folder containing MNIST/raw (default: $AIGC_LESSONS_DATA or the cache)")
    data.add_argument("--download", action="store_true", help="download missing files with torchvision")
    data.set_defaults(handler=cmd_data)

    listing = commands.add_parser("list", help="list trainable models, pretrained weights and runs",
                                  description="List the models 'train' accepts, the pretrained weights shipped "
                                              "with the package, and the runs in the runs folder.")
    listing.add_argument("--runs-root", help="folder of runs (default: $AIGC_LESSONS_RUNS or ./runs)")
    listing.set_defaults(handler=cmd_list)

    train = commands.add_parser(
        "train", help="train a model into a run folder (checkpoints, metrics, resumable)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train MODEL on MNIST. The run folder receives config.json, metrics.jsonl, a checkpoint every "
                    "--checkpoint-every epochs and a fixed-noise sample grid per checkpoint. Ctrl-C stops training; "
                    "--resume continues from the last checkpoint and gives the same result as an uninterrupted run "
                    "(on the CPU, same seed).",
        epilog=lambda: "models:\n" + _model_list() + "\n\nUnset options take the model's defaults: the full setting "
               "of its shipped weights (fast defaults when AIGC_LESSONS_FAST=1 or --fast).\nexample:\n"
               "  aigc-lessons train gan_mlp --epochs 5 --run-dir runs/gan\n"
               "  aigc-lessons train gan_mlp --epochs 10 --run-dir runs/gan --resume\n"
               "data-parallel, 2 processes (--batch-size is per process; rank 0 writes the run folder):\n"
               "  torchrun --standalone --nproc_per_node 2 -m aigc_lessons.cli train gan_mlp --run-dir runs/ddp\n"
               "TensorBoard (losses and sample grids of every run):\n"
               "  tensorboard --logdir runs",
    )
    train.add_argument("model", metavar="MODEL", help="which model to train (see 'aigc-lessons list')")
    train.add_argument("--run-dir", help="run folder (default: <runs root>/<MODEL>)")
    train.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last checkpoint")
    # Types only: the ranges of these and of the --set options are checked once, by runs.config.prepare.
    train.add_argument("--epochs", type=_integer, help="train until this epoch (resuming may raise it)")
    train.add_argument("--batch-size", type=_integer, help="images per step")
    train.add_argument("--lr", type=_number, help="Adam learning rate, between 0 and 1")
    train.add_argument("--seed", type=_integer, help="random seed (default 0)")
    train.add_argument("--subset", type=_integer, help="train on the first N images only")
    train.add_argument("--checkpoint-every", type=_integer, help="epochs between checkpoints (default 1)")
    train.add_argument("--keep-checkpoints", type=_integer,
                       help="how many of the latest checkpoints to keep (default 3; each GAN checkpoint is ~35 MB)")
    train.add_argument("--log-every", type=_integer, help="steps between metric rows (default 50)")
    train.add_argument("--device", help="auto (default), cpu, cuda, cuda:1, ...")
    train.add_argument("--set", dest="options", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
                       help="a model option, for example --set latent_dim=64 (see the model's options in 'list')")
    train.add_argument("--fast", action="store_true", help="use the fast-mode defaults (as AIGC_LESSONS_FAST=1)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
    train.add_argument("--no-tensorboard", action="store_true",
                       help="write no TensorBoard event files (by default the run folder gets them)")
    train.set_defaults(handler=cmd_train)

    sample = commands.add_parser("sample", help="draw samples from a run and save an image grid (PNG)",
                                 description="Load a run's checkpoint (default: the latest) and save a grid of "
                                             "generated images as a PNG file.")
    sample.add_argument("run", metavar="RUN", help="run folder, or a run name in the runs folder")
    sample.add_argument("--out", help="PNG file (default: RUN/samples/sample_epoch_XXXX_seed_S.png)")
    sample.add_argument("--count", type=_positive_int, default=64, help="number of images (default 64)")
    sample.add_argument("--seed", type=_non_negative_int, default=0, help="noise seed (default 0)")
    sample.add_argument("--epoch", type=_positive_int, help="checkpoint epoch (default: the latest)")
    sample.add_argument("--device", default="cpu", help="cpu (default), auto, cuda, ...")
    sample.set_defaults(handler=cmd_sample)

    evaluate = commands.add_parser("eval", help="compute the evaluation chapter's metrics for a run",
                                   description="Generate images from a run's checkpoint and score them with the "
                                               "book's MNIST reference classifier (see the evaluation chapter). "
                                               "Writes RUN/eval_epoch_XXXX.json and prints the numbers.")
    evaluate.add_argument("run", metavar="RUN", help="run folder, or a run name in the runs folder")
    evaluate.add_argument("--count", type=_positive_int, help="generated images to score (default 10000, fast 1000)")
    evaluate.add_argument("--seed", type=_non_negative_int, default=0, help="noise seed (default 0)")
    evaluate.add_argument("--epoch", type=_positive_int, help="checkpoint epoch (default: the latest)")
    evaluate.add_argument("--device", default="auto", help="auto (default), cpu, cuda, ...")
    evaluate.add_argument("--json", action="store_true", help="print the result as JSON only")
    evaluate.set_defaults(handler=cmd_eval)

    student = commands.add_parser("student", help="build the student versions of the notebooks (solutions removed)",
                                  description="Copy the book's notebooks with the reference solutions replaced by "
                                              "placeholders, ready to hand out.")
    student.add_argument("notebooks", nargs="*", type=Path, metavar="NOTEBOOK",
                         help="notebooks to convert (default: every notebook of the book)")
    student.add_argument("--out", type=Path, default=Path("_build/student"),
                         help="output folder (default _build/student, ignored by git)")
    student.add_argument("--no-zip", action="store_true", help="do not make one zip file per chapter")
    student.set_defaults(handler=cmd_student)

    grade = commands.add_parser("grade", help="run submitted notebooks and write their scores to a CSV file",
                                description="Execute every submitted notebook with the self-checks recording "
                                            "scores, and write one row per submission and exercise.")
    grade.add_argument("submissions", type=Path, metavar="SUBMISSIONS", help="folder of submitted notebooks")
    grade.add_argument("--out", type=Path, default=Path("grades.csv"), help="CSV file (default ./grades.csv)")
    grade.add_argument("--timeout", type=_positive_int, default=300, help="seconds per notebook (default 300)")
    grade.add_argument("--jobs", type=_positive_int, default=1,
                       help="submissions graded at the same time, each in its own process (default 1)")
    grade.add_argument("--memory", type=_positive_int, default=8192, metavar="MB",
                       help="address-space limit of each notebook's kernel, MiB (default 8192)")
    grade.add_argument("--hidden", type=Path, action="append", default=[], metavar="FOLDER",
                       help="a folder of hidden cases (<notebook>.py), added to the book's; may be repeated")
    grade.add_argument("--no-feedback", action="store_true", help="no HTML feedback pages or class summary")
    grade.add_argument("--pdf", action="store_true", help="a PDF of each executed notebook (headless Chromium)")
    grade.add_argument("--gradescope", type=Path, metavar="PATH",
                       help="Gradescope results.json (a .json path for one submission, else a folder)")
    grade.add_argument("--canvas", type=Path, metavar="CSV", help="a Canvas gradebook import file")
    grade.add_argument("--roster", type=Path, metavar="CSV",
                       help="the gradebook exported from Canvas, for the students' Canvas IDs")
    grade.add_argument("--assignment", metavar="NAME", help="the Canvas assignment column (default: the notebook)")
    grade.set_defaults(handler=cmd_grade)

    serve = commands.add_parser("serve", help="serve the shipped models over HTTP, with a web page",
                                description="A FastAPI app under uvicorn: digits, text and translation "
                                            "endpoints (/v1/...), OpenAPI docs at /docs, the web page at /.")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=_non_negative_int, default=8000, help="port (default 8000)")
    serve.add_argument("--models", nargs="+", metavar="NAME",
                       help="models to load (default: every shipped digit and text model)")
    serve.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    serve.add_argument("--max-batch", type=_positive_int, default=256, metavar="IMAGES",
                       help="most images in one forward pass (default 256)")
    serve.add_argument("--no-batching", action="store_true", help="run every request on its own (baseline)")
    serve.add_argument("--batch-wait-ms", type=_number, default=1.0,
                       help="how long a batch waits for more requests (default 1 ms)")
    serve.add_argument("--max-queue", type=_positive_int, default=64, metavar="REQUESTS",
                       help="requests admitted per model; beyond it 429 (default 64)")
    serve.add_argument("--timeout", type=_number, default=10.0, metavar="SECONDS",
                       help="per-request timeout, 504 beyond it (default 10)")
    serve.add_argument("--max-count", type=_positive_int, default=64, help="images per request (default 64)")
    serve.add_argument("--threads", type=_positive_int, default=1,
                       help="torch threads per model worker (default 1: the server needs a core too)")
    serve.add_argument("--no-request-log", action="store_true", help="no JSON line per request")
    serve.set_defaults(handler=cmd_serve)
    return parser


# --------------------------------------------------------------------------- doctor and data


def _package_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


# (distribution name, what it is for, required to run the notebooks?)
_PACKAGES = [
    ("torch", "models and training", True),
    ("torchvision", "MNIST reader, image grids", True),
    ("numpy", "arrays", True),
    ("matplotlib", "figures", True),
    ("safetensors", "weights and checkpoints", True),
    ("tqdm", "progress bars", True),
    ("scipy", "metrics (matrix square root)", True),
    ("ipywidgets", "interactive figures", False),
    ("jupyterlab", "running the notebooks", False),
    ("jupyter-book", "building the book", False),
    ("sphinx-exercise", "exercises in the book", False),
    ("nbval", "testing the notebooks", False),
]


def cmd_doctor(args: argparse.Namespace) -> int:
    problems: list[str] = []
    print(f"Python     {platform.python_version()} ({sys.executable})")
    if sys.version_info < (3, 10):
        problems.append("Python 3.10 or newer is required")
    print(f"system     {platform.system()} {platform.release()} ({platform.machine()}), {os.cpu_count()} CPU cores")
    try:
        import torch
    except ImportError:
        print("torch      MISSING")
        problems.append("torch is not installed: pip install -e '.[book]'")
    else:
        print(f"torch      {torch.__version__}, {torch.get_num_threads()} threads")
        if torch.cuda.is_available():
            names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
            print(f"device     cuda: {names} (device='auto' uses it)")
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            print("device     Apple GPU (mps) present; the book's device='auto' uses the CPU")
        else:
            print("device     CPU only (fast mode takes seconds per notebook; full settings take minutes)")

    from .core import FAST_ENV, is_fast

    print(f"budget     {'fast' if is_fast() else 'full'} mode ({FAST_ENV}={os.environ.get(FAST_ENV, '')!r})")
    _doctor_data(args.data_root, problems)
    _doctor_weights(problems)

    print("packages")
    for name, purpose, required in _PACKAGES:
        found = _package_version(name)
        mark = found if found else ("MISSING" if required else "not installed (optional)")
        print(f"  {name:<16} {mark:<26} {purpose}")
        if required and not found:
            problems.append(f"required package {name} is missing: pip install -e '.[book]'")
    if problems:
        print(f"\n{len(problems)} problem(s):", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    print("\nall good: the notebooks can run on this machine")
    return 0


def _doctor_data(root: str | None, problems: list[str]) -> None:
    from .data import DATA_ENV, MnistDataError, resolve_data_root, verify_mnist

    data_root = resolve_data_root(root)
    source = "--data-root" if root else (f"${DATA_ENV}" if os.environ.get(DATA_ENV) else "default cache folder")
    try:
        verify_mnist(data_root)
    except MnistDataError as error:
        print(f"data       NOT FOUND in {data_root} (from {source})")
        problems.append(str(error).replace("\n", "\n    "))
    else:
        print(f"data       MNIST found in {data_root} (from {source}); 4 files, SHA-256 verified")


def _doctor_weights(problems: list[str]) -> None:
    from . import pretrained

    names = pretrained.available()
    if not names:
        print("weights    no pretrained weights in the package (notebooks train in fast mode instead)")
        return
    bad = []
    for name in names:
        try:
            pretrained.verify(name)
        except pretrained.PretrainedError:
            bad.append(name)
    print(f"weights    {len(names)} pretrained entries" + (f"; CORRUPT: {', '.join(bad)}" if bad else ", checksums OK"))
    if bad:
        problems.append(f"corrupt pretrained weights: {', '.join(bad)} (restore them from the repository)")


def cmd_data(args: argparse.Namespace) -> int:
    from .data import MnistDataError, _download, resolve_data_root, verify_mnist

    data_root = resolve_data_root(args.root)
    try:
        paths = verify_mnist(data_root)
    except MnistDataError as error:
        if not args.download:
            raise CommandError(f"{error}\n(or run '{PROG} data --download' with internet access)") from error
        print(f"downloading MNIST into {data_root} ...", flush=True)
        try:
            _download(data_root)
        except Exception as download_error:  # network errors come in many types
            raise CommandError(f"download failed: {download_error}") from download_error
        paths = verify_mnist(data_root)
    for name, path in paths.items():
        print(f"ok  {name:<24} {path}")
    print(f"MNIST is ready in {data_root} (SHA-256 of all four files verified)")
    return 0


# --------------------------------------------------------------------------- list


def cmd_list(args: argparse.Namespace) -> int:
    from .trainers import trainable_families

    print("models (aigc-lessons train MODEL):")
    for name, family in trainable_families().items():
        trainer = family.trainer
        options = ", ".join(f"{k}={v.default}" for k, v in trainer.options.items())
        full = trainer.defaults(fast=False)
        print(f"  {name:<8} {family.description}")
        print(f"           defaults: epochs={full['epochs']} batch_size={full['batch_size']} lr={full['lr']:g}"
              + (f"; options: {options}" if options else ""))
    from . import pretrained

    names = pretrained.available()
    print("pretrained weights:" + ("" if names else " none in this installation"))
    for name in names:
        record = pretrained.card(name)
        print(f"  {name:<24} {record['model']['class']}, {record.get('bytes', 0) / 1e6:.1f} MB")
    from .runs import list_runs, runs_root

    root = Path(args.runs_root) if args.runs_root else runs_root()
    runs = list_runs(root)
    print(f"runs in {root}:" + ("" if runs else " none"))
    for run in runs:
        print(f"  {run['name']:<24} {run['model']:<8} epoch {run['epochs_done']}/{run['epochs']}")
    return 0


# --------------------------------------------------------------------------- train, sample, eval


def cmd_train(args: argparse.Namespace) -> int:
    from .data import MnistDataError
    from .runs import RunConfig, RunError, list_checkpoints, runs_root, train_run
    from .train.loop import NonFiniteLossError
    from .trainers import UnknownModelError

    run_dir = Path(args.run_dir) if args.run_dir else runs_root() / args.model
    given = {key: getattr(args, key) for key in ("epochs", "batch_size", "lr", "seed", "subset",
                                                 "checkpoint_every", "keep_checkpoints", "log_every", "device")}
    given = {key: value for key, value in given.items() if value is not None}
    # The --set values stay text: train_run converts and checks every setting once, before it writes anything.
    # Resuming passes only what was given: the rest is as the run folder stores it.
    changes = {"model": args.model, "options": dict(args.options), **given}
    config = changes if args.resume else RunConfig(**changes)
    # Under torchrun every process runs this command; rank 0 alone speaks (and writes the run folder).
    say = print if os.environ.get("RANK", "0") == "0" else (lambda *args, **kwargs: None)
    say(f"{'resuming' if args.resume else 'training'} {args.model} in {run_dir}", flush=True)
    try:
        result = train_run(run_dir, config, resume=args.resume, progress=not args.no_progress,
                           fast=True if args.fast else None, tensorboard=not args.no_tensorboard)
    except KeyboardInterrupt:
        done = list_checkpoints(run_dir) if run_dir.exists() else []
        where = f"the last checkpoint is epoch {done[-1]}" if done else "no checkpoint was written yet"
        say(f"\ninterrupted: {where}. Continue with:\n  {PROG} train {args.model} --run-dir {run_dir} --resume",
            file=sys.stderr)
        return 130
    except (RunError, UnknownModelError, ValueError, MnistDataError, NonFiniteLossError) as error:
        raise CommandError(str(error)) from error
    last = result.history.rows[-1] if result.history.rows else {}
    losses = ", ".join(f"{k} {v:.4f}" for k, v in last.items() if k not in ("epoch", "step"))
    say(f"done: epochs {result.start_epoch + 1}-{result.config.epochs} in {result.seconds:.1f} s"
        + (f"; last losses: {losses}" if losses else ""))
    events = "" if args.no_tensorboard else ", TensorBoard events"
    say(f"run folder: {run_dir} (config.json, metrics.jsonl, checkpoints/, samples/{events})")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from .runs import RunError, sample_run

    try:
        path = sample_run(args.run, out=args.out, count=args.count, seed=args.seed, epoch=args.epoch,
                          device=args.device)
    except (RunError, ValueError) as error:
        raise CommandError(str(error)) from error
    print(f"saved {args.count} samples to {path}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .runs import RunError, evaluate_run

    try:
        result = evaluate_run(args.run, count=args.count, seed=args.seed, epoch=args.epoch, device=args.device)
    except (RunError, ValueError) as error:
        raise CommandError(str(error)) from error
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"run {result['run']} ({result['model']}), epoch {result['epoch']}, {result['count']} generated images")
    for name, value in result["metrics"].items():
        print(f"  {name:<28} {value:.4f}" if isinstance(value, float) else f"  {name:<28} {value}")
    print(f"saved to {result['file']}")
    return 0


# --------------------------------------------------------------------------- classroom


def cmd_student(args: argparse.Namespace) -> int:
    from .classroom import build_student_versions

    missing = [str(p) for p in args.notebooks if not p.is_file()]
    if missing:
        raise CommandError(f"no such notebook: {', '.join(missing)}")
    written = build_student_versions(args.notebooks or None, args.out, zip_per_chapter=not args.no_zip)
    for path in written:
        print(f"wrote {path}")
    print(f"{len(written)} file(s) in {args.out}")
    return 0


def cmd_grade(args: argparse.Namespace) -> int:
    if not args.submissions.is_dir():
        raise CommandError(f"{args.submissions} is not a folder of submitted notebooks")
    from .classroom import grade_course

    course = grade_course(args.submissions, args.out, timeout=args.timeout, jobs=args.jobs, memory_mb=args.memory,
                          hidden=args.hidden, feedback=not args.no_feedback, gradescope=args.gradescope,
                          canvas=args.canvas, roster=args.roster, pdf=args.pdf, assignment=args.assignment)
    print(f"grades written to {args.out}")
    for name, path in course.files.items():
        print(f"{name}: {path}")
    for item in course.tampering:
        print(f"STOPPED: a submission changed the grader's files: {item}", file=sys.stderr)
    for submission, why in course.pdf_failures.items():
        print(f"PDF FAILED: {submission}: {why}", file=sys.stderr)
    if course.tampering:
        return 4
    return 3 if course.pdf_failures else 0


# --------------------------------------------------------------------------- serve


def cmd_serve(args: argparse.Namespace) -> int:
    from .serve.limits import ALL_MODELS, ServeSettings

    try:
        settings = ServeSettings(host=args.host, port=args.port, models=tuple(args.models or ALL_MODELS),
                                 device=args.device, batching=not args.no_batching,
                                 max_batch_images=args.max_batch, batch_wait_ms=args.batch_wait_ms,
                                 max_queue=args.max_queue, timeout_s=args.timeout, max_count=args.max_count,
                                 threads=args.threads, log_requests=not args.no_request_log)
    except ValueError as error:
        raise CommandError(str(error)) from error
    os.environ.setdefault("OMP_NUM_THREADS", str(settings.threads))  # before torch is imported
    from .pretrained import PretrainedError
    from .serve.app import run

    try:
        run(settings)
    except PretrainedError as error:
        raise CommandError(f"refusing to serve: {error}") from error
    return 0


# --------------------------------------------------------------------------- entry point


def main(argv: list[str] | None = None) -> int:
    """Run the tool with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        code = args.handler(args)
    except CommandError as error:
        print(f"{PROG} {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\n{PROG} {args.command}: interrupted", file=sys.stderr)
        return 130
    if os.environ.get("AIGC_LESSONS_CLI_TIMING"):
        print(f"({time.perf_counter() - started:.1f} s)", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
