"""Splink 5 (DuckDB) on a generated campus: the same normalised records as our engine, a tuned model.

    .venv/bin/python bench/splink_campus.py --campus DIR [--thresholds 0.5,0.99,0.999]

Normalising (the importer's own row parser, `campus_records.read_campus`) is timed apart from linking
(training, prediction and clustering). Each threshold's clusters are scored with `score.py`.
Then, in the same process, our engine links the same records in memory (`link_in_memory`, as the CLI runs it:
the cycle collector paused), timed and scored the same way: the two linkers on equal terms, neither reading
nor writing a database.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from campus_records import REPO, CampusRecord, link_records, read_campus
from score import Score, load_national_ids, load_truth, score

from idbroker.linking.engine import InMemoryResult, link_in_memory
from idbroker.linking.policy import load_matching_policy
from idbroker.memory import cycle_collector_paused

COLUMNS = ("account", "national_id_hash", "name_key", "name_pinyin", "birth_date", "gender", "phone", "email")


def frame_of(records: list[CampusRecord]) -> Any:
    import pandas as pd

    rows = []
    for number, record in enumerate(records):
        v = record.values
        birth = v.get("birth_date")
        rows.append(
            {
                "unique_id": number,
                "account": f"{record.key_space}:{record.key}",
                "national_id_hash": v.get("national_id_hash"),
                "name_key": v.get("name_key"),
                "name_pinyin": v.get("name_pinyin"),
                "birth_date": birth.isoformat() if birth else None,
                "gender": v.get("gender"),
                "phone": v.get("phone"),
                "email": v.get("email"),
            }
        )
    return pd.DataFrame(rows, columns=["unique_id", *COLUMNS])


def settings() -> Any:
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    name = cl.CustomComparison(
        output_column_name="name",
        comparison_levels=[
            cll.NullLevel("name_key"),
            cll.ExactMatchLevel("name_key"),
            cll.ExactMatchLevel("name_pinyin"),
            cll.JaroWinklerLevel("name_key", 0.88),
            cll.ElseLevel(),
        ],
    )
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        blocking_rules_to_generate_predictions=[
            block_on("account"),
            block_on("national_id_hash"),
            block_on("phone"),
            block_on("email"),
            block_on("name_key", "birth_date"),
            block_on("name_pinyin", "birth_date"),
        ],
        comparisons=[
            cl.ExactMatch("national_id_hash"),
            cl.ExactMatch("account"),
            name,
            cl.DateOfBirthComparison("birth_date", input_is_string=True, datetime_format="%Y-%m-%d"),
            cl.ExactMatch("phone").configure(term_frequency_adjustments=True),
            cl.ExactMatch("email"),
            cl.ExactMatch("gender"),
        ],
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
    )


def link(frame: Any, thresholds: list[float]) -> dict[float, dict[int, str]]:
    """Train, predict and cluster; {threshold: {unique_id: cluster}}."""
    from splink import DuckDBAPI, Linker, block_on

    logging.getLogger("splink").setLevel(logging.ERROR)
    db_api = DuckDBAPI()
    linker = Linker(db_api.register(frame), settings(), log_level=logging.ERROR)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("national_id_hash"), block_on("account")], recall=0.7
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=5e6, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("national_id_hash"), record_sample_proportion=1.0
    )
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("name_key", "birth_date"), record_sample_proportion=1.0
    )
    predictions = linker.inference.predict(threshold_match_probability=min(thresholds))
    out = {}
    for threshold in thresholds:
        clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(predictions, threshold)
        table = clusters.as_pandas_dataframe()
        out[threshold] = {int(uid): str(cid) for uid, cid in zip(table["unique_id"], table["cluster_id"], strict=True)}
    return out


def ours(records: list[CampusRecord]) -> tuple[InMemoryResult, float, float]:
    """Our engine on the same records, in memory as Splink gets them: (result, seconds to the engine's records,
    seconds linking — blocking, scoring, clustering, the review pairs)."""
    policy = load_matching_policy(REPO / "policies" / "matching.yaml")
    with cycle_collector_paused():  # as in `idbroker link`, for the whole unit of work
        started = time.perf_counter()
        link_input = link_records(records)
        converted = time.perf_counter()
        result = link_in_memory(link_input, policy)
        return result, converted - started, time.perf_counter() - converted


def run(campus: Path, thresholds: list[float]) -> tuple[dict[str, Score], dict[str, float]]:
    started = time.perf_counter()
    records = list(read_campus(campus))
    frame = frame_of(records)
    normalised = time.perf_counter()
    clustered = link(frame, thresholds)
    linked = time.perf_counter()
    engine, ours_convert_s, ours_link_s = ours(records)
    truth = load_truth(campus / "truth.csv")
    ids = load_national_ids(campus)
    scores = {}
    for threshold, clusters in clustered.items():
        predicted = {(records[uid].source, records[uid].key): cid for uid, cid in clusters.items()}
        scores[str(threshold)] = score(truth, predicted, ids)
    predicted = {(records[uid].source, records[uid].key): f"c{n}" for n, c in enumerate(engine.clusters) for uid in c}
    scores["ours"] = score(truth, predicted, ids, review_queue=len(engine.review))
    return scores, {
        "normalise_s": normalised - started,
        "link_s": linked - normalised,
        "ours_convert_s": ours_convert_s,
        "ours_link_s": ours_link_s,
        "records": len(records),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Splink 5 on a generated campus")
    parser.add_argument("--campus", type=Path, required=True)
    parser.add_argument("--thresholds", default="0.5,0.99,0.999")
    parser.add_argument("--json", action="store_true", help="print one JSON object (last line)")
    args = parser.parse_args(argv)
    thresholds = [float(t) for t in args.thresholds.split(",")]
    scores, times = run(args.campus, thresholds)
    if args.json:
        print(json.dumps({**times, "scores": {name: asdict(s) for name, s in scores.items()}}))
        return 0
    print(
        f"Splink 5 on {times['records']:,} records: normalise {times['normalise_s']:.1f} s, "
        f"link (train + predict + cluster) {times['link_s']:.1f} s;  our engine on the same records:"
        f" {times['ours_link_s']:.1f} s (after {times['ours_convert_s']:.1f} s making its records)"
    )
    for name, figures in scores.items():
        print(f"-- {'our engine' if name == 'ours' else f'Splink, threshold {name}'}")
        print("\n".join("   " + line for line in figures.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
