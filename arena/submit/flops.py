"""FLOPs a submission cannot fake: the plugin's worker exports its forward graph (``torch.export``) as plain JSON
(ATen operator names and literal arguments, no pickle), and a *clean* worker that never loads plugin code
replays that graph with the trained weights, counting every operation itself.

The count is trusted because the replaying process runs only arena's code and ATen operators (names outside
``torch.ops.aten`` are refused, so no plugin-defined operator can run), and because its output must equal the
plugin worker's own logits on the same input: the graph is the model's function. (``torch.export.load`` is not
used: in torch 2.13 it can fall back to ``pickle`` for constants, which would run arbitrary code.)

Counting: FlopCounterMode's formulas for matmul-like operators (2 x multiply-adds), one FLOP per output element
of every other pointwise operator and one per input element of reductions, so a matmul rewritten as a broadcast
multiply + sum is counted too. ``verified`` when the count is within 5 % of the declared FLOPs (so it sees at
least 90 % of the declared work); otherwise the declared number stays, marked ``declared``.
"""

from __future__ import annotations

import json
import operator
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

MAX_CONSTANT_ELEMENTS = 1 << 16  # lifted constants a graph may carry (more would be hidden parameters)
TOLERANCE = 0.05
_REDUCTIONS = {"sum", "mean", "amax", "amin", "max", "min", "prod", "cumsum", "cumprod", "logsumexp", "var", "std",
               "norm", "linalg_vector_norm", "_softmax", "_log_softmax", "softmax", "log_softmax", "any", "all",
               "argmax", "argmin", "var_mean", "std_mean"}


class Unsupported(Exception):
    pass


# -- the plugin's side: graph -> JSON ----------------------------------------------------------------------------
def _enc(a: Any) -> Any:
    if isinstance(a, torch.fx.Node):
        return {"node": a.name}
    if isinstance(a, (list, tuple)):
        return {"list": [_enc(v) for v in a]}
    if a is None or isinstance(a, (bool, int, str)):
        return a
    if isinstance(a, float):
        return {"float": repr(a)}
    if isinstance(a, torch.dtype):
        return {"dtype": str(a).removeprefix("torch.")}
    if isinstance(a, torch.device):
        return {"device": "cpu"}
    if isinstance(a, torch.layout):
        return {"layout": str(a).removeprefix("torch.")}
    if isinstance(a, torch.memory_format):
        return {"memory_format": str(a).removeprefix("torch.")}
    raise Unsupported(f"argument of type {type(a).__name__}")


def _target(t: Any) -> str:
    if t is operator.getitem:
        return "getitem"
    if isinstance(t, torch._ops.OpOverload):
        return f"{t._schema.name}.{t._overloadname}"
    raise Unsupported(f"operator {t!r}")


def export_graph(model: torch.nn.Module, x: torch.Tensor) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``torch.export`` the model at ``x``'s shape; returns the JSON graph and its lifted tensor constants."""
    ep = torch.export.export(model, (x,), strict=False)
    kinds = {s.arg.name: (s.kind.name, s.target) for s in ep.graph_signature.input_specs}
    nodes, constants = [], {}
    for node in ep.graph.nodes:
        if node.op == "placeholder":
            kind, target = kinds[node.name]
            nodes.append({"op": "input", "name": node.name, "kind": kind, "target": target})
            if kind == "CONSTANT_TENSOR":
                constants[target] = ep.constants[target].detach().contiguous().clone()
        elif node.op == "call_function":
            nodes.append({"op": "call", "name": node.name, "target": _target(node.target), "args": _enc(node.args),
                          "kwargs": {k: _enc(v) for k, v in node.kwargs.items()}})
        elif node.op == "output":
            nodes.append({"op": "output", "args": _enc(node.args)})
        else:
            raise Unsupported(f"graph node {node.op}")
    return {"nodes": nodes, "length": int(x.shape[1])}, constants


# -- the clean side: JSON -> run and count -----------------------------------------------------------------------
def _op(name: str) -> Any:
    if name == "getitem":
        return operator.getitem
    ns, _, rest = name.partition("::")
    op_name, _, overload = rest.partition(".")
    if ns != "aten" or not op_name.isidentifier() or not overload.isidentifier():
        raise Unsupported(f"operator {name!r} is not an ATen operator")
    return getattr(getattr(torch.ops.aten, op_name), overload)


def _dec(a: Any, env: dict[str, Any]) -> Any:
    if isinstance(a, dict):
        if "node" in a:
            return env[a["node"]]
        if "list" in a:
            return [_dec(v, env) for v in a["list"]]
        if "float" in a:
            return float(a["float"])
        if "dtype" in a:
            return getattr(torch, a["dtype"])
        if "device" in a:
            return torch.device("cpu")
        if "layout" in a:
            return getattr(torch, a["layout"])
        if "memory_format" in a:
            return getattr(torch, a["memory_format"])
        raise Unsupported(f"argument {a!r}")
    return a


class _Elementwise(TorchDispatchMode):
    """Counts what FlopCounterMode does not: pointwise ops (per output element) and reductions (per input)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        from torch.utils.flop_counter import flop_registry

        out = func(*args, **(kwargs or {}))
        if func._overloadpacket in flop_registry:
            return out
        name = func._overloadpacket.__name__.rstrip("_")
        if name in _REDUCTIONS:
            first = next((a for a in args if isinstance(a, torch.Tensor)), None)
            self.count += first.numel() if first is not None else 0
        elif torch.Tag.pointwise in func.tags and isinstance(out, torch.Tensor):
            self.count += out.numel()
        return out


@torch.no_grad()
def run_graph(graph: dict[str, Any], weights: dict[str, torch.Tensor], constants: dict[str, torch.Tensor],
              x: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """Replay an exported graph (ATen only) on ``x``; returns its output and the FLOPs it counted."""
    from torch.utils.flop_counter import FlopCounterMode

    if sum(c.numel() for c in constants.values()) > MAX_CONSTANT_ELEMENTS:
        raise Unsupported("the graph carries more constant data than a model's code may")
    env: dict[str, Any] = {}
    result = None
    counter, elementwise = FlopCounterMode(display=False), _Elementwise()
    with counter, elementwise:
        for node in graph["nodes"]:
            if node["op"] == "input":
                kind, target = node["kind"], node["target"]
                source = {"PARAMETER": weights, "BUFFER": weights, "CONSTANT_TENSOR": constants}.get(kind)
                if kind == "USER_INPUT":
                    env[node["name"]] = x
                elif source is None or target not in source:
                    raise Unsupported(f"graph input {target!r} ({kind}) is not in the weights")
                else:
                    env[node["name"]] = source[target]
            elif node["op"] == "call":
                args = _dec(node["args"], env)
                env[node["name"]] = _op(node["target"])(*args, **{k: _dec(v, env) for k, v in node["kwargs"].items()})
            elif node["op"] == "output":
                result = _dec(node["args"], env)[0]
    if isinstance(result, (list, tuple)):
        result = result[0]
    if not isinstance(result, torch.Tensor):
        raise Unsupported("the graph's output is not a tensor")
    matmul = float(counter.get_total_flops())
    return result, {"matmul": matmul, "other": float(elementwise.count), "total": matmul + elementwise.count}


def judge(counted: float, declared: float) -> tuple[str, str]:
    """``("verified" | "declared", why)`` for a per-example count against the declared per-example FLOPs."""
    if not declared or declared <= 0:
        return "declared", "nothing declared to verify"
    ratio = counted / declared
    if abs(ratio - 1) <= TOLERANCE:
        return "verified", f"arena's count / declared = {ratio:.3f} (within {TOLERANCE:.0%})"
    return "declared", f"arena's count / declared = {ratio:.3f} (outside {TOLERANCE:.0%}): the declared number stays"


def dumps(graph: dict[str, Any]) -> bytes:
    return json.dumps(graph, separators=(",", ":")).encode()
