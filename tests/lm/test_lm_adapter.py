"""ArenaLM against direct computations from the model's logits: log-likelihoods (empty context, leading-space
continuations, truncated long contexts), batch-size invariance, is_greedy, rolling windows and generation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

pytest.importorskip("lm_eval")

from lm_eval.api.instance import Instance  # noqa: E402

from arena.api import ModelShape  # noqa: E402
from arena.blocks import build_model  # noqa: E402
from arena.lm_eval_adapter import ArenaLM, windows  # noqa: E402
from arena.registry import get_arch  # noqa: E402
from arena.tasks.lm.data import CharTokenizer  # noqa: E402

TEXT = "The quick brown fox jumps over the lazy dog. Who should Derek hug after shocking Richard?\n"
W = 24  # model context (BOS included): short, so truncation and rolling windows are exercised


def req(kind: str, *args) -> Instance:
    return Instance(request_type=kind, doc={}, arguments=args, idx=0)


@pytest.fixture(scope="module")
def tok() -> CharTokenizer:
    return CharTokenizer.from_text(TEXT)


@pytest.fixture(scope="module", params=["transformer", "rnn"])
def model(request, tok) -> nn.Module:
    torch.manual_seed(0)
    arch = get_arch(request.param)
    cfg_data = {"max_seq_len": W} if "max_seq_len" in arch.config.model_fields else {}
    cfg = arch.config.model_validate(cfg_data)
    m = build_model(arch, ModelShape(vocab_size=tok.size, d_model=32, n_layers=2, max_seq_len=W), cfg)
    with torch.no_grad():  # a sharper random model, so argmax/greedy decisions are not ties
        for p in m.parameters():
            if p.dim() >= 2:
                p.mul_(8.0)
    return m.eval()


@torch.no_grad()
def direct(model: nn.Module, tok: CharTokenizer, ctx: str, cont: str) -> tuple[float, bool]:
    """One sequence, no batching: BOS + the last W-1 characters before the final one, read off the logits."""
    seq = tok.encode(ctx) + tok.encode(cont)
    n = len(tok.encode(cont))
    assert n <= W
    window = seq[-W:]
    x = torch.tensor([[tok.bos_id] + window[:-1]])
    logp = F.log_softmax(model(x)[0].double(), -1)
    tgt = torch.tensor(window[-n:])
    rows = logp[-n:]
    return float(rows[torch.arange(n), tgt].sum()), bool((rows.argmax(-1) == tgt).all())


CASES = [("", " The quick"), ("", "T"), ("The quick", " brown"), ("The quick brown", " fox jumps"),
         ("Who should", " Derek hug after"), ("x", "y"), ("The quick brown fox jumps over the lazy", " dog."),
         ("", ""), ("Derek ~ unknown € chars", " hug")]


def test_loglikelihood_equals_direct_computation(model, tok):
    lm = ArenaLM(model, tok, max_len=W, batch_size=4)
    got = lm.loglikelihood([req("loglikelihood", c, x) for c, x in CASES])
    for (ctx, cont), (lp, greedy) in zip(CASES, got, strict=True):
        if cont == "":
            assert (lp, greedy) == (0.0, True)
            continue
        want_lp, want_greedy = direct(model, tok, ctx, cont)
        assert lp == pytest.approx(want_lp, abs=1e-5), (ctx, cont)
        assert greedy == want_greedy
        assert lp < 0


@torch.no_grad()
def test_empty_context_is_conditioned_on_bos(model, tok):
    lm = ArenaLM(model, tok, max_len=W)
    (lp, _), = lm.loglikelihood([req("loglikelihood", "", " ")])
    logp = F.log_softmax(model(torch.tensor([[tok.bos_id]]))[0, 0].double(), -1)
    assert lp == pytest.approx(float(logp[tok.encode(" ")[0]]), abs=1e-6)


def test_leading_space_continuation_obeys_the_chain_rule(model, tok):
    lm = ArenaLM(model, tok, max_len=W)
    (whole, _), (space, _), (word, _) = lm.loglikelihood([
        req("loglikelihood", "The quick", " brown"), req("loglikelihood", "The quick", " "),
        req("loglikelihood", "The quick ", "brown")])
    assert whole == pytest.approx(space + word, abs=1e-5)


def test_unknown_characters_map_to_unk(tok):
    assert tok.encode("a€b")[1] == tok.unk_id
    assert tok.decode(tok.encode("a€b")) == "a\ufffdb"
    assert tok.encode("") == []


def test_batch_size_does_not_change_scores(model, tok):
    reqs = [req("loglikelihood", TEXT[: 3 * i % 50], TEXT[3 * i % 50 : 3 * i % 50 + 1 + i % 13]) for i in range(29)]
    reqs += [req("loglikelihood", "", " " + TEXT[i:].split(".")[0][:W]) for i in range(0, 40, 7)]
    one = ArenaLM(model, tok, max_len=W, batch_size=1).loglikelihood(reqs)
    eight = ArenaLM(model, tok, max_len=W, batch_size=8).loglikelihood(reqs)
    for (a, ga), (b, gb) in zip(one, eight, strict=True):
        assert abs(a - b) < 1e-5 and ga == gb
    texts = [req("loglikelihood_rolling", TEXT[i:]) for i in (0, 11, 40, 77)]
    r1 = ArenaLM(model, tok, max_len=W, batch_size=1).loglikelihood_rolling(texts)
    r8 = ArenaLM(model, tok, max_len=W, batch_size=8).loglikelihood_rolling(texts)
    assert max(abs(a - b) for a, b in zip(r1, r8, strict=True)) < 1e-5


@torch.no_grad()
def test_rolling_covers_every_character_once(model, tok):
    lm = ArenaLM(model, tok, max_len=W, batch_size=3)
    (short,) = lm.loglikelihood_rolling([req("loglikelihood_rolling", TEXT[:W])])
    (as_ll, _), = lm.loglikelihood([req("loglikelihood", "", TEXT[:W])])
    assert short == pytest.approx(as_ll, abs=1e-6)
    # a longer text: chunks of W characters, each read from BOS; the last chunk with the full preceding context
    ids = tok.encode(TEXT)
    total = 0.0
    for a in range(0, len(ids), W):
        b = min(a + W, len(ids))
        start = max(0, b - W)
        x = torch.tensor([[tok.bos_id] + ids[start : b - 1]])
        logp = F.log_softmax(model(x)[0].double(), -1)
        total += float(sum(logp[j - start, ids[j]] for j in range(a, b)))
    (rolled,) = lm.loglikelihood_rolling([req("loglikelihood_rolling", TEXT)])
    assert rolled == pytest.approx(total, abs=1e-5)
    assert lm.rolling_logprob(TEXT) == (pytest.approx(total, abs=1e-5), len(ids))


def test_windows_score_each_position_exactly_once():
    seq = list(range(3, 40))
    for n_pred in (1, 5, 37):
        for stride in (None, 1, 4):
            pieces = windows(seq, n_pred, 1, 8, stride)
            scored = [t for p in pieces for t in p.tgt[len(p.tgt) - p.n :]]
            assert scored == seq[-n_pred:]
            assert all(p.inp[0] == 1 and len(p.inp) == len(p.tgt) <= 8 and p.inp[1:] == p.tgt[:-1] for p in pieces)


class Successor(nn.Module):
    """A hand-built causal model: after character c it puts almost all mass on the next character in ``order``."""

    def __init__(self, tok: CharTokenizer, order: str):
        super().__init__()
        V = tok.size
        table = torch.full((V, V), -4.0)
        ids = tok.encode(order)
        for a, b in zip(ids, ids[1:], strict=False):
            table[a, b] = 4.0
        table[tok.bos_id, ids[0]] = 4.0
        self.table = nn.Parameter(table)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.table[x]


def test_is_greedy_and_generation_on_a_constructed_model():
    tok = CharTokenizer.from_text("abcdefgh xyz")
    lm = ArenaLM(Successor(tok, "abcdefgh"), tok, max_len=6, batch_size=2)
    res = lm.loglikelihood([req("loglikelihood", "a", "bcd"), req("loglikelihood", "a", "bce"),
                            req("loglikelihood", "", "abc"), req("loglikelihood", "abcdefg", "h")])
    assert [g for _, g in res] == [True, False, True, True]
    V = tok.size
    p_hit = 4.0 - math.log(math.exp(4.0) + (V - 1) * math.exp(-4.0))
    p_miss = -4.0 - math.log(math.exp(4.0) + (V - 1) * math.exp(-4.0))
    assert res[0][0] == pytest.approx(3 * p_hit, abs=1e-5)
    assert res[1][0] == pytest.approx(2 * p_hit + p_miss, abs=1e-5)
    gens = lm.generate_until([req("generate_until", "a", {"until": ["e"], "max_gen_toks": 10}),
                              req("generate_until", "abc", {"until": [], "max_gen_toks": 3}),
                              req("generate_until", "", {"until": "d", "max_gen_toks": 50}),
                              req("generate_until", "c", {"until": ["\n\n"], "max_gen_toks": 2})])
    assert gens == ["bcd", "def", "abc", "de"]
