"""RunSpec: everything that defines one run, validated strictly, resolved to concrete sizes, and hashed.

Precedence (lowest to highest): code defaults -> size preset -> ``--set key=value`` overrides. Override keys are
``arch.X``, ``task.X``, ``train.X`` or ``latency.X``; a bare ``X`` is looked up in train, arch and task configs
and must match exactly one. The config hash is SHA-256 of the canonical JSON of the *resolved* spec plus the
arch and task versions (and a plugin's source hash), so the same hash means the same experiment.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationError, field_validator

from arena.api import ArchConfig, ArchSpec, ModelShape, StrictConfig, Task, TaskConfig, TaskSpec
from arena.errors import ArenaError, format_errors, suggest

SIZES = ("tiny", "small", "base")


class TrainConfig(StrictConfig):
    max_steps: int = Field(1500, ge=0, le=100_000_000, description="optimizer steps. Default: 1500")
    batch_size: int = Field(32, ge=1, le=65_536, description="sequences per step. Default: 32")
    lr: float = Field(3e-3, gt=0, le=10.0, description="peak learning rate (AdamW). Default: 3e-3")
    weight_decay: float = Field(0.01, ge=0, le=10.0, description="AdamW weight decay (not on norms/biases). Default: 0.01")
    betas: tuple[float, float] = Field((0.9, 0.98), description="AdamW betas, each in [0, 1). Default: (0.9, 0.98)")
    warmup_steps: int = Field(100, ge=0, le=100_000_000, description="linear warmup steps before cosine decay. Default: 100")
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="cosine floor as a fraction of lr. Default: 0.1")
    grad_clip: float = Field(1.0, gt=0, le=1e6, description="global gradient-norm clip. Default: 1.0")
    eval_every: int = Field(250, ge=1, le=100_000_000, description="steps between validation checks. Default: 250")
    early_stop: float | None = Field(1.0, ge=0, le=1, description="stop when the validation metric reaches this; "
                                     "None disables. Default: 1.0")
    patience: int | None = Field(None, ge=1, le=1_000_000, description="plateau stop: end training after this many validation "
                                 "checks without a new best (higher-is-better metrics). Default: None (off)")
    checkpoint_every: int = Field(250, ge=1, le=100_000_000, description="steps between checkpoints. Default: 250")
    eval_batch_size: int = Field(64, ge=1, le=65_536, description="batch size for evaluation. Default: 64")
    max_eval_examples: int | None = Field(None, ge=1, le=100_000_000, description="cap per evaluated split. Default: None (all)")
    online: bool = Field(False, description="draw fresh training examples every step (generated tasks with "
                         "draw_online; held-out sets stay fixed and disjoint). Default: False")
    log_attention: bool = Field(False, description="record per-head attention statistics (arena analyze) at step 0 "
                                "and every eval_every steps on up to 64 validation examples; needs an "
                                "attention-capturing architecture; does not change training. Default: false")

    @field_validator("betas")
    @classmethod
    def _betas(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not all(0 <= b < 1 for b in v):
            raise ValueError(f"each AdamW beta must be in [0, 1), got {tuple(v)}")
        return v

    # fields added after runs were recorded: left out of the config hash while at their default, so the hash of
    # every earlier run (and sweep resume by hash) is unchanged
    HASH_NEUTRAL: ClassVar[dict[str, Any]] = {"patience": None, "online": False, "log_attention": False}


class LatencyConfig(StrictConfig):
    batch: int = Field(16, ge=1, le=4096, description="batch size for the throughput measurement. Default: 16")
    min_run_time: float = Field(0.3, gt=0, le=60, description="seconds per timing block. Default: 0.3")
    enabled: bool = Field(True, description="measure latency. Default: true")


class RunSpec(StrictConfig):
    arch: str
    task: str
    split: str | None = None
    size: Literal["tiny", "small", "base"] | None = "small"
    params: int | None = Field(None, ge=1, le=100_000_000_000, description="parameter budget (overrides size width)")
    d_model: int | None = Field(None, ge=1, le=65_536)
    n_layers: int | None = Field(None, ge=1, le=1024)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    data_seed: int | None = Field(None, ge=0, le=2**31 - 1, description="seed of the task's data when it differs "
                                  "from the model's (submissions draw it in secret); not part of the config hash")
    arch_config: dict[str, Any] = Field(default_factory=dict)
    task_config: dict[str, Any] = Field(default_factory=dict)
    train: TrainConfig = Field(default_factory=TrainConfig)
    latency: LatencyConfig = Field(default_factory=LatencyConfig)
    device: str = "cpu"
    threads: int | None = Field(None, ge=1, le=1024)


@dataclass
class Resolved:
    """A RunSpec made concrete: specs, validated configs, the model shape, the built task, and the hash."""

    spec: RunSpec
    arch: ArchSpec
    task_spec: TaskSpec
    arch_cfg: ArchConfig
    task_cfg: TaskConfig
    task: Task
    shape: ModelShape
    config: dict[str, Any]
    config_hash: str


def parse_value(text: str, where: str = "--set value") -> Any:
    """A ``--set`` value parsed as YAML by the one safe loader (aliases and duplicate keys refused)."""
    from arena.validation import parse_scalar

    return parse_scalar(text, where)


def parse_pair(pair: str) -> tuple[str, Any]:
    """``"KEY=VALUE"`` -> ``(key, parse_value(value))``; anything else is an :class:`ArenaError`."""
    key, sep, raw = pair.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ArenaError(f"--set expects KEY=VALUE, got {pair!r}")
    return key, parse_value(raw, f"--set {key}")


Override = str | tuple[str, Any]  # "KEY=VALUE" as typed on the command line, or (key, typed value)


def apply_overrides(spec: RunSpec, pairs: list[Override], arch: ArchSpec, task: TaskSpec) -> RunSpec:
    """Apply ``KEY=VALUE`` strings (values parsed by :func:`parse_value`) and ``(key, value)`` pairs
    (typed options such as ``--max-steps``, never turned into text); unknown or ambiguous keys raise ArenaError."""
    data = spec.model_dump()
    sections = {"arch": arch.config.model_fields, "task": task.config.model_fields,
                "train": TrainConfig.model_fields, "latency": LatencyConfig.model_fields}
    targets = {"arch": "arch_config", "task": "task_config", "train": "train", "latency": "latency"}
    models = {"arch": arch.config, "task": task.config, "train": TrainConfig, "latency": LatencyConfig}
    given: dict[tuple[str, str], tuple[str, Any]] = {}
    for pair in pairs:
        key, value = pair if isinstance(pair, tuple) else parse_pair(pair)
        section, dot, field = key.partition(".")
        if not dot:
            field = key
            owners = [s for s, fields in sections.items() if field in fields and s != "latency"]
            if not owners:
                every = [f for fs in sections.values() for f in fs]
                raise ArenaError(f"unknown config key {key!r} (not a train, arch {arch.name!r} or task {task.name!r} "
                                 f"field){suggest(key, every)}")
            if len(owners) > 1:
                raise ArenaError(f"config key {key!r} is ambiguous; write one of "
                                 + ", ".join(f"{o}.{field}" for o in owners))
            section = owners[0]
        if section not in sections:
            raise ArenaError(f"unknown config section {section!r} in {key!r}{suggest(section, sections)}")
        if field not in sections[section]:
            owner = {"arch": f"architecture {arch.name!r}", "task": f"task {task.name!r}"}.get(section, section)
            raise ArenaError(f"unknown config key {key!r}: {owner} has no field {field!r}"
                             f"{suggest(field, sections[section])}")
        if (section, field) in given:  # a later override replaces this one: still refuse it if it is bad input
            _check_field(models[section], field, *given[(section, field)])
        given[(section, field)] = (key, value)
        data[targets[section]][field] = value
    return _validate(RunSpec, data, "run spec")


def _check_field(model: type[StrictConfig], field: str, key: str, value: Any) -> None:
    """Validate one field's value on its own (errors of other fields, e.g. required ones, are ignored)."""
    try:
        model.model_validate({field: value})
    except ValidationError as exc:
        errors = [e for e in exc.errors() if tuple(e["loc"][:1]) == (field,)]
        if errors:
            raise ArenaError(f"invalid override {key}: " + "; ".join(
                f"{e['msg']} (got {e.get('input')!r})" for e in errors)) from None


def _validate(model: type[StrictConfig], data: dict[str, Any], what: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ArenaError(f"invalid {what}: " + format_errors(exc)) from None


def resolve(spec: RunSpec, arch: ArchSpec, task_spec: TaskSpec, *, extra_hash: str = "") -> Resolved:
    """Validate configs, build the task, choose widths (preset or parameter budget), and hash the result."""
    if arch.task_specific and arch.supported_tasks and task_spec.name not in arch.supported_tasks:
        raise ArenaError(f"architecture {arch.name!r} is task-specific and has no skeleton for task "
                         f"{task_spec.name!r}; it supports: {', '.join(arch.supported_tasks)}")
    if spec.train.log_attention and not arch.captures_attention:
        raise ArenaError(f"train.log_attention needs an architecture that declares attention capture; "
                         f"{arch.name!r} does not (it has no attention heads to record)")
    task_cfg = _validate(task_spec.config, spec.task_config, f"config for task {task_spec.name!r}")
    try:
        task = task_spec.cls(task_cfg, seed=spec.seed if spec.data_seed is None else spec.data_seed, split=spec.split)
    except ValueError as exc:
        raise ArenaError(str(exc)) from None
    preset = (arch.presets or {}).get(spec.size or "small")
    if preset is None:
        raise ArenaError(f"architecture {arch.name!r} has no size {spec.size!r}{suggest(spec.size or '', arch.presets)}")
    arch_data = dict(preset.overrides) | dict(spec.arch_config)
    max_len = task.max_seq_len
    if "max_seq_len" in arch.config.model_fields and "max_seq_len" not in spec.arch_config:
        arch_data["max_seq_len"] = max_len
    arch_cfg = _validate(arch.config, arch_data, f"config for architecture {arch.name!r}")
    d_model = spec.d_model or preset.d_model
    n_layers = spec.n_layers or preset.n_layers
    shape = ModelShape(vocab_size=task.vocab.size, d_model=d_model, n_layers=n_layers, max_seq_len=max_len,
                       tie_embeddings=task.tie_embeddings)
    if spec.params is not None:
        shape = fit_params(arch, arch_cfg, shape, spec.params, fixed_d=spec.d_model is not None)
    config, config_hash = run_config(spec, arch_cfg.model_dump(mode="json"), task_cfg.model_dump(mode="json"), shape,
                                     task.split, arch.version, task_spec.version, extra_hash, arch_cfg.HASH_NEUTRAL)
    return Resolved(spec, arch, task_spec, arch_cfg, task_cfg, task, shape, config, config_hash)


def _without_neutral(values: dict[str, Any], neutral: dict[str, Any]) -> dict[str, Any]:
    """``values`` without the entries that hold their hash-neutral value (they stay in the stored config)."""
    return {k: v for k, v in values.items() if not (k in neutral and v == neutral[k])}


def run_config(spec: RunSpec, arch_cfg: dict[str, Any], task_cfg: dict[str, Any], shape: ModelShape, split: str,
               arch_version: int, task_version: int, extra_hash: str = "",
               arch_neutral: dict[str, Any] | None = None) -> tuple[dict[str, Any], str]:
    """The stored config of a run and its hash (the data seed is stored but not hashed: it picks a sample of the
    same experiment, so a submission scored on fresh secret data is still the same run). ``arch_neutral``: arch
    config fields added later, left out of the hash while they hold these (old-behaviour) values, so earlier runs
    keep their hash; they are still stored."""
    config = {
        "spec": spec.model_dump(mode="json", exclude={"data_seed"} if spec.data_seed is None else set()),
        "arch_config": arch_cfg,
        "task_config": task_cfg,
        "shape": {"vocab_size": shape.vocab_size, "d_model": shape.d_model, "n_layers": shape.n_layers,
                  "max_seq_len": shape.max_seq_len, "mlp_ratio": shape.mlp_ratio,
                  "tie_embeddings": shape.tie_embeddings},
        "split": split,
        "versions": {"arch": arch_version, "task": task_version},
    }
    run = {k: v for k, v in config["spec"].items() if k not in ("arch_config", "task_config", "data_seed")}
    run["train"] = _without_neutral(run["train"], TrainConfig.HASH_NEUTRAL)
    hashed = {k: v for k, v in config.items() if k != "spec"}
    hashed["arch_config"] = _without_neutral(arch_cfg, arch_neutral or {})
    canonical = json.dumps(hashed | {"run": run, "extra": extra_hash},
                           sort_keys=True, separators=(",", ":"))
    return config, hashlib.sha256(canonical.encode()).hexdigest()


def fit_params(arch: ArchSpec, cfg: ArchConfig, shape: ModelShape, budget: int, fixed_d: bool = False) -> ModelShape:
    """Choose d_model (an even multiple of the spec's ``width_step``) so total params land within 5% of budget."""
    from arena.blocks import analytic_params

    if arch.kind != "mixer":
        raise ArenaError(f"--params needs a mixer architecture; {arch.name!r} is a {arch.kind}")
    step = math.lcm(2, arch.width_step(cfg))

    def total(d: int) -> int:
        return analytic_params(arch, ModelShape(shape.vocab_size, d, shape.n_layers, shape.max_seq_len,
                                                tie_embeddings=shape.tie_embeddings), cfg)["total"]

    best = None
    for d in range(step, 16_384 + step, step):
        p = total(d)
        if best is None or abs(p - budget) < abs(best[1] - budget):
            best = (d, p)
        if p > budget * 1.06:
            break
    d, p = best  # type: ignore[misc]
    if abs(p - budget) > 0.05 * budget:
        raise ArenaError(f"cannot reach a parameter budget of {budget:,} with {arch.name!r} at {shape.n_layers} "
                         f"layers (closest: d_model={d} -> {p:,}); change --n-layers or the budget")
    return ModelShape(shape.vocab_size, d, shape.n_layers, shape.max_seq_len, shape.pad_id, shape.mlp_ratio,
                      shape.tie_embeddings)
