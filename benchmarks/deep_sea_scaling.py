#!/usr/bin/env python
"""Pools DeepSea benchmark results (several results.json) and fits episodes to solve against N over all their sizes.

The DeepSea benchmark's own table fits the sizes of one invocation. Sizes
added later (another `deep_sea.py --sizes ... --out DIR`) are a separate
results.json; this script reads any number of them, checks that they were
judged alike (the same episode budget and bad-episode threshold; a run of the
same contender, N and seed in two files is refused; so is an invocation that
has not finished, unless --allow-unfinished), and prints, as Markdown: where
the runs come from, each contender's episodes to solve per N and seed with the median, then the
power law and the exponential through the medians, as `deep_sea.py` fits them
(its `slope_table`). Nothing is run.

    python benchmarks/deep_sea_scaling.py benchmarks/results/deep_sea_full/results.json \\
        benchmarks/results/deep_sea_boot_sizes/results.json benchmarks/results/deep_sea_boot_35/results.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

import harness
from harness.runner import load_results
from harness.stats import group_key
from deep_sea import CONTENDERS, bsuite_results, episode_stats, episodes, first_find, slope_table


class Mismatch(ValueError):
    """The results were not judged alike, or hold the same run twice."""


def load(path: Path, *, allow_unfinished: bool = False) -> dict[str, Any]:
    """A deep_sea.py results.json, refused (Mismatch, naming the file) when it is not one or is unfinished."""
    try:
        results = load_results(path)
    except (OSError, ValueError) as exc:  # ValueError: JSONDecodeError and UnicodeDecodeError too
        raise Mismatch(f"{path}: {exc}") from None
    if results.get("benchmark") != "deep_sea":
        raise Mismatch(f"{path} holds {results.get('benchmark')!r} results, not deep_sea's")
    if not bsuite_results(results):
        raise Mismatch(f"{path} holds results of the earlier greedy-episode criterion: they cannot be pooled")
    if results.get("status") != "finished" and not allow_unfinished:
        raise Mismatch(f"{path} is {results.get('status')!r}, not finished (--allow-unfinished pools it anyway)")
    return results


def pooled(results: Sequence[dict[str, Any]], *, contenders: Sequence[str] | None = None) -> dict[str, Any]:
    """One results dict holding the runs of every `results` (of `contenders` only, when given)."""
    if not results:
        raise Mismatch("no results to pool")
    judged = set()
    for r in results:
        settings = r["settings"]
        judged.add((settings["budget_episodes"], settings["bad_threshold"]))
    if len(judged) > 1:
        raise Mismatch(f"judged differently (budget in episodes, bad threshold): {sorted(judged)}")
    runs, declared, seen = [], {}, set()
    for r in results:
        for c in r.get("contenders", []):
            declared.setdefault((c["name"], group_key(c.get("group"))), c)
        for run in r["runs"]:
            if contenders is not None and run["contender"] not in contenders:
                continue
            key = (run["contender"], run["group"]["size"], run["seed"])
            if key in seen:
                raise Mismatch(f"{run['contender']} at N = {key[1]} seed {key[2]} is in two of the results")
            seen.add(key)
            runs.append(run)
    if not runs:
        raise Mismatch(f"no runs of {', '.join(contenders or [])} in the results")
    # Labels and budgets; the order is render's (by contender, then N), whatever order the files came in.
    return {"runs": runs, "contenders": list(declared.values())}


def render(pool: dict[str, Any], sources: Sequence[tuple[Path, dict[str, Any]]] = ()) -> str:
    """Markdown: where the runs come from, episodes to solve per contender, N and seed, and the fits."""
    lines = [f"- {path}: {r.get('status')}, {len(r['runs'])} runs, last invocation "
             f"{r.get('machine', {}).get('date', '?')}, commit {str(r.get('machine', {}).get('git_commit'))[:10]}"
             for path, r in sources]
    summaries = sorted(harness.summarize(pool), key=lambda s: (s.contender, s.group["size"]))
    rows = []
    for s in summaries:
        solved_at = [episodes(r) for r in s.runs]
        per_seed = ", ".join("never" if e is None else f"{e:,}" for e in solved_at)
        found = ", ".join("never" if e is None else f"{e:,}" for e in map(first_find, s.runs))
        median = episode_stats(s).median
        rows.append([s.label, str(s.group["size"]), f"{s.reached}/{len(s.runs)}", per_seed,
                     "never" if median is None else f"{median:,.0f}", found])
    return "\n".join([
        *lines,
        *([""] if lines else []),
        harness.markdown_table(["contender", "N", "solved", "episodes to solve (by seed)", "median",
                                "first find (by seed)"], rows, ["---", "---:", "---:", "---", "---:", "---"]),
        "",
        slope_table(summaries),
    ]) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="+", type=Path, help="results.json files of deep_sea.py")
    p.add_argument("--contenders", nargs="+", choices=CONTENDERS, help="only these contenders (default: all)")
    p.add_argument("--allow-unfinished", action="store_true",
                   help="pool results whose invocation has not finished (interrupted, failed or still running)")
    args = p.parse_args(argv)
    try:
        loaded = [load(path, allow_unfinished=args.allow_unfinished) for path in args.results]
        pool = pooled(loaded, contenders=args.contenders)
    except (KeyError, TypeError, Mismatch) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(render(pool, list(zip(args.results, loaded))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
