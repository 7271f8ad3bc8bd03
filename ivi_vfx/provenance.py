"""What an output frame says about itself: provenance attributes, and what was not filled (the layer policy).

The renderer writes every clean-plate frame through `write_frame`, which adds to the plate's header
(kept as it was otherwise, see io/exr.py):

- `Software` = ``IVI-VFX <version>`` (the plate's own goes to `ivi:inputSoftware`), and no hash of the
  input (a Nuke `node_hash` copied over would tell Nuke the output is the input);
- `ivi:version`, `ivi:source` (the plate frame), `ivi:job` (the job folder), `ivi:checkpoint` (sha256
  of the model checkpoint that made the fill) and `ivi:checkpointStep`;
- `DateTime` (EXR's capDate) the plate's own, or, when it has none, the plate file's modification time
  (io.exr.output_spec);
- the layer policy (docs/reliability.md): only R, G and B are filled, and A is the matte. Other layers
  of the frame (AOVs: Z, N, motion, IDs) and the frame's other parts are left as they were, the object
  still inside the matte there; `ivi:unfilled` names them, and `ivi:layerPolicy` says so in words.

Nothing in them depends on the time or the machine, so a frame rendered again from the same job folder
has the same bytes.
"""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence

import numpy as np
import OpenImageIO as oiio
from torch import nn

from ivi_vfx import __version__
from ivi_vfx.io.exr import ExrImage, other_parts, output_spec, write_exr

logger = logging.getLogger(__name__)

FILLED = ("R", "G", "B")
"""The channels the fill replaces inside the matte."""
MATTE = "A"
"""The channel that holds the matte that was filled (replaced everywhere)."""
LAYER_POLICY = ("R, G and B are filled inside the matte and A is the matte; the channels in ivi:unfilled "
                "(other layers and parts) are left as they were: the object is still there inside the matte")
"""ivi:layerPolicy: what happened to each channel of the plate."""
_HASH = re.compile(r"(^|[/:._])(node_?hash|hash|md5|sha1|sha256|imagesha1)$", re.IGNORECASE)
"""Header attributes that identify the input's pixels (Nuke's nuke/node_hash, oiio:ImageSHA1): dropped."""


def unfilled(original: ExrImage, parts: Sequence[oiio.ImageSpec] = ()) -> list[str]:
    """The plate's channels that the output leaves as they were: its first part's beyond R, G, B and A,
    and every channel of its other parts (as ``part/channel``)."""
    names = [n for n in original.channel_names if n not in (*FILLED, MATTE)]
    for index, spec in enumerate(parts, start=1):
        part = _text(spec, "oiio:subimagename") or f"part{index}"
        names += [f"{part}/{n}" for n in spec.channelnames]
    return names


def frame_header(original: ExrImage, channel_names: Sequence[str], model: nn.Module | None = None,
                 parts: Sequence[oiio.ImageSpec] = ()) -> oiio.ImageSpec:
    """The output header of one frame: io.exr.output_spec, with the provenance and the layer policy.

    Args:
        original: the plate frame as read.
        channel_names: the output's channels (the plate's, A, and what the renderer adds).
        model: the generator that made the fill; its `source` (set by train.load_model) names the
            checkpoint. None, or a model not loaded from a checkpoint, writes no checkpoint attributes.
        parts: the plate frame's other parts (io.exr.other_parts), which pass through.
    """
    spec = output_spec(original.spec, channel_names, source=original.path)
    for attrib in list(spec.extra_attribs):
        name = _name(attrib)
        if name is not None and _HASH.search(name):
            spec.erase_attribute(name)
    software = _text(original.spec, "Software")
    if software and not software.startswith("IVI-VFX"):
        spec.attribute("ivi:inputSoftware", software)
    spec.attribute("Software", f"IVI-VFX {__version__}")
    spec.attribute("ivi:version", __version__)
    spec.attribute("ivi:source", os.fspath(original.path))
    source = getattr(model, "source", None) or {}
    for key, attribute in (("job", "ivi:job"), ("sha256", "ivi:checkpoint")):
        if source.get(key):
            spec.attribute(attribute, str(source[key]))
    if source.get("step") is not None:
        spec.attribute("ivi:checkpointStep", int(source["step"]))
    spec.attribute("ivi:unfilled", ",".join(unfilled(original, parts)))
    spec.attribute("ivi:layerPolicy", LAYER_POLICY)
    return spec


def write_frame(path: str | os.PathLike[str], original: ExrImage, pixels: np.ndarray,
                channel_names: Sequence[str], *, model: nn.Module | None = None, overwrite: bool = False) -> None:
    """Write one clean-plate frame: `pixels` (the composite, over the plate's data window) as the first
    part, with `frame_header`'s attributes, then the plate frame's other parts as they are; atomic."""
    parts = other_parts(original.path) if original.spec.get_int_attribute("oiio:subimages", 1) > 1 else []
    header = frame_header(original, channel_names, model, parts)
    write_exr(path, pixels, header, overwrite=overwrite, parts_from=original.path if parts else None)


def _text(spec: oiio.ImageSpec, name: str) -> str:
    """A string attribute, '' when absent or not valid text (a damaged header)."""
    try:
        text = str(spec.get_string_attribute(name, ""))
        text.encode("utf-8")
        return text
    except UnicodeError:
        return ""


def _name(attrib: oiio.ParamValue) -> str | None:
    """An attribute's name, None when it is not valid text."""
    try:
        name = str(attrib.name)
        name.encode("utf-8")  # the bindings may hand back surrogate escapes for bytes that are not UTF-8
        return name
    except UnicodeError:
        return None
