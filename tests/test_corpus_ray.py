"""Scoring a corpus on a local Ray instance (ray.init(num_cpus=2) on this machine): scores equal
to the model's own score_many, one compile for two actors, one thread each, every row once in
the input's order, an actor killed mid-job, and the CLI both ways, with and without --ray.

One Ray instance serves the module. Its workers get an empty Numba cache of their own (so that
the first job shows who compiles) and the folder the test scorers report into
(support/ray_scorers.py), through the environment Ray's processes start with.
"""

import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from support.ray_scorers import RAY_TEST_DIR

ROWS = 2000
CLI_ROWS = 200   # the CLI's runs and the fault's: a slice of the corpus, the same code path
WORDS = ("the clocks were striking thirteen on a bright cold day in April and Winston Smith "
         "slipped quickly through the glass doors of Victory Mansions though not quickly enough "
         "to prevent a swirl of gritty dust from entering along with him").split()


def corpus_rows(rows=ROWS, seed=28):
    """Rows {"id", "text"}: mostly short texts (some empty or of one token, which get null
    scores), one in twenty long enough for several windows of the 128-position model."""
    rng = random.Random(seed)
    out = []
    for i in range(rows):
        n = rng.randint(150, 260) if i % 20 == 7 else rng.randint(0, 12)
        out.append({"id": f"doc-{i:05d}", "text": " ".join(rng.choice(WORDS) for _ in range(n))})
    return out


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def write_parquet(path, rows):
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def read_scores(path):
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """conftest's tiny GPT-2, at GPT-2's own initialisation scale (0.02) instead of 0.5. The
    actors pack each batch's texts into shared forwards, grouped otherwise than the local
    score_many's, and a packed text's projections round in float32 by their grouping; at 0.5
    the logits reach hundreds, and that rounding alone moves a perplexity by more than 1e-6."""
    from support.checkpoints import make_checkpoint

    return make_checkpoint(tmp_path_factory.mktemp("corpus-gpt2"), initializer_range=0.02)


@pytest.fixture(scope="module")
def tiny_model(tiny_checkpoint):
    from gpt2numba import GPT2

    return GPT2.from_pretrained(tiny_checkpoint)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    return write_jsonl(folder / "corpus.jsonl", corpus_rows())


@pytest.fixture(scope="module")
def expected(tiny_model):
    """id -> the model's own Score (None for a text of fewer than 2 tokens), scored here."""
    rows = corpus_rows()
    scorable = [row for row in rows if len(tiny_model.tokenizer.encode(row["text"])) >= 2]
    scores = dict(zip((row["id"] for row in scorable),
                      tiny_model.score_many([row["text"] for row in scorable])))
    return {row["id"]: scores.get(row["id"]) for row in rows}


@pytest.fixture(scope="module")
def ray_instance(tmp_path_factory):
    """(GCS address, report folder, worker Numba cache) of a local Ray instance of 2 CPUs."""
    import ray

    reports = tmp_path_factory.mktemp("ray-reports")
    cache = tmp_path_factory.mktemp("ray-numba-cache")
    saved = {name: os.environ.get(name) for name in ("NUMBA_CACHE_DIR", RAY_TEST_DIR)}
    os.environ.update({"NUMBA_CACHE_DIR": str(cache), RAY_TEST_DIR: str(reports)})
    try:   # Ray's processes take the environment they start with; this process keeps its own
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    finally:
        for name, value in saved.items():
            os.environ.pop(name) if value is None else os.environ.__setitem__(name, value)
    try:
        yield ray.get_runtime_context().gcs_address, reports, cache
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def first_job(ray_instance, tiny_checkpoint, corpus, tmp_path_factory):
    """The corpus scored on Ray by two actors of one CPU, starting with an empty Numba cache:
    (rows written, output path, the actors' reports)."""
    from gpt2numba.corpus_ray import score_on_ray
    from support.ray_scorers import ReportingScorer

    _, reports, cache = ray_instance
    assert not any(Path(cache).rglob("*.nbi")), "the workers' Numba cache is not empty"
    output = tmp_path_factory.mktemp("first-job") / "scores.parquet"
    rows = score_on_ray(str(tiny_checkpoint), corpus, output, actors=2, cpus_per_actor=1,
                        scorer=ReportingScorer)
    return rows, output, [json.loads(path.read_text()) for path in reports.glob("report-*")]


def assert_scores_match(scores, expected):
    """Every row once, in the input's order of ids, each score within 1e-6 relative of the
    model's own (each token's log-probability within 1e-6, where the output has them); null
    where the model refuses the text."""
    ids = [row["id"] for row in scores]
    assert ids == list(expected)[:len(ids)]
    assert len(set(ids)) == len(ids)
    for row in scores:
        want = expected[row["id"]]
        if want is None:
            assert [row[name] for name in ("tokens", "nll", "perplexity", "bits_per_byte")] == [
                None] * 4, row
            continue
        assert row["tokens"] == want.tokens
        assert math.isclose(row["nll"], want.nll, rel_tol=1e-6), row
        assert math.isclose(row["perplexity"], want.perplexity, rel_tol=1e-6), row
        if "token_logprobs" in row:
            assert len(row["token_logprobs"]) == want.tokens
            assert max(abs(a - b) for a, b in zip(row["token_logprobs"],
                                                   want.token_logprobs)) <= 1e-6, row


def test_every_row_once_in_order_with_the_models_own_scores(first_job, expected):
    rows, output, _ = first_job
    scores = read_scores(output)
    assert rows == len(scores) == ROWS
    assert_scores_match(scores, expected)
    assert sum(row["tokens"] is None for row in scores) > 50   # the corpus has texts too short
    assert max(row["tokens"] or 0 for row in scores) > 128      # and texts of several windows


def test_bits_per_byte_is_nll_over_ln2_times_utf8_bytes(first_job):
    texts = {row["id"]: row["text"] for row in corpus_rows()}
    for row in read_scores(first_job[1]):
        if row["nll"] is not None:
            size = len(texts[row["id"]].encode("utf-8"))
            assert math.isclose(row["bits_per_byte"], row["nll"] / (math.log(2) * size),
                                rel_tol=1e-12)


def test_two_actors_compile_once_and_use_one_thread_each(first_job):
    from gpt2numba.compiling import KERNELS

    reports = first_job[2]
    assert len(reports) == 2 and len({report["pid"] for report in reports}) == 2
    assert sorted(report["compiles"] for report in reports) == [0, len(KERNELS)]
    for report in reports:
        assert report["numba_threads"] == report["numba_max_threads"] == 1
        assert report["model_threads"] == 1


def test_an_actor_killed_mid_job_loses_no_row_and_doubles_none(ray_instance, tiny_checkpoint,
                                                               corpus, expected, tmp_path):
    from gpt2numba.corpus_ray import score_on_ray
    from support.ray_scorers import KillingScorer

    small = write_jsonl(tmp_path / "small.jsonl", corpus_rows()[:CLI_ROWS])
    output = tmp_path / "scores.jsonl"
    rows = score_on_ray(str(tiny_checkpoint), small, output, actors=2, scorer=KillingScorer)
    assert (ray_instance[1] / "killed").exists(), "no actor was killed: the test proves nothing"
    assert rows == CLI_ROWS
    assert_scores_match(read_scores(output), expected)


def gpt2numba(*args, env=None):
    return subprocess.run([sys.executable, "-m", "gpt2numba", *map(str, args)],
                          capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.parametrize("where", ["local", "ray"])
@pytest.mark.parametrize("source, target", [("jsonl", "parquet"), ("parquet", "jsonl")])
def test_the_cli_scores_a_corpus(ray_instance, tiny_checkpoint, expected, tmp_path, where,
                                 source, target):
    rows = corpus_rows()[:CLI_ROWS]
    write = write_jsonl if source == "jsonl" else write_parquet
    corpus = write(tmp_path / f"corpus.{source}", rows)
    output = tmp_path / f"scores.{target}"
    ray_option = ["--ray", ray_instance[0]] if where == "ray" else []
    env = dict(os.environ, NUMBA_CACHE_DIR=str(ray_instance[2]))   # compiled by the first job
    done = gpt2numba("score", "-m", tiny_checkpoint, "--input", corpus, "--output", output,
                     "--per-token", *ray_option, env=env)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert f"scored {CLI_ROWS} rows" in done.stderr
    scores = read_scores(output)
    assert all("token_logprobs" in row for row in scores)
    assert_scores_match(scores, expected)


def test_the_cli_copies_ids_and_gives_positions_where_a_row_has_none(ray_instance, tiny_checkpoint,
                                                                    tmp_path):
    rows = [{"id": 7, "text": "one text"}, {"text": "no id here"}, {"id": "x", "text": "a"}]
    corpus = write_jsonl(tmp_path / "corpus.jsonl", rows)
    output = tmp_path / "scores.jsonl"
    env = dict(os.environ, NUMBA_CACHE_DIR=str(ray_instance[2]))
    done = gpt2numba("score", "-m", tiny_checkpoint, "--input", corpus, "--output", output,
                     env=env)
    assert done.returncode == 0, done.stderr
    assert [row["id"] for row in read_scores(output)] == [7, 1, "x"]


def test_a_model_the_actors_cannot_load_is_one_error_line(ray_instance, tmp_path):
    corpus = write_jsonl(tmp_path / "corpus.jsonl", corpus_rows()[:10])
    output = tmp_path / "scores.jsonl"
    done = gpt2numba("score", "-m", tmp_path / "no-such-model", "--input", corpus, "--output",
                     output, "--ray", ray_instance[0])
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert errors == [f"gpt2numba: error: the job failed on the Ray cluster: folder "
                      f"{tmp_path / 'no-such-model'} does not exist; pass an existing folder, a "
                      f"Hub repo id such as openai-community/gpt2, or one of gpt2, gpt2-medium, "
                      f"gpt2-large, gpt2-xl, distilgpt2"], done.stderr
    assert not output.exists()
