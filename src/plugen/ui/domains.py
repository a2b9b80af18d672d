"""Domains: what a backbone's samples are, for the editor.

A :class:`Domain` is the small adapter between the editor and one kind of sample. It says how to
turn a decoded sample into a picture, how to read what a user hands in (an uploaded image, a typed
SMILES string) into the backbone's input, and what a download of the result is. The editor itself
only moves latents around.

- :class:`ImageDomain`: samples are float arrays (C, H, W) in [0, 1] (MNIST, Shapes);
- :class:`MoleculeDomain`: samples are SMILES strings, drawn with RDKit.

>>> d = ImageDomain((1, 28, 28))
>>> d.render(np.zeros((1, 28, 28), np.float32)).size
(224, 224)
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from plugen.errors import InputError, PlugenError

#: side of the displayed picture, in screen pixels
DISPLAY = 224
#: largest uploaded picture read (width x height): a small file can describe a huge image
MAX_PIXELS = 16_000_000


class Domain:
    """Base class. ``kind`` is ``"image"`` or ``"molecule"``; ``input_kind`` says what a user
    hands in: ``"file"`` (an uploaded image) or ``"text"`` (a SMILES string)."""

    kind: str = "sample"
    input_kind: str = "file"
    #: file extension of a downloaded result
    extension: str = "png"

    def batch(self, samples: list) -> Any:
        """A list of samples as one input for ``backbone.encode``."""
        raise NotImplementedError

    def unbatch(self, decoded) -> list:
        """``backbone.decode``'s output as a list of samples."""
        return list(decoded)

    def render(self, sample):
        """A ``PIL.Image`` of one sample (what the page shows)."""
        raise NotImplementedError

    def parse_file(self, path: str | Path):
        """A sample from an uploaded file; :class:`InputError` with a clear message if unreadable."""
        raise InputError(f"this {self.kind} editor does not take uploaded files")

    def parse_text(self, text: str):
        """A sample from typed text; :class:`InputError` with a clear message if invalid."""
        raise InputError(f"this {self.kind} editor does not take typed input")

    def text(self, sample) -> str | None:
        """The sample as text (SMILES), or None when it has no text form."""
        return None

    def measure(self, sample, names) -> dict[str, float]:
        """Attributes measured directly on a sample (not predicted), for those of ``names`` the
        domain knows how to measure; empty by default."""
        return {}

    def download(self, sample, picture) -> bytes:
        """The bytes of a downloaded result (a PNG, or SMILES text)."""
        return png_bytes(picture)


class ImageDomain(Domain):
    """Images of shape ``(C, H, W)`` in [0, 1], C = 1 (grey) or 3 (RGB).

    ``invert_light``: an uploaded picture with a light background (dark ink on paper) is inverted
    to the data's light-on-black convention; default: for greyscale data (MNIST) only, since
    inverting colours would change them.
    """

    kind = "image"
    input_kind = "file"
    extension = "png"

    def __init__(self, shape, invert_light: bool | None = None):
        self.shape = tuple(int(s) for s in shape)
        if len(self.shape) != 3 or self.shape[0] not in (1, 3):
            raise InputError(f"an image domain needs a (1 or 3, H, W) sample shape, got {self.shape}")
        self.invert_light = self.shape[0] == 1 if invert_light is None else invert_light

    def batch(self, samples: list) -> np.ndarray:
        return np.stack([np.asarray(s, np.float32).reshape(self.shape) for s in samples])

    def render(self, sample):
        from PIL import Image

        x = np.clip(np.asarray(sample, np.float32).reshape(self.shape), 0, 1)
        pixels = (x * 255 + 0.5).astype(np.uint8)
        image = Image.fromarray(pixels[0]) if self.shape[0] == 1 else Image.fromarray(pixels.transpose(1, 2, 0))
        scale = max(1, DISPLAY // max(self.shape[1:]))
        return image.resize((self.shape[2] * scale, self.shape[1] * scale), Image.NEAREST)

    def parse_file(self, path: str | Path) -> np.ndarray:
        """Read an image file (PNG, JPEG, ...) into the domain's shape: greyscale or RGB, padded to
        a square, resized, scaled to [0, 1], inverted if its background is light."""
        from PIL import Image, UnidentifiedImageError

        name = Path(path).name
        try:
            with Image.open(path) as im:
                width, height = im.size  # from the header, before any pixel is decoded
                image = None
                if width * height <= MAX_PIXELS:
                    im.load()
                    image = im.copy()
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise InputError(
                f"could not read {name!r} as an image ({type(exc).__name__}: {exc}); upload a PNG or JPEG picture"
            ) from None
        if image is None:
            raise InputError(
                f"{name!r} is {width} x {height} pixels; upload a picture of at most "
                f"{MAX_PIXELS // 1_000_000} megapixels"
            )
        if image.width < 2 or image.height < 2:
            raise InputError(f"{name!r} is only {image.width} x {image.height} pixels; upload a real picture")
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            rgba = image.convert("RGBA")
            # transparent pixels become background: white if the visible pixels are dark, else black
            alpha = np.asarray(rgba)[..., 3]
            visible = np.asarray(rgba.convert("L"))[alpha > 0]
            fill = (255, 255, 255, 255) if visible.size and visible.mean() < 128 else (0, 0, 0, 255)
            base = Image.new("RGBA", rgba.size, fill)
            image = Image.alpha_composite(base, rgba)
        image = image.convert("L" if self.shape[0] == 1 else "RGB")
        side = max(image.size)
        square = Image.new(image.mode, (side, side), _border_colour(image))
        square.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
        square = square.resize((self.shape[2], self.shape[1]), Image.LANCZOS)
        x = np.asarray(square, np.float32) / 255.0
        x = x[None] if self.shape[0] == 1 else x.transpose(2, 0, 1)
        if self.invert_light and _border(x).mean() > 0.5:
            x = 1.0 - x
        return np.ascontiguousarray(x)


class MoleculeDomain(Domain):
    """Molecules as SMILES strings, drawn with RDKit (``pip install rdkit``).

    The backbone (a SMILES VAE) encodes a list of SMILES strings and decodes latents to a list of
    SMILES strings; a decoded string that is not a valid molecule is drawn as a message.
    """

    kind = "molecule"
    input_kind = "text"
    extension = "smi"

    def __init__(self):
        try:
            from rdkit import Chem  # noqa: F401
        except ImportError as exc:
            raise PlugenError(f"the molecule editor needs RDKit ({exc}): pip install rdkit") from None

    def batch(self, samples: list) -> list[str]:
        return [str(s) for s in samples]

    def unbatch(self, decoded) -> list:
        return [None if s is None else str(s) for s in decoded]

    def parse_text(self, text: str) -> str:
        """A canonical SMILES; :class:`InputError` if RDKit cannot parse it."""
        from rdkit import Chem, RDLogger

        text = (text or "").strip()
        if not text:
            raise InputError("type a SMILES string, e.g. CCO (ethanol) or c1ccccc1O (phenol)")
        RDLogger.DisableLog("rdApp.*")
        try:
            mol = Chem.MolFromSmiles(text)
        finally:
            RDLogger.EnableLog("rdApp.*")
        if mol is None:
            raise InputError(f"{text!r} is not a valid SMILES string (RDKit cannot parse it)")
        return Chem.MolToSmiles(mol)

    def render(self, sample):
        from PIL import Image, ImageDraw
        from rdkit import Chem, RDLogger
        from rdkit.Chem import Draw

        RDLogger.DisableLog("rdApp.*")
        try:
            mol = None if sample is None else Chem.MolFromSmiles(str(sample))
        finally:
            RDLogger.EnableLog("rdApp.*")
        if mol is None:
            image = Image.new("RGB", (DISPLAY * 3 // 2, DISPLAY), "white")
            what = "the decoder gave no valid molecule" if sample is None else f"not a valid molecule:\n{sample}"
            ImageDraw.Draw(image).text((10, DISPLAY // 2), what, fill="black")
            return image
        return Draw.MolToImage(mol, size=(DISPLAY * 3 // 2, DISPLAY))

    def text(self, sample) -> str:
        return "" if sample is None else str(sample)

    def measure(self, sample, names) -> dict[str, float]:
        """RDKit's logP, TPSA, SAS and QED of the molecule, for those of ``names`` that are
        properties (the labels of the molecule plugins)."""
        try:
            from plugen.molecules.properties import PROPERTIES, mol_from_smiles, mol_properties, quiet_rdkit
        except ImportError:
            return {}
        which = [n for n in names if n in PROPERTIES]
        quiet_rdkit()
        mol = mol_from_smiles(sample) if which else None
        return {} if mol is None else mol_properties(mol, which)

    def download(self, sample, picture) -> bytes:
        if sample is None:
            raise InputError("there is no valid molecule to download")
        return (str(sample) + "\n").encode()


def png_bytes(picture) -> bytes:
    """A PIL image as PNG bytes."""
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def _border(x: np.ndarray) -> np.ndarray:
    """The outermost pixels of a (C, H, W) array."""
    return np.concatenate([x[:, 0, :].ravel(), x[:, -1, :].ravel(), x[:, :, 0].ravel(), x[:, :, -1].ravel()])


def _border_colour(image):
    """The median colour of an image's outermost pixels (used to pad it to a square)."""
    a = np.asarray(image)
    a = a[..., None] if a.ndim == 2 else a
    edge = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    colour = np.median(edge, axis=0).astype(int)
    return int(colour[0]) if image.mode == "L" else tuple(int(c) for c in colour)
