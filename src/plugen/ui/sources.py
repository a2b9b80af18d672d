"""Where the editor's workspaces come from: the shipped demos, or a saved plugin plus its backbone.

The image demos (``mnist``, ``shapes``) reuse the image experiments' data and labels
(:func:`plugen.lab.experiments.experiments`): the training images are encoded with the shipped
backbone and a :class:`~plugen.PluGeN` plugin is fitted on them with a short budget (:data:`DEMO_FIT`). The fitted plugin and the picker's samples are cached in a user
cache directory (:func:`cache_dir`), so only the first start fits; later starts load in about a
second. The cache is keyed by the plugen version, the backbone's weights checksum and the fit
settings, so a change of any of them fits again. The ``molecules`` demo (listed when the SMILES
backbone ships) loads the molecules package's shipped plugin, or fits a small one the same way.

A saved plugin is loaded with the backbone it names (:func:`from_checkpoint`); a checkpoint fitted
on another backbone is refused with a message saying which.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from plugen.data.shapes import COLOURS, SHAPES
from plugen.errors import CheckpointError, InputError
from plugen.ui.domains import ImageDomain, MoleculeDomain
from plugen.ui.workspace import Workspace

#: how the demos fit their plugin: PluGeN's defaults but for a short epoch budget
DEMO_FIT = {"max_epochs": 30, "seed": 0}
#: data-set samples offered by the picker
PICKER_SIZE = 200
#: Shapes images generated for the demo fit (the main job uses 20,000)
SHAPES_TRAIN = 3000
#: class names shown next to the categorical sliders of labels whose plugin declares none (demo
#: plugins cached before the data sets declared their class names)
CLASS_NAMES = {
    "shape": list(SHAPES),
    "colour": list(COLOURS),
    "digit": [str(d) for d in range(10)],
}
#: shipped image backbones -> the experiment whose data they were trained on
BACKBONE_DATA = {"mnist-vae": "mnist", "mnist-ae": "mnist", "mnist-gan": "mnist", "shapes-vae": "shapes"}
#: molecule backbones the molecule demo can use, in order of preference
MOLECULE_BACKBONES = ("selfies-vae", "smiles-vae")


def cache_dir() -> Path:
    """``$PLUGEN_CACHE`` if set, else ``$XDG_CACHE_HOME/plugen`` (default ``~/.cache/plugen``)."""
    if os.environ.get("PLUGEN_CACHE"):
        return Path(os.environ["PLUGEN_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "plugen"


def demos() -> list[str]:
    """Names of the demos this installation can serve (molecules only when a SMILES backbone ships)."""
    from plugen.backbones import available

    names = ["mnist", "shapes"]
    if molecule_backbone() is not None:
        names.append("molecules")
    shipped = set(available())
    return [n for n in names if n == "molecules" or _experiment(n).backbone in shipped]


def molecule_backbone() -> str | None:
    """The shipped SMILES backbone the molecule demo uses, or None if none ships (yet)."""
    try:
        from plugen.backbones import available

        shipped = set(available())
    except Exception:  # pragma: no cover - a broken registry must not break the image demos
        return None
    return next((name for name in MOLECULE_BACKBONES if name in shipped), None)


def demo(name: str, cache: Path | None = None, fit: dict | None = None, log=None) -> Workspace:
    """The workspace of a shipped demo, fitted on first use and cached afterwards.

    ``fit`` overrides :data:`DEMO_FIT` (tests use a smaller budget); ``log`` receives progress
    lines (default: stderr).
    """
    log = log or _log
    if name == "molecules":
        return _molecule_demo(cache, fit, log)
    if name not in ("mnist", "shapes"):
        raise InputError(f"unknown demo {name!r}; available: {demos()}")
    from plugen import PluGeN
    from plugen.backbones import load as load_backbone

    spec = _experiment(name)
    backbone = load_backbone(spec.backbone)
    settings = fit_settings(name, fit)
    folder = _cache_folder(cache, name, backbone, settings)
    plugin_dir, samples_file = folder / "plugin", folder / "samples.npz"
    plugin = None
    if plugin_dir.is_dir() and samples_file.is_file():
        try:
            from plugen import load as load_plugin

            plugin = load_plugin(plugin_dir, backbone=backbone.name, latent_dim=backbone.latent_dim)
            stored = np.load(samples_file)
            images, Y = stored["images"], stored["Y"]
            log(f"[ui] {name}: loaded the cached plugin from {plugin_dir}")
        except Exception as exc:  # a damaged cache is refitted, never fatal
            log(f"[ui] {name}: ignoring the cached plugin ({exc}); fitting again")
            plugin = None
    if plugin is None:
        start = time.perf_counter()
        log(
            f"[ui] {name}: first start, fitting a PluGeN plugin on {spec.backbone} latents "
            f"(max {settings['max_epochs']} epochs; cached in {folder})"
        )
        train, test = spec.load({"shapes_train": SHAPES_TRAIN, "shapes_test": PICKER_SIZE})
        cols = [list(train.labels).index(k) for k in spec.labels]
        labels = {k: train.labels[k] for k in spec.labels}
        Z = backbone.encode(train.images)
        plugin = PluGeN(labels, backbone=backbone.name, progress=False, **settings).fit(Z, train.Y[:, cols])
        images, Y = (
            test.images[:PICKER_SIZE],
            test.Y[:PICKER_SIZE][:, [list(test.labels).index(k) for k in spec.labels]],
        )
        folder.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(samples_file, images=images, Y=Y)
        plugin.save(plugin_dir)
        (folder / "fit.json").write_text(
            json.dumps(
                {"settings": settings, "n_train": int(len(Z)), "history": plugin.history_}, indent=2, default=str
            )
            + "\n"
        )
        log(f"[ui] {name}: fitted in {time.perf_counter() - start:.1f} s")
    captions = [_caption(spec.labels, row, _class_names(plugin)) for row in Y]
    return Workspace(
        title=TITLES[name],
        plugin=plugin,
        backbone=backbone,
        domain=ImageDomain(backbone.meta["sample_shape"]),
        samples=np.asarray(images),
        captions=captions,
        class_names=CLASS_NAMES,
        description=_describe(plugin, backbone, settings),
    )


def from_checkpoint(path: str | Path, backbone: str, title: str | None = None) -> Workspace:
    """A saved plugin with the shipped backbone ``backbone``; the picker offers that backbone's
    data set when it is known. Refuses (:class:`~plugen.errors.CheckpointError`) a checkpoint
    fitted on another backbone or on latents of another size."""
    import plugen
    from plugen.backbones import load as load_backbone

    bb = load_backbone(backbone)
    path = Path(path)
    try:
        plugin = plugen.load(path, backbone=bb.name, latent_dim=bb.latent_dim)
    except CheckpointError as exc:
        hint = ""
        if "backbone None" in str(exc):
            hint = " (this plugin records no backbone: fit it with --backbone NAME, or backbone=NAME, to record one)"
        raise CheckpointError(f"cannot use plugin {path} with backbone {backbone!r}: {exc}{hint}") from None
    domain, samples, captions = _domain_and_samples(bb, plugin)
    return Workspace(
        title=title or f"{path.name} on {bb.name}",
        plugin=plugin,
        backbone=bb,
        domain=domain,
        samples=samples,
        captions=captions,
        class_names=CLASS_NAMES,
        description=_describe(plugin, bb, None, source=str(path)),
    )


def _domain_and_samples(bb, plugin):
    """The domain of a backbone and the picker's samples (its data set's, with true labels when
    they match the plugin's label names)."""
    if bb.name in MOLECULE_BACKBONES or type(bb).__name__ == "MoleculeBackbone":
        frame = _molecule_frame()
        names = [n for n in plugin.label_names if n in frame.columns]
        return MoleculeDomain(), list(frame["SMILES"]), [_caption(names, row) for row in frame[names].to_numpy()]
    shape = (getattr(bb, "meta", None) or {}).get("sample_shape")
    if not shape:
        raise InputError(f"backbone {bb.name!r} does not say what its samples are (no sample_shape)")
    domain = ImageDomain(shape)
    experiment = BACKBONE_DATA.get(bb.name)
    if experiment is None:
        return domain, None, []
    _, test = _experiment(experiment).load({"shapes_train": 1, "shapes_test": PICKER_SIZE})
    names = [n for n in plugin.label_names if n in test.labels]
    Y = test.Y[:PICKER_SIZE][:, [list(test.labels).index(n) for n in names]]
    return domain, test.images[:PICKER_SIZE], [_caption(names, row, _class_names(plugin)) for row in Y]


# ---------------------------------------------------------------------- molecules (the seam)
def _molecule_demo(cache, fit, log) -> Workspace:
    """The molecule demo: the molecules package's shipped PluGeN (logP, TPSA, SAS) on the shipped
    SMILES backbone (:func:`plugen.molecules.design.load_shipped`); without a shipped plugin, a
    short fit on 5,000 training molecules (:func:`plugen.molecules.design.fit_plugin`), cached."""
    from plugen.backbones import load as load_backbone
    from plugen.molecules import design

    name = molecule_backbone()
    if name is None:
        raise InputError("the molecule demo needs a shipped SMILES backbone (smiles-vae); none is installed")
    bb, plugin, settings = load_backbone(name), None, None
    if Path(design.DEFAULT_PLUGIN).exists():
        bb, plugin = design.load_shipped(name)
    if plugin is None:
        import plugen

        settings = {**DEMO_FIT, **(fit or {})}
        folder = _cache_folder(cache, "molecules", bb, settings)
        plugin_dir = folder / "plugin"
        if plugin_dir.is_dir():
            try:
                plugin = plugen.load(plugin_dir, backbone=bb.name, latent_dim=bb.latent_dim)
            except Exception as exc:  # a damaged cache is refitted, never fatal
                log(f"[ui] molecules: ignoring the cached plugin ({exc}); fitting again")
        if plugin is None:
            start = time.perf_counter()
            log(f"[ui] molecules: first start, fitting a PluGeN plugin on {name} latents (cached in {folder})")
            plugin, _ = design.fit_plugin(bb, n=5000, progress=False, **settings)
            plugin.save(plugin_dir)
            log(f"[ui] molecules: fitted in {time.perf_counter() - start:.1f} s")
    domain, samples, captions = _domain_and_samples(bb, plugin)
    description = _describe(plugin, bb, settings, source=None if settings else "the molecules package (shipped)")
    return Workspace(
        title=TITLES["molecules"],
        plugin=plugin,
        backbone=bb,
        domain=domain,
        samples=samples,
        captions=captions,
        description=description,
    )


def _molecule_frame():
    from plugen.molecules.data import load_subset

    return load_subset("validation").iloc[:PICKER_SIZE].reset_index(drop=True)


# ---------------------------------------------------------------------- helpers
#: the demos' names in the model chooser
TITLES = {"mnist": "MNIST digits (mnist-vae)", "shapes": "Shapes (shapes-vae)", "molecules": "Molecules (SMILES VAE)"}


def _experiment(name: str):
    from plugen.lab.experiments import experiments

    return experiments()[name]


def fit_settings(name: str, fit: dict | None = None) -> dict:
    """The PluGeN settings an image demo is fitted with: the experiment's own (e.g. 12
    couplings, trained per epoch as the experiments are), :data:`DEMO_FIT`, then ``fit``."""
    from plugen.lab.experiments import EPOCH_TRAINING

    return {**EPOCH_TRAINING, **_experiment(name).plugen_options, **DEMO_FIT, **(fit or {})}


def _cache_folder(cache: Path | None, name: str, backbone, settings: dict) -> Path:
    from plugen import __version__

    key = json.dumps(
        {
            "version": __version__,
            "backbone": backbone.name,
            "weights": (getattr(backbone, "meta", None) or {}).get("weights_sha256"),
            "settings": settings,
            "shapes_train": SHAPES_TRAIN,
            "picker": PICKER_SIZE,
        },
        sort_keys=True,
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return Path(cache or cache_dir()) / "ui" / f"{name}-{digest}"


def _class_names(plugin) -> dict[str, list[str]]:
    """Class names of the plugin's categorical labels: its own, else :data:`CLASS_NAMES`."""
    return {**CLASS_NAMES, **{lab.name: list(lab.names) for lab in plugin.schema_.labels if lab.names}}


def _caption(names, row, class_names: dict[str, list[str]] = CLASS_NAMES) -> str:
    parts = []
    for name, value in zip(names, row):
        if np.isnan(value):
            continue
        classes = class_names.get(name)
        if classes and float(value).is_integer() and 0 <= int(value) < len(classes) and name != "digit":
            parts.append(f"{name} {classes[int(value)]}")
        elif float(value).is_integer():
            parts.append(f"{name} {int(value)}")
        else:
            parts.append(f"{name} {value:.3g}")
    return ", ".join(parts)


def _describe(plugin, backbone, settings, source: str | None = None) -> str:
    h = plugin.history_ or {}
    fitted = f"fitted in {h['seconds']:.1f} s, {h.get('epochs')} epochs" if "seconds" in h else "fitted"
    where = f"loaded from `{source}`" if source else f"demo fit (max {settings['max_epochs']} epochs)"
    return (
        f"{type(plugin).__name__} plugin on `{backbone.name}` ({backbone.latent_dim}-dim latents), "
        f"{where}, {fitted}; labels: "
        + ", ".join(f"{lab.name} ({', '.join(lab.names) if lab.names else lab.kind})" for lab in plugin.schema_.labels)
    )


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
