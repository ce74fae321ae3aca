"""Loopback servers for S3 cases moto cannot make: scripted S3-style errors and broken bodies.

`S3StandIn` answers every request from a script (S3-style XML errors, objects, 206 ranges, a
body cut off mid-way). `MotoWithAuth` runs moto in a child process with IAM authentication on,
so real InvalidAccessKeyId / SignatureDoesNotMatch / AccessDenied answers can be provoked.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import boto3


@dataclass
class S3Reply:
    """One scripted answer; `cut_after` closes the connection after that many body bytes."""

    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    cut_after: int | None = None


def s3_error(status: int, code: str, message: str, **extra: str) -> S3Reply:
    """An S3-style XML error answer."""
    fields = "".join(f"<{k}>{v}</{k}>" for k, v in extra.items())
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Error><Code>{code}</Code><Message>{message}</Message>{fields}"
        "<RequestId>standin</RequestId></Error>"
    ).encode()
    return S3Reply(status, body, [("Content-Type", "application/xml")])


@dataclass
class S3Request:
    """One request the stand-in received."""

    method: str
    path: str
    headers: dict[str, str]


class S3StandIn:
    """A threaded HTTP/1.1 server answering S3 requests from `script`."""

    def __init__(self, script: Callable[[S3Request], S3Reply]) -> None:
        self.script = script
        self.seen: list[S3Request] = []
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                request = S3Request(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}
                )
                standin.seen.append(request)
                reply = standin.script(request)
                self.send_response(reply.status)
                for name, value in reply.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if self.command == "HEAD":
                    return
                if reply.cut_after is not None:
                    self.wfile.write(reply.body[: reply.cut_after])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(reply.body)

            do_GET = _serve
            do_HEAD = _serve
            do_PUT = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>`."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> S3StandIn:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


_MOTO = """
import logging, sys
from moto.server import ThreadedMotoServer
logging.getLogger("werkzeug").setLevel(logging.ERROR)
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"""


class MotoWithAuth:
    """moto in a child process (its auth switch is process-wide), with IAM auth turned on.

    Creates buckets `allowed` and `forbidden` and an IAM user whose key may list and read only
    `allowed`; `key_id` / `secret` are that user's credentials.
    """

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _MOTO],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        self.url = f"http://127.0.0.1:{int(self.process.stdout.readline())}"
        session = boto3.session.Session(
            aws_access_key_id="admin", aws_secret_access_key="admin", region_name="us-east-1"
        )
        s3 = session.client("s3", endpoint_url=self.url)
        s3.create_bucket(Bucket="allowed")
        s3.create_bucket(Bucket="forbidden")
        iam = session.client("iam", endpoint_url=self.url)
        iam.create_user(UserName="reader")
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["s3:ListBucket", "s3:GetObject", "s3:GetBucketLocation"],
                    "Resource": ["arn:aws:s3:::allowed", "arn:aws:s3:::allowed/*"],
                }
            ],
        }
        iam.put_user_policy(
            UserName="reader", PolicyName="read-allowed", PolicyDocument=json.dumps(policy)
        )
        key = iam.create_access_key(UserName="reader")["AccessKey"]
        self.key_id: str = key["AccessKeyId"]
        self.secret: str = key["SecretAccessKey"]
        # From now on every request must be signed by a known key and allowed by its policy.
        request = urllib.request.Request(
            f"{self.url}/moto-api/reset-auth",
            data=b"0",
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def close(self) -> None:
        """Stop the child process."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)
