"""Settings: one small model per concern, read from `POSTMEISTER_*` environment variables.

Nested settings use a double underscore: `POSTMEISTER_PASSWORDS__MIN_LENGTH=20`.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class HttpSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8443
    # Set only when a TLS-terminating proxy sits in front: then serve speaks plain HTTP and
    # still refuses any request that the proxy did not receive over HTTPS.
    behind_tls_proxy: bool = False
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    max_body_bytes: int = 1_048_576


class PasswordSettings(BaseModel):
    min_length: int = 16
    max_length: int = 1024
    min_distinct: int = 10
    banned_words: list[str] = Field(
        default_factory=lambda: [
            "postmeister",
            "variomedia",
            "vrmd",
            "securehost",
            "password",
            "passwort",
            "lieber laenger, als kuerzer",
        ]
    )
    # Extra files of leaked-password SHA-1 hashes (sorted, "HASH[:COUNT]" per line).
    leaked_hash_files: list[Path] = Field(default_factory=list)
    # argon2id parameters; the defaults are OWASP's minimum (19 MiB, 2 iterations, 1 lane).
    argon2_memory_kib: int = 19456
    argon2_time_cost: int = 2
    argon2_parallelism: int = 1


class SchedulerSettings(BaseModel):
    enabled: bool = True
    timezone: str = "Europe/Berlin"
    tick_seconds: float = 30.0


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="POSTMEISTER_", env_nested_delimiter="__", extra="ignore"
    )

    data_dir: Path = Path("./var")
    database_url: str | None = None
    http: HttpSettings = Field(default_factory=HttpSettings)
    passwords: PasswordSettings = Field(default_factory=PasswordSettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'postmeister.sqlite3').resolve()}"
