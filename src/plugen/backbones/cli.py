"""``plugen encode`` and ``plugen backbones``: latents from a shipped backbone, and the zoo itself."""

from __future__ import annotations

import csv

import numpy as np

from plugen.cli import say


def add_parser(sub) -> None:
    """Add the ``encode`` and ``backbones`` subcommands to the ``plugen`` parser."""
    encode = sub.add_parser("encode", help="encode a data set through a backbone into a latents .npy")
    encode.add_argument("--backbone", required=True, help="shipped backbone name, e.g. mnist-vae or smiles-vae")
    encode.add_argument(
        "--inputs",
        required=True,
        help="images .npy (n, C, H, W) in [0, 1], or SMILES (.smi/.txt one per line, .csv with a smiles column)",
    )
    encode.add_argument("--batch-size", type=int, default=256)
    encode.add_argument("--device", default="cpu")
    encode.add_argument("--quiet", action="store_true", help="no progress bar")
    encode.add_argument("-o", "--output", required=True, help="latents .npy to write")
    encode.set_defaults(run=_encode)

    backbones = sub.add_parser("backbones", help="list or re-train the shipped backbones")
    backbones.add_argument("action", choices=["list", "train"])
    backbones.add_argument("name", nargs="?", help="backbone to train (train only)")
    backbones.add_argument("--output", help="weights directory (default: the package's own)")
    backbones.add_argument("--epochs", type=int)
    backbones.add_argument("--seed", type=int, default=0)
    backbones.set_defaults(run=_backbones)


def _encode(args) -> int:
    from plugen import distributed
    from plugen.backbones import load
    from plugen.encoding import encode_to_file, read_inputs
    from plugen.errors import InputError

    distributed.init_from_env(args.device)
    try:
        backbone = load(args.backbone, device=args.device)
        try:
            inputs = read_inputs(args.inputs)
        except (UnicodeDecodeError, csv.Error) as exc:
            raise InputError(f"cannot read {args.inputs} as text ({exc.__class__.__name__}: {exc})") from None
        check_inputs(args.backbone, inputs)
        path = encode_to_file(backbone, inputs, args.output, batch_size=args.batch_size, progress=not args.quiet)
        if path is not None:
            bad = int(np.isnan(np.load(path, mmap_mode="r")).any(axis=1).sum())
            say(
                f"wrote {len(inputs)} latents of size {backbone.latent_dim} to {path}"
                + (f"; {bad} rows are NaN (inputs the backbone could not read)" if bad else "")
            )
    finally:
        distributed.shutdown()
    return 0


def check_inputs(name: str, inputs) -> None:
    """Refuse inputs that the shipped backbone ``name`` cannot encode: text for an image model,
    images for a molecule model, or images of another shape than the ones it was trained on."""
    from plugen.backbones import describe
    from plugen.errors import InputError

    meta = describe(name)
    molecules = meta.get("kind") == "molecules"
    if molecules and isinstance(inputs, np.ndarray):
        raise InputError(f"backbone {name!r} encodes molecules: give SMILES (.smi, .txt or .csv), not an array")
    if not molecules and not isinstance(inputs, np.ndarray):
        raise InputError(f"backbone {name!r} encodes images: give an .npy array (n, C, H, W), not text")
    if molecules:
        return
    expected = tuple(meta.get("sample_shape") or ())
    if inputs.ndim < 2 or len(inputs) == 0 or (expected and tuple(inputs.shape[1:]) != expected):
        raise InputError(
            f"backbone {name!r} encodes images of shape (n, {', '.join(map(str, expected))}), "
            f"got an array of shape {inputs.shape}"
        )
    if not np.issubdtype(inputs.dtype, np.number) or np.issubdtype(inputs.dtype, np.complexfloating):
        raise InputError(f"images for backbone {name!r} must be real numbers in [0, 1], got dtype {inputs.dtype}")


def _backbones(args) -> int:
    from plugen.backbones import available, describe
    from plugen.errors import InputError

    if args.action == "list":
        for name in available():
            meta = describe(name)
            print(
                f"{name}: {meta['kind']}, {meta['latent_dim']}-dim latents, samples {meta['sample_shape']}; "
                f"reproduce: {meta.get('reproduce')}"
            )
        return 0
    if not args.name:
        raise InputError("plugen backbones train needs a NAME, e.g. mnist-vae")
    from plugen.backbones.train import train_backbone

    kwargs = {"output_dir": args.output} if args.output else {}
    train_backbone(args.name, epochs=args.epochs, seed=args.seed, **kwargs)
    return 0
