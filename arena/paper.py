"""Paper-ready tables (Markdown and LaTeX) from leaderboard rows: one block per task and split, best in bold.

Each block is one task/split (a LaTeX ``table`` with ``\\caption`` and ``\\label{tab:arena-<task>-<split>}``, a
Markdown section): architecture, size, the variant only when rows differ in one (long variants become keys
explained under the table), the training steps only when they differ, seeds, score mean ± std, the three
efficiency ratios, and the costs (with a task-specific model's hand-written prior beside params when the block has
one). Numbers have 3 significant figures with SI suffixes (``1.67k``, ``3.53M``);
the best score and the best ratio of each block are bold (task-specific models, marked †, are not ranked on the
ratios). Every cell is escaped, so a hostile architecture or plugin name cannot break the table.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

RATIOS = (("norm_per_mparam", "Norm./M params"), ("norm_per_gflop", "Norm./GFLOP"), ("norm_per_ms", "Norm./ms"))
LONG_VARIANT = 24  # characters; longer variants are replaced by a key (v1, v2, ...) explained below the table
SPREAD = 1.2  # latency range shown when the slowest seed is this much slower than the fastest
_SI = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def _missing(v: Any) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def si(v: Any, digits: int = 3) -> str:
    """3 significant figures with an SI suffix: 1670 -> 1.67k, 3.53e6 -> 3.53M, 9.7 -> 9.70, 0.0123 -> 0.0123."""
    if _missing(v):
        return ""
    v = float(v)
    for div, suffix in _SI:
        if abs(v) >= div * 0.9995:
            return _sig(v / div, digits) + suffix
    return _sig(v, digits)


def _sig(v: float, digits: int) -> str:
    if v == 0:
        return "0"
    if abs(v) < 1e-3:
        return f"{v:.{digits - 1}e}"
    return f"{v:#.{digits}g}".rstrip(".")


def score_text(mean: Any, std: Any, n: Any, pm: str = " ± ") -> str:
    """``0.812 ± 0.013`` (3 decimals for scores below 10, else 3 significant figures; no ± for one seed)."""
    if _missing(mean):
        return ""

    def one(v: float) -> str:
        return f"{v:.3f}" if abs(v) < 10 else si(v)

    s = one(float(mean))
    if not _missing(std) and int(n or 0) > 1:
        s += pm + one(float(std))
    return s


def short_variant(variant: Any) -> str:
    """``train.lr=0.001; arch.cell=gru`` -> ``lr=0.001, cell=gru``."""
    if _missing(variant) or not str(variant):
        return ""
    return ", ".join(re.sub(r"^(train|arch|task)\.", "", p.strip()) for p in str(variant).split(";"))


def prior_text(row: Any, blank: str = "—", sep: str = ", ") -> str:
    """A task-specific model's hand-written prior, ``709 B gzip, 58 lines, 69.7 bits``; ``blank`` for none."""
    gz, lines, bits = (row.get(k) for k in ("prior_gzip_bytes", "prior_lines", "prior_learned_bits"))
    if _missing(gz) and _missing(bits):
        return blank
    parts = [] if _missing(gz) else [f"{int(gz):,} B gzip"]
    parts += [] if _missing(lines) else [f"{int(lines):,} lines"]
    parts += [] if _missing(bits) else [f"{si(bits)} bits"]
    return sep.join(parts)


def latency_text(row: pd.Series) -> str:
    p50, lo, hi = row.get("latency_p50_ms"), row.get("latency_min_ms"), row.get("latency_max_ms")
    if _missing(p50):
        return ""
    if not _missing(lo) and not _missing(hi) and lo > 0 and hi / lo >= SPREAD:
        return f"{si(p50)} ({si(lo)}–{si(hi)})"
    return si(p50)


@dataclass
class Cell:
    text: str
    bold: bool = False
    numeric: bool = True


@dataclass
class Block:
    """One task/split: headers, rows of cells, and the notes printed under the table."""

    task: str
    split: str
    metric: str
    headline_split: str
    chance: Any
    headers: list[str]
    numeric: list[bool]
    rows: list[list[Cell]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return "tab:arena-" + re.sub(r"[^a-z0-9]+", "-", f"{self.task}-{self.split}".lower()).strip("-")


def _best(values: pd.Series, eligible: pd.Series, higher: bool = True) -> pd.Series:
    v = values.astype(float).where(eligible)
    if v.notna().sum() == 0:
        return pd.Series(False, index=values.index)
    target = v.max() if higher else v.min()
    return v.apply(lambda x: not math.isnan(x) and math.isclose(x, target, rel_tol=1e-9, abs_tol=1e-12))


def _arch_text(r: pd.Series) -> str:
    text = str(r["arch"])
    if isinstance(r.get("plugin_name"), str) and r["plugin_name"]:
        text += f" ({r['plugin_name']} {r.get('plugin_version') or ''})".replace(" )", ")")
    if r.get("flops_status") == "declared":  # a submission's FLOPs that arena could not check
        text += " [FLOPs declared]"
    if r.get("isolation") == "none":
        text += " [no isolation]"
    return text + (" †" if bool(r.get("task_specific")) else "")


def build_blocks(frame: pd.DataFrame, gate: float, blank: str = "—") -> list[Block]:
    """The paper layout of every (task, split) in ``frame``, rows in the frame's order."""
    out = []
    for (task, split), sub in frame.groupby(["task", "split"], sort=True, dropna=False):
        out.append(_block(str(task), str(split), sub, gate, blank))
    return out


def _block(task: str, split: str, sub: pd.DataFrame, gate: float, blank: str) -> Block:
    """One task's table: optional columns only when they tell rows apart; bold = best score and best ratios."""
    first = sub.iloc[0]
    variants = sub["variant"].map(short_variant)
    show_variant = variants.str.len().gt(0).any()
    keyed = show_variant and variants.str.len().gt(LONG_VARIANT).any()
    keys = {v: f"v{i + 1}" for i, v in enumerate(dict.fromkeys(v for v in variants if v))} if keyed else {}
    show_steps = sub["max_steps"].astype(object).dropna().nunique() > 1
    hardware = sub["hardware"].dropna().unique()
    show_hw = len(hardware) > 1
    show_prior = _has_prior(sub)
    headers = ["Arch", "Size"] + (["Variant"] if show_variant else []) + (["Steps"] if show_steps else []) + [
        "n", "Score"] + [t for _, t in RATIOS] + ["Params"] + (["Prior"] if show_prior else []) + [
        "FLOPs/ex", "p50 ms"] + (["Hardware"] if show_hw else [])
    numeric = [h not in ("Arch", "Size", "Variant", "Hardware") for h in headers]
    block = Block(task, split, str(first.get("metric") or "score"), str(first.get("headline_split") or ""),
                  first.get("chance"), headers, numeric)
    hib = bool(first.get("higher_is_better", True)) if not _missing(first.get("higher_is_better")) else True
    general = ~sub["task_specific"].fillna(False).astype(bool)
    best_score = _best(sub["score_mean"], sub["score_mean"].notna(), higher=hib)
    best = {col: _best(sub[col], general) for col, _ in RATIOS}
    for i, (idx, r) in enumerate(sub.iterrows()):
        cells = [Cell(_arch_text(r), numeric=False), Cell(str(r["size"]), numeric=False)]
        if show_variant:
            cells.append(Cell(keys.get(variants.iloc[i], variants.iloc[i]) or "default", numeric=False))
        if show_steps:
            cells.append(Cell("" if _missing(r["max_steps"]) else str(int(r["max_steps"]))))
        cells += [Cell(str(int(r["n"]))), Cell(score_text(r["score_mean"], r["score_std"], r["n"]), best_score[idx])]
        for col, _ in RATIOS:
            cells.append(Cell(blank if _missing(r[col]) else si(r[col]), bool(best[col][idx])))
        cells.append(Cell(si(r["params_total"])))
        if show_prior:
            cells.append(Cell(prior_text(r, blank)))
        cells += [Cell(si(r["flops_per_example"])), Cell(latency_text(r))]
        if show_hw:
            cells.append(Cell("" if _missing(r["hardware"]) else str(r["hardware"]), numeric=False))
        block.rows.append(cells)
    block.notes = _notes(sub, gate, blank, keys, hardware if not show_hw else [])
    return block


def _has_prior(sub: pd.DataFrame) -> bool:
    return any(k in sub and sub[k].notna().any() for k in ("prior_gzip_bytes", "prior_learned_bits"))


def _notes(sub: pd.DataFrame, gate: float, blank: str, keys: dict[str, str], hardware: Any) -> list[str]:
    notes = [f"Mean ± std over n seeds. Ratios: normalized score max(0, (s − chance)/(1 − chance)) per million "
             f"parameters, per GFLOP (forward, per example) and per ms (median p50 latency at batch 1); {blank} = "
             f"below the gate of {gate:g}, not measured, or seeds on different hardware. Bold: best in the column."]
    if sub["task_specific"].fillna(False).astype(bool).any():
        notes.append("† task-specific model (the task's structure is built in): not ranked on the ratios.")
    if _has_prior(sub):
        notes.append(f"Prior: the hand-written skeleton of a task-specific model (gzip bytes and non-blank lines of "
                     f"its source) and the bits its learned part holds; {blank} = no hand-written prior.")
    if sub["latency_max_ms"].astype(float).gt(sub["latency_min_ms"].astype(float) * SPREAD).any():
        notes.append("p50 ms (a–b): median over seeds, with the fastest and slowest seed when they differ by "
                     f"{(SPREAD - 1) * 100:.0f} % or more.")
    if len(hardware) == 1:
        notes.append(f"Latency measured on {hardware[0]}.")
    notes += [f"{k}: {v}" for v, k in keys.items()]
    return notes


# ----------------------------------------------------------------------------------------------------------------
# renderers

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def md_escape(text: Any) -> str:
    """Backslash-escape Markdown punctuation (also neutralizes raw HTML such as ``<script>``); newlines -> space."""
    return _MD_SPECIAL.sub(r"\\\1", str(text)).replace("\r", " ").replace("\n", " ")


def _md_prose(text: str) -> str:
    """Like :func:`md_escape` but keeps parentheses readable (with brackets escaped they cannot form a link)."""
    return re.sub(r"\\([()])", r"\1", md_escape(text))


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}"}


def latex_escape(text: Any) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text)).replace("\n", " ")


def _headline(b: Block) -> str:
    chance = "" if _missing(b.chance) else f", chance {float(b.chance):g}"
    return f"{b.metric} on {b.headline_split}{chance}" if b.headline_split else b.metric


def to_markdown(frame: pd.DataFrame, gate: float) -> str:
    out = []
    for b in build_blocks(frame, gate):
        out += [f"### {md_escape(b.task)} · {md_escape(b.split)}", "", f"Score: {_md_prose(_headline(b))}.", "",
                "| " + " | ".join(b.headers) + " |", "|" + "|".join("---:" if n else "---" for n in b.numeric) + "|"]
        for cells in b.rows:
            out.append("| " + " | ".join(f"**{md_escape(c.text)}**" if c.bold and c.text else md_escape(c.text)
                                         for c in cells) + " |")
        out += [""] + [_md_prose(n) for n in b.notes] + [""]
    return "\n".join(out)


def _tex_cell(c: Cell) -> str:
    text = " $\\pm$ ".join(latex_escape(p) for p in c.text.split(" ± "))
    text = text.replace("†", "$^\\dagger$").replace("–", "--").replace("—", "--")
    return f"\\textbf{{{text}}}" if c.bold and c.text else text


def to_latex(frame: pd.DataFrame, gate: float) -> str:
    out = ["% requires \\usepackage{booktabs}"]
    for b in build_blocks(frame, gate, blank="--"):
        notes = " ".join(latex_escape(n).replace("†", "$^\\dagger$").replace("±", "$\\pm$").replace("–", "--")
                         .replace("−", "$-$") for n in b.notes)
        out += ["\\begin{table}[t]", "\\centering", "\\small",
                f"\\caption{{{latex_escape(b.task)} ({latex_escape(b.split)}): {latex_escape(_headline(b))}. "
                f"{notes}}}", f"\\label{{{b.label}}}",
                "\\begin{tabular}{" + "".join("r" if n else "l" for n in b.numeric) + "}", "\\toprule",
                " & ".join(latex_escape(h) for h in b.headers) + " \\\\", "\\midrule"]
        out += [" & ".join(_tex_cell(c) for c in cells) + " \\\\" for cells in b.rows]
        out += ["\\bottomrule", "\\end{tabular}", "\\end{table}", ""]
    return "\n".join(out)
