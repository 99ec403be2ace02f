"""The untrusted side of a submission: runs in an isolated worker, loads the plugin, answers the parent's requests.

Nothing a worker says is trusted. It receives training examples (to train) or *inputs* (to predict), never a
label, a test target, a path of the parent or a database URL; it returns weights (safetensors, no pickle) and
logits, whose sizes the parent fixes before reading them. Every number that is recorded is computed by the
parent from those tensors (see :mod:`arena.submit.verify` and :mod:`arena.submit.score`).

Requests (one JSON header + raw payload each, :mod:`arena.submit.protocol`): ``load``, ``conform``, ``resolve``,
``build``, ``train``, ``load_weights``, ``predict``, ``time``, ``bye``.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from arena.api import ArchSpec, Example, ModelShape
from arena.blocks import analytic_flops, analytic_params, analytic_state_size, build_model
from arena.submit import protocol

MAX_REQUEST = 1 << 31  # requests come from the trusted parent


class Rejected(Exception):
    def __init__(self, check: str, detail: str, exit_code: int = 1):
        super().__init__(detail)
        self.check, self.detail, self.exit_code = check, detail, exit_code


def describe_exc(exc: BaseException, path: str | None = None) -> str:
    import traceback

    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} (line {exc.lineno}{f' of {Path(path).name}' if path else ''})"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if path is None or f.filename == path]
    where = f" (line {frames[-1].lineno})" if frames and path else ""
    return f"{type(exc).__name__}: {exc}{where}"


def main(conn_fd: int, req: dict[str, Any]) -> int:
    sock = socket.socket(fileno=conn_fd)
    os.environ["ARENA_NO_PLUGINS"] = "1"  # only the submitted plugin is loaded
    torch.set_num_threads(1)
    state: dict[str, Any] = {}
    protocol.send(sock, {"ready": True})
    while True:
        try:
            header, payload = protocol.recv(sock, MAX_REQUEST)
        except protocol.ProtocolError:
            return 0
        op = header.get("op")
        out: bytes = b""
        try:
            reply, out = OPS[op](state, header, payload)
        except Rejected as exc:
            reply = {"error": {"check": exc.check, "detail": exc.detail, "exit_code": exc.exit_code}}
        except BaseException as exc:  # noqa: BLE001 - a plugin's SystemExit is a failure too
            reply = {"error": {"check": header.get("check", op), "detail": describe_exc(exc, state.get("file"))}}
        protocol.send(sock, reply, out)
        if op == "bye":
            return 0


# -- loading ---------------------------------------------------------------------------------------------------------
def load_plugin(plugin: dict[str, Any]) -> tuple[ArchSpec, str, str | None]:
    """Import the plugin; its spec (``source="plugin"``), version string and defining file."""
    if plugin["kind"] == "file":
        import importlib.util

        path = plugin["file"]
        modname = "arena_submitted_" + re.sub(r"\W", "_", Path(path).stem)
        mspec = importlib.util.spec_from_file_location(modname, path)
        module = importlib.util.module_from_spec(mspec)
        sys.modules[modname] = module
        try:
            mspec.loader.exec_module(module)
        except BaseException as exc:  # noqa: BLE001
            raise Rejected("import", describe_exc(exc, path)) from None
        specs = list({id(v): v for v in vars(module).values() if isinstance(v, ArchSpec)}.values())
        if plugin.get("arch"):
            chosen = [s for s in specs if s.name == plugin["arch"]]
            if not chosen:
                raise Rejected("spec", f"{Path(path).name} defines no ArchSpec named {plugin['arch']!r} (it defines: "
                               + (", ".join(sorted(s.name for s in specs)) or "none") + ")", exit_code=2)
            specs = chosen
        if not specs:
            raise Rejected("spec", f"{Path(path).name} defines no module-level ArchSpec (decorate the factory with "
                           "@arena.arch_spec(...) and keep the result at module level)")
        if len(specs) > 1:
            raise Rejected("spec", f"{Path(path).name} defines several ArchSpecs ("
                           + ", ".join(sorted(s.name for s in specs)) + "); choose one with --name", exit_code=2)
        version = getattr(module, "__version__", None)
        spec = replace(specs[0], source="plugin")
        return spec, version if isinstance(version, str) else str(spec.version), path
    from arena.registry import Lazy, _coerce_arch

    lazy = Lazy(plugin["entry_point"], "plugin", plugin.get("dist"), plugin.get("version"))
    try:
        spec = _coerce_arch(plugin["arch"], lazy.load(), lazy)
    except BaseException as exc:  # noqa: BLE001
        raise Rejected("import", describe_exc(exc)) from None
    return spec, plugin.get("version") or str(spec.version), None


def _source_of(obj: Any) -> str | None:
    import inspect

    try:
        return inspect.getsourcefile(obj)
    except (TypeError, OSError):
        return None


def op_load(state: dict[str, Any], h: dict[str, Any], _: bytes) -> tuple[dict[str, Any], bytes]:
    spec, version, path = load_plugin(h["plugin"])
    state.update(spec=spec, file=path)
    presets = {k: {"d_model": p.d_model, "n_layers": p.n_layers, "overrides": dict(p.overrides)}
               for k, p in (spec.presets or {}).items()}
    meta = {"name": spec.name, "kind": spec.kind, "family": spec.family, "version": spec.version,
            "plugin_version": version, "supports_step": spec.supports_step, "causal": spec.causal,
            "task_specific": spec.task_specific, "requires": list(spec.requires), "trainer": spec.trainer,
            "presets": presets, "file": _source_of(spec.factory)}
    return json.loads(json.dumps(meta, default=str)), b""


def op_conform(state: dict[str, Any], h: dict[str, Any], _: bytes) -> tuple[dict[str, Any], bytes]:
    from arena.testing import check_architecture

    return {"checks": [{"name": r.name, "ok": r.ok, "detail": r.detail} for r in check_architecture(state["spec"])]}, b""


def op_resolve(state: dict[str, Any], h: dict[str, Any], _: bytes) -> tuple[dict[str, Any], bytes]:
    """The size preset and config for a task's vocabulary and length, and the plugin's declared costs."""
    spec: ArchSpec = state["spec"]
    preset = (spec.presets or {}).get(h["size"])
    if preset is None:
        raise Rejected("config", f"the architecture has no {h['size']!r} size preset")
    data = dict(preset.overrides) | dict(h.get("overrides") or {})
    if "max_seq_len" in spec.config.model_fields:
        data["max_seq_len"] = h["max_seq_len"]
    try:
        cfg = spec.config.model_validate(data)
    except Exception as exc:
        raise Rejected("config", f"the {h['size']} preset's config does not validate: {exc}") from None
    shape = ModelShape(vocab_size=h["vocab_size"], d_model=preset.d_model, n_layers=preset.n_layers,
                       max_seq_len=h["max_seq_len"], tie_embeddings=bool(h.get("tie_embeddings", True)))
    return {"arch_config": cfg.model_dump(mode="json"), "d_model": preset.d_model, "n_layers": preset.n_layers,
            "params": analytic_params(spec, shape, cfg), "flops": analytic_flops(spec, shape, cfg, h["seq_len"]),
            "state_size": analytic_state_size(spec, shape, cfg, h["seq_len"]),
            "flops_at": {str(n): analytic_flops(spec, shape, cfg, int(n)) for n in h.get("flops_lengths", [])}}, b""


def _build(state: dict[str, Any], h: dict[str, Any]) -> torch.nn.Module:
    spec: ArchSpec = state["spec"]
    cfg = spec.config.model_validate(h["arch_config"])
    torch.manual_seed(int(h.get("seed", 0)))
    return build_model(spec, ModelShape(**h["shape"]), cfg)


def pack_weights(model: torch.nn.Module) -> tuple[dict[str, Any], bytes]:
    """``state_dict`` as safetensors bytes; tensors shared under several names are stored once (``aliases``)."""
    params = {p.data_ptr() for p in model.parameters() if p.numel()}
    seen: dict[tuple, str] = {}
    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    names: list[str] = []
    for name, t in model.state_dict().items():
        key = (t.data_ptr(), t.dtype, tuple(t.shape), t.stride())
        if t.numel() and key in seen:
            aliases[name] = seen[key]
            continue
        seen[key] = name
        tensors[name] = t.detach().contiguous().clone()
        if t.data_ptr() in params:
            names.append(name)
    return {"params": names, "aliases": aliases}, save_safetensors(tensors)


def op_build(state: dict[str, Any], h: dict[str, Any], _: bytes) -> tuple[dict[str, Any], bytes]:
    model = _build(state, h).eval()
    head, blob = pack_weights(model)
    return head, blob


class TrainOnly:
    """What the worker's trainer sees of a task: the training examples and the metric's name, nothing else."""

    def __init__(self, examples: list[Example], metric: str):
        self.splits = {"train": examples}
        self.metric = metric


def op_train(state: dict[str, Any], h: dict[str, Any], payload: bytes) -> tuple[dict[str, Any], bytes]:
    from arena.spec import TrainConfig
    from arena.train import train

    data = json.loads(bytes(payload))
    examples = [Example(tokens=tuple(t), mask=tuple(bool(b) for b in m)) for t, m in zip(data["tokens"],
                                                                                         data["mask"], strict=True)]
    model = _build(state, h)
    cfg = TrainConfig.model_validate(h["train"])
    st = train(model, TrainOnly(examples, h["metric"]), cfg, int(h["seed"]))
    head, blob = pack_weights(model.eval())
    head["summary"] = {"steps": st.step, "tokens_seen": st.tokens_seen, "seconds": st.seconds, "curve": st.curve}
    return head, blob


def op_load_weights(state: dict[str, Any], h: dict[str, Any], payload: bytes) -> tuple[dict[str, Any], bytes]:
    model = _build(state, h)
    sd = load_safetensors(bytes(payload))
    for alias, target in h.get("aliases", {}).items():
        sd[alias] = sd[target]
    model.load_state_dict(sd, strict=True)
    state["model"] = model.eval()
    return {"ok": True}, b""


@torch.no_grad()
def op_predict(state: dict[str, Any], h: dict[str, Any], payload: bytes) -> tuple[dict[str, Any], bytes]:
    b, t = h["shape"]
    x = torch.frombuffer(bytearray(payload), dtype=torch.int64).view(b, t)
    y = state["model"](x)
    if h.get("last"):
        y = y[:, -1:]
    elif h.get("positions") is not None:  # one position per row (the parent's lockstep decoding)
        y = y[torch.arange(b), torch.tensor(h["positions"], dtype=torch.long)].unsqueeze(1)
    y = y.float().contiguous()
    return {"shape": list(y.shape)}, y.numpy().tobytes()


@torch.no_grad()
def op_gen_start(state: dict[str, Any], h: dict[str, Any], payload: bytes) -> tuple[dict[str, Any], bytes]:
    """Recurrent decoding, driven by the parent: run ``step()`` over the prompts, return the last logits."""
    b, t = h["shape"]
    x = torch.frombuffer(bytearray(payload), dtype=torch.int64).view(b, t)
    model = state["model"]
    st = model.init_state(b)  # a new chunk: a fresh state
    logits = None
    for i in range(t):
        logits, st = model.step(x[:, i], st)
    state["gen"] = st
    y = logits.float().unsqueeze(1).contiguous()
    return {"shape": list(y.shape)}, y.numpy().tobytes()


@torch.no_grad()
def op_gen_step(state: dict[str, Any], h: dict[str, Any], payload: bytes) -> tuple[dict[str, Any], bytes]:
    """One more token per row (chosen by the parent); the logits after it."""
    x = torch.frombuffer(bytearray(payload), dtype=torch.int64).view(h["shape"][0])
    logits, state["gen"] = state["model"].step(x, state["gen"])
    y = logits.float().unsqueeze(1).contiguous()
    return {"shape": list(y.shape)}, y.numpy().tobytes()


def _parts(h: dict[str, Any], payload: bytes) -> list[bytes]:
    out, at = [], 0
    for n in h["parts"]:
        out.append(bytes(payload[at:at + n]))
        at += n
    return out


def op_export(state: dict[str, Any], h: dict[str, Any], payload: bytes) -> tuple[dict[str, Any], bytes]:
    """The model's forward graph at one input shape, as JSON plus its tensor constants (see arena.submit.flops)."""
    from arena.submit.flops import dumps, export_graph

    b, t = h["shape"]
    x = torch.frombuffer(bytearray(payload), dtype=torch.int64).view(b, t)
    graph, constants = export_graph(state["model"], x)
    parts = [dumps(graph), save_safetensors(constants) if constants else b""]
    return {"parts": [len(p) for p in parts]}, b"".join(parts)


def op_count(state: dict[str, Any], h: dict[str, Any], payload: bytes) -> tuple[dict[str, Any], bytes]:
    """Replay an exported graph and count its FLOPs. Sent to a clean worker that never loaded the plugin."""
    from arena.submit.flops import run_graph

    if "spec" in state:
        raise Rejected("flops", "a worker that loaded plugin code cannot count FLOPs")
    graph, constants, weights, x = _parts(h, payload)
    sd = load_safetensors(weights)
    for alias, target in h.get("aliases", {}).items():
        sd[alias] = sd[target]
    b, t = h["shape"]
    y, counts = run_graph(json.loads(graph), sd, load_safetensors(constants) if constants else {},
                          torch.frombuffer(bytearray(x), dtype=torch.int64).view(b, t))
    y = y.float().contiguous()
    return {"counts": counts, "shape": list(y.shape)}, y.numpy().tobytes()


def op_time(state: dict[str, Any], h: dict[str, Any], _: bytes) -> tuple[dict[str, Any], bytes]:
    from arena.measure.latency import measure_latency

    lat = measure_latency(state["model"], len(h["tokens"]), h["batch"], h["min_run_time"], "cpu", h["tokens"])
    return {"latency": lat}, b""


def op_bye(state: dict[str, Any], h: dict[str, Any], _: bytes) -> tuple[dict[str, Any], bytes]:
    return {"ok": True}, b""


OPS = {"load": op_load, "conform": op_conform, "resolve": op_resolve, "build": op_build, "train": op_train,
       "load_weights": op_load_weights, "predict": op_predict, "gen_start": op_gen_start, "gen_step": op_gen_step,
       "export": op_export, "count": op_count, "time": op_time, "bye": op_bye}
