"""gpt2numba/blocks.py: its list of the forward's kernels is the list a forward really calls."""

import subprocess
import sys

# A fresh process (no test has called any kernel in it) runs both forwards, then prints which
# public kernels hold a compiled or cache-loaded version, and FORWARD_KERNELS' names.
FORWARD_IN_A_FRESH_PROCESS = """
import sys
from gpt2numba import GPT2, kernels
from gpt2numba.blocks import FORWARD_KERNELS
model = GPT2.from_pretrained(sys.argv[1])
model.logits([15496, 11, 995])
model.next_token_logits([15496, 11, 995])
print(sorted(name for name in kernels.__all__ if getattr(kernels, name).signatures))
print(sorted(kernel.__name__ for kernel in FORWARD_KERNELS))
"""


def test_forward_kernels_are_the_kernels_the_forward_calls(tiny_checkpoint):
    done = subprocess.run([sys.executable, "-c", FORWARD_IN_A_FRESH_PROCESS, str(tiny_checkpoint)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    called, listed = done.stdout.splitlines()
    assert listed == called
