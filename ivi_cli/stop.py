"""SIGTERM as a polled flag: the engine checks it between steps and frames, checkpoints and stops."""
from __future__ import annotations

import logging
import signal
from types import FrameType


class StopFlag:
    """Set by SIGTERM (a farm's pre-emption, Nuke's cancel); the engine polls it between steps and frames."""

    def __init__(self) -> None:
        self.raised = False

    def __call__(self) -> bool:
        return self.raised

    def install(self) -> StopFlag:
        """Catch SIGTERM from now on; returns self, so a command writes `stop = StopFlag().install()`."""
        def handler(signum: int, frame: FrameType | None) -> None:
            logging.getLogger("ivi_render").warning("SIGTERM: stopping after the current step")
            self.raised = True
        signal.signal(signal.SIGTERM, handler)
        return self
