"""Errors as OpenAI's API shapes them: `{"error": {"message", "type", "param", "code"}}`."""

from starlette.responses import JSONResponse

# The `type` OpenAI gives each status.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    413: "invalid_request_error",
    422: "model_error",
    429: "rate_limit_error",
    503: "service_unavailable_error",
}


class APIError(Exception):
    """A request that is answered with `status` and an OpenAI-shaped error body.

    `message` says what is wrong and what to do; `param` names the request field at fault (or
    None); `headers` go with the response (Retry-After for a full queue).
    """

    def __init__(self, status, message, *, param=None, code=None, headers=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        """The JSON response of this error."""
        return JSONResponse(error_body(self.message, ERROR_TYPES.get(self.status, "error"),
                                       self.param, self.code),
                            status_code=self.status, headers=self.headers)


def error_body(message, type_, param=None, code=None) -> dict:
    """OpenAI's error object."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}
