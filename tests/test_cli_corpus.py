"""`gpt2numba score --input` on corpora it must refuse: one error line naming the file and what
is wrong, no traceback, no output file, a non-zero status. (The jobs that succeed are in
test_corpus_ray.py, beside the Ray instance they share.)"""

import json

import pytest

from support.cli import cli_env, run_cli


def score_corpus(tmp_path, home, checkpoint, corpus, output="scores.jsonl", *extra):
    output = tmp_path / output
    code, out, err = run_cli(["score", "-m", str(checkpoint), "--input", str(corpus),
                              "--output", str(output), *extra], cli_env(home))
    return code, err, output


def assert_one_error_line(code, err, *fragments):
    assert code != 0
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("gpt2numba: error: ")]
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], err


@pytest.mark.parametrize("lines, fragments", [
    (['{"text": "fine"}', "{not json"], ["line 2", "not JSON"]),
    (['{"text": "fine"}', '["a", "list"]'], ["line 2", "not a JSON object"]),
    (['{"text": 42}'], ["row 1", "'text' is a int, not a string"]),
])
def test_a_bad_row_is_named_and_nothing_is_written(tmp_path, home, tiny_checkpoint, lines,
                                                   fragments):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(lines) + "\n")
    code, err, output = score_corpus(tmp_path, home, tiny_checkpoint, corpus)
    assert_one_error_line(code, err, str(corpus), *fragments)
    assert list(tmp_path.iterdir()) == [corpus]   # no output, no partial file


def test_a_parquet_file_without_the_text_column_is_named(tmp_path, home, tiny_checkpoint):
    import pyarrow as pa
    import pyarrow.parquet as pq

    corpus = tmp_path / "corpus.parquet"
    pq.write_table(pa.table({"id": [1], "body": ["some text"]}), corpus)
    code, err, output = score_corpus(tmp_path, home, tiny_checkpoint, corpus)
    assert_one_error_line(code, err, "no column 'text'", "--text-field")
    assert not output.exists()


@pytest.mark.parametrize("make_corpus, output, fragments", [
    (lambda folder: folder / "missing.jsonl", "scores.jsonl", ["no such file or folder"]),
    (lambda folder: folder.parent / "empty", "scores.jsonl", ["no .jsonl or .parquet file"]),
    (lambda folder: folder / "corpus.jsonl", "scores.csv", ["scores.csv", ".parquet"]),
])
def test_a_path_that_is_not_a_corpus_fails_before_the_model_loads(tmp_path, home, make_corpus,
                                                                   output, fragments):
    corpus_folder = tmp_path / "in"
    corpus_folder.mkdir()
    (tmp_path / "empty").mkdir()
    (corpus_folder / "corpus.jsonl").write_text(json.dumps({"text": "a text"}) + "\n")
    code, err, _ = score_corpus(tmp_path, home, tmp_path / "no-model-here",
                                make_corpus(corpus_folder), output)
    assert_one_error_line(code, err, *fragments)


@pytest.mark.parametrize("args, fragment", [
    (["--output", "x.jsonl"], "--output goes with --input"),
    (["--input", "x.jsonl"], "--input needs --output"),
    (["--input", "x.jsonl", "--output", "y.jsonl", "a.txt"], "not both"),
])
def test_options_that_do_not_go_together_are_usage_errors(home, args, fragment):
    code, _, err = run_cli(["score", *args], cli_env(home))
    assert code == 2
    assert_one_error_line(code, err, fragment)
