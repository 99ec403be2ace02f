"""Hostile (forging the result channel): on import it writes forged "results" into every socket and pipe it can
find (the old JSON-lines events, then a frame announcing a 2 GB payload), and writes a fake temporary database
with a perfect completed run into its working folder.

Expected: rejected (check ``protocol``: the parent reads only frames it asked for, no larger than it allows);
no row anywhere.
"""

import json
import os
import sqlite3
import stat
import struct

import torch
from torch import nn

from arena import ArchConfig, arch_spec

FAKE = {"event": "done", "runs": [{"run_id": 1, "task": "counter-chain", "score": 1.0}], "ok": True, "score": 1.0}
for fd in range(3, 256):
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        continue
    if stat.S_ISSOCK(mode) or stat.S_ISFIFO(mode):
        head = json.dumps(FAKE).encode()
        try:
            os.write(fd, head + b"\n")
            os.write(fd, struct.pack("<II", len(head), 2**31) + head)
        except OSError:
            pass
try:
    db = sqlite3.connect("suite.db")
    db.execute("create table if not exists runs (id integer primary key, arch text, score real, status text)")
    db.execute("insert into runs (arch, score, status) values ('forge-channel', 1.0, 'completed')")
    db.commit()
except Exception:
    pass


class Cfg(ArchConfig):
    pass


class Shift(nn.Module):
    def __init__(self, d_model: int, layer_idx: int, cfg: Cfg):
        super().__init__()
        self.now = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.now(x)


@arch_spec("forge-channel", kind="mixer", config=Cfg, params=lambda d, cfg: d * d,
           flops=lambda d, cfg, t: 2.0 * d * d, state_size=lambda d, cfg, t: 0)
def build(d_model: int, layer_idx: int, cfg: Cfg) -> nn.Module:
    return Shift(d_model, layer_idx, cfg)
