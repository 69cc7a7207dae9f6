"""Scoring throughput: gpt2numba against transformers and CTranslate2, same checkpoint, one run.

    python benchmarks/score.py [--model FOLDER_OR_NAME] [--texts 1000] [--text-tokens 24]
                               [--tokens 20000] [--stride 1024] [--threads 2] [--repeats 4]

Two workloads, in tokens scored per second (every token of a text but its first):
- many short texts: --texts texts of --text-tokens random token ids each. gpt2numba's
  score_many_ids (texts packed into shared forwards), and score_ids text by text (one text
  per forward, as score_many was before packing); transformers in batches of 32 (the texts
  have one length, so no padding); CTranslate2's Generator.score_batch one text at a time and
  batched (batch_type="tokens", up to n_positions tokens a batch, as gpt2numba packs).
- one long text: --tokens random token ids. gpt2numba's score_ids at --stride; transformers'
  perplexity recipe at the same stride; CTranslate2's score_batch over disjoint windows of
  n_positions tokens (it scores a window's tokens after its first, so it scores one token
  fewer per window than the others).
Without --model, a random-init 124M GPT-2 is written by transformers (speed does not depend on
the weights' values); CTranslate2 gets a copy converted by its ct2-transformers-converter
(float32). Each engine runs once to warm up, then the engines take turns, --repeats rounds,
every other round in reverse order: an engine that runs right after another finds the machine
as that one left it (caches, clock, a neighbour's load), so each goes first as often as last.
The table gives the median tokens/s and each one's ratio to gpt2numba's (above 1: gpt2numba is
faster). A target's ratio is paired: the median over rounds of the two engines' ratio within
the round, which the machine's slower and faster minutes move less than a ratio of medians.
CTranslate2 is left out, with a line saying so, when it is not installed. The log-probs of each
engine are compared with gpt2numba's on the first texts. Run it on a quiet machine.
A smoke run: --texts 40 --tokens 2100 --repeats 1.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

from random_checkpoint import add_model_argument, checkpoint_folder, transformers_with_threads

SEED = 0
TRANSFORMERS_BATCH = 32
# gpt2numba's targets (issue 26): many short texts at least as fast as CTranslate2 batched,
# one long text faster than CTranslate2.
TARGETS = {"many short texts": ("CTranslate2 batched", 1.0), "one long text": ("CTranslate2", 1.0)}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_argument(parser)
    parser.add_argument("--texts", type=int, default=1000, help="how many short texts")
    parser.add_argument("--text-tokens", type=int, default=24, help="tokens of each short text")
    parser.add_argument("--tokens", type=int, default=20_000, help="tokens of the long text")
    parser.add_argument("--stride", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=4,
                        help="rounds of the engines in turn, every other one in reverse order")
    return parser.parse_args(argv)


def transformers_many(torch, model, texts):
    """log p of tokens 1.. of each text [count, length] (a numpy array), batch by batch."""
    logprobs = []
    for begin in range(0, len(texts), TRANSFORMERS_BATCH):
        batch = torch.from_numpy(texts[begin:begin + TRANSFORMERS_BATCH])
        with torch.no_grad():
            logits = model(batch).logits[:, :-1].float()
        chosen = torch.log_softmax(logits, dim=-1).gather(-1, batch[:, 1:, None])[..., 0]
        logprobs.extend(chosen.numpy())
    return logprobs


def transformers_recipe(torch, model, ids, n_positions, stride):
    """Summed nll of ids [N] (numpy) by transformers' perplexity guide: windows of n_positions
    every stride tokens, labels -100 on the tokens an earlier window scored."""
    ids = torch.from_numpy(ids[None])
    nll_sum, prev_end = 0.0, 0
    for begin in range(0, ids.size(1), stride):
        end = min(begin + n_positions, ids.size(1))
        input_ids = ids[:, begin:end]
        target_ids = input_ids.clone()
        target_ids[:, :-(end - prev_end)] = -100
        with torch.no_grad():
            loss = model(input_ids, labels=target_ids).loss
        nll_sum += loss.item() * ((target_ids != -100).sum().item() - 1)
        prev_end = end
        if end == ids.size(1):
            break
    return nll_sum


def ctranslate2_generator(folder, scratch, threads):
    """A CTranslate2 Generator of the checkpoint in `folder` (float32, `threads` threads), or
    None when ctranslate2 is not installed."""
    try:
        import ctranslate2
        from ctranslate2.converters import TransformersConverter
    except ImportError:
        print("CTranslate2 is not installed: its rows are left out "
              "(pip install 'ctranslate2>=4,<5')")
        return None
    converted = os.path.join(scratch, "ct2")
    TransformersConverter(str(folder)).convert(converted, quantization="float32")
    return ctranslate2.Generator(converted, device="cpu", compute_type="float32",
                                 intra_threads=threads, inter_threads=1)


def token_strings(folder):
    """id -> the token's string in vocab.json, what CTranslate2 takes."""
    import json

    with open(os.path.join(folder, "vocab.json"), encoding="utf-8") as file:
        vocab = json.load(file)
    strings = [""] * len(vocab)
    for string, index in vocab.items():
        strings[index] = string
    return strings


def engines(args, ours, theirs, torch, generator, strings):
    """{workload: {engine: run(work) -> log-probs of each short text, or the long text's nll}}."""
    n_positions = ours.config.n_positions
    work = {
        "many short texts": {
            "gpt2numba": lambda short: [s.token_logprobs for s in ours.score_many_ids(list(short))],
            "gpt2numba, one text per forward": lambda short: [ours.score_ids(text).token_logprobs
                                                              for text in short],
            f"transformers, batches of {TRANSFORMERS_BATCH}":
                lambda short: transformers_many(torch, theirs, short),
        },
        "one long text": {
            "gpt2numba": lambda ids: ours.score_ids(ids, stride=args.stride).nll,
            "transformers": lambda ids: transformers_recipe(torch, theirs, ids, n_positions,
                                                            args.stride),
        },
    }
    if generator is not None:
        def windows(ids):     # disjoint windows of n_positions tokens, as token strings
            return [[strings[i] for i in ids[b:b + n_positions]]
                    for b in range(0, ids.size - 1, n_positions)]

        work["many short texts"]["CTranslate2 one by one"] = lambda short: [
            generator.score_batch([[strings[i] for i in text]])[0].log_probs for text in short]
        work["many short texts"]["CTranslate2 batched"] = lambda short: [
            r.log_probs for r in generator.score_batch(
                [[strings[i] for i in text] for text in short],
                max_batch_size=n_positions, batch_type="tokens")]
        work["one long text"]["CTranslate2"] = lambda ids: -sum(
            sum(r.log_probs) for r in generator.score_batch(
                windows(ids), max_batch_size=n_positions, batch_type="tokens"))
    return work


def tokens_scored(workload, engine, data, n_positions):
    """How many tokens `engine` scores of `data`: every token of a text but its first (and of
    each of CTranslate2's windows of the long text, the first)."""
    if workload == "many short texts":
        return data.shape[0] * (data.shape[1] - 1)
    if engine == "CTranslate2":
        return sum(min(n_positions, data.size - b) - 1
                   for b in range(0, data.size - 1, n_positions))
    return data.size - 1


def measure(work, data, warm_up, repeats):
    """{workload: {engine: [seconds of each round]}}: after one call of each engine on the
    small warm_up[workload], the engines of a workload take turns on data[workload], in reverse
    order every other round; and the result of each engine's last call."""
    seconds = {w: {e: [] for e in runs} for w, runs in work.items()}
    results = {}
    for workload, runs in work.items():
        for run in runs.values():
            run(warm_up[workload])
        for round_ in range(repeats):
            for engine, run in list(runs.items())[::-1 if round_ % 2 else 1]:
                time.sleep(0.2)
                start = time.perf_counter()
                results[(workload, engine)] = run(data[workload])
                seconds[workload][engine].append(time.perf_counter() - start)
    return seconds, results


def agreement(results):
    """The largest difference of each engine's log-probs of the first short text from
    gpt2numba's, and of the long text's nll per token."""
    import numpy as np

    ours = np.asarray(results[("many short texts", "gpt2numba")][0], dtype=np.float64)
    lines = []
    for (workload, engine), result in results.items():
        if workload == "many short texts" and engine != "gpt2numba":
            diff = np.max(np.abs(np.asarray(result[0], dtype=np.float64) - ours))
            lines.append(f"  {engine}: largest log-prob difference on the first text {diff:.1e}")
    return lines


def report(args, work, data, seconds, n_positions, header):
    """Print each workload's table; return the lines saying whether each target was met."""
    print(f"\n{header}")
    verdicts = []
    for workload, runs in work.items():
        print(f"\n{workload}" + (f": {args.texts} texts of {args.text_tokens} tokens"
                                 if workload == "many short texts"
                                 else f": {args.tokens} tokens, stride {args.stride}"))
        print(f"  {'':34}{'tokens':>8}{'tokens/s':>10}{'gpt2numba / it':>16}")
        tokens = {engine: tokens_scored(workload, engine, data[workload], n_positions)
                  for engine in runs}
        rates = {engine: tokens[engine] / statistics.median(seconds[workload][engine])
                 for engine in runs}
        for engine, rate in rates.items():
            print(f"  {engine:34}{tokens[engine]:>8}{rate:>10.1f}"
                  f"{rates['gpt2numba'] / rate:>15.2f}x")
        peer, target = TARGETS[workload]
        if peer in rates:
            rounds = [tokens["gpt2numba"] / ours / (tokens[peer] / theirs)
                      for ours, theirs in zip(seconds[workload]["gpt2numba"],
                                              seconds[workload][peer])]
            ratio = statistics.median(rounds)
            verdicts.append(f"target for {workload}: gpt2numba at least {target:g} x {peer}: "
                            f"{ratio:.2f}x (median of the rounds' "
                            f"{', '.join(f'{r:.2f}' for r in rounds)}), "
                            f"{'met' if ratio >= target else 'NOT met'}")
    return verdicts


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
        ours = GPT2.from_pretrained(folder, threads=args.threads)
        theirs = transformers.GPT2LMHeadModel.from_pretrained(folder).eval()
        generator = ctranslate2_generator(folder, scratch, args.threads)
        rng = np.random.default_rng(SEED)
        vocab, n_positions = ours.config.vocab_size, ours.config.n_positions
        data = {"many short texts": rng.integers(0, vocab, (args.texts, args.text_tokens)),
                "one long text": rng.integers(0, vocab, args.tokens)}
        warm_up = {"many short texts": data["many short texts"][:8],
                   "one long text": data["one long text"][:n_positions + 1]}
        work = engines(args, ours, theirs, torch, generator, token_strings(folder))
        seconds, results = measure(work, data, warm_up, args.repeats)

    versions = (f"transformers {transformers.__version__} / torch {torch.__version__}"
                + (f", ctranslate2 {__import__('ctranslate2').__version__}" if generator else ""))
    header = (f"{versions} against gpt2numba (numba {numba.__version__}, "
              f"{numba.threading_layer()} layer); {args.threads} threads each, "
              f"{os.cpu_count()} cores; medians of {args.repeats} rounds, every other one "
              f"in reverse order")
    verdicts = report(args, work, data, seconds, n_positions, header)
    print()
    for line in agreement(results) + verdicts:
        print(line)


if __name__ == "__main__":
    main()
