"""Many tiny models per step (arena.batched): a stack trains each model exactly as it would be trained alone."""

from __future__ import annotations

import pytest
import torch

from arena.batched import stack_problem, train_many
from arena.runner import build_for, prepare
from arena.spec import RunSpec
from arena.train import train

# (seed, lr, max_steps): two seeds x two learning rates, one model leaving the stack early (its own max_steps)
MEMBERS = [(0, 3e-3, 30), (1, 3e-3, 30), (0, 1e-3, 30), (1, 1e-3, 20)]


def _resolved(arch: str, seed: int, lr: float, steps: int, extra: tuple[str, ...] = (), d_model: int = 16):
    cfg = {"n_heads": 2} if arch == "transformer" else {}
    return prepare(RunSpec(arch=arch, task="counter-chain", split="iid", d_model=d_model, n_layers=2, seed=seed,
                           arch_config=cfg, task_config={"depth": 1, "n_train": 64, "n_val": 16, "n_test": 16}),
                   [f"train.lr={lr}", f"train.max_steps={steps}", "train.eval_every=10", "train.early_stop=null",
                    "train.warmup_steps=5", *extra])


def _max_diff(a: torch.nn.Module, b: torch.nn.Module) -> float:
    return max(float((p - q).detach().abs().max()) for p, q in zip(a.parameters(), b.parameters(), strict=True))


@pytest.mark.parametrize(("arch", "d_model"), [("rnn", 16), ("rnn", 8), ("transformer", 16), ("mamba", 16)])
def test_stack_equals_one_at_a_time(arch, d_model):
    """(rnn at d_model 8 takes the block-diagonal LSTM path, at 16 one LSTM call per model)."""
    res = [_resolved(arch, *m, d_model=d_model) for m in MEMBERS]
    alone = [build_for(r) for r in res]
    together = [build_for(r) for r in res]
    assert stack_problem(together, [r.spec.train for r in res]) is None
    states_alone = [train(m, r.task, r.spec.train, r.spec.seed) for m, r in zip(alone, res, strict=True)]
    states = train_many(together, [r.task for r in res], [r.spec.train for r in res], [r.spec.seed for r in res])
    for a, b, sa, sb in zip(alone, together, states_alone, states, strict=True):
        assert sb.step == sa.step
        assert _max_diff(a, b) < 1e-5
        assert [c["step"] for c in sb.curve] == [c["step"] for c in sa.curve]
        for ca, cb in zip(sa.curve, sb.curve, strict=True):
            assert cb["loss"] == pytest.approx(ca["loss"], abs=1e-5)
            assert cb["lr"] == pytest.approx(ca["lr"], rel=1e-9)
            assert cb["grad_norm"] == pytest.approx(ca["grad_norm"], rel=1e-4)
            assert cb.get("val") == ca.get("val")
    # the members really trained, and differently (distinct seeds and learning rates)
    assert _max_diff(together[0], build_for(res[0])) > 1e-3
    assert _max_diff(together[0], together[2]) > 1e-3


def test_block_diagonal_lstm_equals_one_lstm_per_model():
    """The fused LSTM of a stack (groups of models as one block-diagonal aten::lstm) gives each model the output
    and the gradients of its own nn.LSTM, and no gradient reaches another model's weights or inputs."""
    from arena.architectures.rnn import FUSE_HIDDEN, _fused_lstm, _recurrence

    h, k = 8, FUSE_HIDDEN // 8 + 1  # one full group and one model alone
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(k, 4, 7, h, generator=gen).requires_grad_(True)
    ws = [(torch.randn(k, 4 * h, h, generator=gen) / h**0.5).requires_grad_(True) for _ in range(2)]
    ws += [(0.1 * torch.randn(k, 4 * h, generator=gen)).requires_grad_(True) for _ in range(2)]
    dy = torch.randn(k, 4, 7, h, generator=gen)
    run = _recurrence("lstm")
    ref = torch.stack([run(x[j], *(w[j] for w in ws)) for j in range(k)])
    ref_grads = torch.autograd.grad(ref, [x, *ws], dy)
    out = _fused_lstm(x, *ws)
    assert (out - ref).abs().max() < 1e-6
    for g, r in zip(torch.autograd.grad(out, [x, *ws], dy), ref_grads, strict=True):
        assert (g - r).abs().max() < 1e-5 * max(1.0, float(r.abs().max()))
    for j in (0, k - 1):  # a loss on one model's output: every other model's gradient is exactly zero
        grads = torch.autograd.grad(_fused_lstm(x, *ws)[j].square().sum(), [x, *ws])
        for g in grads:
            assert float(g[j].abs().max()) > 0
            assert float(torch.cat([g[:j], g[j + 1 :]]).abs().max()) == 0.0


def test_flat_adamw_equals_torch_adamw_and_skips_parameters_without_gradients():
    """The stack's AdamW on its flat (K, N) tensor: torch.optim.AdamW per model (weight decay on matrices only,
    per-model clipping), and a parameter without a gradient keeps its weights and moments."""
    from arena.batched import _adamw, _clip, _Stack
    from arena.train import param_groups

    torch.manual_seed(0)
    models = [torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2)) for _ in range(2)]
    ref = [torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2)) for _ in range(2)]
    for r, m in zip(ref, models, strict=True):
        r.load_state_dict(m.state_dict())
    lrs, wds, clips = [1e-2, 3e-2], [0.1, 0.0], [0.5, 10.0]
    opts = [torch.optim.AdamW(param_groups(r, wd), lr=lr, betas=(0.9, 0.95)) for r, lr, wd in zip(ref, lrs, wds, strict=True)]
    stack = _Stack(models, [0, 1])
    for step in range(3):
        grads = [{n: torch.randn_like(p) for n, p in r.named_parameters()} for r in ref]
        frozen = "1.weight" if step == 2 else None  # the last step: the second layer's weight gets no gradient
        for r, g, o, c in zip(ref, grads, opts, clips, strict=True):
            o.zero_grad(set_to_none=True)
            for n, p in r.named_parameters():
                p.grad = None if n == frozen else g[n].clone()
            torch.nn.utils.clip_grad_norm_(r.parameters(), c)
            o.step()
        for n, p in stack.params.items():
            p.grad = None if n == frozen else torch.stack([g[n] for g in grads])
        flat = stack.flat_grad()
        _clip(flat, clips)
        _adamw(stack, flat, lrs, wds, (0.9, 0.95))
    for j, r in enumerate(ref):
        for n, p in r.named_parameters():
            assert (stack.params[n][j] - p).abs().max() < 1e-6, n


def test_a_stacked_checkpoint_resumes_alone(tmp_path):
    """Interrupt a stack after its step-10 checkpoint; each model then resumes alone and ends where an
    uninterrupted lone run ends (the checkpoint format is arena.train's)."""
    res = [_resolved("rnn", s, lr, 20, ("train.checkpoint_every=10",)) for s, lr, _ in MEMBERS[:2]]
    ckpts = [tmp_path / f"m{k}.pt" for k in range(2)]
    hashes = [r.config_hash for r in res]

    def stop(k, state, info):
        if state.step == 15:
            raise KeyboardInterrupt

    models = [build_for(r) for r in res]
    with pytest.raises(KeyboardInterrupt):
        train_many(models, [r.task for r in res], [r.spec.train for r in res], [r.spec.seed for r in res],
                   checkpoints=ckpts, config_hashes=hashes, on_step=stop)
    for r, ck, h in zip(res, ckpts, hashes, strict=True):
        assert torch.load(ck, weights_only=False)["state"]["step"] == 10
        resumed = build_for(r)
        st = train(resumed, r.task, r.spec.train, r.spec.seed, checkpoint=ck, resume=True, config_hash=h)
        ref = build_for(r)
        train(ref, r.task, r.spec.train, r.spec.seed)
        assert st.step == 20
        assert _max_diff(resumed, ref) < 1e-5


def test_a_lone_checkpoint_resumes_in_a_stack(tmp_path):
    res = [_resolved("transformer", s, lr, 20, ("train.checkpoint_every=10",)) for s, lr, _ in MEMBERS[:2]]
    ck = tmp_path / "m0.pt"
    r0 = res[0]

    def stop(state, info):
        if state.step == 12:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(build_for(r0), r0.task, r0.spec.train, r0.spec.seed, checkpoint=ck, config_hash=r0.config_hash,
              on_step=stop)
    models = [build_for(r) for r in res]
    states = train_many(models, [r.task for r in res], [r.spec.train for r in res], [r.spec.seed for r in res],
                        checkpoints=[ck, None], resume=True, config_hashes=[r.config_hash for r in res])
    assert [s.step for s in states] == [20, 20]
    for m, r in zip(models, res, strict=True):
        ref = build_for(r)
        train(ref, r.task, r.spec.train, r.spec.seed)
        assert _max_diff(m, ref) < 1e-5


def test_models_of_different_shapes_are_not_stacked():
    a, b = _resolved("rnn", 0, 1e-3, 5), _resolved("transformer", 0, 1e-3, 5)
    assert "differ" in stack_problem([build_for(a), build_for(b)], [a.spec.train, b.spec.train])
    c = prepare(RunSpec(arch="rnn", task="counter-chain", d_model=16, n_layers=2, task_config={"depth": 1}),
                ["train.batch_size=8"])
    assert "batch_size" in stack_problem([build_for(a), build_for(c)], [a.spec.train, c.spec.train])
