"""`gpt2numba serve`: the OpenAI-compatible completions server (gpt2numba/serve/) on uvicorn."""

import ipaddress
import signal
import socket

import click

from gpt2numba.cli.common import RunError, check_threads, compile_kernels, non_empty

MISSING_EXTRA = ("gpt2numba serve needs FastAPI and uvicorn, which are not installed: "
                 "pip install 'gpt2numba[serve]'")


@click.command(short_help="Serve the model over HTTP: OpenAI's completions API and a page.")
@click.option("-m", "--model", default="gpt2", show_default=True, metavar="NAME_OR_PATH",
              callback=non_empty,
              help="gpt2, gpt2-medium, gpt2-large, gpt2-xl, distilgpt2, a Hub repo id "
                   "(owner/name) or a local folder; clients name it so in `model`.")
@click.option("--revision", metavar="REV", show_default="main",
              help="Branch, tag or commit sha of a Hub repo.")
@click.option("--host", default="127.0.0.1", show_default=True, metavar="ADDRESS",
              help="Address to listen on; another than loopback lets other machines in.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535),
              metavar="PORT",
              help="Port to listen on (0: any free port, printed when serving).")
@click.option("--api-key", envvar="GPT2NUMBA_API_KEY", metavar="KEY", show_envvar=True,
              help="Require this key as `Authorization: Bearer KEY` on the API.")
@click.option("--threads", metavar="N", type=click.IntRange(min=1),
              show_default="the cores other processes leave idle",
              help="Threads for the kernels.")
@click.option("--queue-size", metavar="N", type=click.IntRange(min=1), default=8,
              show_default=True,
              help="Requests waiting or running at most; more are answered 429.")
@click.option("--shutdown-grace", metavar="SECONDS", type=click.IntRange(min=0), default=30,
              show_default=True,
              help="On SIGTERM or Ctrl-C, how long requests in flight may take to finish.")
def serve(model, revision, host, port, api_key, threads, queue_size, shutdown_grace):
    """Serve the model over HTTP until SIGTERM or Ctrl-C.

    OpenAI's legacy completions at /v1/completions (echo and logprobs for scoring, streaming,
    the sampling options of `run`), /v1/models, /health, /tokenize, /detokenize and
    /tokenizer_info as lm-evaluation-harness uses them, and a page to try it at /. Loads and
    compiles the model first, then says where it serves. Example:

    \b
        gpt2numba serve -m gpt2 --port 8000
        curl http://127.0.0.1:8000/v1/completions -H 'Content-Type: application/json' \\
            -d '{"model": "gpt2", "prompt": "Hello", "max_tokens": 8}'
    """
    try:
        import uvicorn

        from gpt2numba.serve.app import create_app
    except ImportError:
        raise RunError(MISSING_EXTRA) from None
    from gpt2numba import GPT2, WeightsError
    from gpt2numba.blocks import FORWARD_KERNELS

    check_threads(threads)
    listening = _bind(host, port)
    if not api_key and not _is_loopback(listening.getsockname()[0]):
        click.echo(f"gpt2numba: warning: serving on {host} without --api-key: anyone who can "
                   f"reach this port can use the model", err=True)
    try:
        gpt = GPT2.from_pretrained(model, revision=revision, threads=threads)
    except WeightsError as error:
        raise RunError(str(error)) from None
    compile_kernels(FORWARD_KERNELS)
    app = create_app(gpt, model, api_key=api_key, queue_size=queue_size,
                     grace_seconds=shutdown_grace)
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=shutdown_grace)
    ready = f"gpt2numba: serving {model} at {_url(listening)} (Ctrl-C to stop)"
    _run_until_signal(_announcing_server(uvicorn, config, ready), listening)
    click.echo("gpt2numba: stopped", err=True)


def _bind(host, port) -> socket.socket:
    """A socket bound to host:port, or a RunError saying why not (in use, no such address)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port,
                                                             type=socket.SOCK_STREAM)[0]
        listening = socket.socket(family, kind, proto)
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind(address)
    except OSError as error:
        raise RunError(f"cannot listen on {host}:{port}: {error.strerror or error}; pass "
                       f"another --host or --port") from None
    return listening


def _is_loopback(address) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _url(listening) -> str:
    host, port = listening.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def _announcing_server(uvicorn, config, line):
    """A uvicorn.Server that prints `line` on stderr once it listens and handles its signals,
    so that a client or a Ctrl-C that follows the line finds it ready."""

    class AnnouncingServer(uvicorn.Server):
        async def startup(self, sockets=None):
            await super().startup(sockets)
            if not self.should_exit:   # uvicorn sets it when the startup failed
                click.echo(line, err=True)

    return AnnouncingServer(config)


def _run_until_signal(server, listening):
    """Run uvicorn on the socket. It stops on SIGTERM or SIGINT (a second one forces it) and
    raises the signal again once done: the handlers here take that one, so that the command
    exits 0 after a clean shutdown."""
    previous = {sig: signal.signal(sig, lambda *_: None)
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run(sockets=[listening])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        listening.close()
