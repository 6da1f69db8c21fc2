"""Accuracy of the engine on a generated campus, in memory (no database): the loop for tuning the policy.

    .venv/bin/python bench/campus_accuracy.py --people 20000 [--seed 7] [--policy policies/matching.yaml]

Generates the campus (or reuses `--campus DIR`), normalises every row with the importer's own parser,
links with `idbroker.linking.link_in_memory` and scores against the truth. `--show N` prints up to N false
merges (record keys and the real people they belong to) to see what went wrong.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

from campus_records import REPO, link_records, read_campus
from score import Score, load_national_ids, load_truth, score

from idbroker.demo.campus import generate_campus
from idbroker.linking.engine import link_in_memory
from idbroker.linking.policy import load_matching_policy


def run(campus: Path, policy_path: Path, show: int = 0) -> tuple[Score, dict[str, float]]:
    started = time.perf_counter()
    records = list(read_campus(campus))
    link = link_records(records)
    normalised = time.perf_counter()
    policy = load_matching_policy(policy_path)
    result = link_in_memory(link, policy)
    linked = time.perf_counter()
    predicted = {}
    for number, cluster in enumerate(result.clusters):
        for record_id in cluster:
            predicted[(records[record_id].source, records[record_id].key)] = f"c{number}"
    truth = load_truth(campus / "truth.csv")
    figures = score(truth, predicted, load_national_ids(campus), review_queue=len(result.review))
    if show:
        _show_false_merges(truth, predicted, show)
    return figures, {"normalise_s": normalised - started, "link_s": linked - normalised}


def _show_false_merges(truth: dict[tuple[str, str], str], predicted: dict[tuple[str, str], str], limit: int) -> None:
    members: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for record, cluster in predicted.items():
        members[cluster].append(record)
    shown = 0
    for records in members.values():
        people = {truth.get(r) for r in records}
        if len(people) > 1 and shown < limit:
            shown += 1
            print("false merge:", ", ".join(f"{s}:{k}→{truth.get((s, k))}" for s, k in sorted(records)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="engine accuracy on a generated campus, in memory")
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--campus", type=Path, help="reuse a generated campus instead of generating one")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "accuracy")
    parser.add_argument("--policy", type=Path, default=REPO / "policies" / "matching.yaml")
    parser.add_argument("--show", type=int, default=0, help="print up to N false merges")
    args = parser.parse_args(argv)
    campus = args.campus
    if campus is None:
        campus = args.out / f"campus-{args.people}-{args.seed}"
        if not (campus / "truth.csv").exists():
            generate_campus(args.people, args.seed, campus)
    figures, times = run(campus, args.policy, args.show)
    print(f"campus {campus}  policy {args.policy}")
    print("\n".join(figures.lines()))
    print(f"normalise {times['normalise_s']:.1f} s  link (in memory) {times['link_s']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
