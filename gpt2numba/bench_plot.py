"""`gpt2numba bench --plot FILE.png`: the JIT story as a picture (matplotlib, the `plot` extra).

Left: the time to the first token of a fresh process with an empty JIT cache (cold), with a
populated one (cached) and of a process that has run before (warm: one forward), as stacked
bars of import, load, compile and forward. Right: a warm forward's time against the number of
tokens. transformers beside gpt2numba in both when the report has it.
"""

from pathlib import Path

PHASES = (("import", "import_s", "#9e9e9e"), ("load", "load_s", "#4c72b0"),
          ("compile", "compile_s", "#dd8452"), ("forward", "first_forward_s", "#55a868"))


def require_matplotlib():
    """Import matplotlib with the Agg backend (no display needed), or raise ImportError with a
    one-line message saying how to install it."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("--plot needs matplotlib, which is not installed; install it with: "
                          "pip install matplotlib (gpt2numba[plot] in a clone: "
                          "pip install -e '.[plot]')") from None
    matplotlib.use("Agg")
    return matplotlib


def plot_report(report, path):
    """Draw `report` (a bench.Report) into the PNG file `path`."""
    require_matplotlib()
    import matplotlib.pyplot as plt

    figure, (bars, lines) = plt.subplots(1, 2, figsize=(10, 4), dpi=80)
    warm_16 = report.forward[min(report.forward)].median
    columns = [("gpt2numba\ncold", vars(report.cold)), ("gpt2numba\ncached", vars(report.cached)),
               ("gpt2numba\nwarm", {"first_forward_s": warm_16})]
    theirs = report.transformers
    if theirs:
        columns += [("transformers\nfresh", theirs["fresh"]),
                    ("transformers\nwarm", {"first_forward_s": theirs["forward"][
                        min(theirs["forward"])]})]
    names = [name for name, _ in columns]
    bottoms = [0.0] * len(columns)
    for label, key, color in PHASES:
        heights = [times.get(key, 0.0) for _, times in columns]
        bars.bar(names, heights, bottom=bottoms, color=color, label=label)
        bottoms = [bottom + height for bottom, height in zip(bottoms, heights)]
    bars.set_ylabel("seconds to the first token")
    bars.set_title(f"Time to first token ({min(report.forward)}-token prompt)")
    bars.legend()
    bars.tick_params(axis="x", labelsize=8)

    tokens = sorted(report.forward)
    lines.plot(tokens, [report.forward[n].median * 1e3 for n in tokens], "o-", label="gpt2numba")
    if theirs:
        their_tokens = sorted(theirs["forward"])
        lines.plot(their_tokens, [theirs["forward"][n] * 1e3 for n in their_tokens], "s--",
                   label=f"transformers {theirs['version']}")
    lines.set_xscale("log", base=2)
    lines.set_yscale("log")
    lines.set_xticks(tokens, [str(n) for n in tokens])
    lines.set_xlabel("tokens")
    lines.set_ylabel("ms per forward (warm, last-row logits)")
    lines.set_title("Warm forward time")
    lines.legend()
    model = Path(report.model).name if Path(report.model).is_dir() else report.model
    figure.suptitle(f"gpt2numba bench: {model}, {report.threads} threads", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, format="png")
    plt.close(figure)
