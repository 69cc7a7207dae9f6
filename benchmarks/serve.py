"""`gpt2numba serve` under 1, 4 and 8 concurrent clients, against the same work through the
library in one process.

    python benchmarks/serve.py [--model FOLDER_OR_NAME] [--seconds 20] [--clients 1,4,8]
                               [--threads 2]

Without --model, a random-init 124M GPT-2 is written by transformers into a temporary folder
(speed does not depend on the weights' values). Two workloads, each run for --seconds per
client count: greedy generation (prompts of 16 random token ids, 32 new tokens) and echo
scoring (texts of 256 random token ids, echo with logprobs 1 and max_tokens 0, as
lm-evaluation-harness scores). Each client sends one request after another over its own
connection. Prints requests/s, tokens/s (new tokens, or scored prompt tokens), p50 and p99
latency for each, the library's serial rate on the same requests as the baseline, and the
server's overhead on one client (1 - its requests/s over the library's). Every greedy answer
under load is checked against the serial one. Run it on a quiet machine. A smoke run:
--seconds 2 --clients 1,2 --model FOLDER_OF_A_SMALL_CHECKPOINT.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

from random_checkpoint import add_model_argument, checkpoint_folder

SEED = 0
PROMPTS = 16            # distinct prompts of each workload, sent in turn
SERVING = re.compile(r"gpt2numba: serving .* at (http://\S+) ")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_argument(parser)
    parser.add_argument("--seconds", type=float, default=20, help="per client count and workload")
    parser.add_argument("--clients", default="1,4,8", help="client counts, comma-separated")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--prompt-tokens", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--echo-tokens", type=int, default=256)
    return parser.parse_args(argv)


def workloads(args, vocab_size):
    """{name: (request bodies, tokens each request counts)}: greedy and echo."""
    import numpy as np

    rng = np.random.default_rng(SEED)
    greedy = [{"prompt": rng.integers(0, vocab_size - 1, args.prompt_tokens).tolist(),
               "max_tokens": args.new_tokens, "temperature": 0} for _ in range(PROMPTS)]
    echo = [{"prompt": rng.integers(0, vocab_size - 1, args.echo_tokens).tolist(),
             "max_tokens": 0, "echo": True, "logprobs": 1} for _ in range(PROMPTS)]
    return {"greedy": greedy, "echo": echo}


def library_call(model, body):
    """The request's work through the library: (the greedy text or None, tokens counted)."""
    from gpt2numba.serve.completions import score_prompts

    if body.get("echo"):
        score_prompts(model, [body["prompt"]], 1)
        return None, len(body["prompt"])
    ids = model.generate_ids(body["prompt"], body["max_tokens"], temperature=0)
    return model.tokenizer.decode(ids), len(ids)


def library_rate(model, bodies, seconds):
    """Serial requests/s and tokens/s of the library on `bodies` sent in turn for `seconds`;
    and the greedy text of each body."""
    answers = [library_call(model, body)[0] for body in bodies]   # warm-up, and the references
    done = tokens = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        tokens += library_call(model, bodies[done % len(bodies)])[1]
        done += 1
    elapsed = time.perf_counter() - start
    return done / elapsed, tokens / elapsed, answers


def start_server(folder, threads):
    """A `gpt2numba serve` process on a free port; returns (process, url)."""
    command = [os.path.join(os.path.dirname(sys.executable), "gpt2numba"), "serve", "-m",
               str(folder), "--port", "0", "--threads", str(threads), "--queue-size", "64"]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    for line in process.stderr:
        found = SERVING.search(line)
        if found:
            threading.Thread(target=process.stderr.read, daemon=True).start()
            return process, found[1]
    raise RuntimeError("the server did not start")


def warm_up(url, name, bodies):
    """Send each body once (the server's first requests of a kind are not timed)."""
    import httpx

    for body in bodies:
        httpx.post(f"{url}/v1/completions", json={"model": name, **body},
                   timeout=600).raise_for_status()


def load(url, name, bodies, clients, seconds):
    """`clients` threads sending bodies for `seconds`: (latencies, tokens, greedy answers as
    (body index, text))."""
    import httpx

    latencies, answers, tokens = [], [], [0]
    lock = threading.Lock()

    def client(k):
        sent = k
        with httpx.Client(base_url=url, timeout=600) as http:
            start = time.perf_counter()
            while time.perf_counter() - start < seconds:
                body = bodies[sent % len(bodies)]
                begin = time.perf_counter()
                reply = http.post("/v1/completions", json={"model": name, **body})
                took = time.perf_counter() - begin
                reply.raise_for_status()
                choice, usage = reply.json()["choices"][0], reply.json()["usage"]
                with lock:
                    latencies.append(took)
                    tokens[0] += usage["prompt_tokens" if body.get("echo") else
                                       "completion_tokens"]
                    if not body.get("echo"):
                        answers.append((sent % len(bodies), choice["text"]))
                sent += clients

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, tokens[0], answers, time.perf_counter() - start


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    import numpy as np

    from gpt2numba import GPT2

    clients = [int(n) for n in args.clients.split(",")]
    with tempfile.TemporaryDirectory(prefix="gpt2numba-serve-bench-") as scratch:
        folder = checkpoint_folder(args.model, scratch)
        model = GPT2.from_pretrained(folder, threads=args.threads)
        work = workloads(args, model.config.vocab_size)
        baseline = {name: library_rate(model, bodies, args.seconds)
                    for name, bodies in work.items()}
        process, url = start_server(folder, args.threads)
        try:
            rows, mismatches, checked = [], 0, 0
            for name, bodies in work.items():
                warm_up(url, str(folder), bodies[:2])
                for n in clients:
                    latencies, tokens, answers, elapsed = load(url, str(folder), bodies, n,
                                                               args.seconds)
                    rows.append((name, n, len(latencies) / elapsed, tokens / elapsed,
                                 np.percentile(latencies, 50), np.percentile(latencies, 99)))
                    expected = baseline[name][2]
                    mismatches += sum(text != expected[i] for i, text in answers)
                    checked += len(answers)
        finally:
            process.terminate()
            process.wait()

    print(f"\ngpt2numba serve, {args.threads} threads, {os.cpu_count()} cores, "
          f"{args.seconds:g} s per row; greedy: {args.prompt_tokens}-token prompts, "
          f"{args.new_tokens} new tokens; echo: {args.echo_tokens}-token texts")
    print(f"{'workload':10}{'clients':>8}{'requests/s':>12}{'tokens/s':>10}{'p50 s':>9}"
          f"{'p99 s':>9}")
    for name, (requests, tokens, _) in baseline.items():
        print(f"{name:10}{'library':>8}{requests:>12.2f}{tokens:>10.1f}")
    for name, n, requests, tokens, p50, p99 in rows:
        print(f"{name:10}{n:>8}{requests:>12.2f}{tokens:>10.1f}{p50:>9.3f}{p99:>9.3f}")
    for name, n, requests, *_ in rows:
        if n == 1:
            print(f"server overhead on one client, {name}: "
                  f"{1 - requests / baseline[name][0]:+.1%} (1 - server requests/s over the "
                  f"library's)")
    print(f"greedy answers under load equal to the serial ones: {checked - mismatches} of "
          f"{checked}")


if __name__ == "__main__":
    main()
