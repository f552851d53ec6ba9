"""Settings validated once from the environment (the Lambda configuration or the local cloud's)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ProviderSettings(BaseSettings):
    """Where a provider lives and how its key is found.

    Deployed, the key is read from the Secrets Manager secret named by `*_SECRET_ARN`; locally it
    comes straight from `*_API_KEY`. The base URL can point at any compatible endpoint.
    """

    model_config = SettingsConfigDict(extra="ignore")

    deepseek_base_url: str = "https://api.deepseek.com"
    deepseek_api_key: str | None = None
    deepseek_secret_arn: str | None = None

    openai_base_url: str = "https://api.openai.com/v1"
    openai_api_key: str | None = None
    openai_secret_arn: str | None = None

    anthropic_base_url: str = "https://api.anthropic.com"
    anthropic_api_key: str | None = None
    anthropic_secret_arn: str | None = None


class Settings(ProviderSettings):
    stage: str = "local"

    # Tenants and API keys (the authorizer and the admin API).
    tenants_table_name: str | None = None
    # How long an instance trusts its cached copy of a tenant's record, policy and key limits.
    tenant_cache_ttl_s: float = 30.0
    # Limit counters and usage records; budget threshold events go to the notifications queue.
    usage_table_name: str | None = None
    notifications_queue_url: str | None = None
    # OIDC issuers the authorizer trusts: a JSON list (see deepseek_gateway.auth.oidc and the README).
    oidc_issuers: str | None = None
    # API Gateway usage-plan key per tenant plan, returned as the authorizer's usageIdentifierKey.
    usage_plan_keys: dict[str, str] = Field(default_factory=dict)
    service_name: str = Field(default="deepseek-gateway", alias="POWERTOOLS_SERVICE_NAME")

    # Logs never carry prompts, answers or keys unless this is on (local debugging only).
    log_content: bool = False

    # Largest request body the api function accepts (API Gateway itself stops at 10 MB).
    max_request_bytes: int = 1_048_576

    # Files API: bytes under <tenant>/files/ in the uploads bucket, records in the jobs table.
    uploads_bucket_name: str | None = None
    jobs_table_name: str | None = None
    # SSE-KMS key for uploaded objects; unset: the bucket's default key.
    uploads_kms_key_id: str | None = None
    # POST /v1/files: API Gateway takes 10 MB, but a synchronous Lambda invocation only 6 MB and the
    # multipart body arrives base64-encoded (x4/3): 4 MiB keeps the whole event under 6 MB.
    max_file_bytes: int = 4 * 1024 * 1024
    # POST /v1/files/uploads (presigned S3 PUT, one request: S3 allows up to 5 GB).
    max_presigned_bytes: int = 512 * 1024 * 1024
    # GET /v1/files/{id}/content answers inline up to this size (base64 in a 6 MB Lambda response),
    # and with a 302 to a presigned S3 GET URL above it.
    max_inline_content_bytes: int = 4 * 1024 * 1024
    upload_url_ttl_s: int = 900

    # Batches (OpenAI Batch API): records and per-line results in the jobs table, work chunks and
    # nothing else in the results bucket, the workflow in Step Functions (see deepseek_gateway.batches).
    results_bucket_name: str | None = None
    ingestion_queue_url: str | None = None
    batch_state_machine_arn: str | None = None
    # Powertools idempotency records (ingestion, backend calls): key `id`, TTL `expiration`.
    idempotency_table_name: str | None = None
    # OpenAI's limits: 50,000 requests and 200 MB per batch file.
    max_batch_lines: int = 50_000
    max_batch_file_bytes: int = 200 * 1024 * 1024
    # One line travels through the workflow's states with its answer: Step Functions caps a state's
    # payload at 256 KiB, so a request line may be at most 64 KiB (larger lines go to the error file).
    max_batch_line_bytes: int = 64 * 1024
    # Lines per work chunk (one S3 object, one iteration of the workflow's outer Map), and the chunk's
    # byte budget, so a chunk loaded into a state stays under the payload limit.
    batch_chunk_items: int = 100
    batch_chunk_bytes: int = 192 * 1024
    batch_completion_window_s: int = 86_400

    # Routing: per-attempt timeout, overall deadline, attempts per provider, backoff.
    attempt_timeout_s: float = 30.0
    request_deadline_s: float = 90.0
    attempts_per_provider: int = 2
    backoff_base_s: float = 0.25
    backoff_cap_s: float = 4.0
    # A Retry-After longer than this moves on to the next provider instead of waiting.
    max_retry_after_s: float = 5.0

    # Circuit breaker: failures in a row that open it, how long it stays open, how long an
    # instance trusts its cached copy of the shared state.
    breaker_table_name: str | None = None
    breaker_failure_threshold: int = 5
    breaker_cooldown_s: float = 30.0
    breaker_cache_ttl_s: float = 2.0


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
