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


def _non_negative_int(text: str) -> int:
    return _whole_number(text, 0, "must be 0 or more")


def _learning_rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number such as 2e-4, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"a learning rate must be between 0 and 1, got {value}")
    return value


def _key_value(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (for example latent_dim=64), got {text!r}")
    key, value = text.split("=", 1)
    return key.strip(), value.strip()


def _model_list() -> str:
    from .trainers import TRAINERS

    return "\n".join(f"  {name:<8} {spec.description}" + ("" if spec.available() else " [not installed]")
                     for name, spec in TRAINERS.items())


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
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
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
        epilog="models:\n" + _model_list() + "\n\nUnset options take the model's defaults (fast defaults when "
               "AIGC_LESSONS_FAST=1 or --fast).\nexample:\n  aigc-lessons train gan_mlp --epochs 5 --run-dir runs/gan\n"
               "  aigc-lessons train gan_mlp --epochs 10 --run-dir runs/gan --resume",
    )
    train.add_argument("model", metavar="MODEL", help="which model to train (see 'aigc-lessons list')")
    train.add_argument("--run-dir", help="run folder (default: <runs root>/<MODEL>)")
    train.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last checkpoint")
    train.add_argument("--epochs", type=_positive_int, help="train until this epoch (resuming may raise it)")
    train.add_argument("--batch-size", type=_positive_int, help="images per step")
    train.add_argument("--lr", type=_learning_rate, help="Adam learning rate")
    train.add_argument("--seed", type=_non_negative_int, help="random seed (default 0)")
    train.add_argument("--subset", type=_positive_int, help="train on the first N images only")
    train.add_argument("--checkpoint-every", type=_positive_int, help="epochs between checkpoints (default 1)")
    train.add_argument("--keep-checkpoints", type=_positive_int,
                       help="how many of the latest checkpoints to keep (default 3; each GAN checkpoint is ~35 MB)")
    train.add_argument("--log-every", type=_positive_int, help="steps between metric rows (default 50)")
    train.add_argument("--device", help="auto (default), cpu, cuda, cuda:1, ...")
    train.add_argument("--set", dest="options", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
                       help="a model option, for example --set latent_dim=64 (see the model's options in 'list')")
    train.add_argument("--fast", action="store_true", help="use the fast-mode defaults (as AIGC_LESSONS_FAST=1)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
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
    grade.set_defaults(handler=cmd_grade)
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
    from .trainers import TRAINERS

    print("models (aigc-lessons train MODEL):")
    for name, spec in TRAINERS.items():
        options = ", ".join(f"{k}={v}" for k, v in spec.options.items())
        state = "" if spec.available() else "  [not installed]"
        print(f"  {name:<8} {spec.description}{state}")
        full = spec.full
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


def _parse_options(model: str, pairs: list[tuple[str, str]]) -> dict:
    """Turn ``--set key=value`` pairs into typed model options (typed like the defaults)."""
    from .trainers import get_trainer

    spec = get_trainer(model)
    options = {}
    for key, text in pairs:
        if key not in spec.options:
            allowed = ", ".join(f"{k} (default {v})" for k, v in spec.options.items()) or "none"
            raise CommandError(f"model {model!r} has no option {key!r}; its options: {allowed}")
        kind = type(spec.options[key])
        try:
            options[key] = kind(text)
        except ValueError:
            raise CommandError(f"option {key} expects a {kind.__name__}, got {text!r}") from None
    return options


def cmd_train(args: argparse.Namespace) -> int:
    from .trainers import UnknownModelError, get_trainer

    try:
        get_trainer(args.model)
    except UnknownModelError as error:
        raise CommandError(str(error)) from None
    options = _parse_options(args.model, args.options)
    if args.fast:
        os.environ["AIGC_LESSONS_FAST"] = "1"

    from .data import MnistDataError
    from .runs import RunConfig, RunError, list_checkpoints, read_config, runs_root, train_run
    from .train.loop import NonFiniteLossError

    run_dir = Path(args.run_dir) if args.run_dir else runs_root() / args.model
    given = {key: getattr(args, key) for key in ("epochs", "batch_size", "lr", "seed", "subset",
                                                 "checkpoint_every", "keep_checkpoints", "log_every", "device")}
    given = {key: value for key, value in given.items() if value is not None}
    if args.resume:
        if not (run_dir / "config.json").exists():
            raise CommandError(f"cannot resume: {run_dir} is not a run folder (no config.json). "
                               "Give the run's folder with --run-dir, or start a new run without --resume.")
        stored = read_config(run_dir).to_dict()
        config = RunConfig.from_dict({**stored, **given, "model": args.model,
                                      "options": {**stored["options"], **options}})
    else:
        config = RunConfig(model=args.model, options=options, **given)

    print(f"{'resuming' if args.resume else 'training'} {args.model} in {run_dir}", flush=True)
    try:
        result = train_run(run_dir, config, resume=args.resume, progress=not args.no_progress)
    except KeyboardInterrupt:
        done = list_checkpoints(run_dir) if run_dir.exists() else []
        where = f"the last checkpoint is epoch {done[-1]}" if done else "no checkpoint was written yet"
        print(f"\ninterrupted: {where}. Continue with:\n  {PROG} train {args.model} --run-dir {run_dir} --resume",
              file=sys.stderr)
        return 130
    except (RunError, ValueError, MnistDataError, NonFiniteLossError) as error:
        raise CommandError(str(error)) from error
    last = result.history.rows[-1] if result.history.rows else {}
    losses = ", ".join(f"{k} {v:.4f}" for k, v in last.items() if k not in ("epoch", "step"))
    print(f"done: epochs {result.start_epoch + 1}-{result.config.epochs} in {result.seconds:.1f} s"
          + (f"; last losses: {losses}" if losses else ""))
    print(f"run folder: {run_dir} (config.json, metrics.jsonl, checkpoints/, samples/)")
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
    try:
        from .classroom import build_student_versions
    except ImportError as error:
        raise CommandError(f"the classroom tools are not installed in this version ({error})") from error
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
    try:
        from .classroom import grade_submissions
    except ImportError as error:
        raise CommandError(f"the classroom tools are not installed in this version ({error})") from error
    path = grade_submissions(args.submissions, args.out, timeout=args.timeout)
    print(f"grades written to {path}")
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
