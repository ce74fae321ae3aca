"""A real S3-compatible server (moto) on loopback, for the sandbox, the tests and the demo."""

from __future__ import annotations

import logging
import urllib.request
from types import TracebackType
from typing import Any

from bctui.errors import BctuiError

LOOPBACK = "127.0.0.1"


def _threaded_moto_server_class() -> Any:
    """moto's ThreadedMotoServer, imported only when a server is started."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:  # moto, flask or flask-cors missing
        raise BctuiError(
            f"the S3 sandbox needs moto's server, which could not be imported ({exc})",
            where="bctui sandbox",
            fix="install the sandbox extra: pip install 'bctui[sandbox]'",
        ) from exc
    return ThreadedMotoServer


class S3Server:
    """moto's S3 server in a background thread on 127.0.0.1 (it accepts any credentials)."""

    def __init__(self, port: int = 0) -> None:
        self._requested_port = port
        self._server: Any = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The port the server listens on (only after `start()`)."""
        if self._port is None:
            raise RuntimeError("S3Server is not running: call start() first")
        return self._port

    @property
    def endpoint_url(self) -> str:
        """`http://127.0.0.1:<port>`, for boto3's `endpoint_url`."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether `start()` has been called and `stop()` has not."""
        return self._server is not None

    def start(self) -> S3Server:
        """Start listening; returns once the server accepts connections."""
        if self._server is not None:
            return self
        server_class = _threaded_moto_server_class()
        # werkzeug logs every request line to stderr; the sandbox's own output must stay readable.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        server = server_class(ip_address=LOOPBACK, port=self._requested_port, verbose=False)
        try:
            server.start()
        except OSError as exc:
            raise BctuiError(
                f"the S3 sandbox could not listen on {LOOPBACK}:{self._requested_port} ({exc})",
                where="bctui sandbox",
                fix="choose another port with --s3-port, or 0 for any free port",
            ) from exc
        self._server = server
        self._port = int(server.get_host_and_port()[1])
        return self

    def stop(self) -> None:
        """Stop the server and wait for its thread."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()
        self._port = None

    def reset(self) -> None:
        """Forget every bucket and object (moto's `POST /moto-api/reset`)."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.endpoint_url if self._port is not None else "stopped"
        return f"S3Server({where})"
