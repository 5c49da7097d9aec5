"""The embedded NATS server's users: one per service, `reader` for outside subscribers, `admin` for
provisioning and API keys, with the permissions of pressroom_contracts.access.

Passwords are generated once and kept (0600) with the server's data; nats-server's configuration holds
only their bcrypt hashes.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import bcrypt

from pressroom_contracts.access import ADMIN, USERS, render_authorization

from .secretfile import write_secret

# The passwords are 192 random bits, so the hash's work factor protects nothing: keep the minimum, as
# nats-server checks the hash on every connection (and the test suite connects thousands of times).
BCRYPT_ROUNDS = 4


@dataclass(frozen=True)
class NatsUsers:
    passwords: Mapping[str, str]

    @classmethod
    def generate(cls) -> NatsUsers:
        return cls({user: secrets.token_urlsafe(24) for user in USERS})

    @classmethod
    def load_or_create(cls, path: Path) -> NatsUsers:
        """The users kept in `path`; any user missing there (a new service) gets a new password."""
        try:
            kept = json.loads(path.read_text())
        except (OSError, ValueError):
            kept = {}
        fresh = cls.generate().passwords
        users = cls({user: kept.get(user) or fresh[user] for user in USERS})
        if users.passwords != kept:
            write_secret(path, json.dumps(dict(users.passwords), indent=2) + "\n")
        return users

    def password(self, user: str) -> str:
        return self.passwords[user]

    def authorization(self) -> str:
        """The nats-server `authorization` block, with hashes only."""
        salt = bcrypt.gensalt(rounds=BCRYPT_ROUNDS)
        hashes = {user: bcrypt.hashpw(pw.encode(), salt).decode() for user, pw in self.passwords.items()}
        return render_authorization(hashes)

    def url(self, nats_url: str, user: str = ADMIN) -> str:
        """`nats_url` (one URL or a comma-separated list) with `user`'s credentials in each URL: for the
        stack's own one-shot connections (provisioning, API keys) and for tests, never for logs."""
        return ",".join(with_credentials(url, user, self.passwords[user]) for url in nats_url.split(","))

    def service_env(self, service: str) -> dict[str, str]:
        """The settings a service connects with (pressroom_runtime.settings)."""
        return {"NATS_USER": service, "NATS_PASSWORD": self.passwords[service]}


def with_credentials(url: str, user: str, password: str) -> str:
    parts = urlsplit(url.strip())
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"))
