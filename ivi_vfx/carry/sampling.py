"""Carried pixels at full resolution: each one sampled from its source frame's own file.

The chains are traced at working resolution; a full-resolution pixel of the matte takes the
chains of the working pixel it lies in, moved by its offset inside that pixel (the background's
motion is smooth at that scale), and samples each source frame there with a bicubic kernel, so
that a 4K plate's carried pixels keep the grain and detail of the frame they come from. A
locked-off shot's chains land on whole pixels, where the kernel returns the pixel itself.
"""
from __future__ import annotations

from collections import OrderedDict

import cv2
import numpy as np
import torch

from ivi_vfx.carry.flow import sample
from ivi_vfx.carry.store import Carry
from ivi_vfx.color import Shaper
from ivi_vfx.io.exr import ExrImage, read_exr
from ivi_vfx.io.sequence import FrameSequence

CONFIDENCE = "confidence.Y"
"""The output channel of the fill's confidence: 1 = the plate's own pixel or one carried along a
consistent chain, lower where the chain was weaker, 0 = invented by the network."""
TRUST = 0.5
"""A carried pixel whose confidence is at least this is known data for the network, and its value
replaces the fill; below it, the network fills the pixel and the confidence channel says how weak
the chain was."""
MIX_FROM = 0.3
"""Below TRUST down to this confidence, the output is the carried value and the network's fill in
equal parts: there each alone is about as far from the truth, and their errors differ."""
MIX = 0.5
"""The carried value's share of the output between MIX_FROM and TRUST."""
OWN_FILL_SIGMA = 1.5
"""Width (working pixels) of the Gaussian that parts a carried pixel's low frequencies, weighed against
the network's own fill of the whole matte by the chain's confidence, from its detail (the source
frame's grain), which stays the carried value's. Measured on davis_bmx_objswan, docs/results.md."""
CACHE_FRAMES = 6
"""Decoded source frames kept while rendering a run of frames (neighbours share their sources)."""


class CarrySampler:
    """Puts a job's carried pixels into rendered frames at full resolution, and adds the confidence channel."""

    def __init__(self, carry: Carry | None, plate: FrameSequence, clean: FrameSequence | None = None,
                 shaper: Shaper | None = None):
        """
        Args:
            carry: the job's carry (None: nothing carried; frames get the confidence channel alone).
            plate: the plate sequence over every frame the carry holds (sources may lie outside a chunk).
            clean: the clean reference sequence, for the carry's clean frames.
            shaper: the shot's network domain, where a carried value is weighed against the network's
                own fill (`blend`'s `own`); needed only with it.
        """
        self.carry = carry
        self.plate = plate
        self.clean = clean
        self.shaper = shaper
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()

    def _source(self, s: int) -> np.ndarray:
        """(H, W, 3) float32 scene-linear picture of shot index s over the display window (non-finite -> 0)."""
        if s in self._cache:
            self._cache.move_to_end(s)
            return self._cache[s]
        assert self.carry is not None
        frame = self.carry.frames[s]
        seq = self.clean if s in self.carry.clean and self.clean is not None else self.plate
        picture = np.nan_to_num(read_exr(seq.path(frame)).display(("R", "G", "B")), nan=0.0, posinf=0.0, neginf=0.0)
        self._cache[s] = picture
        if len(self._cache) > CACHE_FRAMES:
            self._cache.popitem(last=False)
        return picture

    def blend(self, original: ExrImage, frame: int, pixels: np.ndarray, names: tuple[str, ...],
              own: np.ndarray | None = None,
              agreement: np.ndarray | None = None) -> tuple[np.ndarray, tuple[str, ...]]:
        """Carry frame `frame`'s pixels into a composited frame, and add the confidence channel.

        Args:
            original: the plate frame as read (its windows).
            pixels: (h, w, c) float32 over the data window, as composited (alpha 'A' = the matte).
            names: the channel names of `pixels`.
            own: (h, w, 3) float32 scene-linear RGB over the data window: the network's own fill of the
                whole matte, made without the carried pixels (None: the carried values stand as they are).
            agreement: (h, w, 3) float32 network-domain correction over the data window, added to the
                matte's pixels under confidence 1 (carry.agreement: the neighbouring frames' fills).

        Returns:
            The pixels with the carried values blended over the fill inside the matte (by their
            confidence), their low frequencies weighed against `own` (`_weigh`) and made to agree with
            the neighbours (`agreement`), and `confidence.Y` added (or replaced); everything outside the
            matte as it was.
        """
        matte = pixels[..., names.index("A")] > 0
        confidence = np.ones(matte.shape, np.float32)
        confidence[matte] = 0.0
        carry = self.carry
        if carry is not None and frame in carry.frames and matte.any():
            t = carry.frames.index(frame)
            rest = self._still_into(original, t, pixels, names, matte, confidence)
            if rest.any():
                self._carry_into(original, t, pixels, names, rest, confidence)
            if own is not None:
                self._weigh(original, pixels, names, matte, confidence, own)
            if agreement is not None:
                self._agree(pixels, names, matte & (confidence < 1.0), agreement)
        out_names = list(names)
        if CONFIDENCE in out_names:
            pixels = pixels.copy()
            pixels[..., out_names.index(CONFIDENCE)] = confidence
            return pixels, tuple(out_names)
        return np.concatenate([pixels, confidence[..., None]], axis=2), (*names, CONFIDENCE)

    def _carry_into(self, original: ExrImage, t: int, pixels: np.ndarray, names: tuple[str, ...],
                    matte: np.ndarray, confidence: np.ndarray) -> None:
        """Blend frame t's carried pixels into `pixels` and `confidence` (data window), in place, over
        the (h, w) bool `matte`'s pixels."""
        assert self.carry is not None
        carry = self.carry
        hits = carry.hits[t]
        if not len(hits.points):
            return
        x, y, _, _ = original.data_window
        fx, fy, full_w, full_h = original.display_window
        h, w = carry.work
        ys, xs = np.nonzero(matte)
        px, py = xs + (x - fx), ys + (y - fy)  # display-window pixels
        on = (px >= 0) & (px < full_w) & (py >= 0) & (py < full_h)
        ys, xs, px, py = ys[on], xs[on], px[on], py[on]
        sx, sy = w / full_w, h / full_h
        u = ((px + 0.5) * sx - 0.5).astype(np.float32)  # working-resolution coordinates
        v = ((py + 0.5) * sy - 0.5).astype(np.float32)
        index = np.full(h * w, -1, np.int64)
        index[hits.points] = np.arange(len(hits.points))
        cell_x = np.clip(np.rint(u).astype(np.int64), 0, w - 1)
        cell_y = np.clip(np.rint(v).astype(np.int64), 0, h - 1)
        point = index[cell_y * w + cell_x]
        conf_work = carry.confidence(t)
        at_uv = np.stack([u, v], 1)
        conf = sample(conf_work[..., None], at_uv)[:, 0]
        # The carried value replaces the fill where the network took it as known (TRUST) and is mixed
        # with it a little below, with a ramp one working pixel wide between these regions, so that
        # no working pixel's edge shows at 4K.
        share = np.ones(h * w, np.float32)  # the carried value's share, per working pixel
        share[hits.points] = carry_share(hits.best)
        alpha = sample(share.reshape(h, w, 1), at_uv)[:, 0]
        use = (point >= 0) & (alpha > 0)
        if not use.any():
            return
        ys, xs, u, v, point, conf, alpha = ys[use], xs[use], u[use], v[use], point[use], conf[use], alpha[use]
        offset = np.stack([u - cell_x[use], v - cell_y[use]], 1)  # inside the working pixel
        weights = hits.mean_weights()[point]  # (m, K)
        total = np.zeros((len(point), 3), np.float32)
        for k in range(weights.shape[1]):
            source = hits.source[point, k]
            for s in np.unique(source[weights[:, k] > 0]):
                rows = np.nonzero((source == s) & (weights[:, k] > 0))[0]
                at = hits.pos[point[rows], k] + offset[rows]  # working coordinates in frame s
                map_x = ((at[:, 0] + 0.5) / sx - 0.5).astype(np.float32)[:, None]
                map_y = ((at[:, 1] + 0.5) / sy - 0.5).astype(np.float32)[:, None]
                values = cv2.remap(self._source(int(s)), map_x, map_y, cv2.INTER_CUBIC,
                                   borderMode=cv2.BORDER_REPLICATE)[:, 0]
                gain = np.exp(carry.exposure[t] - carry.exposure[s]).astype(np.float32)
                total[rows] += weights[rows, k, None] * values * gain
        norm = weights.sum(axis=1, keepdims=True)
        carried = total / np.maximum(norm, 1e-12)
        alpha = np.where(norm[:, 0] > 0, alpha, 0.0).astype(np.float32)
        for c, name in enumerate(("R", "G", "B")):
            channel = names.index(name)
            pixels[ys, xs, channel] = alpha * carried[:, c] + (1.0 - alpha) * pixels[ys, xs, channel]
        confidence[ys, xs] = np.where(alpha > 0, conf, 0.0)

    def _weigh(self, original: ExrImage, pixels: np.ndarray, names: tuple[str, ...], matte: np.ndarray,
               confidence: np.ndarray, own: np.ndarray) -> None:
        """Weigh the low frequencies of the matte's carried pixels against the network's own fill, in place.

        A carried pixel is one estimate of what the matte hides, the network's fill of the whole matte
        (which never saw the carried values) another, and where a chain is weaker the two err apart:
        a weaker chain is more often carried from the wrong thing (a figure that crossed behind the
        matte, where the chain followed the background). Each such pixel becomes, in the network
        domain, `carried + (1 - confidence) * G(own - carried)`, G a Gaussian of OWN_FILL_SIGMA
        working pixels over the matte: its low frequencies are the confidence-weighted mean of the
        two, its detail and grain stay the source frame's. Pixels of confidence 1 (the still
        background, the best chains) and invented ones (0) are left as they are.

        Args:
            pixels: (h, w, c) float32 over the data window, the carried values in; `names` its channels.
            matte, confidence: (h, w) over the data window.
            own: (h, w, 3) float32 scene-linear RGB over the data window.
        """
        assert self.carry is not None and self.shaper is not None
        weight = np.where(matte & (confidence > 0), 1.0 - confidence, 0.0).astype(np.float32)
        if not (weight > 0).any():
            return
        _, _, full_w, _ = original.display_window
        sigma = OWN_FILL_SIGMA * full_w / self.carry.work[1]  # working pixels -> plate pixels
        reach = int(np.ceil(4 * sigma)) + 1  # OpenCV's float kernel ends at 4 sigma
        ys, xs = np.nonzero(matte)
        h, w = matte.shape
        box = (slice(max(ys.min() - reach, 0), min(ys.max() + reach + 1, h)),
               slice(max(xs.min() - reach, 0), min(xs.max() + reach + 1, w)))
        inside, change = matte[box], weight[box] > 0
        share = weight[box][change]
        region = pixels[box]  # a view: written in place
        for c, name in enumerate(("R", "G", "B")):  # a channel at a time: at 4K a box of the frame is large
            channel = region[..., names.index(name)]
            mine = self.shaper.encode(torch.from_numpy(np.ascontiguousarray(channel))).numpy()
            theirs = self.shaper.encode(torch.from_numpy(np.ascontiguousarray(own[box][..., c]))).numpy()
            low = cv2.GaussianBlur(np.where(inside, theirs - mine, 0.0).astype(np.float32), (0, 0), sigma)
            channel[change] = self.shaper.decode(torch.from_numpy(mine[change] + share * low[change])).numpy()

    def _agree(self, pixels: np.ndarray, names: tuple[str, ...], where: np.ndarray, agreement: np.ndarray) -> None:
        """Add the network-domain `agreement` (h, w, 3) to the pixels of `where` (h, w), in place."""
        assert self.shaper is not None
        if not where.any():
            return
        for c, name in enumerate(("R", "G", "B")):
            channel = pixels[..., names.index(name)]  # a view: written in place
            mine = self.shaper.encode(torch.from_numpy(channel[where]))
            channel[where] = self.shaper.decode(mine + torch.from_numpy(agreement[..., c][where])).numpy()

    def _still_into(self, original: ExrImage, t: int, pixels: np.ndarray, names: tuple[str, ...],
                    matte: np.ndarray, confidence: np.ndarray) -> np.ndarray:
        """Put the still background of frame t's locked-off run into the matte's pixels that the run
        shows, in place (the mean of every frame that shows them: the chains' few hits are not needed).

        Returns:
            (h, w) bool: the matte's pixels left for the chains.
        """
        assert self.carry is not None
        still = next((s for s in self.carry.stills if s.holds(t)), None)
        if still is None:
            return matte
        x, y, _, _ = original.data_window
        fx, fy, _, _ = original.display_window
        x0, y0, x1, y1 = still.box
        ys, xs = np.nonzero(matte)
        px, py = xs + (x - fx) - x0, ys + (y - fy) - y0  # in the still's box
        inside = (px >= 0) & (px < x1 - x0) & (py >= 0) & (py < y1 - y0)
        ys, xs, px, py = ys[inside], xs[inside], px[inside], py[inside]
        shown = still.count[py, px] > 0
        ys, xs, px, py = ys[shown], xs[shown], px[shown], py[shown]
        gain = np.exp(self.carry.exposure[t]).astype(np.float32)  # from the first frame's exposure to this one's
        for c, name in enumerate(("R", "G", "B")):
            pixels[ys, xs, names.index(name)] = still.mean[py, px, c] * gain[c]
        confidence[ys, xs] = 1.0
        rest = matte.copy()
        rest[ys, xs] = False
        return rest


def carry_share(best: np.ndarray) -> np.ndarray:
    """(n,) float32 share of the carried value in the output, for pixels whose best chain weighs `best` (n,)."""
    return np.where(best >= TRUST, 1.0, np.where(best >= MIX_FROM, MIX, 0.0)).astype(np.float32)
