"""Hostile (writing the real database or the parent's folders): on import it looks for the parent through
``/proc/<ppid>/environ|cmdline|cwd`` and the environment, and tries to write a forged completed run into every
SQLite database it can name and a marker file into every folder it can name: the parent's cwd, home and temp
folders, and ``TARGETS`` (the test writes the real database's path and folders in here, as an attacker who found
them would). It reports what it reached on stderr. The model is honest.

Expected: accepted with the honest score; every write fails or lands in the worker's private scratch, so the real
database holds only the parent's rows and no marker file appears outside the scratch.
"""

import os
import sqlite3
from pathlib import Path

import torch
from torch import nn

from arena import ArchConfig, arch_spec

TARGETS: list[str] = []  # filled in by the test
MARK = "arena-hostile-escape-marker"


def _candidates() -> tuple[set[str], set[str]]:
    dbs, dirs = set(), {str(Path.home()), "/tmp", "/var/tmp", "/dev/shm", os.getcwd()}
    for pid in {os.getppid(), 1, os.getpid()}:
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            for kv in env:
                k, _, v = kv.decode(errors="replace").partition("=")
                if k in ("ARENA_DB_URL", "HOME", "PWD", "TMPDIR") and v:
                    (dbs if k == "ARENA_DB_URL" else dirs).add(v.replace("sqlite:///", "") if k == "ARENA_DB_URL" else v)
            dirs.add(os.readlink(f"/proc/{pid}/cwd"))
            for arg in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0"):
                a = arg.decode(errors="replace")
                if a.startswith("sqlite:///"):
                    dbs.add(a[len("sqlite:///"):])
        except OSError:
            pass
    for t in TARGETS:
        (dbs if t.endswith(".db") else dirs).add(t)
    return dbs, dirs


def _attack() -> None:
    dbs, dirs = _candidates()
    for path in dbs:
        try:
            con = sqlite3.connect(path, timeout=1)
            con.execute("insert into runs (arch, arch_version, arch_kind, arch_family, task, task_version, split, "
                        "seed, config, config_hash, status, score, source) values ('rnn', 1, 'mixer', 'x', "
                        "'counter-chain', 1, 'iid', 0, '{}', 'forged', 'completed', 1.0, 'builtin')")
            con.commit()
            print(f"ESCAPED: wrote a forged row into {path}", flush=True)
        except Exception as exc:
            print(f"blocked db {path}: {exc}", flush=True)
    for d in dirs:
        try:
            Path(d, MARK).write_text("escaped")
            print(f"wrote {d}/{MARK}", flush=True)
        except Exception as exc:
            print(f"blocked dir {d}: {exc}", flush=True)


_attack()


class Cfg(ArchConfig):
    pass


class Shift(nn.Module):
    def __init__(self, d_model: int, layer_idx: int, cfg: Cfg):
        super().__init__()
        self.now = nn.Linear(d_model, d_model, bias=False)
        self.prev = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.now(x) + self.prev(nn.functional.pad(x, (0, 0, 1, 0))[:, :-1])


@arch_spec("escape-fs", kind="mixer", config=Cfg, params=lambda d, cfg: 2 * d * d,
           flops=lambda d, cfg, t: 4.0 * d * d, state_size=lambda d, cfg, t: d)
def build(d_model: int, layer_idx: int, cfg: Cfg) -> nn.Module:
    return Shift(d_model, layer_idx, cfg)
