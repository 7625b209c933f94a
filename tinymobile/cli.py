"""The ``tinymobile`` command line: predict, convert, download, summary, eval, train.

Every command has ``--help``. Errors print one line on stderr (``tinymobile: error: ...``) and
exit non-zero; ``--debug`` shows the traceback instead.
"""
from __future__ import annotations

import argparse
import csv
import glob
import json
import os
import sys
import unicodedata
from typing import List, Optional, Sequence, TextIO, Tuple

import numpy as np

from .errors import TinyMobileError
from .files import not_a_file
from .preprocess import IMAGE_EXTENSIONS, image_files


class CLIError(TinyMobileError):
    """A usage problem found after argument parsing (no images matched, bad option mix...)."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# ---- model selection ---------------------------------------------------------------------------

def load_model(spec: Optional[str], threads: Optional[int] = None, progress: bool = True):
    """A Model from ``spec``: a .npz model file, a convertible file (.tflite, .tgz, Keras), an
    official name (downloaded into the cache on first use), or None for the default model."""
    import tinymobile
    from . import download as dl
    from .model import Model

    if spec is None:
        spec = dl.DEFAULT_MODEL
        path = dl.cached(spec)
        if path is None:
            try:
                path = dl.download(spec, progress=progress)
            except dl.DownloadError as e:
                raise CLIError(f"the default model {spec} is not in the cache ({dl.cache_dir()}) "
                               f"and could not be downloaded ({e}); pass a model file with "
                               "--model FILE") from None
        return tinymobile.load(path, threads=threads)
    if os.path.isfile(spec):
        from .convert import detect
        if spec.endswith(".npz"):
            return tinymobile.load(spec, threads=threads)
        try:
            kind = detect(spec)
        except TinyMobileError:
            return tinymobile.load(spec, threads=threads)  # its own, more precise error
        from .convert import load_source
        try:
            return Model(load_source(spec), threads=threads)
        except TinyMobileError as e:
            raise TinyMobileError(f"{e} (convert it first: tinymobile convert {spec} -o "
                                  "MODEL.npz)" if kind == "tflite" and "--dequantize" in str(e)
                                  else str(e)) from None
    if os.path.isdir(spec):
        raise CLIError(not_a_file(spec, "model file"))
    base = spec
    for ext in (".tgz", ".npz"):
        if base.endswith(ext):
            base = base[:-len(ext)]
    if base in dl.NAMES:
        path = dl.cached(base) or dl.download(base, progress=progress)
        return tinymobile.load(path, threads=threads)
    raise CLIError(f"{spec}: no such model file (and not an official model name; see "
                   "`tinymobile download --list`)")


# ---- image lists -------------------------------------------------------------------------------

def expand_images(specs: Sequence[str]) -> List[str]:
    """Files, directories (their image files, sorted) and glob patterns -> image paths."""
    out: List[str] = []
    for spec in specs:
        if os.path.isdir(spec):
            found = image_files(spec)
            if not found:
                subs = [d for d in os.listdir(spec)
                        if not d.startswith(".") and os.path.isdir(os.path.join(spec, d))]
                more = (f" (subfolders are not searched: give {os.path.join(spec, '*', '*')} "
                        f"for the images in its {len(subs)} subfolder"
                        f"{'s' if len(subs) > 1 else ''})") if subs else ""
                raise CLIError(f"{spec}: directory has no image files{more}")
            out += found
        elif os.path.exists(spec) or not glob.has_magic(spec):
            out.append(spec)
        else:
            found = sorted(p for p in glob.glob(spec, recursive=True) if os.path.isfile(p))
            if not found:
                raise CLIError(f"{spec}: no file matches")
            out += found
    return out


def _progress(iterable, total: int, desc: str, enabled: bool):
    from tqdm import tqdm
    return tqdm(iterable, total=total, desc=desc, unit="img", file=sys.stderr,
                disable=not enabled, leave=False)


def run_images(model, paths: Sequence[str], progress: bool, desc: str, batch: Optional[int] = None,
               jobs: Optional[int] = None, fast_decode: bool = False, streams: int = 1):
    """Yield (path, logits or None, error message or None) per image, in order: decoded and
    preprocessed in worker threads ahead of batched inference (tinymobile.pipeline)."""
    from . import pipeline
    bar = _progress(None, len(paths), desc, progress and len(paths) > 1)
    try:
        for r in pipeline.run(model, paths, batch=batch, jobs=jobs, fast_decode=fast_decode,
                              streams=streams):
            yield r.image, r.logits, r.error
            bar.update(1)
    finally:
        bar.close()


def add_pipeline_arguments(p: argparse.ArgumentParser) -> None:
    """--jobs, --batch, --fast-decode (predict and eval)."""
    p.add_argument("--jobs", "-j", type=int, metavar="N",
                   help="threads decoding and preprocessing images ahead of inference "
                        "(default: one per core; 0: none)")
    p.add_argument("--batch", "-b", type=int, metavar="N",
                   help="images per forward pass (default 16)")
    p.add_argument("--streams", type=int, metavar="N",
                   help="forward passes running at once (default: one per core on a one-thread "
                        "model for many images, else 1)")
    p.add_argument("--fast-decode", action="store_true",
                   help="decode JPEGs much larger than the model input at 1/2, 1/4 or 1/8 scale "
                        "(faster; not the exact TF-slim pixels: see docs/SCALE.md)")


def pipeline_model(args, count: int):
    """The model for predict / eval on ``count`` images, and the pipeline's forward streams.

    Without --threads / --streams, many images (more than two batches) run one batch per core,
    each on a one-thread model (no pool hand-offs; measured faster on the 2-core machine,
    docs/SCALE.md), and a few images one batch at a time on every core (lower latency)."""
    from . import pipeline
    from .kernels import default_threads
    streams, threads = args.streams, args.threads
    batch = args.batch or pipeline.DEFAULT_BATCH
    if streams is None:
        many = threads is None and count > 2 * batch and default_threads() > 1
        streams = default_threads() if many else 1
        threads = 1 if many else threads
    return load_model(args.model, threads, progress=not args.quiet), streams


def _check_pipeline_arguments(args) -> None:
    if args.streams is not None and args.streams < 1:
        raise CLIError(f"--streams must be at least 1, got {args.streams}")
    if args.jobs is not None and args.jobs < 0:
        raise CLIError(f"--jobs must be 0 or more, got {args.jobs}")
    if args.batch is not None and args.batch < 1:
        raise CLIError(f"--batch must be at least 1, got {args.batch}")


# ---- commands ----------------------------------------------------------------------------------

def cmd_predict(args) -> int:
    _check_pipeline_arguments(args)
    if args.top < 1:
        raise CLIError(f"--top must be at least 1, got {args.top}")
    paths = expand_images(args.images)
    model, streams = pipeline_model(args, len(paths))
    if model.num_classes == 0:
        raise CLIError("this model is a feature extractor (no classifier): nothing to predict")
    labels = model.labels
    top = min(args.top, len(labels))
    out: TextIO = sys.stdout
    writer = csv.writer(out) if args.format == "csv" else None
    if writer is not None:
        header = ["image"]
        for k in range(1, top + 1):
            header += [f"label_{k}", f"index_{k}", f"probability_{k}"]
        writer.writerow(header)
    failures = 0
    for path, logits, err in run_images(model, paths, not args.quiet, "predict", args.batch,
                                        args.jobs, args.fast_decode, streams):
        if err is not None:
            failures += 1
            print(f"tinymobile: error: {err}", file=sys.stderr)
            continue
        try:
            probs = model.probabilities(logits[None])[0]
        except TinyMobileError as e:  # non-finite logits: this image's error, not NaN output
            failures += 1
            print(f"tinymobile: error: {path}: {e}", file=sys.stderr)
            continue
        order = np.argsort(-probs, kind="stable")[:top]
        best = [(labels[i], int(i), float(probs[i])) for i in order]
        if args.format == "json":
            out.write(json.dumps({"image": path, "top": [
                {"label": l, "index": i, "probability": round(p, 6)} for l, i, p in best]}) + "\n")
        elif writer is not None:
            row = [path]
            for l, i, p in best:
                row += [l, i, f"{p:.6f}"]
            writer.writerow(row)
        else:
            results = " | ".join(f"{100 * p:5.1f}% {l}" for l, _, p in best)
            out.write(f"{path}: {results}\n")
        out.flush()
    if failures:
        print(f"tinymobile: {failures} of {len(paths)} images could not be read or classified", file=sys.stderr)
        return 1
    return 0


def default_output(src: str) -> str:
    """``convert``'s output without -o: the whole source file name + ``.npz``, in the current
    folder (``a.keras`` and ``a.tflite`` give ``a.keras.npz`` and ``a.tflite.npz``)."""
    return os.path.basename(os.path.normpath(src)) + ".npz"


def _size_text(size) -> str:
    h, w = size
    return f"resolution={h}" if h == w else f"input={h}x{w} (height x width)"


def describe_conversion(net, dst: str) -> str:
    """The line ``convert`` prints: what was written, and the preprocessing it will apply."""
    what = (f"{net.num_outputs} classes" if net.has_classifier
            else f"feature extractor, {net.num_outputs} features")
    if net.has_classifier and net.num_outputs == 1 and getattr(net, "output_activation", "") == "sigmoid":
        what = "binary classifier (1 logit, sigmoid)"
    labels = "with labels" if net.labels is not None else "no labels"
    dtype = getattr(net, "dtype", "float32")
    if dtype != "float32":
        labels += f", quantized {dtype}"
    size = _size_text(net.input_size)
    mean, std = np.asarray(net.input_mean), np.asarray(net.input_std)

    def nums(v):
        return f"{v[0]:g}" if np.all(v == v[0]) else "(" + ", ".join(f"{x:g}" for x in v) + ")"
    pre = f"crop {getattr(net, 'crop', 0.875):g}, input (RGB - {nums(mean)}) / {nums(std)}"
    return (f"wrote {dst}: MobileNet v1 alpha={net.alpha:g} {size} {what} "
            f"({labels}, {net.activation}, {net.padding}; {pre})")


def _floats(text: str) -> List[float]:
    try:
        values = [float(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected one or three numbers") from None
    if len(values) not in (1, 3):
        raise argparse.ArgumentTypeError(f"{text!r}: expected one or three numbers")
    return values


def cmd_convert(args) -> int:
    from .convert import convert
    dst = args.output or default_output(args.src)
    if os.path.abspath(dst) == os.path.abspath(args.src):
        raise CLIError("the output would overwrite the source; choose another -o")
    if os.path.exists(dst) and not args.force:
        raise CLIError(f"{dst} exists; not overwriting it (use --force, or choose another -o)")
    net = convert(args.src, dst, dequantize=args.dequantize, labels=args.labels,
                  resolution=args.resolution, crop=args.crop, mean=args.mean, std=args.std,
                  force=args.force)
    print(describe_conversion(net, dst))
    if getattr(net, "normalisation_assumed", False) and args.mean is None and args.std is None:
        print("tinymobile: note: the file does not say how the model's input is normalised: "
              "assumed (RGB - 127.5) / 127.5, the [-1, 1] of keras.applications.mobilenet."
              "preprocess_input; if the model was trained otherwise, convert again with "
              "--mean/--std", file=sys.stderr)
    recorded = getattr(net, "recorded_input_size", None)
    if recorded is not None:
        print(f"tinymobile: note: the file's input is {recorded[0]}x{recorded[1]}; converted for "
              f"{net.input_size[0]}x{net.input_size[1]} as --resolution asks (the network runs at "
              "any size, but its answers differ from the original's at its own)", file=sys.stderr)
    if getattr(net, "head_activation_assumed", False):
        print("tinymobile: note: a weights-only file does not record the classifier's "
              f"activation: assumed {net.output_activation} (softmax for several outputs, "
              "sigmoid for one); if the model had another, convert its .keras (or full-model "
              ".h5) file", file=sys.stderr)
    return 0


def add_convert_arguments(p: argparse.ArgumentParser) -> None:
    """The ``convert`` options."""
    p.add_argument("src", metavar="SRC", help="the model to convert")
    p.add_argument("-o", "--output", metavar="DST",
                   help="output .npz (default: the source's file name + .npz, here)")
    p.add_argument("--force", "-f", action="store_true", help="overwrite DST if it exists")
    p.add_argument("--dequantize", action="store_true",
                   help="accept a quantized (uint8/int8) TFLite model and store it as float32")
    p.add_argument("--labels", metavar="FILE", help="class names, one per line ('#' comments)")
    p.add_argument("--resolution", "-r", metavar="R|HxW",
                   help="input size, e.g. 224 or 128x160 (needed where the file records none: "
                        "Keras weights-only files; default from the file)")
    p.add_argument("--crop", type=float, metavar="F",
                   help="central-crop fraction the image API applies before resizing (default: "
                        "0.875 for TF-slim / Coral / keras-applications files, 1.0 for "
                        "Keras-made models)")
    p.add_argument("--mean", type=_floats, metavar="M",
                   help="input normalisation (RGB - M) / S: one number or three 'R,G,B' "
                        "(default: from the file, else 127.5)")
    p.add_argument("--std", type=_floats, metavar="S", help="see --mean (default 127.5)")
    p.set_defaults(func=cmd_convert)


def cmd_download(args) -> int:
    from . import download as dl
    if args.list:
        for name in dl.NAMES:
            mark = "  (cached)" if dl.cached(name) else ""
            print(f"{name}{mark}")
        return 0
    names = args.names or [dl.DEFAULT_MODEL]
    for name in names:
        path = dl.download(name, progress=not args.quiet, force=args.force)
        print(f"{dl.check_name(name)}: {path}")
    return 0


def cmd_summary(args) -> int:
    import tinymobile
    if args.model is not None:
        if args.alpha is not None or args.resolution is not None:
            raise CLIError("give either MODEL or --alpha/--resolution, not both")
        model = load_model(args.model, args.threads, progress=not args.quiet)
    else:
        model = tinymobile.build(alpha=args.alpha if args.alpha is not None else 1.0,
                                 resolution=args.resolution or 224, num_classes=args.classes,
                                 threads=args.threads)
    print(model.summary())
    return 0


def read_labels_tsv(path: str, num_classes: int) -> dict:
    """{file name: class index} from a LABELS.tsv (columns file, class_1000, class_1001, ...).

    The class column is ``class_1001`` for 1001-class models, else ``class_1000`` (or ``class``).
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # Excel writes a BOM
            rows = list(csv.DictReader(f, delimiter="\t"))
    except FileNotFoundError:
        raise CLIError(f"{path}: no such labels file (eval needs LABELS.tsv; see --labels)") from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise CLIError(f"{path}: unreadable labels file ({e})") from None
    if not rows:
        raise CLIError(f"{path}: no rows")
    columns = rows[0].keys()
    want = {1001: ["class_1001"], 1000: ["class_1000", "class"]}.get(num_classes, ["class"])
    col = next((c for c in want if c in columns), None)
    if "file" not in columns or col is None:
        raise CLIError(f"{path}: needs columns 'file' and {' or '.join(map(repr, want))}, has "
                       f"{', '.join(columns)}")
    out = {}
    for k, row in enumerate(rows, start=2):
        try:
            out[row["file"]] = int(row[col])
        except (TypeError, ValueError):
            raise CLIError(f"{path}: line {k}: class {row.get(col)!r} is not an integer") from None
        if not 0 <= out[row["file"]] < num_classes:
            raise CLIError(f"{path}: line {k}: class {out[row['file']]} is outside 0..{num_classes - 1}")
    return out


def evaluate(model, directory: str, labels_path: Optional[str] = None,
             progress: bool = False, **pipeline_options) -> Tuple[float, float, int]:
    """(top-1, top-5, number of images) of ``model`` on the images listed in LABELS.tsv."""
    if model.num_classes == 0:
        raise CLIError("this model is a feature extractor (no classifier): nothing to evaluate")
    truth = read_labels_tsv(labels_path or os.path.join(directory, "LABELS.tsv"), len(model.labels))
    paths = [os.path.join(directory, f) for f in truth]
    top1 = top5 = 0
    results = run_images(model, paths, progress, "eval", **pipeline_options)
    for (path, logits, err), label in zip(results, truth.values()):
        if err is not None:
            raise TinyMobileError(err)
        order = np.argsort(-model.probabilities(logits[None])[0], kind="stable")[:5]
        top1 += int(order[0] == label)
        top5 += int(label in order)
    n = len(paths)
    return top1 / n, top5 / n, n


def cmd_eval(args) -> int:
    if not os.path.isdir(args.dir):
        raise CLIError(f"{args.dir}: not a directory")
    _check_pipeline_arguments(args)
    model = load_model(args.model, args.threads, progress=not args.quiet)
    if _is_folder_layout(args.dir, args.labels):
        return cmd_eval_folders(args, model)
    top1, top5, n = evaluate(model, args.dir, args.labels, progress=not args.quiet,
                             batch=args.batch, jobs=args.jobs, fast_decode=args.fast_decode,
                             streams=args.streams or 1)
    print(f"top-1 {top1:.3f}  top-5 {top5:.3f}  ({n} images)")
    return 0


# ---- train / folder-per-class eval (issue #13) --------------------------------------------------

def cmd_train(args) -> int:
    import warnings
    from .training import class_folders, train
    if args.validate is not None and not 0 < args.validate < 1:
        raise CLIError(f"--validate takes a fraction between 0 and 1, got {args.validate:g}")
    dst = args.output
    if os.path.isdir(dst):
        raise CLIError(f"{dst}: is a directory")
    if os.path.exists(dst) and not args.force:
        raise CLIError(f"{dst}: exists; not overwritten (--force to replace it)")
    paths, labels = class_folders(args.dir, IMAGE_EXTENSIONS)
    model = load_model(args.model, args.threads, progress=not args.quiet)
    if args.add and model.training_state is None:
        raise CLIError(f"{args.model}: has no training state to --add to (train a model with "
                       "tinymobile train first)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        new, report = train(model, paths, labels, method=args.method, keep_classes=args.keep_classes,
                            add=args.add, augment=args.augment,
                            keep_embeddings=not args.no_embeddings, validate=args.validate,
                            scale=args.scale, l2=args.l2, progress=not args.quiet)
    for w in caught:
        print(f"tinymobile: warning: {w.message}", file=sys.stderr)
    new.save(dst, overwrite=True)
    print(f"wrote {dst}: {report.summary()}")
    return 0


def evaluate_folders(model, directory: str, progress: bool = False, **run_options):
    """Top-1 / top-5 of ``model`` on a folder-per-class layout (``directory/<class>/<images>``,
    class folder names = the model's class names). Returns (top1, top5, images, classes,
    confusion (classes, classes + 1) int: rows the true class, columns the predicted class among
    the folders' classes and a last column for any other class, unreadable [(path, reason)])."""
    from .training import class_folders
    if model.num_classes == 0:
        raise CLIError("this model is a feature extractor (no classifier): nothing to evaluate")
    paths, labels = class_folders(directory, IMAGE_EXTENSIONS)
    names = list(dict.fromkeys(labels))  # Unicode NFC, as class_folders gives them
    model_labels = [unicodedata.normalize("NFC", label) for label in model.labels]
    index = {}
    for name in names:
        if name not in model_labels:
            raise CLIError(f"{os.path.join(directory, name)}: class {name!r} is not one of the "
                           f"model's {model.num_classes} classes")
        index[name] = model_labels.index(name)
    column = {index[n]: j for j, n in enumerate(names)}
    confusion = np.zeros((len(names), len(names) + 1), np.int64)
    top1 = top5 = n = 0
    unreadable = []
    truth = dict(zip(paths, labels))
    for path, logits, err in run_images(model, paths, progress, "eval", **run_options):
        if err is not None:
            unreadable.append((path, err))
            continue
        want = index[truth[path]]
        # probabilities, not logits: a binary model's one logit ranks its two classes
        order = np.argsort(-model.probabilities(logits[None])[0], kind="stable")[:5]
        top1 += int(order[0] == want)
        top5 += int(want in order)
        confusion[names.index(truth[path]), column.get(int(order[0]), len(names))] += 1
        n += 1
    if n == 0:
        raise CLIError(f"{directory}: no readable images")
    return top1 / n, top5 / n, n, names, confusion, unreadable


def format_confusion(names: List[str], confusion: np.ndarray) -> str:
    """The confusion table: one row per true class (its count and recall), one column per
    predicted class (abbreviated names as headers) and "other"."""
    width = max(5, max(len(n) for n in names))
    cols = [f"[{j}]" for j in range(len(names))] + ["other"]
    cw = max(5, max(len(str(int(v))) for v in confusion.ravel()) + 1)
    corner = "true \\ predicted"
    lines = [f"{corner:<{width + 4}} " + " ".join(f"{c:>{cw}}" for c in cols) + "  recall"]
    for j, (name, row) in enumerate(zip(names, confusion)):
        total = int(row.sum())
        recall = f"{row[j] / total:.3f}" if total else "-"
        lines.append(f"[{j}] {name:<{width}} " + " ".join(f"{int(v):>{cw}}" for v in row)
                     + f"  {recall:>6}")
    return "\n".join(lines)


def cmd_eval_folders(args, model) -> int:
    top1, top5, n, names, confusion, unreadable = evaluate_folders(
        model, args.dir, progress=not args.quiet)
    for path, reason in unreadable:
        print(f"tinymobile: warning: skipped: {reason}", file=sys.stderr)
    print(f"top-1 {top1:.3f}  top-5 {top5:.3f}  ({n} images, {len(names)} classes"
          + (f", {len(unreadable)} unreadable skipped" if unreadable else "") + ")")
    print(format_confusion(names, confusion))
    return 0


def _is_folder_layout(directory: str, labels: Optional[str]) -> bool:
    """True when eval should read DIR as a folder per class: no --labels, no DIR/LABELS.tsv."""
    return labels is None and not os.path.exists(os.path.join(directory, "LABELS.tsv"))


def cmd_quantize(args) -> int:
    from . import model_format
    from .model import Model
    from .quantize import calibration_images, quantize_model
    dst = args.output
    if os.path.abspath(dst) == os.path.abspath(args.model):
        raise CLIError("the output would overwrite the model; choose another -o")
    if os.path.isdir(dst):
        raise CLIError(f"{dst}: is a directory")
    if os.path.exists(dst) and not args.force:
        raise CLIError(f"{dst}: exists; not overwritten (--force to replace it)")
    model = load_model(args.model, args.threads, progress=not args.quiet)
    if model.is_quantized:
        raise CLIError(f"{args.model}: already quantized ({model.dtype}); quantize takes a float model")
    images = calibration_images(args.calibrate, args.limit)
    qnet = quantize_model(model, images)
    model_format.save(qnet, dst)
    print(f"wrote {dst}: int8 MobileNet v1 alpha={qnet.alpha:g} {_size_text(qnet.input_size)} "
          f"(per-channel int8 weights, activations calibrated on {len(images)} images)")
    if args.eval:
        qmodel = Model(qnet, threads=args.threads)
        f1, f5, n = evaluate(model, args.eval, None, progress=not args.quiet)
        q1, q5, _ = evaluate(qmodel, args.eval, None, progress=not args.quiet)
        print(f"float top-1 {f1:.3f} top-5 {f5:.3f}; int8 top-1 {q1:.3f} top-5 {q5:.3f} "
              f"(top-1 change {q1 - f1:+.3f}, {n} images)")
    return 0


def cmd_bench(args) -> int:
    from .benchmark import default_threads_env, run
    default_threads_env()
    run(args)
    return 0


# ---- parser ------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the full traceback on errors")
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="no progress bars")
    parser = _Parser(prog="tinymobile", parents=[common],
                     description="MobileNet v1 on CPU: classify images, convert and download "
                                 "models. `tinymobile predict photo.jpg` is the main job.")
    from . import __version__
    parser.add_argument("--version", action="version", version=f"tinymobile {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    model_help = ("model: a .npz file, a .tflite / .tgz / Keras file, or an official name "
                  "(default: mobilenet_v1_1.0_224, downloaded into the cache on first use)")
    p = sub.add_parser("predict", parents=[common], help="classify images",
                       description="Classify images: one result per image on stdout.")
    p.add_argument("images", nargs="+", metavar="IMG", help="image files, directories or globs")
    p.add_argument("--model", "-m", help=model_help)
    p.add_argument("--top", "-k", type=int, default=5, help="how many classes per image (5)")
    p.add_argument("--threads", "-t", type=int, help="worker threads (default: all cores)")
    p.add_argument("--format", "-f", choices=("text", "json", "csv"), default="text",
                   help="output format: text (default), json (one object per line), csv")
    add_pipeline_arguments(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("convert", parents=[common], help="convert a TFLite / Keras model",
                       description="Convert a .tflite, TF-slim .tgz, Keras .h5 / .weights.h5 / "
                                   ".keras MobileNet v1 to a tinymobile .npz model.")
    add_convert_arguments(p)

    p = sub.add_parser("download", parents=[common], help="download official models",
                       description="Download official TF-slim MobileNet v1 models into the cache "
                                   "($TINYMOBILE_HOME, default ~/.cache/tinymobile; base URL "
                                   "$TINYMOBILE_BASE_URL) and convert them.")
    p.add_argument("names", nargs="*", metavar="NAME",
                   help="e.g. mobilenet_v1_0.5_160 or mobilenet_v1_1.0_224_quant "
                        "(default mobilenet_v1_1.0_224)")
    p.add_argument("--list", action="store_true", help="list the 32 official names")
    p.add_argument("--force", action="store_true", help="download again even if cached")
    p.set_defaults(func=cmd_download)

    p = sub.add_parser("summary", parents=[common], help="per-layer table of a model",
                       description="Per-layer table (output shape, params, mult-adds) and totals "
                                   "of a model file, or of the architecture for --alpha/--resolution.")
    p.add_argument("model", nargs="?", metavar="MODEL", help=model_help.replace(
        "(default: mobilenet_v1_1.0_224, downloaded into the cache on first use)", ""))
    p.add_argument("--alpha", "-a", type=float, help="width multiplier (random weights)")
    p.add_argument("--resolution", "-r", type=int, help="input size (random weights)")
    p.add_argument("--classes", type=int, default=1000, help="classes for --alpha (1000)")
    p.add_argument("--threads", "-t", type=int, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("eval", parents=[common], help="top-1 / top-5 accuracy on a folder",
                       description="Top-1 / top-5 accuracy on the images listed in LABELS.tsv "
                                   "(columns file, class_1000, class_1001), or on DIR/<class>/*.jpg "
                                   "(class folders named like the model's labels).")
    p.add_argument("dir", metavar="DIR", help="folder of images")
    p.add_argument("--model", "-m", help=model_help)
    p.add_argument("--labels", metavar="LABELS.tsv", help="ground truth (default DIR/LABELS.tsv)")
    p.add_argument("--threads", "-t", type=int, help="worker threads (default: all cores)")
    add_pipeline_arguments(p)
    p.set_defaults(func=cmd_eval)

    add_train_parser(sub, common, model_help)

    p = sub.add_parser("quantize", parents=[common], help="post-training int8 quantization",
                       description="Quantize a float model to int8 (per-channel weights, "
                                   "activation ranges from calibration images) for the integer "
                                   "kernels; --eval DIR reports the top-1 change on LABELS.tsv.")
    p.add_argument("model", metavar="MODEL", help="the float model (.npz or convertible file)")
    p.add_argument("-o", "--output", required=True, metavar="Q.npz", help="output .npz")
    p.add_argument("--calibrate", required=True, metavar="DIR", help="folder of calibration images")
    p.add_argument("--limit", type=int, help="use at most this many calibration images")
    p.add_argument("--eval", metavar="DIR", help="folder with LABELS.tsv: report float vs int8 accuracy")
    p.add_argument("--force", action="store_true", help="replace Q.npz if it exists")
    p.add_argument("--threads", "-t", type=int, help="worker threads (default: all cores)")
    p.set_defaults(func=cmd_quantize)

    p = sub.add_parser("bench", parents=[common], help="latency, throughput, per-layer profile",
                       description="Benchmark a model (default: random-weight 1.0_224) in the manner "
                                   "of TFLite's benchmark_model; ONNX Runtime and TFLite on the same "
                                   "weights when installed (pip install 'tinymobile[bench]').")
    from .benchmark import add_arguments
    add_arguments(p)
    p.set_defaults(func=cmd_bench)
    return parser


def add_train_parser(sub, common, model_help: str) -> None:
    from .augment import AUGMENTATIONS
    from .heads import DEFAULT_SCALE
    p = sub.add_parser("train", parents=[common], help="train a classifier on your own classes",
                       description="Train a new classifier head on a folder with one subfolder per "
                                   "class (the folder name is the class name, images inside), on "
                                   "the base model's pooled features; writes an ordinary model "
                                   "file (see docs/TRAINING.md).")
    p.add_argument("dir", metavar="DIR", help="folder of class folders: DIR/<class>/<images>")
    p.add_argument("--model", "-m", help=model_help)
    p.add_argument("-o", "--output", required=True, metavar="OUT.npz", help="the trained model")
    p.add_argument("--method", choices=("logistic", "imprint"),
                   help="logistic regression (default; L2 by cross-validation) or weight "
                        "imprinting; with --add: the method the model was trained with")
    p.add_argument("--validate", type=float, metavar="FRACTION",
                   help="hold out this fraction of each class (e.g. 0.2) and print its top-1; "
                        "the model is trained on the rest")
    p.add_argument("--add", action="store_true",
                   help="add DIR's images and classes to a model trained by tinymobile train "
                        "(from the training state in its file, without the old images)")
    p.add_argument("--keep-classes", action="store_true",
                   help="keep the base model's own classes in front of the new ones")
    p.add_argument("--no-embeddings", action="store_true",
                   help="do not store the training embeddings in the file (smaller; a later "
                        "--add can then only use --method imprint)")
    p.add_argument("--augment", choices=AUGMENTATIONS, default="none",
                   help="extra training views per image: flip (mirror), crops (mirror, four "
                        "corner crops and their mirrors); default none")
    p.add_argument("--l2", type=float, help="logistic regression's L2 (default: cross-validated)")
    p.add_argument("--scale", type=float, default=DEFAULT_SCALE,
                   help=f"imprinting's cosine-logit scale ({DEFAULT_SCALE:g})")
    p.add_argument("--force", action="store_true", help="replace OUT.npz if it exists")
    p.add_argument("--threads", "-t", type=int, help="worker threads (default: all cores)")
    p.set_defaults(func=cmd_train)


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    parser = build_parser()
    args = parser.parse_args(argv)
    args.quiet = getattr(args, "quiet", False)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        if debug:
            raise
        print("tinymobile: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `tinymobile predict ... | head`: stop quietly.
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except Exception as e:  # noqa: BLE001 — one line for users, the traceback with --debug
        if debug:
            raise
        kind = "error" if isinstance(e, (TinyMobileError, OSError)) else "internal error"
        message = str(e) or type(e).__name__
        if isinstance(e, OSError) and e.filename and e.strerror:
            message = f"{e.filename}: {e.strerror}"
        message = " ".join(message.split())
        print(f"tinymobile: {kind}: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
