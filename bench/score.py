"""Score a linkage against the generator's truth: pairwise precision/recall, false merges, splits, queue.

A record is `(source, number)`. The truth maps each record to its real person; a prediction maps records
to predicted people (records the prediction does not mention count as people of their own). Printed:

* pairwise precision and recall: pairs of records in one predicted person vs pairs in one real person;
* false merges: predicted people that mix two or more real people (the worst error: one person's data
  shown to another);
* merges across two different checksum-valid national IDs (read from the source CSVs, 15-digit forms
  converted), counted as predicted people holding two or more;
* people left split: real people whose records are spread over two or more predicted people;
* the review-queue size (open merge candidates), when known.

Usage: python bench/score.py --campus DIR --identities identities.csv [--candidates c.csv | --review N]
"""

from __future__ import annotations

import argparse
import csv
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from idbroker.normalize.errors import InvalidValue
from idbroker.normalize.national_ids import parse_national_id

Record = tuple[str, str]  # (source, number)

# Which column holds the key and the national ID in each source CSV of the generated campus.
ID_COLUMNS = {"student": ("学号", "身份证号"), "hr": ("工号", "身份证号")}


@dataclass(frozen=True)
class Score:
    records: int
    true_people: int
    predicted_people: int
    true_pairs: int
    predicted_pairs: int
    correct_pairs: int
    precision: float
    recall: float
    false_merges: int  # predicted people mixing two or more real people
    mixed_records: int  # records in those people that are not of the person holding most of them
    id_conflicts: int  # predicted people holding two or more different valid national IDs
    split_people: int  # real people spread over two or more predicted people
    unassigned: int  # truth records the prediction does not mention (each counted as its own person)
    review_queue: int | None

    def lines(self) -> list[str]:
        queue = "n/a" if self.review_queue is None else str(self.review_queue)
        share = (
            ""
            if self.review_queue is None
            else f" ({100 * self.review_queue / max(1, self.true_people):.2f} % of people)"
        )
        return [
            f"records {self.records:,}  real people {self.true_people:,}  predicted people {self.predicted_people:,}",
            f"pairwise precision {self.precision:.5f}  recall {self.recall:.5f}"
            f"  ({self.correct_pairs:,} of {self.predicted_pairs:,} predicted,"
            f" {self.true_pairs:,} true pairs)",
            f"false merges (predicted people mixing real people) {self.false_merges}"
            f"  records misplaced {self.mixed_records}",
            f"merges across different valid national IDs {self.id_conflicts}",
            f"real people left split {self.split_people:,}  records not in the prediction {self.unassigned:,}",
            f"review queue {queue}{share}",
        ]


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def score(
    truth: Mapping[Record, str],
    predicted: Mapping[Record, str],
    national_ids: Mapping[Record, str] | None = None,
    review_queue: int | None = None,
) -> Score:
    """Compare a predicted person per record with the true person per record (only truth records count)."""
    national_ids = national_ids or {}
    unassigned = 0
    cluster_of: dict[Record, str] = {}
    for record in truth:
        cluster = predicted.get(record)
        if cluster is None:
            unassigned += 1
            cluster = f"\x00unassigned:{record[0]}:{record[1]}"
        cluster_of[record] = cluster

    cells: Counter[tuple[str, str]] = Counter()
    for record, person in truth.items():
        cells[(cluster_of[record], person)] += 1
    cluster_sizes: Counter[str] = Counter(cluster_of.values())
    person_sizes: Counter[str] = Counter(truth.values())

    correct = sum(_pairs(n) for n in cells.values())
    predicted_pairs = sum(_pairs(n) for n in cluster_sizes.values())
    true_pairs = sum(_pairs(n) for n in person_sizes.values())

    people_in_cluster: dict[str, list[int]] = defaultdict(list)
    clusters_of_person: Counter[str] = Counter()
    for (cluster, person), n in cells.items():
        people_in_cluster[cluster].append(n)
        clusters_of_person[person] += 1
    mixed = [sizes for sizes in people_in_cluster.values() if len(sizes) > 1]

    ids_in_cluster: dict[str, set[str]] = defaultdict(set)
    for record, number in national_ids.items():
        if record in cluster_of:
            ids_in_cluster[cluster_of[record]].add(number)

    return Score(
        records=len(truth),
        true_people=len(person_sizes),
        predicted_people=len(cluster_sizes),
        true_pairs=true_pairs,
        predicted_pairs=predicted_pairs,
        correct_pairs=correct,
        precision=correct / predicted_pairs if predicted_pairs else 1.0,
        recall=correct / true_pairs if true_pairs else 1.0,
        false_merges=len(mixed),
        mixed_records=sum(sum(sizes) - max(sizes) for sizes in mixed),
        id_conflicts=sum(1 for numbers in ids_in_cluster.values() if len(numbers) > 1),
        split_people=sum(1 for n in clusters_of_person.values() if n > 1),
        unassigned=unassigned,
        review_queue=review_queue,
    )


def _rows(path: Path) -> Iterable[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        yield from csv.DictReader(handle)


def load_truth(path: Path) -> dict[Record, str]:
    """truth.csv (source, record, person, national_id_valid) → {(source, record): person}."""
    return {(row["source"], row["record"]): row["person"] for row in _rows(path)}


def load_prediction(path: Path) -> dict[Record, str]:
    """An identities export (person, source, record, status, …) → {(source, record): person}."""
    return {(row["source"], row["record"]): row["person"] for row in _rows(path)}


def load_national_ids(campus: Path) -> dict[Record, str]:
    """The checksum-valid national IDs written in the campus's source CSVs, in their 18-character form."""
    found: dict[Record, str] = {}
    for source, (key_column, id_column) in ID_COLUMNS.items():
        path = campus / f"{source}.csv"
        if not path.exists():
            continue
        for row in _rows(path):
            try:
                parsed = parse_national_id(row.get(id_column))
            except InvalidValue:
                continue
            if parsed is not None:
                found[(source, row[key_column])] = parsed.number
    return found


def count_open_candidates(path: Path) -> int:
    """Rows of a candidates export; only the open ones when it has a `state` (or `status`) column."""
    count = 0
    for row in _rows(path):
        state = row.get("state", row.get("status"))
        if state is None or state == "open":
            count += 1
    return count


def score_files(
    campus: Path, identities: Path, candidates: Path | None = None, review_queue: int | None = None
) -> Score:
    if candidates is not None:
        review_queue = count_open_candidates(candidates)
    return score(load_truth(campus / "truth.csv"), load_prediction(identities), load_national_ids(campus), review_queue)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campus", type=Path, required=True, help="directory written by the generator")
    parser.add_argument("--identities", type=Path, required=True, help="CSV from `idbroker export identities`")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--candidates", type=Path, help="CSV of open merge candidates")
    group.add_argument("--review", type=int, help="review-queue size, when there is no candidates export")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)
    result = score_files(args.campus, args.identities, args.candidates, args.review)
    if args.json:
        import json

        print(json.dumps(asdict(result)))
    else:
        print("\n".join(result.lines()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
