"""`gpt2numba serve` started as a user starts it, on 127.0.0.1 and a port the system picks."""

import re
import signal
import subprocess
import threading
import time

from support.cli import cli_env, console_script

SERVING = re.compile(r"gpt2numba: serving .* at (http://127\.0\.0\.1:\d+)")


class Server:
    """A `gpt2numba serve` process: `url` once it says it is serving; `stderr` its lines so far;
    `stop()` sends SIGTERM and returns its exit status."""

    def __init__(self, args, env, timeout=300):
        self.process = subprocess.Popen([*console_script(), "serve", "--port", "0", *args],
                                        env=env, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        text=True)
        self.stderr = []
        self._serving = threading.Event()
        self.url = None
        threading.Thread(target=self._read_stderr, daemon=True).start()
        if not self._serving.wait(timeout) or self.url is None:
            self.process.kill()
            self.process.wait()
            raise RuntimeError("the server did not start:\n" + "".join(self.stderr))

    def _read_stderr(self):
        for line in self.process.stderr:
            self.stderr.append(line)
            found = SERVING.search(line)
            if found:
                self.url = found[1]
                self._serving.set()
        self._serving.set()

    def stop(self, timeout=60) -> int:
        """SIGTERM, then the exit status (it is killed if it takes longer than `timeout`)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    def wait_for_exit(self, timeout) -> int:
        """The exit status, waiting up to `timeout` seconds."""
        start = time.monotonic()
        while self.process.poll() is None and time.monotonic() - start < timeout:
            time.sleep(0.05)
        return self.process.poll()


def start_server(checkpoint, home, *args, **env):
    """A Server of the checkpoint folder, offline with HF_HOME `home`; `args` more options."""
    return Server(["-m", str(checkpoint), *map(str, args)], cli_env(home, **env))
