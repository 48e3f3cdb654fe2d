"""Table specs: what a paper table is, with the paper's numbers and claims inline."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from ltbench.methods.baselines import ModelConfig
from ltbench.train import TrainConfig

# A cell key is "<slice>/<metric>", e.g. "tail/HR@50".
PaperValue = tuple[float, float | None]  # (mean, standard error or None)


TRAIN_FIELDS = frozenset(f.name for f in dataclasses.fields(TrainConfig))
MODEL_FIELDS = frozenset(f.name for f in dataclasses.fields(ModelConfig))


@dataclasses.dataclass(frozen=True)
class Row:
  name: str  # row label as in the paper
  method: str  # key in ltbench.methods.METHODS
  # Method options, plus per-row overrides of the spec's TrainConfig / ModelConfig fields
  # (e.g. learning_rate, dropout): a key named like one of those fields overrides it.
  params: dict[str, Any] = dataclasses.field(default_factory=dict)
  paper: dict[str, PaperValue] = dataclasses.field(default_factory=dict)  # cell -> value
  note: str = ""  # how this row was configured (e.g. a hyper-parameter choice)
  # The paper's search space for this row (param -> candidate values), searched on the
  # validation split by `ltbench tune`; keys as in `params`.
  grid: dict[str, tuple] = dataclasses.field(default_factory=dict)
  # Per-row generator options of a generated data set (e.g. IDW Figure 3's interest skew),
  # over the spec's `data_options`: the row trains and is evaluated on its own data.
  data_options: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class ClaimResult:
  holds: bool | None  # None when the rows it needs have not run
  evidence: str

  def __post_init__(self):
    # A check may compute `holds` from numpy comparisons (np.bool_), which json cannot
    # write: store a plain bool so every report serialises.
    if self.holds is not None:
      object.__setattr__(self, "holds", bool(self.holds))


@dataclasses.dataclass(frozen=True)
class Claim:
  text: str  # the paper's claim in words
  check: Callable[[Any], ClaimResult]  # Table -> result


@dataclasses.dataclass(frozen=True)
class DatasetSettings:
  """Values chosen for one data set other than the spec's own (e.g. the learning rate that
  `ltbench tune` picked on ML-100K's validation split), applied by `--dataset NAME`."""
  train: dict[str, Any] = dataclasses.field(default_factory=dict)  # TrainConfig fields
  # Method options, applied to every row that already sets that option (e.g. CDN's gamma).
  options: dict[str, Any] = dataclasses.field(default_factory=dict)
  note: str = ""  # where the values came from; printed in the report
  # The paper's numbers on this data set (row name -> cell -> value), replacing the rows'
  # own; None keeps them. {} says the paper reports nothing on this data set (a stand-in).
  paper: dict[str, dict[str, PaperValue]] | None = None


@dataclasses.dataclass(frozen=True)
class TableSpec:
  id: str  # "<paper>/<table>", e.g. "cdn/table2"
  title: str  # one line
  paper: str  # citation
  dataset: str  # key in ltbench.data.registry.DATASETS
  cells: tuple[str, ...]  # columns, e.g. ("overall/HR@50", "overall/NDCG@50", ...)
  rows: tuple[Row, ...]
  seeds: tuple[int, ...] = (0, 1, 2, 3, 4)  # trial seeds (init and data order)
  train: TrainConfig = TrainConfig()
  model: Any = ModelConfig()  # ModelConfig, or SeqModelConfig for sequence data sets
  # Sequence data sets only: ltbench.data.sequences.SequenceConfig fields (max_len, windows..)
  sequence_options: dict[str, Any] = dataclasses.field(default_factory=dict)
  head_fraction: float | None = None  # None = the data set's default
  protocol: str = "full"  # "full": rank all items, excluding the user's train/valid items
  # "interactions": a Bundle (registry.load_bundle); "sequences": SequenceData cut from the
  # data set's time-ordered histories (registry.load_sequences), ranked per sequence.
  data_protocol: str = "interactions"
  data_options: dict[str, Any] = dataclasses.field(default_factory=dict)  # synthetic config
  claims: tuple[Claim, ...] = ()
  notes: tuple[str, ...] = ()  # protocol decisions and deviations, printed in reports
  quick: Callable[[], "TableSpec"] | None = None  # small variant on synthetic data
  # For figures: (table, ok trials, out_dir) -> written paths (PNG + CSV)
  figure: Callable[[Any, list, Any], list] | None = None
  is_quick: bool = False
  variant: str = ""  # suffix of the results folder for reduced runs (e.g. "-epochs10")
  select_cell: str = "overall/NDCG@50"  # validation cell that `ltbench tune` maximises
  extra_ks: tuple[int, ...] = ()  # more cut-offs to evaluate and store in every trial
  # Settings chosen for other data sets (`--dataset NAME`), keyed by data set name.
  per_dataset: dict[str, DatasetSettings] = dataclasses.field(default_factory=dict)
  # Record per epoch the mean softmax cross-entropy of the served model on the head / tail /
  # all-item slices of a fixed training subsample and of the validation split (interaction
  # data only; `runner.SliceLosses`), stored in each trial as "slice_loss_per_epoch".
  record_slice_losses: bool = False
  # Keys a trial's "extras" must hold to count for this spec (a trial of the same
  # configuration recorded without them, e.g. by another spec, is retrained, not reused).
  needs_extras: tuple[str, ...] = ()

  @property
  def ks(self) -> tuple[int, ...]:
    return tuple(sorted({int(c.split("@")[1]) for c in self.cells}))

  @property
  def eval_ks(self) -> tuple[int, ...]:
    """Cut-offs every trial is evaluated at: the cells', the selection cell's and
    `extra_ks` (so that specs sharing trials, e.g. IDW Tables 1 and 4, find theirs)."""
    return tuple(sorted(set(self.ks) | {int(self.select_cell.split("@")[1])} |
                        set(self.extra_ks)))

  @property
  def slices(self) -> tuple[str, ...]:
    return tuple(dict.fromkeys(c.split("/")[0] for c in self.cells))

  @property
  def out_name(self) -> str:
    return self.id + ("-quick" if self.is_quick else "") + self.variant

  def row(self, name: str) -> Row:
    for r in self.rows:
      if r.name == name:
        return r
    from ltbench.errors import SpecError
    raise SpecError(f"unknown row {name!r} in {self.id}; valid: "
                    f"{', '.join(r.name for r in self.rows)}")

  def select_rows(self, names: list[str] | None, option: str = "--rows") -> tuple[Row, ...]:
    """The named rows (None: all). An empty list or a repeated name is an error."""
    from ltbench.errors import SpecError
    if names is None:
      return self.rows
    if not names:
      raise SpecError(f"{option} is empty; name at least one row of {self.id}: "
                      f"{', '.join(r.name for r in self.rows)} (or leave {option} out for all)")
    repeated = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if repeated is not None:
      raise SpecError(f"{option} lists row {repeated!r} twice")
    return tuple(self.row(n) for n in names)


MAX_SEED = 2**32 - 1  # a PRNG key holds a 32-bit seed


def check_seeds(seeds, option: str = "--seeds") -> list[int]:
  """The seeds as a list, or a SpecError naming `option`: an empty list, a seed that is not a
  non-negative 32-bit integer (larger ones would wrap onto another seed's key), or a repeated
  seed (it would train the same trial twice and count it as two)."""
  from ltbench.errors import SpecError
  seeds = list(seeds)
  if not seeds:
    raise SpecError(f"{option} is empty; give at least one seed, e.g. {option} 0,1,2")
  for s in seeds:
    if isinstance(s, bool) or not isinstance(s, int):
      raise SpecError(f"{option}: seed {s!r} is not an integer")
    if not 0 <= s <= MAX_SEED:
      raise SpecError(f"{option}: seed {s} is outside 0..{MAX_SEED}; a trial's PRNG key holds a "
                      "32-bit seed, so a larger value would silently repeat another seed")
  repeated = next((s for i, s in enumerate(seeds) if s in seeds[:i]), None)
  if repeated is not None:
    raise SpecError(f"{option} lists seed {repeated} twice; each seed is one trial, and a "
                    "repeated seed would be counted twice (n too large, standard error too small)")
  return seeds


def row_spec(spec: TableSpec, row: Row) -> TableSpec:
  """The spec as `row` sees it: its own data options over the spec's (the spec itself when
  the row has none, so the configuration keys of such rows do not change)."""
  if not row.data_options:
    return spec
  return dataclasses.replace(spec, data_options={**spec.data_options, **row.data_options})


def _model_fields(model) -> frozenset[str]:
  """The fields a row may override of the spec's model config (a ModelConfig, or the
  sequential backbone's SeqModelConfig). M (num_interests) stays a method option: the
  sur / mur factories set it."""
  if isinstance(model, ModelConfig):
    return MODEL_FIELDS
  return frozenset(f.name for f in dataclasses.fields(model)) - {"num_interests"}


def resolve_row(spec: TableSpec, row: Row) -> tuple[dict[str, Any], TrainConfig, ModelConfig]:
  """(method options, TrainConfig, ModelConfig) of a row: its params that name a TrainConfig
  or ModelConfig field override the spec's value; the rest are the method's options."""
  model_fields = _model_fields(spec.model)
  train = {k: v for k, v in row.params.items() if k in TRAIN_FIELDS}
  model = {k: v for k, v in row.params.items() if k in model_fields}
  options = {k: v for k, v in row.params.items() if k not in TRAIN_FIELDS | model_fields}
  return (options, dataclasses.replace(spec.train, **train),
          dataclasses.replace(spec.model, **model))


def for_dataset(spec: TableSpec, dataset: str) -> TableSpec:
  """The spec run on another data set: the data set's recorded settings, if any, replace
  the spec's (a row's own params, e.g. a tuning grid point, still win over them)."""
  settings = spec.per_dataset.get(dataset)
  if settings is None:
    return spec
  unknown = set(settings.train) - TRAIN_FIELDS
  if unknown:
    from ltbench.errors import SpecError
    raise SpecError(f"{spec.id}: per_dataset[{dataset!r}].train names unknown TrainConfig "
                    f"fields {sorted(unknown)}")
  def replaced(r: Row) -> Row:
    changed = {k: v for k, v in settings.options.items() if k in r.params and r.params[k] != v}
    note = r.note
    if note and changed:  # the note names the spec's values: say which ones this run replaced
      note += " (for " + dataset + ": " + ", ".join(f"{k} = {v}" for k, v in changed.items()) + ")"
    return dataclasses.replace(
        r, params={**r.params, **{k: v for k, v in settings.options.items() if k in r.params}},
        paper=r.paper if settings.paper is None else settings.paper.get(r.name, {}), note=note)

  rows = tuple(replaced(r) for r in spec.rows)
  values = ", ".join(f"{k} = {v}" for k, v in {**settings.train, **settings.options}.items())
  note = (f"Settings for {dataset}: {values}. " if values else "") + settings.note
  note = note.strip() or f"Settings for {dataset}: the spec's own."
  return dataclasses.replace(spec, train=dataclasses.replace(spec.train, **settings.train),
                             rows=rows, notes=(note,) + spec.notes)
