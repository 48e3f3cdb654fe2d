"""Figure writers: each writes the figure's data as CSV and the figure as PNG (matplotlib,
headless), and returns the paths written."""

from __future__ import annotations

import pathlib
from typing import Sequence

import numpy as np
import pandas as pd


def _pyplot():
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


def _save(fig, path: pathlib.Path) -> pathlib.Path:
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  _pyplot().close(fig)
  return path


def lines(df: pd.DataFrame, x: str, series: Sequence[str], out: pathlib.Path, title: str,
          xlabel: str, ylabel: str, logx: bool = False) -> list[pathlib.Path]:
  """One line per series with ± SE error bars; df holds x, <series>, <series>_se columns."""
  csv = out.with_suffix(".csv")
  df.to_csv(csv, index=False)
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(5.5, 3.8))
  for s in series:
    ax.errorbar(df[x], df[s], yerr=df.get(f"{s}_se"), marker="o", capsize=3, label=s)
  if logx:
    import matplotlib.ticker as ticker
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    ax.set_xticks(df[x])
    ax.set_xticklabels([f"{v:g}" for v in df[x]])
  ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
  ax.legend(loc="best", fontsize="small")
  return [csv, _save(fig, out.with_suffix(".png"))]


def bars(df: pd.DataFrame, group: str, series: Sequence[str], out: pathlib.Path, title: str,
         ylabel: str) -> list[pathlib.Path]:
  """Grouped bars (one group per row of df) with ± SE error bars."""
  csv = out.with_suffix(".csv")
  df.to_csv(csv, index=False)
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(5.5, 3.8))
  width = 0.8 / len(series)
  pos = np.arange(len(df))
  for n, s in enumerate(series):
    ax.bar(pos + n * width, df[s], width, yerr=df.get(f"{s}_se"), capsize=3, label=s)
  ax.set_xticks(pos + width * (len(series) - 1) / 2)
  ax.set_xticklabels(df[group])
  ax.set(title=title, ylabel=ylabel)
  ax.legend()
  return [csv, _save(fig, out.with_suffix(".png"))]


def scatter(df: pd.DataFrame, label: str, x: str, y: str, out: pathlib.Path, title: str,
            xlabel: str, ylabel: str) -> list[pathlib.Path]:
  """Labelled points with ± SE error bars in both directions."""
  csv = out.with_suffix(".csv")
  df.to_csv(csv, index=False)
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(5.5, 4.2))
  for _, r in df.iterrows():
    ax.errorbar(r[x], r[y], xerr=r.get(f"{x}_se"), yerr=r.get(f"{y}_se"), marker="o", capsize=3)
    ax.annotate(r[label], (r[x], r[y]), textcoords="offset points", xytext=(5, 5))
  ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
  return [csv, _save(fig, out.with_suffix(".png"))]


def curves(df: pd.DataFrame, out: pathlib.Path, title: str, xlabel: str, ylabel: str
           ) -> list[pathlib.Path]:
  """One line per `row` of a long frame (row, epoch, mean, se), with a ± SE band."""
  csv = out.with_suffix(".csv")
  df.to_csv(csv, index=False)
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(6.0, 4.0))
  for row, part in df.groupby("row", sort=False):
    ax.plot(part["epoch"], part["mean"], label=row)
    se = part["se"].fillna(0.0)
    ax.fill_between(part["epoch"], part["mean"] - se, part["mean"] + se, alpha=0.2)
  ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
  ax.legend(loc="best", fontsize="small")
  return [csv, _save(fig, out.with_suffix(".png"))]


def grid_lines(df: pd.DataFrame, x: str, out: pathlib.Path, title: str, xlabel: str,
               ylabel: str, colors: dict[str, str] | None = None, logx: bool = False
               ) -> list[pathlib.Path]:
  """A grid of panels from a long frame (grid_row, grid_col, series, <x>, mean, se): one
  panel per (grid_row, grid_col), in order of appearance, one line per series with a ± SE
  band; `colors` maps series to colours. Panels of one grid row share a y scale."""
  csv = out.with_suffix(".csv")
  df.to_csv(csv, index=False)
  plt = _pyplot()
  grid_rows = list(dict.fromkeys(df["grid_row"]))
  grid_cols = list(dict.fromkeys(df["grid_col"]))
  fig, axes = plt.subplots(len(grid_rows), len(grid_cols), squeeze=False, sharey="row",
                           figsize=(3.4 * len(grid_cols), 2.6 * len(grid_rows) + 0.4))
  for i, gr in enumerate(grid_rows):
    for j, gc in enumerate(grid_cols):
      ax = axes[i, j]
      part = df[(df["grid_row"] == gr) & (df["grid_col"] == gc)]
      for series, line in part.groupby("series", sort=False):
        line = line.sort_values(x)  # rows may list a sweep's points out of order
        color = (colors or {}).get(series)
        (drawn,) = ax.plot(line[x], line["mean"], marker="o" if len(line) <= 12 else None,
                           markersize=3, label=series, color=color)
        se = line["se"].fillna(0.0)
        ax.fill_between(line[x], line["mean"] - se, line["mean"] + se, alpha=0.2,
                        color=drawn.get_color())
      if logx:
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(part[x].unique()))
        ax.set_xticklabels([f"{v:g}" for v in sorted(part[x].unique())])
      elif (part[x] == part[x].round()).all():
        from matplotlib.ticker import MaxNLocator
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
      else:  # a sweep over fractional values (η, momentum): a tick at each point
        values = sorted(part[x].unique())
        ax.set_xticks(values)
        ax.set_xticklabels([f"{v:g}" for v in values], rotation=45 if len(values) > 4 else 0,
                           fontsize="small")
      ax.set_title(f"{gr}: {gc}" if len(grid_rows) > 1 else str(gc), fontsize="medium")
      if i == len(grid_rows) - 1:
        ax.set_xlabel(xlabel)
      if j == 0:
        ax.set_ylabel(ylabel)
      if i == 0 and j == 0:
        ax.legend(loc="best", fontsize="small")
  fig.suptitle(title)
  return [csv, _save(fig, out.with_suffix(".png"))]
