"""`gpt2numba serve`: OpenAI's legacy completions API over the model, and a page to try it.

protocol.py  the requests, as pydantic models, and their checks (a 400 naming the field)
errors.py    errors in OpenAI's JSON shape
completions.py  what a request computes: echo scoring, generation steps, the logprobs object
worker.py    the one thread that runs the model, one step of each request in turn
responses.py the response JSON and the server-sent events
app.py       the FastAPI app: routes, the key, the body limit
page.html    the page at `/`

It needs the `[serve]` extra (FastAPI, uvicorn); the command is gpt2numba/cli/serve.py.
"""
