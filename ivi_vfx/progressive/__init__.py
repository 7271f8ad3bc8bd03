"""Progressive high-resolution inpainting: finer scales on top of the working-resolution fill.

The generator trains and fills at a working resolution (a few hundred pixels); scaled up to a 2K
or 4K plate, its fill is soft beside the grain around it. The paper's answer (section 4.1) was
never released (shared/research/paper_impl.md section 4); this is ours:

1. Scales. From the working resolution up to the full one, in steps of at most `max_step`
   (a 4K plate over a 256-pixel working size: about 1/4, then 1). Scale 0 is the working one.
2. One small residual network per finer scale (`DetailNet`, nets/detail.py): it sees the upsampled coarser fill
   (the prior), the plate with the hole cut out, and the hole, and adds the detail the prior
   lacks. Its last layer starts at zero, so before any training it returns the prior exactly.
3. Training on patches of the plate at that scale, drawn mostly around the matte's boundary
   (the paper's boundary-aware sampling): there the known pixels are the texture the hole must
   continue. A patch's prior is the patch itself, scaled down by the step to the coarser scale
   and back up (what an ideal coarser fill would be); its training hole is another frame's matte
   near its boundary (or the whole patch), and the L1 loss counts the hole minus the frame's own
   matte (where the truth is unknown), as the reference recipe does.
4. Inference over a grid of overlapping tiles (tiles.py), only those touching the matte, each
   seeing a halo as wide as the network's receptive field and blended without seams. The prior
   of a tile is sampled from the coarser scale's fill for that tile only.

Memory does not grow with resolution times length: the plate stays on disk and each frame is read
when needed (through io/exr.py); training keeps, per frame and scale, only the matte's
neighbourhood as float16; the finest scale is never held as a whole frame beyond the frame
read and its composite. GPU memory is bounded by the patch and tile sizes.

Scales are laid over the plate's DATA window, so overscan (a data window larger than the display
window) is filled like the rest: the working-resolution prior, which covers the display window,
extends into it by repeating its edge, and the finer scales fill it from the plate around.


Boxes are (y0, y1, x0, x1), half-open; an "abs" box is in the plate's absolute pixel coordinates.

Modules (each depends only on those above it):

- scales.py: planning the scales, a level's size, resampling between boxes, `Level`, and reading
  a frame's plate and matte at a scale.
- patches.py: training: the matte neighbourhoods kept per scale, boundary-aware patches, and one
  DetailNet trained per scale (`fit_levels`).
- fill.py: inference: the working-resolution prior, each scale over its tiles, the composite
  (`Progressive`).
- store.py: the trained scales' file (scales.ckpt): `save_levels`, `load_levels`, `levels_current`.

This package's face is the five names below, which pipeline.py uses (`progressive.<name>`); other
names are imported from their modules.
"""
from __future__ import annotations

from ivi_vfx.progressive.fill import Progressive
from ivi_vfx.progressive.patches import fit_levels
from ivi_vfx.progressive.store import levels_current, load_levels, save_levels

__all__ = ["Progressive", "fit_levels", "levels_current", "load_levels", "save_levels"]
