"""Hostile (process escape): on import it double-forks a daemon in a new session that ignores every catchable
signal and lives forever (named ``arena-hostile-d`` so the test can find it by pid), floods stdout with 8 MB,
and then hangs in every training-sized forward so that only the time limit (or Ctrl-C) ends the submission.

Expected: stopped at the time limit (or by SIGINT to ``arena submit``) with no process left alive, and the
parent's log buffer capped at 1 MB.
"""

import ctypes
import os
import signal
import sys
import time

import torch
from torch import nn

from arena import ArchConfig, arch_spec


def _daemon() -> None:
    if os.fork():
        return
    os.setsid()
    if os.fork():
        os._exit(0)
    ctypes.CDLL(None).prctl(15, b"arena-hostile-d", 0, 0, 0)  # PR_SET_NAME
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
        signal.signal(sig, signal.SIG_IGN)
    while True:
        time.sleep(1)


_daemon()
sys.stdout.write(("x" * 1023 + "\n") * 8192)
sys.stdout.flush()


class Cfg(ArchConfig):
    pass


class Stuck(nn.Module):
    def __init__(self, d_model: int, layer_idx: int, cfg: Cfg):
        super().__init__()
        self.now = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        while x.shape[0] >= 8:
            time.sleep(1)
        return self.now(x)


@arch_spec("daemon", kind="mixer", config=Cfg, params=lambda d, cfg: d * d, flops=lambda d, cfg, t: 2.0 * d * d,
           state_size=lambda d, cfg, t: 0)
def build(d_model: int, layer_idx: int, cfg: Cfg) -> nn.Module:
    return Stuck(d_model, layer_idx, cfg)
