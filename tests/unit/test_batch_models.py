"""The Batch API's objects: what POST /v1/batches accepts, and the batch object as the OpenAI SDK reads it."""

from __future__ import annotations

import openai.types
import pytest
from deepseek_gateway.batches.models import Batch, BatchCreate, BatchError, BatchErrors, RequestCounts
from pydantic import ValidationError

VALID = {"input_file_id": "file-abc", "endpoint": "/v1/chat/completions", "completion_window": "24h"}


def test_given_openais_create_body_when_parsed_then_it_is_accepted_with_its_metadata():
    body = BatchCreate.model_validate({**VALID, "metadata": {"team": "search"}})

    assert body.metadata == {"team": "search"} and body.endpoint == "/v1/chat/completions"


@pytest.mark.parametrize("change", [
    {"endpoint": "/v1/embeddings"},
    {"completion_window": "48h"},
    {"input_file_id": ""},
    {"tenant_id": "other"},
    {"metadata": {f"k{i}": "v" for i in range(17)}},
    {"metadata": {"k" * 65: "v"}},
    {"metadata": {"k": "v" * 513}},
])
def test_given_a_body_outside_openais_bounds_when_parsed_then_it_is_refused(change):
    with pytest.raises(ValidationError):
        BatchCreate.model_validate({**VALID, **change})


def test_given_a_failed_batch_when_dumped_then_the_openai_sdk_reads_every_field():
    batch = Batch(id="batch_" + "0" * 24, endpoint="/v1/chat/completions", input_file_id="file-abc",
                  completion_window="24h", status="failed", created_at=1, expires_at=86_401, failed_at=2,
                  errors=BatchErrors(data=[BatchError(code="empty_file", message="The file is empty.")]),
                  request_counts=RequestCounts(total=0), metadata={"team": "search"})

    parsed = openai.types.Batch.model_validate(batch.model_dump(mode="json"))

    assert parsed.status == "failed" and parsed.expires_at == 86_401
    assert parsed.errors.data[0].code == "empty_file" and parsed.request_counts.total == 0
    assert parsed.metadata == {"team": "search"}


def test_given_every_gateway_error_when_mapped_by_class_name_then_no_two_classes_share_a_name():
    from deepseek_gateway.batches.outcomes import gateway_error_codes
    from deepseek_gateway.errors import GatewayError

    gateway_error_codes()  # imports every module the map is built from
    seen: dict[str, type] = {}
    pending = [GatewayError]
    while pending:
        cls = pending.pop()
        if cls.__module__.startswith("deepseek_gateway."):
            assert seen.setdefault(cls.__name__, cls) is cls, f"two error classes named {cls.__name__}"
        pending += cls.__subclasses__()
    assert {"BatchCancelledError", "BatchExpiredError", "QuotaExceededError", "PolicyViolation"} <= set(seen)


def test_given_error_names_when_mapped_then_codes_follow_the_class_and_unknown_names_say_nothing():
    from deepseek_gateway.batches.outcomes import GENERIC_MESSAGE, task_error

    cause = '{"errorType": "X", "errorMessage": "the text", "stackTrace": ["at secret"]}'

    assert task_error("ProviderRetryableError", cause) == ("upstream_error", "the text")
    assert task_error("BatchExpiredError", None) == ("batch_expired", GENERIC_MESSAGE)
    assert task_error("ZeroDivisionError", cause) == ("internal_error", GENERIC_MESSAGE)
    assert task_error("Lambda.ServiceException", cause) == ("internal_error", GENERIC_MESSAGE)
