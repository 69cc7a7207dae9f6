"""Scoring a corpus on one process and on a local Ray instance with one and with two actors.

    python benchmarks/scale_out.py [--model FOLDER_OR_NAME] [--documents 4000] [--words 60]

Without --model, a random-init 124M GPT-2 is written by transformers into a temporary folder
(speed does not depend on the weights' values). The corpus is --documents texts of random
words from a fixed list (seeded), their lengths uniform in 1..2 x --words, written as JSONL.
Three runs score it:
- local: GPT2.score_many in this process, 1 thread;
- ray x1: gpt2numba.corpus_ray.score_on_ray on ray.init(num_cpus=2), one actor of one CPU;
- ray x2: the same with two actors of one CPU each.
The kernels are compiled first, into this run's Numba cache, so no run pays for a compile; a Ray
run includes its actors' start and model load, which is also printed apart (the time to the
first scored batch) so that one can check the corpus is large enough for it to be small. Prints
documents/s and tokens/s of each run and the speed-up of two actors over one (the target on a
2-core machine: at least 1.7). Run it on a quiet machine. A smoke run: --documents 40 --words 8.
"""

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from random_checkpoint import add_model_argument, checkpoint_folder

SEED = 28
WORDS = ("the clocks were striking thirteen on a bright cold day in April and Winston Smith "
         "slipped quickly through the glass doors of Victory Mansions though not quickly enough "
         "to prevent a swirl of gritty dust from entering along with him").split()


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_argument(parser)
    parser.add_argument("--documents", type=int, default=4000)
    parser.add_argument("--words", type=int, default=60, help="mean words per document")
    return parser.parse_args(argv)


def write_corpus(path, documents, words):
    rng = random.Random(SEED)
    with open(path, "w", encoding="utf-8") as file:
        for i in range(documents):
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 2 * words)))
            file.write(json.dumps({"id": i, "text": text}) + "\n")


def run_local(folder, corpus):
    from gpt2numba import GPT2
    from gpt2numba.batch_scorer import score_columns

    texts = [json.loads(line)["text"] for line in open(corpus, encoding="utf-8")]
    start = time.perf_counter()
    model = GPT2.from_pretrained(folder, threads=1)
    tokens = score_columns(model, texts)["tokens"]   # a one-token text: None, as on Ray
    seconds = time.perf_counter() - start
    return seconds, sum(n or 0 for n in tokens), None


def run_ray(folder, corpus, output, actors, first_batch_file):
    from gpt2numba.corpus_ray import score_on_ray

    start = time.time()   # wall-clock time, which the actors' processes share
    score_on_ray(str(folder), corpus, output, actors=actors, cpus_per_actor=1,
                 scorer=_first_batch_scorer(first_batch_file))
    seconds = time.time() - start
    tokens = sum(json.loads(line)["tokens"] or 0 for line in open(output, encoding="utf-8"))
    return seconds, tokens, float(Path(first_batch_file).read_text()) - start


def _first_batch_scorer(stamp_file):
    from gpt2numba.batch_scorer import BatchScorer

    class FirstBatchScorer(BatchScorer):   # sent to the actors by value (cloudpickle)
        """Writes the wall-clock time its first batch was scored, unless an actor did before."""

        def __call__(self, batch):
            out = super().__call__(batch)
            if not os.path.exists(stamp_file):
                Path(stamp_file).write_text(repr(time.time()))
            return out

    return FirstBatchScorer


def main(argv=None):
    args = parse_args(argv)
    # A local instance on 127.0.0.1 only: Ray's servers bind the node's address, which is the
    # machine's network address unless Ray runs local only (read once, as Ray is imported).
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    import ray

    from gpt2numba.cli.common import compile_kernels

    with tempfile.TemporaryDirectory() as scratch:
        os.environ["NUMBA_CACHE_DIR"] = os.path.join(scratch, "numba-cache")
        folder = checkpoint_folder(args.model, scratch)
        corpus = os.path.join(scratch, "corpus.jsonl")
        write_corpus(corpus, args.documents, args.words)
        compile_kernels()   # into the cache the actors load from: no run compiles
        results = {"local": run_local(folder, corpus)}
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 _node_ip_address="127.0.0.1")
        try:
            for actors in (1, 2):
                results[f"ray x{actors}"] = run_ray(folder, corpus,
                                                    os.path.join(scratch, f"out{actors}.jsonl"),
                                                    actors, os.path.join(scratch, f"first{actors}"))
        finally:
            ray.shutdown()
    print(f"{args.documents} documents, about {args.words} words each")
    print(f"{'run':<8} {'seconds':>8} {'documents/s':>12} {'tokens/s':>10} {'to 1st batch':>13}")
    for name, (seconds, tokens, first) in results.items():
        first_text = "" if first is None else f"{first:.1f} s"
        print(f"{name:<8} {seconds:>8.1f} {args.documents / seconds:>12.1f} "
              f"{tokens / seconds:>10.0f} {first_text:>13}")
    print(f"two actors over one: {results['ray x1'][0] / results['ray x2'][0]:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
