"""The submission machinery's small parts, without a sandbox: the bounded protocol, the capped log, names, the
parent's parameter count and causality comparison."""

from __future__ import annotations

import os
import socket
import struct
import threading
import time

import pytest
import torch

from arena.submit import protocol
from arena.submit.resolve import check_name, names_taken
from arena.submit.sandbox import LOG_LIMIT, LogTail, printable
from arena.submit.verify import Rejected, check_trained, compare_prefix, count_params, read_weights, scramble_after


def test_an_oversize_frame_is_refused_before_its_payload_is_read():
    a, b = socket.socketpair()
    a.sendall(struct.pack("<II", 2, 2**31) + b"{}")  # announces 2 GB, sends nothing of it
    with pytest.raises(protocol.ProtocolError, match="exceeds"):
        protocol.recv(b, max_payload=1024, deadline=time.monotonic() + 5)
    a.sendall(struct.pack("<II", protocol.HEADER_LIMIT + 1, 0))
    with pytest.raises(protocol.ProtocolError, match="header"):
        protocol.recv(b, max_payload=0, deadline=time.monotonic() + 5)


def test_malformed_and_late_frames_are_protocol_errors():
    a, b = socket.socketpair()
    a.sendall(struct.pack("<II", 3, 0) + b"[1]")
    with pytest.raises(protocol.ProtocolError, match="not a JSON object"):
        protocol.recv(b, 0, time.monotonic() + 5)
    deep = b"[" * 5000 + b"]" * 5000
    a.sendall(struct.pack("<II", len(deep), 0) + deep)
    with pytest.raises(protocol.ProtocolError):
        protocol.recv(b, 0, time.monotonic() + 5)
    t0 = time.monotonic()
    with pytest.raises(protocol.Timeout):
        protocol.recv(b, 0, time.monotonic() + 0.3)  # nothing comes: the parent's clock, not the worker, decides
    assert time.monotonic() - t0 < 3
    protocol.send(a, {"ok": True}, b"xyz")
    assert protocol.recv(b, 3, time.monotonic() + 5) == ({"ok": True}, bytearray(b"xyz"))


def test_the_log_keeps_only_the_last_megabyte():
    r, w = os.pipe()
    tail = LogTail(r)

    def flood() -> None:
        for i in range(5):
            os.write(w, bytes([65 + i]) * (1 << 20))  # 5 MB: A..E
        os.write(w, b"\x1b[31mend")
        os.close(w)

    threading.Thread(target=flood).start()
    tail.join(timeout=30)
    assert len(tail.buf) == LOG_LIMIT and tail.dropped == 5 * (1 << 20) + 8 - LOG_LIMIT
    assert tail.text().endswith("?[31mend") and printable("a\x07b") == "a?b"


def test_names_are_decided_by_the_parent(tmp_path):
    from arena.leaderboard.synthetic import add_run
    from arena.store import open_store

    assert "built-in" in check_name("rnn", "x.py", {})
    assert "kebab-case" in check_name("My_Mixer", "x.py", {}) and "kebab-case" in check_name("a" * 65, "x.py", {})
    url = f"sqlite:///{tmp_path / 'a.db'}"
    add_run(open_store(url), arch="shift-mixer", source="plugin", plugin_name="other.py", plugin_version="1")
    taken = names_taken(url)
    assert "already used by the plugin 'other.py'" in check_name("shift-mixer", "good_shift.py", taken)
    assert check_name("shift-mixer", "other.py", taken) is None  # a new version of the same plugin


def _weights(model: torch.nn.Module):
    from arena.submit.worker import pack_weights

    return read_weights(*pack_weights(model))


def test_learned_tensors_count_as_parameters_and_growth_is_refused():
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(4, 4))
    m.register_buffer("memo", torch.zeros(100))
    init = _weights(m)
    assert count_params(init) == 20
    m.memo += 1  # "learned" in a buffer: counted
    assert count_params(_weights(m), init) == 120
    with pytest.raises(Rejected, match="outside the declared parameters"):
        check_trained(init, _weights(m), 20)
    m.extra = torch.nn.Parameter(torch.zeros(3))
    with pytest.raises(Rejected, match="do not have the layout"):
        check_trained(init, _weights(m), 20)


def test_a_peek_at_the_future_is_seen_after_a_random_cut():
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(1, 9, (4, 10), generator=gen)
    cuts = torch.tensor([0, 3, 5, 8])
    x2 = scramble_after(x, cuts, 9, gen)
    after = torch.arange(10).unsqueeze(0) > cuts.unsqueeze(1)
    assert (x2[after] != x[after]).all() and (x2[~after] == x[~after]).all() and (x2 > 0).all()
    causal = lambda z: torch.nn.functional.one_hot(z, 9).float().cumsum(1)  # noqa: E731
    peeks = lambda z: torch.nn.functional.one_hot(torch.roll(z, -1, 1), 9).float()  # noqa: E731
    assert compare_prefix(causal(x), causal(x2), cuts, "causal") == 0.0
    with pytest.raises(Rejected, match="peeks ahead"):
        compare_prefix(peeks(x), peeks(x2), cuts, "peeks")


def test_a_submission_gets_the_tasks_head_choice_like_a_built_in_run():
    """nested-parity unties the output head (its labels are never input); the resolve step sizes and declares a
    plugin's model with the same head as a built-in run, so their parameters and scores are comparable."""
    from arena.registry import get_arch
    from arena.submit.worker import op_resolve

    def resolve(tie: bool) -> dict:
        h = {"size": "tiny", "vocab_size": 21, "max_seq_len": 64, "seq_len": 32, "tie_embeddings": tie}
        return op_resolve({"spec": get_arch("rnn")}, h, b"")[0]

    tied, untied = resolve(True), resolve(False)
    d = tied["d_model"]
    assert untied["params"]["total"] - tied["params"]["total"] == d * 21
    from arena.registry import get_task

    assert get_task("nested-parity").cls.tie_embeddings is False  # what the suite reads from the task it trains
    assert get_task("counter-chain").cls.tie_embeddings is True
