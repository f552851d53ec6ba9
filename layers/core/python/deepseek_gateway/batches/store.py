"""Batch records and their line results in the jobs table, always under the caller's tenant.

    pk = TENANT#<tenant>               sk = BATCH#<batch_id>   the Batch object's fields; `window_expires_at`
                                                              for OpenAI's `expires_at` (the table's TTL
                                                              attribute is `expires_at`: never set here)
    pk = BATCH#<tenant>#<batch_id>     sk = LINE#<line:07d>    custom_id, kind, result (JSON text), line

A line result is written once, in one transaction with the ADD to the batch's `completed` or `failed`
count (and whatever the caller adds: the billing of an answered line). The line result's
`attribute_not_exists` condition guards the whole transaction, so a repeated write bills and counts
nothing. Batch ids are time-ordered (`deepseek_gateway.ids`): listing newest first is one Query.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from deepseek_gateway.auth.principal import Principal
from deepseek_gateway.batches.errors import BatchNotFoundError
from deepseek_gateway.batches.models import (
    BATCH_ID,
    MAX_LIST_LIMIT,
    TERMINAL_STATUSES,
    Batch,
    BatchError,
    BatchErrors,
    BatchPage,
    LineKind,
    LineResult,
    RequestCounts,
)
from deepseek_gateway.dynamo_types import condition_failed
from deepseek_gateway.dynamo_types import deserialize as _deserialize
from deepseek_gateway.dynamo_types import serialize as _serialize
from deepseek_gateway.errors import ConflictError, InvalidRequestError
from deepseek_gateway.ids import time_ordered_id

# Timestamps stored as they are named in the Batch object.
_TIMESTAMPS = ("in_progress_at", "finalizing_at", "completed_at", "failed_at", "expired_at", "cancelling_at",
               "cancelled_at")
# Concurrent line results of one batch all ADD to the batch record; DynamoDB cancels transactions that
# touch an item another transaction is writing (`TransactionConflict`): those are retried here.
_CONFLICT_ATTEMPTS = 6
_TRANSACTION_ITEMS = 100  # DynamoDB's most items in one TransactWriteItems
_TRANSACTION_BYTES = 1024 * 1024  # a group closes past this much result text (DynamoDB takes 4 MB a transaction)
LINE_RESULT_TTL_S = 7 * 86_400


class LineResultConflict(Exception):
    """A condition of one of the caller's extra transaction items failed (not the line's own condition).

    `index` counts within `extra_items`; `item` is that item as the condition saw it (when returned).
    """

    def __init__(self, index: int, item: dict[str, Any] | None) -> None:
        super().__init__(f"condition of extra transaction item {index} failed")
        self.index = index
        self.item = item


def _cancellation_reasons(exc: Exception) -> list[dict[str, Any]]:
    return list(getattr(exc, "response", {}).get("CancellationReasons") or [])


class BatchStore:
    def __init__(self, table_name: str, dynamodb_client: Any, *, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._table = table_name
        self._db = dynamodb_client
        self._clock = clock
        self._sleep = sleep

    @property
    def table_name(self) -> str:
        return self._table

    @staticmethod
    def _key(tenant_id: str, batch_id: str) -> dict[str, Any]:
        return {"pk": {"S": f"TENANT#{tenant_id}"}, "sk": {"S": f"BATCH#{batch_id}"}}

    @staticmethod
    def _line_key(tenant_id: str, batch_id: str, line: int) -> dict[str, Any]:
        return {"pk": {"S": f"BATCH#{tenant_id}#{batch_id}"}, "sk": {"S": f"LINE#{line:07d}"}}

    # --- the batch record ---------------------------------------------------------------------

    def create(self, tenant_id: str, *, input_file_id: str, endpoint: str, completion_window: str,
               metadata: dict[str, str] | None, principal: Principal, window_s: int) -> Batch:
        """A new batch in `validating`, its window starting now; `principal` is kept for the workflow."""
        if principal.tenant_id != tenant_id:
            raise ValueError("a batch runs as a principal of its own tenant")
        now = self._clock()
        batch = Batch(id=time_ordered_id("batch_", now), endpoint=endpoint, input_file_id=input_file_id,
                      completion_window=completion_window, status="validating", created_at=int(now),
                      expires_at=int(now) + window_s, metadata=metadata)
        values: dict[str, Any] = {
            "id": batch.id, "endpoint": endpoint, "input_file_id": input_file_id,
            "completion_window": completion_window, "status": "validating", "created_at": batch.created_at,
            "window_expires_at": batch.expires_at, "total": 0, "completed": 0, "failed": 0,
            "principal": principal.model_dump_json(),
        }
        if metadata is not None:
            values["metadata"] = dict(metadata)
        item = {**self._key(tenant_id, batch.id), **{k: _serialize(v) for k, v in values.items()}}
        self._db.put_item(TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(pk)")
        return batch

    def _item(self, tenant_id: str, batch_id: str) -> dict[str, Any]:
        if not BATCH_ID.match(batch_id):
            raise BatchNotFoundError(batch_id)
        item = self._db.get_item(TableName=self._table, Key=self._key(tenant_id, batch_id),
                                 ConsistentRead=True).get("Item")
        if item is None:
            raise BatchNotFoundError(batch_id)
        return item

    @staticmethod
    def _batch(item: dict[str, Any]) -> Batch:
        plain = {k: _deserialize(v) for k, v in item.items()}
        fields = {k: plain[k] for k in Batch.model_fields if k in plain and k not in {"errors", "expires_at"}}
        fields["expires_at"] = plain.get("window_expires_at")
        fields["request_counts"] = RequestCounts(total=int(plain.get("total", 0)),
                                                 completed=int(plain.get("completed", 0)),
                                                 failed=int(plain.get("failed", 0)))
        if plain.get("errors"):
            fields["errors"] = BatchErrors.model_validate_json(plain["errors"])
        for name in ("created_at", "expires_at", *_TIMESTAMPS):
            if fields.get(name) is not None:
                fields[name] = int(fields[name])
        return Batch.model_validate(fields)

    def get(self, tenant_id: str, batch_id: str) -> Batch:
        """The batch; another tenant's batch is `BatchNotFoundError`, as a missing one is."""
        return self._batch(self._item(tenant_id, batch_id))

    def principal(self, tenant_id: str, batch_id: str) -> Principal:
        """Who submitted the batch: the workflow acts (policy, limits, usage) as that principal."""
        return Principal.model_validate_json(_deserialize(self._item(tenant_id, batch_id)["principal"]))

    def list(self, tenant_id: str, *, limit: int = 20, after: str | None = None) -> BatchPage:
        """A page of the tenant's batches, newest first (`after`: the last id of the previous page)."""
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidRequestError(f"`limit` must be between 1 and {MAX_LIST_LIMIT}.", param="limit")
        if after is not None and not BATCH_ID.match(after):
            raise InvalidRequestError("`after` must be a batch id from a previous page.", param="after")
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": f"TENANT#{tenant_id}"}, ":prefix": {"S": "BATCH#"}},
            "ScanIndexForward": False,
            "Limit": limit + 1,
        }
        if after:
            query["ExclusiveStartKey"] = self._key(tenant_id, after)
        batches: list[Batch] = []
        while len(batches) <= limit:
            page = self._db.query(**query)
            batches += [self._batch(item) for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        data = batches[:limit]
        return BatchPage(data=data, first_id=data[0].id if data else None, last_id=data[-1].id if data else None,
                         has_more=len(batches) > limit)

    def _transition(self, tenant_id: str, batch_id: str, allowed: Iterable[str], sets: dict[str, Any]) -> Batch | None:
        """SET `sets` if the status is one of `allowed`; the updated batch, or None when the status was not."""
        allowed = list(allowed)
        names = {"#status": "status", **{f"#a{i}": name for i, name in enumerate(sets)}}
        values = {**{f":a{i}": _serialize(value) for i, value in enumerate(sets.values())},
                  **{f":s{i}": {"S": status} for i, status in enumerate(allowed)}}
        try:
            item = self._db.update_item(
                TableName=self._table, Key=self._key(tenant_id, batch_id),
                UpdateExpression="SET " + ", ".join(f"#a{i} = :a{i}" for i in range(len(sets))),
                ConditionExpression="attribute_exists(pk) AND #status IN ({})".format(
                    ", ".join(f":s{i}" for i in range(len(allowed)))),
                ExpressionAttributeNames=names, ExpressionAttributeValues=values, ReturnValues="ALL_NEW",
            )["Attributes"]
        except Exception as exc:
            if not condition_failed(exc):
                raise
            return None
        return self._batch(item)

    def start(self, tenant_id: str, batch_id: str, *, total: int, execution_arn: str) -> Batch:
        """`validating → in_progress` with the line count and the workflow's execution.

        Repeated (a redelivered `batch.submitted`) it changes nothing. A batch cancelled while it was
        validating stays `cancelling` but gets its count and execution: the workflow then runs no line
        and its finalize moves it to `cancelled`. Any other status is a ConflictError.
        """
        now = int(self._clock())
        started = self._transition(tenant_id, batch_id, ["validating"], {
            "status": "in_progress", "in_progress_at": now, "total": total, "execution_arn": execution_arn})
        if started is not None:
            return started
        current = self.get(tenant_id, batch_id)
        if current.in_progress_at is not None:
            return current  # started before
        if current.status == "cancelling":
            return self._transition(tenant_id, batch_id, ["cancelling"], {
                "total": total, "execution_arn": execution_arn, "in_progress_at": now}) or self.get(tenant_id, batch_id)
        raise ConflictError(f"Batch {batch_id} cannot start: its status is `{current.status}`.", param="batch_id")

    def fail(self, tenant_id: str, batch_id: str, errors: list[BatchError]) -> Batch:
        """Any unfinished status → `failed` with `errors`; an already failed batch is returned unchanged."""
        failed = self._transition(
            tenant_id, batch_id, ["validating", "in_progress", "finalizing", "cancelling"],
            {"status": "failed", "failed_at": int(self._clock()),
             "errors": BatchErrors(data=errors).model_dump_json(exclude_none=True)})
        if failed is not None:
            return failed
        current = self.get(tenant_id, batch_id)
        if current.status == "failed":
            return current
        raise ConflictError(f"Batch {batch_id} cannot fail: its status is `{current.status}`.", param="batch_id")

    def request_cancel(self, tenant_id: str, batch_id: str) -> Batch:
        """`validating | in_progress → cancelling`; repeated, unchanged; a finishing or finished batch is a 400."""
        cancelling = self._transition(tenant_id, batch_id, ["validating", "in_progress"],
                                      {"status": "cancelling", "cancelling_at": int(self._clock())})
        if cancelling is not None:
            return cancelling
        current = self.get(tenant_id, batch_id)
        if current.status == "cancelling":
            return current
        raise InvalidRequestError(f"Cannot cancel a batch with status `{current.status}`.", param="batch_id",
                                  code="batch_not_cancellable")

    def begin_finalizing(self, tenant_id: str, batch_id: str) -> Batch:
        """`in_progress → finalizing`; any other status (a cancelling batch, a second run) is left as it is."""
        return (self._transition(tenant_id, batch_id, ["in_progress"],
                                 {"status": "finalizing", "finalizing_at": int(self._clock())})
                or self.get(tenant_id, batch_id))

    def claim_output_files(self, tenant_id: str, batch_id: str, output_file_id: str | None,
                           error_file_id: str | None) -> tuple[str | None, str | None]:
        """Store the output and error file ids once: the first writer wins, every caller gets the stored ids."""
        sets: dict[str, Any] = {"files_claimed": True}
        if output_file_id:
            sets["output_file_id"] = output_file_id
        if error_file_id:
            sets["error_file_id"] = error_file_id
        names = {f"#a{i}": name for i, name in enumerate(sets)}
        try:
            self._db.update_item(
                TableName=self._table, Key=self._key(tenant_id, batch_id),
                UpdateExpression="SET " + ", ".join(f"#a{i} = :a{i}" for i in range(len(sets))),
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(files_claimed)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={f":a{i}": _serialize(v) for i, v in enumerate(sets.values())},
            )
            return output_file_id, error_file_id
        except Exception as exc:
            if not condition_failed(exc):
                raise
        stored = self.get(tenant_id, batch_id)
        return stored.output_file_id, stored.error_file_id

    def finish(self, tenant_id: str, batch_id: str, *, expired: bool | None = None) -> Batch:
        """`finalizing → completed | expired`, `cancelling → cancelled`; a finished batch is returned unchanged.

        `expired` (the caller knows whether lines were lost to the window) defaults to whether the window
        has passed.
        """
        now = int(self._clock())
        current = self.get(tenant_id, batch_id)
        if current.status in TERMINAL_STATUSES:
            return current
        if current.status == "cancelling":
            target, source = "cancelled", "cancelling"
        elif current.status == "finalizing":
            if expired is None:
                expired = current.expires_at is not None and now > current.expires_at
            target, source = ("expired" if expired else "completed"), "finalizing"
        else:
            raise ConflictError(f"Batch {batch_id} cannot finish: its status is `{current.status}`.",
                                param="batch_id")
        finished = self._transition(tenant_id, batch_id, [source], {"status": target, f"{target}_at": now})
        return finished or self.finish(tenant_id, batch_id, expired=expired)  # changed meanwhile: decide again

    # --- line results -------------------------------------------------------------------------

    def line_result_items(self, tenant_id: str, batch_id: str, *, line: int, custom_id: str | None, kind: LineKind,
                          result: dict[str, Any]) -> list[dict[str, Any]]:
        """The two TransactItems of a line result: its conditional Put, and the ADD to the batch's count."""
        item = {**self._line_key(tenant_id, batch_id, line), "kind": {"S": kind}, "line": {"N": str(line)},
                "result": {"S": json.dumps(result, separators=(",", ":"), ensure_ascii=False)},
                # Needed only until finalize has written the output and error files (within the 24 h window):
                # the table's TTL removes it a week later.
                "expires_at": {"N": str(int(self._clock()) + LINE_RESULT_TTL_S)}}
        if custom_id is not None:
            item["custom_id"] = {"S": custom_id}
        return [
            {"Put": {"TableName": self._table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Update": {"TableName": self._table, "Key": self._key(tenant_id, batch_id),
                        "UpdateExpression": "ADD #count :one", "ConditionExpression": "attribute_exists(pk)",
                        "ExpressionAttributeNames": {"#count": "completed" if kind == "output" else "failed"},
                        "ExpressionAttributeValues": {":one": {"N": "1"}}}},
        ]

    def write_line_result(self, tenant_id: str, batch_id: str, *, line: int, custom_id: str | None, kind: LineKind,
                          result: dict[str, Any], extra_items: Iterable[dict[str, Any]] = ()) -> bool:
        """Write a line's result with its count and `extra_items` in one transaction; False if it had one already.

        A failed condition of an extra item raises LineResultConflict (the caller fixes it and writes again);
        a batch that does not exist raises BatchNotFoundError.
        """
        extra = list(extra_items)
        items = self.line_result_items(tenant_id, batch_id, line=line, custom_id=custom_id, kind=kind,
                                       result=result) + extra
        for attempt in range(_CONFLICT_ATTEMPTS):
            try:
                self._db.transact_write_items(TransactItems=items)
                return True
            except Exception as exc:
                if not condition_failed(exc):
                    raise
                reasons = _cancellation_reasons(exc)
                codes = [str(reason.get("Code") or "None") for reason in reasons]
                if not codes:  # no reasons (not DynamoDB's answer): was it the line's own condition?
                    if self._has_line_result(tenant_id, batch_id, line):
                        return False
                    raise
                if codes[0] == "ConditionalCheckFailed":
                    return False
                if len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
                    raise BatchNotFoundError(batch_id) from None
                for index, code in enumerate(codes[2:]):
                    if code == "ConditionalCheckFailed":
                        raise LineResultConflict(index, reasons[index + 2].get("Item")) from None
                if "TransactionConflict" not in codes or attempt == _CONFLICT_ATTEMPTS - 1:
                    raise
                self._sleep(random.uniform(0, 0.05 * 2**attempt))  # noqa: S311 - jitter, not a secret
        raise AssertionError("unreachable")

    def write_error_results(self, tenant_id: str, batch_id: str,
                            errors: Iterable[tuple[int, str | None, dict[str, Any]]]) -> int:
        """Error results of many lines, `(line, custom_id, result)`: up to 99 conditional Puts and one
        `ADD failed :n` per transaction, so 25,000 invalid lines are ~250 calls, not 25,000 in sequence (the
        ingestion function has 60 s). A line that has its result already (an earlier attempt wrote it) is
        left out and not counted again. Returns how many results this call wrote; BatchNotFoundError if the
        batch does not exist."""
        written, group, size = 0, [], 0
        for error in errors:
            group.append(error)
            size += len(json.dumps(error[2], ensure_ascii=False)) + len(error[1] or "")
            if len(group) == _TRANSACTION_ITEMS - 1 or size > _TRANSACTION_BYTES:
                written += self._write_error_group(tenant_id, batch_id, group)
                group, size = [], 0
        if group:
            written += self._write_error_group(tenant_id, batch_id, group)
        return written

    def _write_error_group(self, tenant_id: str, batch_id: str,
                           group: list[tuple[int, str | None, dict[str, Any]]]) -> int:
        conflicts = 0
        while group:
            puts = [self.line_result_items(tenant_id, batch_id, line=line, custom_id=custom_id, kind="error",
                                           result=result)[0] for line, custom_id, result in group]
            count = {"Update": {"TableName": self._table, "Key": self._key(tenant_id, batch_id),
                                "UpdateExpression": "ADD #count :n", "ConditionExpression": "attribute_exists(pk)",
                                "ExpressionAttributeNames": {"#count": "failed"},
                                "ExpressionAttributeValues": {":n": {"N": str(len(group))}}}}
            try:
                self._db.transact_write_items(TransactItems=[*puts, count])
                return len(group)
            except Exception as exc:
                if not condition_failed(exc):
                    raise
                codes = [str(reason.get("Code") or "None") for reason in _cancellation_reasons(exc)]
                if not codes:  # no reasons (not DynamoDB's answer): ask line by line
                    kept = [e for e in group if not self._has_line_result(tenant_id, batch_id, e[0])]
                    if len(kept) == len(group):
                        raise
                    group = kept
                    continue
                if codes[-1] == "ConditionalCheckFailed":
                    raise BatchNotFoundError(batch_id) from None
                written_before = {i for i, code in enumerate(codes[:-1]) if code == "ConditionalCheckFailed"}
                if written_before:
                    group = [e for i, e in enumerate(group) if i not in written_before]
                    continue
                conflicts += 1
                if "TransactionConflict" not in codes or conflicts == _CONFLICT_ATTEMPTS:
                    raise
                self._sleep(random.uniform(0, 0.05 * 2**conflicts))  # noqa: S311 - jitter, not a secret
        return 0

    def _has_line_result(self, tenant_id: str, batch_id: str, line: int) -> bool:
        return "Item" in self._db.get_item(TableName=self._table, Key=self._line_key(tenant_id, batch_id, line),
                                           ConsistentRead=True, ProjectionExpression="pk")

    def line_results(self, tenant_id: str, batch_id: str) -> Iterator[LineResult]:
        """Every line result of the batch, by line number."""
        query: dict[str, Any] = {
            "TableName": self._table, "ConsistentRead": True,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": f"BATCH#{tenant_id}#{batch_id}"}, ":prefix": {"S": "LINE#"}},
        }
        while True:
            page = self._db.query(**query)
            for item in page.get("Items", []):
                yield LineResult(line=int(item["line"]["N"]), custom_id=item.get("custom_id", {}).get("S"),
                                 kind=item["kind"]["S"], result=json.loads(item["result"]["S"]))
            if "LastEvaluatedKey" not in page:
                return
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
