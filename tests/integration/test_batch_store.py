"""Batch records and line results in a moto jobs table: statuses, tenancy, exactly-once line results."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from deepseek_gateway.auth.principal import Principal
from deepseek_gateway.batches.errors import BatchNotFoundError
from deepseek_gateway.batches.models import BatchError
from deepseek_gateway.batches.store import BatchStore, LineResultConflict
from deepseek_gateway.errors import ConflictError, InvalidRequestError
from deepseek_gateway.ids import time_ordered_id
from local_cloud.moto_resources import create_table

from tests.fakes import FakeClock

TABLE = "jobs"
ACME = Principal(tenant_id="acme", principal_id="keyacmeacmeacme1", kind="api_key", scopes=frozenset({"batch"}),
                 key_id="keyacmeacmeacme1")
GLOBEX = Principal(tenant_id="globex", principal_id="keyglobexglobex1", kind="api_key", scopes=frozenset({"batch"}),
                   key_id="keyglobexglobex1")
WINDOW_S = 86_400


def create_jobs_table(client: Any) -> None:
    create_table(client, TABLE)


@pytest.fixture
def env():
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_jobs_table(client)
        clock = FakeClock(now=1_767_225_600.0)
        sleeps: list[float] = []
        store = BatchStore(TABLE, client, clock=clock, sleep=sleeps.append)
        yield SimpleNamespace(client=client, clock=clock, store=store, sleeps=sleeps)


def new_batch(store: BatchStore, principal: Principal = ACME, **changes: Any):
    values = {"input_file_id": "file-" + "a" * 24, "endpoint": "/v1/chat/completions", "completion_window": "24h",
              "metadata": {"team": "search"}, "principal": principal, "window_s": WINDOW_S, **changes}
    return store.create(principal.tenant_id, **values)


def raw_item(env, tenant_id: str, batch_id: str) -> dict[str, Any]:
    key = {"pk": {"S": f"TENANT#{tenant_id}"}, "sk": {"S": f"BATCH#{batch_id}"}}
    return env.client.get_item(TableName=TABLE, Key=key)["Item"]


def result_of(custom_id: str) -> dict[str, Any]:
    return {"id": time_ordered_id("batch_req_"), "custom_id": custom_id, "response": None,
            "error": {"code": "x", "message": "y"}}


def test_given_a_new_batch_when_read_back_then_it_is_validating_with_its_window_and_principal(env):
    batch = new_batch(env.store)

    read = env.store.get("acme", batch.id)

    assert read == batch and read.status == "validating" and read.metadata == {"team": "search"}
    assert read.created_at == 1_767_225_600 and read.expires_at == 1_767_225_600 + WINDOW_S
    assert read.id.startswith("batch_") and len(read.id) == 30
    assert env.store.principal("acme", batch.id) == ACME


def test_given_another_tenants_batch_when_read_then_it_does_not_exist(env):
    batch = new_batch(env.store)

    for call in (lambda: env.store.get("globex", batch.id), lambda: env.store.principal("globex", batch.id),
                 lambda: env.store.request_cancel("globex", batch.id), lambda: env.store.get("acme", "batch_nope")):
        with pytest.raises(BatchNotFoundError) as raised:
            call()
        assert raised.value.status == 404 and raised.value.code == "batch_not_found"
    assert env.store.list("globex").data == []


def test_given_a_batch_in_every_status_when_stored_then_the_ttl_attribute_is_never_set(env):
    done = new_batch(env.store)
    checks = [
        lambda b: env.store.start("acme", b, total=2, execution_arn="arn:x"),
        lambda b: env.store.write_line_result("acme", b, line=1, custom_id="a", kind="error", result=result_of("a")),
        lambda b: env.store.begin_finalizing("acme", b),
        lambda b: env.store.claim_output_files("acme", b, "file-" + "o" * 24, None),
        lambda b: env.store.finish("acme", b),
    ]
    assert "expires_at" not in raw_item(env, "acme", done.id)
    for step in checks:
        step(done.id)
        assert "expires_at" not in raw_item(env, "acme", done.id)
    for other in (lambda b: env.store.fail("acme", b, [BatchError(code="c", message="m")]),
                  lambda b: env.store.request_cancel("acme", b)):
        batch = new_batch(env.store)
        other(batch.id)
        assert "expires_at" not in raw_item(env, "acme", batch.id)
    assert raw_item(env, "acme", done.id)["window_expires_at"] == {"N": str(1_767_225_600 + WINDOW_S)}


def test_given_many_batches_when_listed_then_pages_run_newest_first_without_overlap(env):
    ids = []
    for _ in range(5):
        ids.append(new_batch(env.store).id)
        env.clock.advance(1)
    new_batch(env.store, GLOBEX)

    first = env.store.list("acme", limit=2)
    second = env.store.list("acme", limit=2, after=first.last_id)
    last = env.store.list("acme", limit=2, after=second.last_id)

    assert [b.id for b in first.data + second.data + last.data] == ids[::-1]
    assert (first.has_more, second.has_more, last.has_more) == (True, True, False)
    assert first.first_id == ids[-1] and last.last_id == ids[0]
    for bad in ({"limit": 0}, {"limit": 101}, {"after": "file-x"}):
        with pytest.raises(InvalidRequestError):
            env.store.list("acme", **bad)


def test_given_a_validating_batch_when_started_twice_then_the_second_start_changes_nothing(env):
    batch = new_batch(env.store)

    started = env.store.start("acme", batch.id, total=3, execution_arn="arn:first")
    env.clock.advance(5)
    again = env.store.start("acme", batch.id, total=99, execution_arn="arn:second")

    assert started.status == "in_progress" and started.in_progress_at == 1_767_225_600
    assert again == started and again.request_counts.total == 3
    assert raw_item(env, "acme", batch.id)["execution_arn"] == {"S": "arn:first"}


def test_given_a_batch_cancelled_while_validating_when_started_then_it_stays_cancelling_with_its_count(env):
    batch = new_batch(env.store)
    env.store.request_cancel("acme", batch.id)

    started = env.store.start("acme", batch.id, total=4, execution_arn="arn:x")

    assert started.status == "cancelling" and started.request_counts.total == 4
    assert env.store.finish("acme", batch.id).status == "cancelled"


def test_given_statuses_when_cancel_is_requested_then_only_unfinished_batches_move_to_cancelling(env):
    batch = new_batch(env.store)
    env.store.start("acme", batch.id, total=1, execution_arn="arn:x")

    cancelling = env.store.request_cancel("acme", batch.id)
    again = env.store.request_cancel("acme", batch.id)
    cancelled = env.store.finish("acme", batch.id)

    assert cancelling.status == "cancelling" and cancelling.cancelling_at == 1_767_225_600 and again == cancelling
    assert cancelled.status == "cancelled" and cancelled.cancelled_at is not None
    with pytest.raises(InvalidRequestError) as raised:
        env.store.request_cancel("acme", batch.id)
    assert raised.value.status == 400 and raised.value.code == "batch_not_cancellable"


def test_given_a_finalizing_batch_when_finished_then_the_window_decides_completed_or_expired(env):
    on_time, late, told = new_batch(env.store), new_batch(env.store), new_batch(env.store)
    for batch in (on_time, late, told):
        env.store.start("acme", batch.id, total=0, execution_arn="arn:x")
        assert env.store.begin_finalizing("acme", batch.id).status == "finalizing"

    completed = env.store.finish("acme", on_time.id)
    env.clock.advance(WINDOW_S + 1)
    expired = env.store.finish("acme", late.id)
    not_expired = env.store.finish("acme", told.id, expired=False)

    assert (completed.status, expired.status, not_expired.status) == ("completed", "expired", "completed")
    assert expired.expired_at == int(env.clock.now) and completed.completed_at == 1_767_225_600
    assert env.store.finish("acme", on_time.id) == completed  # finished: unchanged
    assert env.store.begin_finalizing("acme", on_time.id) == completed


def test_given_an_unfinished_batch_when_failed_then_it_keeps_its_errors_and_a_finished_one_refuses(env):
    batch, done = new_batch(env.store), new_batch(env.store)
    env.store.start("acme", done.id, total=0, execution_arn="arn:x")
    env.store.begin_finalizing("acme", done.id)
    env.store.finish("acme", done.id)
    errors = [BatchError(code="empty_file", message="The file is empty.", line=None)]

    failed = env.store.fail("acme", batch.id, errors)

    assert failed.status == "failed" and failed.failed_at == 1_767_225_600
    assert failed.errors is not None and failed.errors.data == errors
    assert env.store.fail("acme", batch.id, [BatchError(code="other", message="m")]) == failed
    with pytest.raises(ConflictError):
        env.store.fail("acme", done.id, errors)


def test_given_two_finalizers_when_they_claim_file_ids_then_the_first_claim_wins_for_both(env):
    batch = new_batch(env.store)

    first = env.store.claim_output_files("acme", batch.id, "file-" + "1" * 24, None)
    second = env.store.claim_output_files("acme", batch.id, "file-" + "2" * 24, "file-" + "3" * 24)

    assert first == second == ("file-" + "1" * 24, None)
    assert env.store.get("acme", batch.id).output_file_id == "file-" + "1" * 24


def test_given_a_line_result_written_twice_when_counted_then_it_is_stored_and_counted_once(env):
    batch = new_batch(env.store)
    env.store.start("acme", batch.id, total=2, execution_arn="arn:x")
    first, second = result_of("a"), result_of("a")

    wrote = [env.store.write_line_result("acme", batch.id, line=2, custom_id="a", kind="output", result=r)
             for r in (first, second)]
    env.store.write_line_result("acme", batch.id, line=1, custom_id=None, kind="error", result=result_of("b"))

    assert wrote == [True, False]
    counts = env.store.get("acme", batch.id).request_counts
    assert (counts.total, counts.completed, counts.failed) == (2, 1, 1)
    results = list(env.store.line_results("acme", batch.id))
    assert [(r.line, r.custom_id, r.kind) for r in results] == [(1, None, "error"), (2, "a", "output")]
    assert results[1].result == first


def test_given_a_missing_batch_when_a_line_result_is_written_then_nothing_is_stored(env):
    missing = time_ordered_id("batch_")

    with pytest.raises(BatchNotFoundError):
        env.store.write_line_result("acme", missing, line=1, custom_id="a", kind="output", result=result_of("a"))

    assert list(env.store.line_results("acme", missing)) == []


def test_given_an_extra_item_whose_condition_fails_when_written_then_the_line_result_is_not_stored(env):
    batch = new_batch(env.store)
    guard = {"Update": {"TableName": TABLE, "Key": {"pk": {"S": "X"}, "sk": {"S": "Y"}},
                        "UpdateExpression": "SET v = :v", "ConditionExpression": "attribute_exists(pk)",
                        "ExpressionAttributeValues": {":v": {"S": "v"}},
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}}

    with pytest.raises(LineResultConflict) as raised:
        env.store.write_line_result("acme", batch.id, line=1, custom_id="a", kind="output", result=result_of("a"),
                                    extra_items=[guard])

    assert raised.value.index == 0
    assert list(env.store.line_results("acme", batch.id)) == []
    assert env.store.get("acme", batch.id).request_counts.completed == 0


class ConflictingClient:
    """DynamoDB that cancels the first `conflicts` transactions as concurrent writers of one item would."""

    def __init__(self, client: Any, conflicts: int) -> None:
        self._client = client
        self.conflicts = conflicts

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def transact_write_items(self, **kwargs: Any) -> Any:
        from botocore.exceptions import ClientError

        if self.conflicts:
            self.conflicts -= 1
            reasons = [{"Code": "None"}, {"Code": "TransactionConflict", "Message": "conflict"}]
            raise ClientError({"Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                               "CancellationReasons": reasons}, "TransactWriteItems")
        return self._client.transact_write_items(**kwargs)


def test_given_concurrent_writers_of_the_batch_record_when_a_line_is_written_then_it_retries_until_stored(env):
    batch = new_batch(env.store)
    store = BatchStore(TABLE, ConflictingClient(env.client, conflicts=2), clock=env.clock, sleep=env.sleeps.append)

    assert store.write_line_result("acme", batch.id, line=1, custom_id="a", kind="output", result=result_of("a"))

    assert len(env.sleeps) == 2 and env.store.get("acme", batch.id).request_counts.completed == 1


def test_given_a_line_result_when_written_then_the_tables_ttl_removes_it_a_week_later(env):
    # Given a batch, When a line's result is written
    batch = new_batch(env.store)
    env.store.write_line_result("acme", batch.id, line=1, custom_id="a", kind="output", result=result_of("a"))
    # Then the result carries the jobs table's TTL attribute a week out (finalize needs it for hours, not forever),
    # while the batch record itself never does
    key = {"pk": {"S": f"BATCH#acme#{batch.id}"}, "sk": {"S": "LINE#0000001"}}
    item = env.client.get_item(TableName=TABLE, Key=key)["Item"]
    assert item["expires_at"] == {"N": str(1_767_225_600 + 7 * 86_400)}
    assert "expires_at" not in raw_item(env, "acme", batch.id)


class CountingClient:
    """The moto client, counting TransactWriteItems calls (a fake around the real one, no global patch)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.transactions = 0

    def transact_write_items(self, **kwargs: Any) -> Any:
        self.transactions += 1
        return self._client.transact_write_items(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_given_250_invalid_lines_when_their_errors_are_written_then_three_transactions_store_and_count_each(env):
    counting = CountingClient(env.client)
    store = BatchStore(TABLE, counting, clock=env.clock, sleep=env.sleeps.append)
    batch = new_batch(store)
    errors = [(line, f"c{line}", result_of(f"c{line}")) for line in range(1, 251)]

    written = store.write_error_results("acme", batch.id, errors)

    assert written == 250
    assert counting.transactions == 3  # 99 + 99 + 52 lines, each with one ADD to the count
    assert store.get("acme", batch.id).request_counts.failed == 250
    results = list(store.line_results("acme", batch.id))
    assert [(r.line, r.custom_id, r.kind) for r in results] == [(n, f"c{n}", "error") for n in range(1, 251)]


def test_given_some_lines_written_by_an_earlier_attempt_when_written_again_then_each_line_counts_once(env):
    batch = new_batch(env.store)
    errors = [(line, f"c{line}", result_of(f"c{line}")) for line in range(1, 151)]
    env.store.write_error_results("acme", batch.id, errors[:120])  # the attempt that died after 120 lines

    written = env.store.write_error_results("acme", batch.id, errors)  # the redelivered message

    assert written == 30
    assert env.store.get("acme", batch.id).request_counts.failed == 150
    assert len(list(env.store.line_results("acme", batch.id))) == 150


def test_given_a_missing_batch_when_error_results_are_written_then_nothing_is_stored(env):
    missing = time_ordered_id("batch_")

    with pytest.raises(BatchNotFoundError):
        env.store.write_error_results("acme", missing, [(1, "a", result_of("a")), (2, "b", result_of("b"))])

    assert list(env.store.line_results("acme", missing)) == []


def test_given_error_results_of_300_kb_when_written_then_transactions_stay_far_below_4_mb(env):
    # Given results too large for 99 to share one transaction (DynamoDB refuses more than 4 MB; moto does not)
    counting = CountingClient(env.client)
    store = BatchStore(TABLE, counting, clock=env.clock, sleep=env.sleeps.append)
    batch = new_batch(store)
    big = {"id": "batch_req_x", "custom_id": "c", "response": None, "error": {"code": "x", "message": "m" * 300_000}}
    errors = [(line, f"c{line}", big) for line in range(1, 11)]

    # When they are written
    written = store.write_error_results("acme", batch.id, errors)

    # Then each transaction carries at most ~1.5 MB of results, and every line is counted once
    assert written == 10 and counting.transactions == 3  # 4 + 4 + 2 results of 300 KB
    assert store.get("acme", batch.id).request_counts.failed == 10
