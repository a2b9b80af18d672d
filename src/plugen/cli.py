"""The ``plugen`` command: fit, edit, sample, predict and inspect plugins from files."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

from plugen import extensions
from plugen.errors import ExtrapolationWarning, PlugenError

EXAMPLES = """\
examples:
  plugen fit --latents z.npy --labels y.csv -o smile.plugin
  plugen fit --latents z.npy --labels y.csv --label smile:binary --label age:continuous \\
             --method fpn --flow maf -o fpn.plugin
  plugen fit --latents z.npy --labels y.csv --label shape:circle,square,triangle -o shape.plugin
  plugen edit smile.plugin --latents z.npy --set smile=1 -o edited.npy
  plugen edit shape.plugin --latents z.npy --set shape=square -o edited.npy
  plugen sample smile.plugin -n 16 --set smile=1 --set age=60 --temperature 0.8 -o new.npy
  plugen predict smile.plugin --latents z.npy -o labels.csv
  plugen info smile.plugin
  plugen encode --backbone mnist-vae --inputs images.npy -o z.npy
  torchrun --nproc_per_node=4 -m plugen fit --latents z.npy --labels y.csv --stream -o smile.plugin
  plugen demo -o runs/demo                  # the main job: MNIST and Shapes on shipped backbones
  plugen backbones list
  plugen ui                                 # the interactive editor on http://127.0.0.1:7860
  plugen molecules generate --logp 3.0 -n 1000 -o out.csv      # needs the [molecules] extra
  plugen molecules optimize --smiles "CCOc1ccccc1" --logp +2 -o path.csv
"""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warning_printer(args.command)
            return args.run(args) or 0
    except PlugenError as exc:
        print(f"plugen {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except MemoryError as exc:
        print(
            f"plugen {args.command}: error: not enough memory for this request ({exc or 'MemoryError'})",
            file=sys.stderr,
        )
        return 2


def _warning_printer(command: str):
    """``warnings.showwarning`` for the CLI: plugen's own warnings as one plain line, like its errors."""
    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, ExtrapolationWarning):
            print(f"plugen {command}: warning: {message}", file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    return show


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plugen",
        description="Make a frozen generative model conditional: fit a flow plugin on its latents "
        "and labels, then edit, sample and predict attributes.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="command")
    _add_fit(sub)
    _add_edit(sub)
    _add_sample(sub)
    _add_predict(sub)
    _add_info(sub)
    for add_parser in extensions.command_adders():  # backbones, the lab, molecules, the editor: argparse only
        add_parser(sub)
    return parser


def _add_fit(sub) -> None:
    fit = sub.add_parser(
        "fit",
        help="fit a plugin on latents and labels",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fit.add_argument("--latents", required=True, help="latents (.npy, .pt, .csv), shape (n, N)")
    fit.add_argument(
        "--labels",
        required=True,
        help="labels .csv with a header; empty or NaN = missing; a categorical column may hold class names",
    )
    fit.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="NAME:KIND",
        help="a label column and its kind (binary, categorical, continuous), or its class names in "
        "code order (shape:circle,square,triangle); repeat. Default: every column, kind inferred from "
        "its values (a column of text is categorical, its names in sorted order)",
    )
    _add_fit_training(fit)


def _add_fit_training(fit) -> None:
    """``plugen fit``'s options of the method, its training and its output."""
    fit.add_argument("--method", choices=["plugen", "fpn"], default="plugen")
    fit.add_argument("--flow", choices=["nice", "realnvp", "maf", "nsf"], help="default: nice (plugen), realnvp (fpn)")
    fit.add_argument("--epochs", type=int, help="maximum epochs (early stopping usually ends sooner)")
    fit.add_argument(
        "--batch-size", type=int, help="default: plugen 768 when the training rows fill 16 batches, else 256; fpn 256"
    )
    fit.add_argument("--lr", type=float, help="default: plugen 4e-3 with a batch of 768 or more, else 2e-3; fpn 1e-3")
    fit.add_argument(
        "--warmup-steps",
        type=int,
        help="steps over which the learning rate rises to --lr (default: 100 or half the first epoch, "
        "whichever is shorter)",
    )
    fit.add_argument(
        "--latent-noise",
        type=float,
        help="training noise, in standard deviations per latent dimension (about 0.1 for a "
        "non-generative autoencoder's latents; default 0)",
    )
    fit.add_argument(
        "--classifier-weight",
        type=float,
        help="fpn only: weight of the Bayes classifier's cross-entropy added to the likelihood "
        "(hybrid objective; about 10 when the plugin is wanted as a classifier; default 0)",
    )
    fit.add_argument(
        "--groups",
        metavar="NAME",
        help="a column of the labels CSV holding a group id per row (not a label): rows of one "
        "group (augmented copies of one image, one scaffold) are held out together",
    )
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument(
        "--restarts",
        type=int,
        default=1,
        help="fit N flows (seeds SEED, SEED+1, ...) and keep the one with the lowest held-out NLL; "
        "with N > 1 an interrupted fit cannot be resumed",
    )
    fit.add_argument("--device", default="auto", help="auto, cpu or cuda")
    fit.add_argument("--backbone", help="name of the model the latents come from (recorded, checked on load)")
    fit.add_argument("--quiet", action="store_true", help="no progress bar")
    fit.add_argument(
        "--stream",
        action="store_true",
        help="read .npy latents from disk block by block (memory independent of their size)",
    )
    fit.add_argument("--autocast", choices=["bf16"], help="train under bfloat16 autocast")
    fit.add_argument("--compile", action="store_true", help="torch.compile the training objective")
    fit.add_argument(
        "--restart",
        action="store_true",
        help="ignore the saved state of an interrupted fit (OUTPUT.training-state.pt) and start over",
    )
    fit.add_argument("-o", "--output", required=True, help="checkpoint directory to write")
    fit.set_defaults(run=_fit)


def _add_edit(sub) -> None:
    edit = sub.add_parser("edit", help="set labels of existing latents")
    _plugin_arg(edit)
    edit.add_argument("--latents", required=True)
    _set_arg(edit, required=True)
    edit.add_argument("--y-source", help="FPN only: .csv of the source labels (default: its own classifier)")
    edit.add_argument(
        "--reencode",
        type=int,
        default=0,
        metavar="ROUNDS",
        help="then decode, encode and edit again ROUNDS times, holding the other labels "
        "(plugen.reencode; needs a shipped backbone that can encode)",
    )
    edit.add_argument("--backbone", help="with --reencode: the shipped backbone (default: the one the plugin records)")
    edit.add_argument("-o", "--output", required=True, help=".npy or .csv")
    edit.set_defaults(run=_edit)


def _add_sample(sub) -> None:
    sample = sub.add_parser("sample", help="generate latents with requested labels")
    _plugin_arg(sample)
    sample.add_argument("-n", type=int, required=True, help="number of latents")
    _set_arg(sample, required=False)
    sample.add_argument("--temperature", type=float, default=1.0)
    sample.add_argument("--seed", type=int)
    sample.add_argument("-o", "--output", required=True, help=".npy or .csv")
    sample.set_defaults(run=_sample)


def _add_predict(sub) -> None:
    predict = sub.add_parser("predict", help="predict the labels of latents")
    _plugin_arg(predict)
    predict.add_argument("--latents", required=True)
    predict.add_argument("--proba", action="store_true", help="write P(y=1) of the binary labels instead")
    predict.add_argument(
        "-o",
        "--output",
        required=True,
        help=".csv (with header; class names for labels that have them) or .npy (class codes)",
    )
    predict.set_defaults(run=_predict)


def _add_info(sub) -> None:
    info = sub.add_parser("info", help="describe a saved plugin")
    _plugin_arg(info)
    info.add_argument("--json", action="store_true", help="print the full metadata as JSON")
    info.set_defaults(run=_info)


def _plugin_arg(p):
    p.add_argument("plugin", help="checkpoint directory written by 'plugen fit'")
    p.add_argument("--device", default="cpu")


def _set_arg(p, required):
    p.add_argument(
        "--set",
        action="append",
        default=[],
        required=required,
        metavar="NAME=VALUE",
        help="label value to set, e.g. smile=1, age=60 or shape=square (a class name); repeat for several",
    )


def _parse_sets(items: list[str]) -> dict[str, float | str]:
    """``NAME=VALUE`` pairs; a VALUE that is not a number is a class name."""
    from plugen.errors import InputError

    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InputError(f"--set expects NAME=VALUE, got {item!r}")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            out[name.strip()] = value.strip()
    return out


def infer_kind(values: np.ndarray) -> str:
    """binary if the observed values are 0/1, categorical if few distinct integers or text (class
    names), else continuous."""
    if values.dtype == object:
        return "categorical"
    seen = values[~np.isnan(values)]
    distinct = np.unique(seen)
    if distinct.size <= 2 and np.isin(distinct, [0, 1]).all():
        return "binary"
    if np.all(distinct == np.round(distinct)) and distinct.size <= 20:
        return "categorical"
    return "continuous"


def _fit(args) -> int:
    """Fit and save a plugin; under torchrun all processes train it and the first one saves it.
    The training state is kept in OUTPUT.training-state.pt while fitting, so running the same
    command again after a kill resumes where it stopped."""
    from plugen import FPN, PluGeN, distributed
    from plugen.errors import InputError
    from plugen.io import read_label_columns, read_latents

    distributed.init_from_env(args.device)
    try:
        Z = read_latents(args.latents, mmap=args.stream)
        header, columns = read_label_columns(args.labels)
        columns, groups = _split_groups(args, header, columns)
        labels = _label_kinds(args, columns)
        Y = {name: columns[name] for name in labels}
        cls = FPN if args.method == "fpn" else PluGeN
        if args.classifier_weight is not None and cls is not FPN:
            raise InputError("--classifier-weight applies to --method fpn only")
        state = _training_state(args)
        model = cls(labels, **_fit_options(args)).fit(Z, Y, checkpoint=state, groups=groups)
        _say_inferred_names(model, labels)
        if distributed.is_main():
            model.save(args.output)
            _say_saved(model, args.output)
    finally:
        distributed.shutdown()
    return 0


def _fit_options(args) -> dict:
    """The estimator's keyword arguments from ``plugen fit``'s options (unset ones keep defaults)."""
    options = {
        "seed": args.seed,
        "restarts": args.restarts,
        "device": args.device,
        "backbone": args.backbone,
        "progress": not args.quiet,
        "autocast": args.autocast,
        "compile": args.compile,
    }
    optional = {
        "flow": args.flow,
        "max_epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "warmup_steps": args.warmup_steps,
        "latent_noise": args.latent_noise,
        "classifier_weight": args.classifier_weight,
    }
    return options | {key: value for key, value in optional.items() if value is not None}


def _training_state(args) -> Path | None:
    """The resumable state file of ``plugen fit -o OUTPUT`` (None with several restarts)."""
    from plugen import distributed

    state = Path(f"{args.output}.training-state.pt")
    if args.restart and distributed.is_main():
        state.unlink(missing_ok=True)
    distributed.barrier()
    if args.restarts > 1:
        return None  # one resumable state per fit; several restarts start over when interrupted
    if state.is_file():
        say(
            f"resuming the interrupted fit saved in {state} if it was made with these data and settings "
            "(--restart to start over)"
        )
    return state


def _say_inferred_names(model, labels: dict) -> None:
    """Name the classes read from text labels, in code order."""
    named = [lab for lab in model.schema_.labels if lab.names is not None and not isinstance(labels[lab.name], list)]
    if named:
        say(
            "class names read from the labels (code order, sorted): "
            + "; ".join(f"{lab.name}: " + ", ".join(f"{c} {n}" for c, n in enumerate(lab.names)) for lab in named)
        )


def _say_saved(model, output: str) -> None:
    h = model.history_
    if h.get("resumed_from_epoch"):
        say(f"resumed the interrupted fit after its epoch {h['resumed_from_epoch']}")
    say(
        f"saved {type(model).__name__} to {output}: {h['epochs']} epochs, {h['seconds']:.1f} s, "
        f"{h['monitor']} NLL {h['best_nll']:.4f} per row ({h['stopped']}"
        + (f", {h['processes']} processes" if h["processes"] > 1 else "")
        + (f", seed {h['chosen_seed']} of {len(h['restarts'])} restarts" if "restarts" in h else "")
        + ")"
    )


def say(message: str) -> None:
    """A status line on stderr, from one process only under torchrun."""
    from plugen import distributed

    if distributed.is_main():
        print(message, file=sys.stderr)


def _load(args):
    import plugen

    return plugen.load(args.plugin, device=args.device)


def _edit(args) -> int:
    from plugen.io import read_label_columns, read_latents, write_array

    model = _load(args)
    Z = read_latents(args.latents)
    kwargs = {}
    if args.y_source:
        kwargs["y_source"] = read_label_columns(args.y_source)[1]
    if args.reencode:
        from plugen.reencode import reencoded_edit

        backbone = load_backbone(args.backbone or model.backbone, args.device)
        out = reencoded_edit(model, backbone, Z, _parse_sets(args.set), args.reencode, **kwargs)
    else:
        out = model.edit(Z, _parse_sets(args.set), **kwargs)
    write_array(args.output, out, finite=True)
    print(f"wrote {out.shape[0]} edited latents to {args.output}", file=sys.stderr)
    return 0


def _split_groups(args, header: list[str], columns: dict[str, np.ndarray]):
    """The labels CSV's columns without ``--groups``' column, and that column (or None)."""
    from plugen.errors import InputError

    if not args.groups:
        return columns, None
    if args.groups not in columns:
        raise InputError(f"--groups {args.groups!r} is not a column of {args.labels} (columns: {header})")
    return {k: v for k, v in columns.items() if k != args.groups}, columns[args.groups]


def _label_kinds(args, columns: dict[str, np.ndarray]) -> dict:
    """The ``labels`` argument of the plugin: from ``--label NAME:KIND`` (KIND may list class names in
    code order, ``shape:circle,square``) or, without it, every column with its kind inferred."""
    from plugen.errors import InputError

    if not args.label:
        labels = {name: infer_kind(column) for name, column in columns.items()}
        say(
            "labels (kinds inferred; override with --label NAME:KIND): "
            + ", ".join(f"{k}:{v}" for k, v in labels.items())
        )
        return labels
    labels = {}
    for spec in args.label:
        name, sep, kind = spec.partition(":")
        if not sep:
            raise InputError(f"--label expects NAME:KIND, got {spec!r}")
        if name not in columns:
            raise InputError(f"label {name!r} is not a column of {args.labels} (columns: {list(columns)})")
        labels[name] = [c.strip() for c in kind.split(",")] if "," in kind else kind
    return labels


def load_backbone(name: str | None, device: str = "cpu"):
    """The backbone called ``name``, from the installed backbone zoos (``plugen.backbones`` entry points)."""
    from plugen.errors import InputError

    if not name:
        raise InputError("--reencode needs --backbone: the plugin does not record which backbone it was fitted on")
    zoos = extensions.backbone_zoos()
    if not zoos:
        raise InputError(f"no backbone zoo is installed to load {name!r} (reinstall plugen)")
    for zoo in zoos[:-1]:
        try:
            return zoo.load(name, device=device)
        except InputError:
            continue
    return zoos[-1].load(name, device=device)


def _sample(args) -> int:
    from plugen.io import write_array

    model = _load(args)
    out = model.sample(args.n, _parse_sets(args.set), temperature=args.temperature, seed=args.seed)
    write_array(args.output, out, finite=True)
    print(f"wrote {out.shape[0]} sampled latents to {args.output}", file=sys.stderr)
    return 0


def _predict(args) -> int:
    from plugen.io import read_latents, write_array

    model = _load(args)
    Z = read_latents(args.latents)
    if args.proba:
        out = model.predict_proba(Z)
        header = [lab.name for lab in model.schema_.labels if lab.kind == "binary"]
    else:  # class names in a CSV, codes in an .npy
        out, header = model.predict(Z, names=Path(args.output).suffix.lower() == ".csv"), model.label_names
    write_array(args.output, out, header=header, finite=True)
    print(f"wrote predictions for {out.shape[0]} rows to {args.output}", file=sys.stderr)
    return 0


def _info(args) -> int:
    from plugen.checkpoint import read_metadata

    meta = read_metadata(Path(args.plugin))
    if args.json:
        print(json.dumps(meta, indent=2))
        return 0
    params, training = meta["params"], meta.get("training") or {}
    print(
        f"{meta['estimator']} plugin, plugen {meta.get('plugen_version')} (torch {meta.get('torch_version')}), "
        f"saved {meta.get('created')}"
    )
    print(f"latents: {meta['latent_dim']}-dim, backbone: {meta.get('backbone') or 'not recorded'}")
    print(
        f"flow: {params.get('flow')}, {params.get('transforms')} transforms, "
        f"{params.get('depth')} x {params.get('hidden_features')} hidden"
    )
    print("labels:")
    for lab in meta["labels"]:
        extra = _label_summary(lab)
        print(f"  {lab['name']}: {lab['kind']} ({extra}; {lab['observed']} observed)")
    if training:
        seconds = training.get("seconds")
        seconds = f"{seconds:.1f}" if isinstance(seconds, (int, float)) else seconds
        print(
            f"training: {training.get('epochs')} epochs, {seconds} s, "
            f"best {training.get('monitor')} NLL {training.get('best_nll')} ({training.get('stopped')})"
        )
    return 0


def _label_summary(lab: dict) -> str:
    """What ``plugen info`` says of one label's training statistics."""
    if lab["kind"] == "binary":
        return f"P(1) = {lab['frequencies'][0]:.3f}"
    if lab["kind"] == "categorical":
        return _classes_text(lab)
    extent = f", range {lab['low']:.4g} to {lab['high']:.4g}" if lab.get("low") is not None else ""
    return f"mean {lab['mean']:.4g}, sd {lab['std']:.4g}{extent}"


def _classes_text(label: dict) -> str:
    """A categorical label's classes for ``plugen info``: codes with their names where it has them."""
    if label.get("names"):
        return "classes " + ", ".join(f"{c} {n}" for c, n in zip(label["classes"], label["names"]))
    return f"classes {label['classes']}"


if __name__ == "__main__":
    sys.exit(main())
