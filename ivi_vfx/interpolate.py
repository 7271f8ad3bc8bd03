"""Smooth interpolation of a field into where it is unknown (the carry's flow, the fill's edge)."""
from __future__ import annotations

import cv2
import numpy as np


def smooth_fill(field: np.ndarray, known: np.ndarray) -> np.ndarray:
    """(h, w, c) `field` with its unknown pixels replaced by a smooth interpolation of the known ones.

    Normalised convolution at growing widths (push-pull): each unknown pixel takes the narrowest
    Gaussian average that holds enough known pixels. What it fills is noisy where it is known
    (a flow measured on grain, a network's error on grain), so the fill is smooth rather than a
    copy of the nearest noisy value.

    Args:
        field: (h, w, c) float32; known: (h, w) bool.
    """
    weight = known.astype(np.float32)
    out = field.copy()
    todo = ~known
    sigma = 2.0
    while todo.any() and sigma <= 4 * max(field.shape[:2]):
        w = cv2.GaussianBlur(weight, (0, 0), sigma)
        enough = todo & (w > 0.05)
        if enough.any():
            for c in range(field.shape[2]):
                v = cv2.GaussianBlur(np.ascontiguousarray(field[..., c] * weight), (0, 0), sigma)
                out[..., c][enough] = v[enough] / w[enough]
            todo &= ~enough
        sigma *= 2
    out[todo] = 0.0
    return out
