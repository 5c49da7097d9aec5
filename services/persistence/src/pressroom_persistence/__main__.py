"""`python -m pressroom_persistence`: the service process."""

from __future__ import annotations

from pressroom_runtime.service import serve

from .app import create_app
from .settings import PersistenceSettings


def main() -> None:
    settings = PersistenceSettings()
    serve(create_app(settings), settings, service="persistence")


if __name__ == "__main__":
    main()
