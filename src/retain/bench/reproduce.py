"""``retain bench --reproduce buzzega2020``: the MNIST part of Table 2 of Buzzega et al.,
"Dark Experience for General Continual Learning" (NeurIPS 2020).

Protocol (paper appendix and the authors' ``mammoth`` best arguments): MLP 784-100-100-10,
SGD without momentum, one epoch per task; Seq-MNIST: 5 class-incremental tasks, batch 10;
Permuted/Rotated MNIST: 20 domain-incremental tasks, batch 128. Learning rates, replay batch
sizes and method weights are the per-method, per-buffer values below. Where our
hyper-parameter convention differs from mammoth's the value is converted (noted inline).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from retain.bench.grid import expand
from retain.bench.summary import format_cell, group_name
from retain.errors import RetainError

TABLE_SCENARIOS = {"seq-mnist": ("split-mnist", 10, None),
                   "perm-mnist": ("permuted-mnist", 128, 20),
                   "rot-mnist": ("rotated-mnist", 128, 20)}


@dataclass(frozen=True)
class Cell:
    """One number of the paper's table and the run that should reproduce it."""

    table: str  # seq-mnist, perm-mnist, rot-mnist
    method: str
    buffer: int | None
    paper: float | None  # None: no cell in the paper (reported beside ER)
    strategy: str
    lr: float
    init: str = "xavier"  # mammoth's MLP initialisation
    scenario: str | None = None  # another scenario than the table's (an ablation's data)


def _cells() -> list[Cell]:
    s, p, r = "seq-mnist", "perm-mnist", "rot-mnist"
    # mammoth's oEWC penalty is λ·ΣF(Δθ)², ours λ/2·ΣF(Δθ)²: lambda_ = 2·e_lambda
    return [
        Cell(s, "SGD", None, 19.60, "naive", 0.03),
        Cell(s, "oEWC", None, 20.46,
             "online-ewc:lambda_=180,gamma=1.0,fisher=empirical,fisher_samples=null", 0.03),
        Cell(s, "SI", None, 19.27, "si:c=1.0,xi=0.9", 0.1),
        Cell(s, "LwF", None, 19.62, "lwf:alpha=1.0,temperature=2.0", 0.03),
        Cell(s, "ER", 200, 80.43, "replay:capacity=200,batch_size=10", 0.01),
        Cell(s, "ER", 500, 86.12, "replay:capacity=500,batch_size=10", 0.1),
        Cell(s, "A-GEM", 200, 45.72, "agem:capacity=200,sample_size=128,per_experience=40", 0.1),
        Cell(s, "A-GEM", 500, 46.66, "agem:capacity=500,sample_size=128,per_experience=100", 0.1),
        # iCaRL's sigmoid BCE over the seen classes, as in the paper and mammoth
        Cell(s, "iCaRL", 200, 70.51, "icarl:capacity=200,batch_size=0,loss=bce", 0.1),
        Cell(s, "iCaRL", 500, 70.10, "icarl:capacity=500,batch_size=0,loss=bce", 0.1),
        Cell(s, "DER", 200, 84.55, "der:capacity=200,alpha=0.2,batch_size=10", 0.03),
        Cell(s, "DER", 500, 90.54, "der:capacity=500,alpha=1.0,batch_size=128", 0.03),
        Cell(s, "DER++", 200, 85.61, "derpp:capacity=200,alpha=0.2,beta=1.0,batch_size=128",
             0.03),
        Cell(s, "DER++", 500, 91.00, "derpp:capacity=500,alpha=1.0,beta=0.5,batch_size=10",
             0.03),
        Cell(s, "Joint", None, 95.57, "joint", 0.03),
        Cell(s, "ER-ACE", 200, None, "er-ace:capacity=200,batch_size=10", 0.03),
        Cell(s, "ER-ACE", 500, None, "er-ace:capacity=500,batch_size=10", 0.1),
        Cell(s, "GDumb", 200, None, "gdumb:capacity=200,epochs=30,batch_size=16", 0.05),
        Cell(s, "GDumb", 500, None, "gdumb:capacity=500,epochs=30,batch_size=16", 0.05),
        Cell(s, "MAS", None, None, "mas:lambda_=0.01,samples=1000", 0.03),
        # ablations: our defaults where they differ from the paper's protocol
        Cell(s, "A-GEM (memory always full)", 200, None, "agem:capacity=200,sample_size=128",
             0.1),
        Cell(s, "A-GEM (memory always full)", 500, None, "agem:capacity=500,sample_size=128",
             0.1),
        # mammoth draws min(128, memory size) distinct memory rows for the reference gradient
        Cell(s, "A-GEM (reference batch without replacement as in mammoth)", 200, None,
             "agem:capacity=200,sample_size=128,per_experience=40,replace=false", 0.1),
        Cell(s, "A-GEM (reference batch without replacement as in mammoth)", 500, None,
             "agem:capacity=500,sample_size=128,per_experience=100,replace=false", 0.1),
        Cell(s, "A-GEM (mammoth's code: 10 per task, reference batch without replacement)",
             200, None, "agem:capacity=200,sample_size=128,per_experience=10,replace=false",
             0.1),
        Cell(s, "A-GEM (mammoth's code: 10 per task, reference batch without replacement)",
             500, None, "agem:capacity=500,sample_size=128,per_experience=10,replace=false",
             0.1),
        Cell(s, "A-GEM (10 per task as in mammoth's code)", 200, None,
             "agem:capacity=200,sample_size=128,per_experience=10", 0.1),
        Cell(s, "A-GEM (10 per task as in mammoth's code)", 500, None,
             "agem:capacity=500,sample_size=128,per_experience=10", 0.1),
        Cell(s, "iCaRL (cross-entropy + distillation and 10 exemplars per step)", 200, None,
             "icarl:capacity=200,batch_size=10", 0.1),
        Cell(s, "iCaRL (cross-entropy + distillation and 10 exemplars per step)", 500, None,
             "icarl:capacity=500,batch_size=10", 0.1),
        Cell(s, "ER (PyTorch default init)", 200, None, "replay:capacity=200,batch_size=10",
             0.01, init="default"),
        Cell(s, "oEWC (Fisher on 1,024 samples per task)", None, None,
             "online-ewc:lambda_=180,gamma=1.0,fisher=empirical", 0.03),
        Cell(s, "iCaRL (cross-entropy + distillation: our default loss)", 200, None,
             "icarl:capacity=200,batch_size=0", 0.1),
        Cell(s, "iCaRL (cross-entropy + distillation: our default loss)", 500, None,
             "icarl:capacity=500,batch_size=0", 0.1),
        Cell(s, "iCaRL (sigmoid BCE and raw features as in mammoth)", 200, None,
             "icarl:capacity=200,batch_size=0,loss=bce,normalize=false", 0.1),
        Cell(s, "iCaRL (sigmoid BCE and raw features as in mammoth)", 500, None,
             "icarl:capacity=500,batch_size=0,loss=bce,normalize=false", 0.1),
        # mammoth's class means: batch means of 10 exemplars folded as m <- (m + b) / 2
        Cell(s, "iCaRL (class means folded by batch as in mammoth's code)", 200, None,
             "icarl:capacity=200,batch_size=0,loss=bce,normalize=false,mean_batch=10", 0.1),
        Cell(s, "iCaRL (class means folded by batch as in mammoth's code)", 500, None,
             "icarl:capacity=500,batch_size=0,loss=bce,normalize=false,mean_batch=10", 0.1),
        # mammoth's 2020-21 iCaRL appended the exemplars to MNIST's uint8 training tensor
        # with .type(torch.uint8) and no x255: the replayed exemplars are black images
        Cell(s, "iCaRL (exemplars replayed as mammoth's uint8 cast: black images)", 200, None,
             "icarl:capacity=200,batch_size=0,loss=bce,replay_cast_uint8=true", 0.1),
        Cell(s, "iCaRL (exemplars replayed as mammoth's uint8 cast: black images)", 500, None,
             "icarl:capacity=500,batch_size=0,loss=bce,replay_cast_uint8=true", 0.1),
        Cell(p, "SGD", None, 40.70, "naive", 0.2),
        # λ re-selected for our Fisher by a grid on seed 0 (1.4, 4, 10, 30, 100), as the paper
        # selected its own by grid search: mammoth's λ (0.7, i.e. 1.4) gives 71.0
        Cell(p, "oEWC", None, 75.79,
             "online-ewc:lambda_=4,gamma=1.0,fisher=empirical,fisher_samples=null", 0.1),
        Cell(p, "oEWC (mammoth's λ 0.7)", None, None,
             "online-ewc:lambda_=1.4,gamma=1.0,fisher=empirical,fisher_samples=null", 0.1),
        Cell(p, "oEWC (mammoth's λ 0.7, Fisher on 1,024 samples per task)", None, None,
             "online-ewc:lambda_=1.4,gamma=1.0,fisher=empirical", 0.1),
        Cell(p, "oEWC (mammoth's λ 0.7 and Fisher weighted by the label probability)", None,
             None,
             "online-ewc:lambda_=1.4,gamma=1.0,fisher=weighted-empirical,fisher_samples=null",
             0.1),
        Cell(p, "oEWC (Fisher weighted by the label probability, λ re-selected: 30)", None,
             None,
             "online-ewc:lambda_=30,gamma=1.0,fisher=weighted-empirical,fisher_samples=null",
             0.1),
        Cell(p, "SI", None, 65.86, "si:c=0.5,xi=1.0", 0.1),
        Cell(p, "ER", 200, 72.37, "replay:capacity=200,batch_size=128", 0.2),
        Cell(p, "ER", 500, 80.60, "replay:capacity=500,batch_size=128", 0.2),
        Cell(p, "A-GEM", 200, 66.42, "agem:capacity=200,sample_size=128,per_experience=10", 0.1),
        Cell(p, "A-GEM", 500, 67.56, "agem:capacity=500,sample_size=128,per_experience=25", 0.1),
        Cell(p, "DER", 200, 81.74, "der:capacity=200,alpha=1.0,batch_size=128", 0.2),
        Cell(p, "DER", 500, 87.29, "der:capacity=500,alpha=1.0,batch_size=128", 0.2),
        Cell(p, "DER++", 200, 83.58, "derpp:capacity=200,alpha=1.0,beta=1.0,batch_size=128",
             0.1),
        Cell(p, "DER++", 500, 88.21, "derpp:capacity=500,alpha=1.0,beta=0.5,batch_size=128",
             0.2),
        Cell(p, "Joint", None, 94.33, "joint", 0.2),
        Cell(r, "SGD", None, 67.66, "naive", 0.2),
        Cell(r, "oEWC", None, 77.35,
             "online-ewc:lambda_=1.4,gamma=1.0,fisher=empirical,fisher_samples=null", 0.1),
        Cell(r, "oEWC (Fisher on 1,024 samples per task)", None, None,
             "online-ewc:lambda_=1.4,gamma=1.0,fisher=empirical", 0.1),
        Cell(r, "SI", None, 71.91, "si:c=1.0,xi=1.0", 0.1),
        Cell(r, "ER", 200, 85.01, "replay:capacity=200,batch_size=128", 0.2),
        Cell(r, "ER", 500, 88.91, "replay:capacity=500,batch_size=128", 0.2),
        Cell(r, "A-GEM", 200, 81.91, "agem:capacity=200,sample_size=128,per_experience=10", 0.1),
        Cell(r, "A-GEM", 500, 80.31, "agem:capacity=500,sample_size=128,per_experience=25", 0.3),
        Cell(r, "DER", 200, 90.04, "der:capacity=200,alpha=1.0,batch_size=128", 0.2),
        Cell(r, "DER", 500, 92.24, "der:capacity=500,alpha=0.5,batch_size=128", 0.2),
        Cell(r, "DER++", 200, 90.43, "derpp:capacity=200,alpha=1.0,beta=0.5,batch_size=128",
             0.1),
        Cell(r, "DER++", 500, 92.77, "derpp:capacity=500,alpha=0.5,beta=1.0,batch_size=128",
             0.2),
        Cell(r, "Joint", None, 95.76, "joint", 0.2),
        # mammoth's A-GEM code offers each task's first mini-batch (128 rows) to a reservoir
        Cell(r, "A-GEM (first batch of each task as in mammoth's code)", 200, None,
             "agem:capacity=200,sample_size=128,per_experience=128", 0.1),
        Cell(r, "A-GEM (first batch of each task as in mammoth's code)", 500, None,
             "agem:capacity=500,sample_size=128,per_experience=128", 0.3),
        # mammoth rotates PIL images with torchvision's default, nearest-neighbour pixels
        Cell(r, "SI (nearest-neighbour rotation as in mammoth)", None, None, "si:c=1.0,xi=1.0",
             0.1, scenario="rotated-mnist-nearest"),
        Cell(r, "A-GEM (nearest-neighbour rotation as in mammoth)", 200, None,
             "agem:capacity=200,sample_size=128,per_experience=10", 0.1,
             scenario="rotated-mnist-nearest"),
        Cell(r, "A-GEM (reference batch without replacement as in mammoth)", 200, None,
             "agem:capacity=200,sample_size=128,per_experience=10,replace=false", 0.1),
    ]


CELLS = _cells()
PRESETS = ("buzzega2020",)


def reproduction_runs(preset: str, seeds: list[int], tables: list[str] | None = None,
                      methods: list[str] | None = None) -> list[dict[str, Any]]:
    """The runs of a preset (every cell × seed), restricted to ``tables`` and ``methods``
    (``"DER"`` or ``"DER/200"`` for one buffer size) when given."""
    return [run for cell in select(preset, tables, methods) for run in cell_runs(cell, seeds)]


def cell_runs(cell: Cell, seeds: list[int]) -> list[dict[str, Any]]:
    scenario, batch_size, experiences = TABLE_SCENARIOS[cell.table]
    return expand({"runs": [{"strategy": cell.strategy, "lr": cell.lr}], "init": cell.init,
                   "scenario": cell.scenario or scenario, "batch_size": batch_size,
                   "experiences": experiences, "epochs": 1, "seeds": seeds})


def select(preset: str, tables: list[str] | None = None,
           methods: list[str] | None = None) -> list[Cell]:
    if preset not in PRESETS:
        raise RetainError(f"unknown reproduction {preset!r}; choose one of {', '.join(PRESETS)}")
    unknown = sorted(set(tables or []) - set(TABLE_SCENARIOS))
    if unknown:
        raise RetainError(f"unknown table {unknown}; choose from {', '.join(TABLE_SCENARIOS)}")
    names = {c.method.lower() for c in CELLS} | {f"{c.method}/{c.buffer}".lower() for c in CELLS}
    wanted = {m.strip().lower() for m in methods or []}
    if wanted - names:
        raise RetainError(f"unknown method {sorted(wanted - names)}; choose from "
                          f"{', '.join(sorted({c.method for c in CELLS}))} (optionally "
                          "with /buffer, e.g. DER/200)")
    return [c for c in CELLS if (not tables or c.table in tables) and
            (not wanted or {c.method.lower(), f"{c.method}/{c.buffer}".lower()} & wanted)]


def cell_rows(rows: list[dict[str, Any]], tables: list[str] | None = None
              ) -> list[tuple[Cell, dict[str, Any] | None]]:
    """Each cell beside its summary row (``None`` when not run yet)."""
    by_group = {row["group"]: row for row in rows}
    return [(cell, by_group.get(group_name(cell_runs(cell, [0])[0])))
            for cell in select("buzzega2020", tables)]


def markdown(rows: list[dict[str, Any]], command: str) -> str:
    """The reproduction table: paper number, ours (mean ± std over seeds), difference."""
    lines = ["| table | method | buffer | paper | ours (mean ± std) | seeds | Δ | within ±2 |",
             "|---|---|---|---|---|---|---|---|"]
    for cell, row in cell_rows(rows):
        paper = "–" if cell.paper is None else f"{cell.paper:.2f}"
        buffer = "–" if cell.buffer is None else str(cell.buffer)
        if row is None:
            lines.append(f"| {cell.table} | {cell.method} | {buffer} | {paper} | not run | 0 | "
                         "| |")
            continue
        ours = format_cell(row, "average_accuracy")
        if cell.paper is None:
            delta, ok = "", ""
        else:
            d = row["average_accuracy"] - cell.paper
            delta, ok = f"{d:+.2f}", "yes" if abs(d) <= 2 else "no"
            if row["seeds"] < 3:
                ok = f"({row['seeds']} seed{'s' if row['seeds'] > 1 else ''}: not judged)"
        lines.append(f"| {cell.table} | {cell.method} | {buffer} | {paper} | {ours} | "
                     f"{row['seeds']} | {delta} | {ok} |")
    return f"Command: `{command}`\n\n" + "\n".join(lines) + "\n"
