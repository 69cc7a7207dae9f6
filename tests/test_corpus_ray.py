"""Scoring a corpus on a local Ray instance (ray.init(num_cpus=2) on this machine): scores equal
to the model's own score_many, one compile for two actors, one thread each, every row once in
the input's order, an actor killed mid-job, and the CLI both ways, with and without --ray.

One Ray instance serves the module. Its workers get a Numba cache of their own, holding every
kernel but support.numba_cache.SOME_KERNELS (so that the first job shows who compiles what is
missing, without paying for a whole first compile, the suite's dearest step), and the folder
the test scorers report into (support/ray_scorers.py), through the environment Ray's processes
start with.
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

from gpt2numba.corpus import BATCH_ROWS
from support.numba_cache import SOME_KERNELS, copy_without
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


# Ray's node address is the machine's network address unless Ray runs "local only"
# (ray._private.services.get_node_ip_address: RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, read once
# when Ray is imported); its servers (GCS, raylet, object manager, workers) bind that address.
# Set while the module runs, so that the CLI's drivers started here also bind loopback.
LOOPBACK_ONLY = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


@pytest.fixture(scope="module")
def ray_instance(tmp_path_factory, compiled_cache):
    """(GCS address, report folder, worker Numba cache) of a local Ray instance of 2 CPUs,
    on 127.0.0.1 only (LOOPBACK_ONLY), without dashboard or metrics export. The workers' cache
    holds every kernel but SOME_KERNELS."""
    reports = tmp_path_factory.mktemp("ray-reports")
    cache = tmp_path_factory.mktemp("ray-numba-cache")
    copy_without(compiled_cache, cache, SOME_KERNELS)
    names = ("NUMBA_CACHE_DIR", RAY_TEST_DIR, *LOOPBACK_ONLY)
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update({"NUMBA_CACHE_DIR": str(cache), RAY_TEST_DIR: str(reports),
                       **LOOPBACK_ONLY})
    import ray

    try:   # Ray's processes take the environment they start with; this process keeps its own
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 _node_ip_address="127.0.0.1")
    finally:
        for name in ("NUMBA_CACHE_DIR", RAY_TEST_DIR):
            restore(name, saved[name])
    try:
        address = ray.get_runtime_context().gcs_address
        assert address.startswith("127.0.0.1:"), f"Ray started on {address}, not loopback"
        yield address, reports, cache
    finally:
        ray.shutdown()
        for name in LOOPBACK_ONLY:
            restore(name, saved[name])


def restore(name, value):
    os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)


@pytest.fixture(scope="module")
def first_job(ray_instance, tiny_checkpoint, corpus, tmp_path_factory):
    """The corpus scored on Ray by two actors of one CPU, starting with a Numba cache that lacks
    SOME_KERNELS: (rows written, output path, the actors' reports)."""
    from gpt2numba.corpus_ray import score_on_ray
    from support.ray_scorers import ReportingScorer

    _, reports, cache = ray_instance
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
    reports = first_job[2]
    assert len(reports) == 2 and len({report["pid"] for report in reports}) == 2
    assert sorted(report["compiles"] for report in reports) == [0, len(SOME_KERNELS)]
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


def test_every_ray_process_listens_on_loopback_only(ray_instance):
    from support.listening import is_loopback, listening_addresses

    found = listening_addresses(os.getpid())
    assert any(name.startswith("gcs_server") for name in found), found
    assert any(name.startswith("raylet") for name in found), found
    assert {name: addresses for name, addresses in found.items()
            if not all(is_loopback(address) for address in addresses)} == {}


# -- an output folder, written by Ray Data ---------------------------------------------------

def read_parts(folder):
    """The rows of a folder of part files, read in the order of the files' names."""
    return [row for part in sorted(Path(folder).iterdir()) for row in read_scores(part)]


def assert_same_rows(got, want):
    """The rows of the Ray Data output equal the local output's: the same ids in the same
    order, the same columns, tokens equal, the other scores within 1e-6 relative."""
    assert [row["id"] for row in got] == [row["id"] for row in want]
    for row, local in zip(got, want):
        assert row.keys() == local.keys()
        assert row["tokens"] == local["tokens"]
        for name in ("nll", "perplexity", "bits_per_byte"):
            assert (row[name] is None) == (local[name] is None), row
            assert local[name] is None or math.isclose(row[name], local[name], rel_tol=1e-6)
        if local.get("token_logprobs") is not None:
            assert len(row["token_logprobs"]) == len(local["token_logprobs"])
            assert max(abs(a - b) for a, b in zip(row["token_logprobs"],
                                                   local["token_logprobs"])) <= 1e-6, row


def test_score_on_ray_writes_a_parquet_folder_through_ray_data(ray_instance, tiny_checkpoint,
                                                               tiny_model, tmp_path):
    from gpt2numba.corpus import score_locally
    from gpt2numba.corpus_ray import score_on_ray

    corpus = write_jsonl(tmp_path / "corpus.jsonl", corpus_rows()[:CLI_ROWS])
    local = tmp_path / "local.parquet"
    score_locally(tiny_model, corpus, local, token_logprobs=True)
    folder = tmp_path / "scores.parquet"
    rows = score_on_ray(str(tiny_checkpoint), corpus, f"file://{folder}", actors=2,
                        token_logprobs=True)
    parts = sorted(folder.iterdir())
    assert rows == CLI_ROWS and len(parts) > 1, parts   # several parts, read back in order
    assert all(part.name.startswith("part-") and part.suffix == ".parquet" for part in parts)
    schema = [(field.name, field.type) for field in pq.read_schema(local)]
    assert all([(field.name, field.type) for field in pq.read_schema(part)] == schema
               for part in parts)
    assert_same_rows(read_parts(folder), read_scores(local))
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "corpus.jsonl", "local.parquet", "scores.parquet"]   # no temporary folder left


def test_the_cli_writes_a_jsonl_folder_with_positions_where_ids_are_missing(
        ray_instance, tiny_checkpoint, tiny_model, tmp_path):
    from gpt2numba.corpus import score_locally

    rows = corpus_rows()[:CLI_ROWS // 2]
    for row in rows[::17]:
        del row["id"]
    corpus = write_parquet(tmp_path / "corpus.parquet", rows)
    local = tmp_path / "local.jsonl"
    score_locally(tiny_model, corpus, local)
    output = tmp_path / "scores.jsonl"
    done = gpt2numba("score", "-m", tiny_checkpoint, "--input", corpus, "--output",
                     f"{output}/", "--ray", ray_instance[0])
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    scores = read_parts(output)
    assert [row["id"] for row in scores[:18:17]] == [0, 17]   # the rows' own positions
    assert_same_rows(scores, read_scores(local))


def test_a_write_that_fails_leaves_no_folder(ray_instance, tiny_checkpoint, tmp_path):
    """Ids of two types (strings, and the position of the last row, which has none) cannot be
    one Parquet column: the job fails while it writes, and leaves no folder, whole or partial."""
    from ray.exceptions import RayError

    from gpt2numba.corpus import CorpusError
    from gpt2numba.corpus_ray import score_on_ray

    rows = corpus_rows()[:BATCH_ROWS + 10]
    del rows[-1]["id"]
    corpus = write_jsonl(tmp_path / "corpus.jsonl", rows)
    with pytest.raises((CorpusError, RayError), match="ids are of different types"):
        score_on_ray(str(tiny_checkpoint), corpus, f"{tmp_path}/scores.parquet/", actors=1)
    assert [path.name for path in tmp_path.iterdir()] == ["corpus.jsonl"]


@pytest.mark.parametrize("output, ray_option, fragment", [
    ("full.jsonl/", True, "the folder exists and is not empty; remove it or name a new one"),
    ("scores/", True, "cannot tell the output format from the folder's name"),
    ("scores.jsonl/", False, "a folder or URI is written by Ray Data, as part files; add --ray"),
])
def test_an_output_folder_that_cannot_be_written_is_one_error_line(ray_instance, tmp_path,
                                                                   output, ray_option, fragment):
    corpus = write_jsonl(tmp_path / "corpus.jsonl", corpus_rows()[:10])
    old = tmp_path / "full.jsonl" / "part-00000000.jsonl"
    old.parent.mkdir()
    old.write_text('{"id": "an earlier run"}\n')
    ray_option = ["--ray", ray_instance[0]] if ray_option else []
    done = gpt2numba("score", "-m", tmp_path / "no-model-needed", "--input", corpus,
                     "--output", f"{tmp_path}/{output}", *ray_option)   # its "/" kept
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and fragment in errors[0], done.stderr
    assert "Traceback" not in done.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["corpus.jsonl", "full.jsonl"]
    assert [path.name for path in old.parent.iterdir()] == [old.name]
