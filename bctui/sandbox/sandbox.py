"""The Braze simulator and an S3 server together, seeded, on loopback."""

from __future__ import annotations

from types import TracebackType

from bctui.sandbox.exports import S3Config, ensure_bucket
from bctui.sandbox.s3server import S3Server
from bctui.sandbox.server import BrazeServer
from bctui.sandbox.settings import SimulatorSettings
from bctui.sandbox.simulator import Simulator
from bctui.secret import Secret

# Sandbox credentials: moto accepts any, and printing them is the point of `bctui sandbox`.
SANDBOX_ACCESS_KEY_ID = "SANDBOXACCESSKEYID01"
SANDBOX_SECRET_ACCESS_KEY = "sandbox-secret-access-key"
SANDBOX_REGION = "us-east-1"


class Sandbox:
    """A seeded Braze simulator plus an S3 server whose bucket receives the segment exports."""

    def __init__(
        self,
        users: int = 1000,
        seed: int = 7,
        settings: SimulatorSettings | None = None,
        braze_port: int = 0,
        s3_port: int = 0,
        bucket: str = "bctui-exports",
        root: str = "",
        s3: S3Server | None = None,
    ) -> None:
        self.users = users
        self.seed = seed
        # The Sandbox's seed wins over the settings' own.
        self.settings = (settings or SimulatorSettings()).updated({"seed": seed})
        self.braze_port = braze_port
        self.s3_port = s3_port
        self.bucket = bucket
        self.root = root
        self.region = SANDBOX_REGION
        self.aws_access_key_id = SANDBOX_ACCESS_KEY_ID
        self.aws_secret_access_key = SANDBOX_SECRET_ACCESS_KEY
        self._shared_s3 = s3
        self._own_s3: S3Server | None = None
        self._sim: Simulator | None = None
        self._server: BrazeServer | None = None

    def start(self) -> Sandbox:
        """Start S3 (unless shared), create the bucket, seed the simulator, start serving."""
        if self._server is not None:
            return self
        try:
            s3 = self._shared_s3
            if s3 is None:
                s3 = self._own_s3 = S3Server(self.s3_port).start()
            elif not s3.running:
                s3.start()
            config = S3Config(
                endpoint_url=s3.endpoint_url,
                bucket=self.bucket,
                access_key_id=self.aws_access_key_id,
                secret_access_key=Secret(self.aws_secret_access_key),
                root=self.root,
                region=self.region,
            )
            ensure_bucket(config)
            self._sim = Simulator(self.settings, config, users=self.users)
            self._server = BrazeServer(self._sim, port=self.braze_port).start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop serving, cancel pending exports, and stop the S3 server if this sandbox owns it."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()
        if self._sim is not None:
            self._sim.close()
        own, self._own_s3 = self._own_s3, None
        if own is not None:
            own.stop()

    @property
    def sim(self) -> Simulator:
        """The simulator behind the HTTP server."""
        if self._sim is None:
            raise RuntimeError("the sandbox is not started: call start() first")
        return self._sim

    @property
    def server(self) -> BrazeServer:
        """The Braze HTTP server."""
        if self._server is None:
            raise RuntimeError("the sandbox is not started: call start() first")
        return self._server

    @property
    def braze_url(self) -> str:
        """The Braze REST endpoint, `http://127.0.0.1:<port>`."""
        return self.server.url

    @property
    def api_key(self) -> str:
        """A REST API key with every permission."""
        return self.sim.full_key

    def key_with(self, *permissions: str) -> str:
        """A REST API key with exactly these permissions (e.g. `"users.track"`)."""
        return self.sim.add_key(permissions)

    @property
    def s3_endpoint(self) -> str:
        """The S3 server's endpoint URL."""
        s3 = self._own_s3 or self._shared_s3
        if s3 is None or not s3.running:
            raise RuntimeError("the sandbox is not started: call start() first")
        return s3.endpoint_url

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self._server.url if self._server is not None else "stopped"
        return f"Sandbox(braze={where}, users={self.users}, seed={self.seed})"
