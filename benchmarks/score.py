"""Scoring a long text: gpt2numba against transformers' perplexity recipe, same checkpoint, one run.

    python benchmarks/score.py [--model FOLDER_OR_NAME] [--tokens 20000] [--stride 512]
                               [--threads 2]

Without --model, a random-init 124M GPT-2 is written by transformers into a temporary folder
(speed does not depend on the weights' values). The text is --tokens random token ids (seeded).
transformers runs the recipe of its perplexity guide: windows of n_positions tokens every
--stride tokens, labels -100 on the tokens an earlier window scored, loss x scored tokens summed;
gpt2numba runs GPT2.score_ids with the same stride. Each side is run once after a short warm-up
(a window's compile or first call); prints tokens/s for both and the ratio (gpt2numba tokens/s
over transformers': above 1 means gpt2numba is faster). Both sides score N - 1 tokens, over
windows of the same sizes. Run it on a quiet machine: with 2 cores, any other busy process
distorts both sides. A smoke run: --tokens 600.
"""

import argparse
import math
import os
import sys
import tempfile
import time

from random_checkpoint import add_model_argument, checkpoint_folder, transformers_with_threads

SEED = 0


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_argument(parser)
    parser.add_argument("--tokens", type=int, default=20_000, help="length of the text in tokens")
    parser.add_argument("--stride", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    return parser.parse_args(argv)


def transformers_recipe(model, ids, n_positions, stride):
    """Summed nll of ids [1, N] (a torch tensor) by transformers' perplexity guide, and the
    number of tokens it scored."""
    import torch

    seq_len = ids.size(1)
    nll_sum, n_tokens, prev_end = 0.0, 0, 0
    for begin in range(0, seq_len, stride):
        end = min(begin + n_positions, seq_len)
        trg_len = end - prev_end   # may differ from stride on the last window
        input_ids = ids[:, begin:end]
        target_ids = input_ids.clone()
        target_ids[:, :-trg_len] = -100
        with torch.no_grad():
            loss = model(input_ids, labels=target_ids).loss
        scored = (target_ids != -100).sum().item() - 1   # the labels are shifted inside the model
        nll_sum += loss.item() * scored
        n_tokens += scored
        prev_end = end
        if end == seq_len:
            break
    return nll_sum, n_tokens


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    peers = transformers_with_threads("score.py", args.threads)
    if peers is None:
        return
    torch, transformers = peers
    import numba
    import numpy as np

    from gpt2numba import GPT2

    with tempfile.TemporaryDirectory(prefix="gpt2numba-score-bench-") as scratch:
        folder = checkpoint_folder(args.model, scratch)
        ours = GPT2.from_pretrained(folder)
        theirs = transformers.GPT2LMHeadModel.from_pretrained(folder).eval()
        n_positions = ours.config.n_positions
        ids = np.random.default_rng(SEED).integers(0, ours.config.vocab_size, args.tokens)
        warm_up = ids[:n_positions + 1]
        ours.score_ids(warm_up, stride=args.stride)
        transformers_recipe(theirs, torch.from_numpy(warm_up[None]), n_positions, args.stride)

        start = time.perf_counter()
        their_nll, their_tokens = transformers_recipe(theirs, torch.from_numpy(ids[None]),
                                                      n_positions, args.stride)
        their_seconds = time.perf_counter() - start
        time.sleep(0.3)
        start = time.perf_counter()
        score = ours.score_ids(ids, stride=args.stride)
        our_seconds = time.perf_counter() - start

    print(f"\nscoring {args.tokens} tokens at stride {args.stride}, windows of {n_positions}; "
          f"transformers {transformers.__version__} / torch {torch.__version__} against gpt2numba "
          f"(numba {numba.__version__}, {numba.threading_layer()} layer), {args.threads} threads, "
          f"{os.cpu_count()} cores")
    print(f"{'':14}{'tokens':>8}{'seconds':>10}{'tokens/s':>10}{'perplexity':>14}")
    for name, tokens, seconds, nll in (("transformers", their_tokens, their_seconds, their_nll),
                                       ("gpt2numba", score.tokens, our_seconds, score.nll)):
        print(f"{name:14}{tokens:>8}{seconds:>10.2f}{tokens / seconds:>10.1f}"
              f"{math.exp(nll / tokens):>14.2f}")
    ratio = (score.tokens / our_seconds) / (their_tokens / their_seconds)
    print(f"ratio (gpt2numba tokens/s / transformers tokens/s): {ratio:.2f}x")


if __name__ == "__main__":
    main()
