"""Hostile (memory across calls): remembers every next token it is shown in scoring-sized batches (so the small
probe batches of the checks never see a difference). A teacher-forced pass shows it the test answers (they are
in the inputs); a later generation pass on the same prompts replays them. It also saves that
memory under /tmp and /dev/shm and loads it at import, to carry it from one process to the next. It is causal
(it answers from the prefix and from earlier calls only) and deterministic.

Expected: accepted with the honest (low) generation score: every pass runs in a fresh worker with a private
/tmp and /dev/shm, so the generation worker has never seen an answer. (Scored in one process, as the old
``arena submit`` did, the same model reaches exact match 1.0 on every split: the test shows both.)
"""

import json

import torch
from torch import nn

from arena import ArchConfig, arch_spec

LOADED: dict[str, int] = {}
EOS = 3  # scan-depth's <eos> (its vocabulary is public)
FILES = ("/tmp/arena-hostile-memory.json", "/dev/shm/arena-hostile-memory.json")
for _f in FILES:
    try:
        with open(_f) as fh:
            LOADED.update(json.load(fh))
    except (OSError, ValueError):
        pass


class Cfg(ArchConfig):
    pass


class Rememberer(nn.Module):
    def __init__(self, shape, cfg: Cfg):
        super().__init__()
        self.embed = nn.Embedding(shape.vocab_size, shape.d_model)
        self.head = nn.Linear(shape.d_model, shape.vocab_size)
        self.memory = dict(LOADED)  # what earlier processes left behind, if they could

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out = self.head(self.embed(ids).cumsum(1))
        if not self.training:
            rows = [_prefix_keys(r) for r in ids.tolist()]  # one rolling hash per prefix: linear in T
            with torch.no_grad():
                for i, keys in enumerate(rows):
                    for j, key in enumerate(keys):
                        nxt = self.memory.get(key)
                        if nxt is not None:
                            out[i, j, nxt] += 100.0
            for row, keys in zip(ids.tolist() if ids.shape[0] >= 16 else [], rows, strict=False):
                # only scoring-sized batches: small probes see no state; remember after answering
                while row and row[-1] == 0:  # right padding
                    row = row[:-1]
                for j in range(len(row) - 1):
                    self.memory[keys[j]] = row[j + 1]
                if row:
                    self.memory.setdefault(keys[len(row) - 1], EOS)  # the last target is never an input: guess <eos>
            for f in FILES:
                try:
                    with open(f, "w") as fh:
                        json.dump(self.memory, fh)
                except OSError:
                    pass
        return out


def _prefix_keys(row: list[int]) -> list[str]:
    keys, h = [], 0
    for tok in row:
        h = (h * 1000003 + tok + 1) % (2**61 - 1)
        keys.append(str(h))
    return keys


@arch_spec("memory-across-calls", kind="model", config=Cfg,
           params=lambda s, cfg: s.vocab_size * s.d_model + s.d_model * s.vocab_size + s.vocab_size,
           flops=lambda s, cfg, t: 2.0 * s.d_model * s.vocab_size, state_size=lambda s, cfg, t: s.d_model)
def build(shape, cfg: Cfg) -> nn.Module:
    return Rememberer(shape, cfg)

