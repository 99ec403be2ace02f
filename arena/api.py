"""The stable plugin surface: shapes, configs, architecture and task specs, examples.

An architecture is registered as an :class:`ArchSpec` of one of two kinds:

* ``mixer``: ``factory(d_model, layer_idx, cfg) -> nn.Module`` mapping (B, T, D) -> (B, T, D); the shared
  :class:`arena.blocks.Backbone` adds embeddings, norms, channel mixers (MLP by default) and the head, so
  comparisons between mixers are fair. Analytic hooks are *per layer* (``mixer_params``, ``mixer_flops``,
  ``mixer_state``).
* ``model``: ``factory(shape, cfg) -> nn.Module`` mapping token ids (B, T) -> logits (B, T, V). Analytic hooks
  describe the whole model.

A task is a :class:`Task` subclass registered with a :class:`TaskSpec`; it builds its splits from a config and
a seed and says how it is scored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

if TYPE_CHECKING:  # the surface stays importable without torch (``arena list`` never loads it)
    import torch

Kind = Literal["mixer", "model"]
ScoringMode = Literal["generate", "teacher_forced", "custom"]
IGNORE = -100


class StrictConfig(BaseModel):
    """Base for every user-facing config: unknown fields are rejected, values are immutable, floats must be finite
    (NaN and infinities are refused) and a boolean is never accepted where a number is expected."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_number(cls, value: Any, info: ValidationInfo) -> Any:
        from arena.validation import bool_for_number

        field = cls.model_fields.get(info.field_name or "")
        if field is not None and bool_for_number(field.annotation, value):
            raise ValueError("expected a number, not a boolean")
        return value


class ArchConfig(StrictConfig):
    """Base class of an architecture's own config."""

    # fields added after runs were stored, with the value that reproduces the old behaviour: left out of the
    # config hash while they hold it (arena.spec.run_config), so earlier runs keep their hash
    HASH_NEUTRAL: ClassVar[dict[str, Any]] = {}


class TaskConfig(StrictConfig):
    """Base class of a task's own config."""


@dataclass(frozen=True)
class ModelShape:
    """Sizes the arena fills in from the task and the run."""

    vocab_size: int
    d_model: int
    n_layers: int
    max_seq_len: int
    pad_id: int = 0
    mlp_ratio: float = 4.0
    tie_embeddings: bool = True


@dataclass(frozen=True)
class SizePreset:
    """A named size: backbone width/depth plus architecture config overrides."""

    d_model: int
    n_layers: int
    overrides: Mapping[str, Any] = field(default_factory=dict)


# default presets; an architecture may declare its own.
DEFAULT_PRESETS: dict[str, SizePreset] = {
    "tiny": SizePreset(d_model=32, n_layers=1),
    "small": SizePreset(d_model=128, n_layers=2),
    "base": SizePreset(d_model=256, n_layers=4),
}


@dataclass(frozen=True)
class ArchSpec:
    """Everything the arena knows about one architecture.

    Attributes:
        name: registry key (kebab-case).
        kind: ``"mixer"`` or ``"model"``.
        factory: builds the module (signature depends on ``kind``).
        config: the pydantic config class (subclass of :class:`ArchConfig`).
        params: analytic parameter count. Mixer: ``(d_model, cfg) -> int`` per layer. Model: ``(shape, cfg) -> int``.
        flops: analytic forward FLOPs per token (FLOPs = 2 x multiply-adds) at context length ``seq_len``.
            Mixer: ``(d_model, cfg, seq_len) -> float`` per layer. Model: ``(shape, cfg, seq_len) -> float | None``;
            ``None`` means "n/a (symbolic)".
        state_size: floats held at inference to continue decoding after ``seq_len`` tokens.
            Mixer: ``(d_model, cfg, seq_len) -> int`` per layer. Model: ``(shape, cfg, seq_len) -> int``.
        flops may also return a breakdown ``{"matmul": .., "attention": .., "elementwise": .., "fft": .., "scan": ..}``;
            the total is the sum. ``matmul`` (+ ``attention`` when computed with bmm) is what a FLOP counter sees.
        channel: for mixers, the channel mixer: ``"mlp"`` (default), ``"none"``, or a :class:`ChannelSpec`.
        active_params: like ``params`` but counting only parameters used per token (MoE); default = params.
        supports_step: the module implements :class:`StepDecoder` (``init_state``/``step``) for O(1)-per-token
            decoding; generation then decodes with ``step``.
        causal: logits at t depend only on tokens <= t.
        requires: hardware it needs, e.g. ``("cuda",)``.
        presets: size presets (tiny/small/base).
        task_specific: a model that only works for some tasks (e.g. the state machine).
        supported_tasks: for task-specific models, the task names it can run.
        trainer: ``"gradient"`` (the arena's training loop) or ``"custom"``: the module implements
            :class:`CustomFit` and trains itself (the state machine's lexicon search).
        width_multiple: ``(cfg) -> int``, what ``d_model`` must be a multiple of for this config (e.g. two per head
            for whole, even head sizes); parameter-budget fitting and width ladders step by it. Default: 1.
        counts_flops_with_grad: the FLOP counter must run with autograd on (the module passes a parameter as a
            module input, which torch's module tracker rejects under ``no_grad``: Hyena's positional encoding).
        captures_attention: every mixer module implements :class:`AttentionCapturable` (``capture_attention``).
        heads: the mixer's attention heads can be removed (:class:`HeadPrunable`); the :class:`HeadCost` says what
            one head costs, so a pruned model's analytic params/FLOPs are the parent's minus the removed heads'.
    """

    name: str
    kind: Kind
    factory: Callable[..., Any]
    config: type[ArchConfig]
    params: Callable[..., int]
    flops: Callable[..., float | None]
    state_size: Callable[..., int]
    family: str = "other"
    version: int = 1
    description: str = ""
    reference: str = ""
    channel: str | ChannelSpec = "mlp"
    active_params: Callable[..., int] | None = None
    embedding_params: Callable[..., int] | None = None
    supports_step: bool = False
    causal: bool = True
    requires: tuple[str, ...] = ()
    presets: Mapping[str, SizePreset] = field(default_factory=lambda: dict(DEFAULT_PRESETS))
    task_specific: bool = False
    supported_tasks: tuple[str, ...] = ()
    trainer: str = "gradient"
    source: str = "builtin"
    captures_attention: bool = False
    heads: HeadCost | None = None
    width_multiple: Callable[[Any], int] | None = None
    counts_flops_with_grad: bool = False

    @property
    def custom_fit(self) -> bool:
        """The module trains itself (:class:`CustomFit`) instead of going through the arena's training loop."""
        return self.trainer == "custom"

    def width_step(self, cfg: ArchConfig) -> int:
        """What ``d_model`` must be a multiple of under ``cfg`` (1 unless the spec declares ``width_multiple``)."""
        return max(1, int(self.width_multiple(cfg))) if self.width_multiple is not None else 1


@dataclass(frozen=True)
class Example:
    """One sequence with its supervision.

    ``tokens`` is the whole sequence. The model reads ``tokens[:-1]`` and is scored on predicting ``tokens[1:]``
    wherever ``mask`` (length ``len(tokens) - 1``) is true. For generative tasks ``prompt_len`` is the length of
    the given prefix: the model must greedily generate ``tokens[prompt_len:]`` exactly.

    ``targets`` (optional, length ``len(tokens) - 1``): labels that differ from the next input token, for layouts
    where the answer is a label only (Zoology's MQAR: the slot after a query key holds filler, the value is the
    label at the key). ``labels`` is what is scored: ``targets`` when given, else ``tokens[1:]``.
    """

    tokens: tuple[int, ...]
    mask: tuple[bool, ...]
    slices: Mapping[str, int | str] = field(default_factory=dict)
    prompt_len: int | None = None
    targets: tuple[int, ...] | None = None

    @property
    def labels(self) -> tuple[int, ...]:
        return self.targets if self.targets is not None else self.tokens[1:]


@dataclass(frozen=True)
class Vocab:
    """Token strings; ids are positions in ``tokens``. ``pad`` is always id 0."""

    tokens: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(set(self.tokens)) != len(self.tokens):
            raise ValueError("vocabulary tokens must be unique")

    @property
    def size(self) -> int:
        return len(self.tokens)

    def id(self, token: str) -> int:
        return self._index[token]

    def ids(self, tokens: list[str] | tuple[str, ...]) -> tuple[int, ...]:
        return tuple(self._index[t] for t in tokens)

    def decode(self, ids: list[int] | tuple[int, ...]) -> list[str]:
        return [self.tokens[i] for i in ids]

    @property
    def _index(self) -> dict[str, int]:
        idx = self.__dict__.get("_idx")
        if idx is None:
            idx = {t: i for i, t in enumerate(self.tokens)}
            object.__setattr__(self, "_idx", idx)
        return idx


class Task:
    """A built task: a vocabulary, named splits of examples, and how they are scored.

    Subclasses set the class attributes and implement :meth:`build_splits`. ``chance`` is the expected primary
    metric of a model that ignores its input; it is used for the normalized score.
    """

    name: ClassVar[str] = ""
    version: ClassVar[int] = 1
    family: ClassVar[str] = "other"
    description: ClassVar[str] = ""
    config_cls: ClassVar[type[TaskConfig]] = TaskConfig
    scoring: ClassVar[ScoringMode] = "teacher_forced"
    metric: ClassVar[str] = "exact_match"
    higher_is_better: ClassVar[bool] = True
    default_split: ClassVar[str] = "default"
    split_names: ClassVar[tuple[str, ...]] = ("default",)
    # optional declarations (the defaults mean "not provided")
    headline_split: ClassVar[str | None] = None  # the split the run's score is read on (default: test, test_ood...)
    slice_keys: ClassVar[tuple[str, ...] | None] = None  # slice keys ``arena show`` prints (None: every key)
    in_default_suite: ClassVar[bool] = False  # ``arena submit`` runs it when no --tasks are given
    # False: the model's output head gets its own weights instead of the input embedding's. For tasks whose only
    # supervised outputs are label tokens never read as input (one bit at one position): a tied head's softmax then
    # pushes every input-only embedding row the same way, Adam makes that an equal step per row, and after the
    # pre-norm the tokens become indistinguishable (docs/succinctness.md, NP-flat)
    tie_embeddings: ClassVar[bool] = True

    def __init__(self, cfg: TaskConfig, seed: int = 0, split: str | None = None) -> None:
        self.cfg = cfg
        self.seed = seed
        self.split = split or self.default_split
        if self.split not in self.split_names:
            from arena.errors import suggest

            raise ValueError(f"unknown split {self.split!r} for task {self.name!r}{suggest(self.split, self.split_names)}")
        self._splits: dict[str, list[Example]] | None = None

    # -- to implement -------------------------------------------------------------------------------------------
    @property
    def vocab(self) -> Vocab:
        raise NotImplementedError

    def build_splits(self) -> dict[str, list[Example]]:
        """Return ``{"train": [...], "val": [...], <test splits>...}`` for ``self.split`` (deterministic in seed)."""
        raise NotImplementedError

    @property
    def chance(self) -> float:
        return 0.0

    # -- provided -----------------------------------------------------------------------------------------------
    @property
    def splits(self) -> dict[str, list[Example]]:
        if self._splits is None:
            self._splits = self.build_splits()
            empty = [k for k, v in self._splits.items() if not v]
            if empty:
                raise ValueError(f"task {self.name!r} split {self.split!r} produced empty sets: {', '.join(empty)}")
        return self._splits

    @property
    def eval_splits(self) -> list[str]:
        """Splits scored at the end of a run (all but ``train``)."""
        return [k for k in self.splits if k != "train"]

    @property
    def max_seq_len(self) -> int:
        return max(len(e.tokens) for exs in self.splits.values() for e in exs)

    def analysis_examples(self, split: str, n: int) -> list[Example]:
        """Up to ``n`` scored examples of ``split`` for model analysis (attention statistics, head importance).
        Tasks whose evaluated splits hold no example lists (custom scoring) override it."""
        if split not in self.splits:
            from arena.errors import suggest

            raise ValueError(f"task {self.name!r} has no split {split!r}{suggest(split, self.splits)}")
        return list(self.splits[split][:n])

    def describe_example(self, ex: Example) -> dict[str, Any]:
        """A human-readable rendering used by ``arena data export``."""
        words = self.vocab.decode(ex.tokens)
        if ex.prompt_len is not None:
            return {"input": " ".join(words[: ex.prompt_len]), "target": " ".join(words[ex.prompt_len :]),
                    "slices": dict(ex.slices)}
        labels = self.vocab.decode(ex.labels)
        targets = [labels[i] for i, m in enumerate(ex.mask) if m]
        return {"input": " ".join(words), "target": " ".join(targets), "slices": dict(ex.slices)}

    # -- optional capabilities (override to provide) --------------------------------------------------------------
    def draw_online(self, rng: Any, n: int) -> list[Example]:
        """``n`` fresh training examples from a ``random.Random`` (``train.online=true``); the trainer rejects any
        that equal a held-out sequence."""
        raise NotImplementedError(f"task {self.name!r} cannot draw fresh examples")

    @property
    def can_draw_online(self) -> bool:
        return type(self).draw_online is not Task.draw_online

    def official_lines(self) -> dict[str, list[str]] | None:
        """``{set: lines}`` in the task's own published line format (SCAN's ``IN: ... OUT: ...``), written by
        ``arena data export`` instead of JSONL; ``None``: the task has none."""
        return None

    @classmethod
    def depth_config(cls, depth: int) -> tuple[dict[str, Any], str] | None:
        """The task config overrides and split that put every set (train, val, test) at exactly ``depth``: the
        per-depth protocol of ``arena sweep succinctness``. ``None``: the task has no depth knob."""
        return None

    @classmethod
    def cumulative_config(cls, depth: int) -> tuple[dict[str, Any], str] | None:
        """The task config overrides and split that train on depths 1..``depth`` and hold val and test at exactly
        ``depth``: the cumulative protocol of ``arena succinctness --protocol cumulative``. ``None``: not offered."""
        return None

    @classmethod
    def state_bits_bound(cls, depth: int, cfg: dict[str, Any]) -> float | None:
        """A lower bound, in bits, on the state a left-to-right reader must carry at ``depth`` under the task
        config overrides ``cfg``; ``None``: the task states none."""
        return None

    def evaluate(self, model: Any, split: str, device: str = "cpu") -> dict[str, Any] | None:
        """Override for ``scoring == "custom"``; return ``{"metrics": {...}, "slices": {...}}``."""
        return None


@dataclass(frozen=True)
class TaskSpec:
    """Registry entry for a task: the class plus its metadata (read without building data)."""

    name: str
    cls: type[Task]
    config: type[TaskConfig]
    family: str = "other"
    version: int = 1
    description: str = ""
    source: str = "builtin"


@dataclass(frozen=True)
class ChannelSpec:
    """A position-wise channel mixer for the backbone (MLP by default, MoE for the ``moe`` architecture).

    ``params``/``active_params``: ``(d_model, mlp_ratio, cfg) -> int``; ``flops``: ``(d_model, mlp_ratio, cfg)``
    -> per-token FLOP breakdown. ``factory(d_model, mlp_ratio, layer_idx, cfg) -> nn.Module``.
    """

    name: str
    factory: Callable[..., Any]
    params: Callable[..., int]
    flops: Callable[..., Mapping[str, float]]
    active_params: Callable[..., int] | None = None


# -- optional capabilities of modules --------------------------------------------------------------------------------
# Declared by the spec (``supports_step``, ``trainer="custom"``, ``captures_attention``, ``heads``) or, for module
# hooks any layer may have, by implementing the protocol; the core finds them with ``isinstance``, never by name.
@runtime_checkable
class StepDecoder(Protocol):
    """O(1)-per-token decoding (``ArchSpec.supports_step``). A mixer maps (B, D) -> (B, D); a whole model maps
    token ids (B,) -> logits (B, V)."""

    def init_state(self, batch: int) -> Any: ...

    def step(self, x: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]: ...


@runtime_checkable
class CustomFit(Protocol):
    """A model that trains itself (``ArchSpec.trainer="custom"``). ``fit`` returns a JSON-able summary with
    ``steps``, ``curve`` (list of dicts), ``seconds`` and optionally ``params`` (the parameters it fitted); every
    other key is kept in the run's ``extra`` (``skeleton_size`` and ``n_learned_bits`` also fill the run's prior
    columns when the module does not implement :class:`HandWrittenPrior`)."""

    def fit(self, task: Task, *, max_steps: int | None = None, seed: int = 0,
            progress: Callable[[int, dict], None] | None = None) -> dict[str, Any]: ...


@runtime_checkable
class HandWrittenPrior(Protocol):
    """A task-specific model with a hand-written part (the state machine's interpreter skeleton): knowledge the
    data did not supply, which its parameter count hides. The runner records it after training (the part may be
    chosen for the task) as the run's prior columns (:data:`arena.columns.PRIOR`), shown beside params."""

    def hand_written_prior(self) -> dict[str, float]:
        """``{"gzip_bytes": int, "lines": int, "learned_bits": float}``: the hand-written source gzipped (-9) and in
        non-blank, non-comment lines, and the information the learned part holds in bits."""
        ...


@runtime_checkable
class AuxLoss(Protocol):
    """A module that adds an auxiliary training loss: ``aux_loss`` is a scalar tensor set by each training forward
    (``None`` in eval mode), added to the task loss (MoE load balance, the compressive memory's reconstruction)."""

    aux_loss: torch.Tensor | None


@runtime_checkable
class ExtraMetrics(Protocol):
    """A module that logs statistics at the end of a run (``extra.module_logs`` of the run, by module name)."""

    def extra_metrics(self) -> dict[str, float]: ...


@runtime_checkable
class OwnInit(Protocol):
    """A module that re-initialises its own parameters after the backbone's generic initialisation."""

    def reset_parameters_arena(self) -> None: ...


@runtime_checkable
class HarnessTask(Protocol):
    """A language-modelling task whose runs lm-evaluation-harness can score (``arena eval``): its model reads a
    tokenizer's ids, so :class:`arena.lm_eval_adapter.ArenaLM` can wrap it. The ``lm`` task implements it."""

    def harness_model(self, model: Any, batch_size: int = 32, device: str = "cpu") -> Any:
        """The model as an ``lm_eval.api.model.LM`` (an :class:`arena.lm_eval_adapter.ArenaLM`)."""
        ...

    def harness_names(self) -> tuple[str, ...]:
        """What ``arena eval`` scores by default (lm-eval task names, or the task's own held-out splits)."""
        ...

    def harness_scores(self, lm: Any, names: Sequence[str], limit: int | None = None) -> dict[str, dict[str, Any]]:
        """``{name: {"metrics": {...}, "slices": {...}}}`` for each name (``limit``: documents per lm-eval task)."""
        ...


# -- optional capabilities of attention mixers ---------------------------------------------------------------------
@dataclass
class AttentionCapture:
    """What one attention layer did on a batch, recomputed with the explicit kernel (never the training path).

    ``S`` is the number of key slots a query can be shown: T for causal self-attention; for a memory mixer the
    widest key set of any segment (the slots of a query's own segment, padded with invisible ones).

    Attributes:
        probs: (B, H, T, S) attention probabilities; rows sum to 1 over the visible keys, 0 elsewhere.
        head_outputs: (B, H, T, d_head) each head's output (``probs @ values``) before the output projection.
        out_proj: the linear map from the concatenated heads (B, T, H * d_head), head h in columns
            ``h * d_head:(h + 1) * d_head``, to the layer's output; ``None`` if the mixer has none.
        visible: (T, S) bool, which key slots query t may attend to (causal mask, memory slots, padding).
        offsets: (T, S) float, how far back key slot s lies from query t in tokens (t_q - t_k; for a compressed
            memory slot the mean time of its sources).
        uniform_outputs: (B, H, T, d_head) what each head would output with uniform attention over its visible
            keys (the same values): the baseline for effective rank. ``None`` if the mixer cannot say.
    """

    probs: torch.Tensor
    head_outputs: torch.Tensor
    out_proj: Any
    visible: torch.Tensor
    offsets: torch.Tensor
    uniform_outputs: torch.Tensor | None = None


@runtime_checkable
class AttentionCapturable(Protocol):
    """A mixer that can show its attention. Declared with ``ArchSpec.captures_attention=True``; checked by
    :func:`arena.testing.check_architecture` (the capture's heads, projected, must equal the mixer's forward)."""

    n_heads: int
    d_head: int

    def capture_attention(self, x: torch.Tensor) -> AttentionCapture: ...


@runtime_checkable
class HeadPrunable(Protocol):
    """A mixer whose heads can be removed for real (smaller projections). ``prune_heads(keep)`` keeps the listed
    head indices (sorted, possibly none) and must leave the outputs of the kept heads unchanged; the module's
    ``out_proj`` input is the concatenation of the heads, so a gate on it scales one head (head importance)."""

    n_heads: int
    d_head: int
    out_proj: Any

    def prune_heads(self, keep: list[int]) -> None: ...


@dataclass(frozen=True)
class HeadCost:
    """What one attention head of a mixer costs: ``params(d_model, cfg) -> int`` and ``flops(d_model, cfg,
    seq_len) -> {"matmul": .., "attention": .., "elementwise": ..}`` per token. The mixer's analytic params and
    FLOPs must be affine in its number of heads with these slopes (a test checks it per architecture)."""

    params: Callable[..., int]
    flops: Callable[..., Mapping[str, float]]


def even_head_width(cfg: Any) -> int:
    """``ArchSpec.width_multiple`` of a multi-head mixer: d_model a multiple of 2 x ``cfg.n_heads`` (every head
    gets a whole, even width, as rotary embeddings need)."""
    return 2 * int(cfg.n_heads)


def flops_total(flops: float | Mapping[str, float] | None) -> float | None:
    """Sum a FLOP breakdown (``{"matmul": .., "elementwise": ..}``) or pass a number through."""
    if flops is None:
        return None
    if isinstance(flops, Mapping):
        return float(sum(flops.values()))
    return float(flops)


def arch_spec(name: str, *, kind: Kind, config: type[ArchConfig], params: Callable[..., int],
              flops: Callable[..., Any], state_size: Callable[..., int], **meta: Any) -> Callable[..., ArchSpec]:
    """Decorator turning a factory into an :class:`ArchSpec` (the module-level object a registry entry points to).

    Example::

        @arch_spec("my-mixer", kind="mixer", config=MyConfig, params=..., flops=..., state_size=...)
        def build(d_model: int, layer_idx: int, cfg: MyConfig) -> nn.Module: ...
    """

    def wrap(factory: Callable[..., Any]) -> ArchSpec:
        return ArchSpec(name=name, kind=kind, factory=factory, config=config, params=params, flops=flops,
                        state_size=state_size, **meta)

    return wrap
