"""SQS event source mappings as Lambda runs them: long-poll, batch, partial batch responses.

A failed batch (or failed items, with ReportBatchItemFailures) is not deleted: the messages come
back after the queue's visibility timeout, and moto moves them to the DLQ after maxReceiveCount.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from local_cloud.deploy import Deployment
from local_cloud.functions import FunctionPool, InvocationError
from local_cloud.template import referenced_ids


@dataclass
class Mapping:
    queue_url: str
    queue_arn: str
    function: str  # logical id
    batch_size: int
    window_s: int
    report_failures: bool


def sqs_mappings(deployment: Deployment) -> list[Mapping]:
    template, resolve = deployment.template, deployment.resolver()
    mappings = []
    for _, resource in template.of_type("AWS::Lambda::EventSourceMapping"):
        props = resource["Properties"]
        queue_id = next((i for i in referenced_ids(props.get("EventSourceArn"))
                         if template.type_of(i) == "AWS::SQS::Queue"), None)
        if queue_id is None:
            continue
        function_id = None
        for logical_id in referenced_ids(props.get("FunctionName")):
            kind = template.type_of(logical_id)
            if kind == "AWS::Lambda::Function":
                function_id = logical_id
            elif kind == "AWS::Lambda::Alias":
                function_id = deployment.alias_target.get(logical_id)
        if function_id is None:
            continue
        mappings.append(Mapping(
            queue_url=deployment.ref(queue_id),
            queue_arn=str(resolve(props["EventSourceArn"])),
            function=function_id,
            batch_size=int(props.get("BatchSize", 10)),
            window_s=int(props.get("MaximumBatchingWindowInSeconds", 0)),
            report_failures="ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
        ))
    return mappings


class SqsPoller(threading.Thread):
    def __init__(self, mapping: Mapping, pool: FunctionPool, sqs: Any, region: str) -> None:
        super().__init__(name=f"poller-{mapping.function}", daemon=True)
        self.mapping, self.pool, self.sqs, self.region = mapping, pool, sqs, region
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.poll_once()
            except Exception:  # keep polling as Lambda does; the failure shows in the function's log
                time.sleep(1)

    def poll_once(self) -> int:
        messages = self.sqs.receive_message(
            QueueUrl=self.mapping.queue_url,
            MaxNumberOfMessages=min(self.mapping.batch_size, 10),
            WaitTimeSeconds=1,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        event = {"Records": [self._record(m) for m in messages]}
        try:
            result = self.pool.invoke(event)
        except InvocationError:
            return len(messages)  # the whole batch returns after the visibility timeout
        failed: set[str] = set()
        if self.mapping.report_failures and isinstance(result, dict):
            failed = {f.get("itemIdentifier") for f in result.get("batchItemFailures") or []}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.mapping.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        return len(messages)

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": {
                k: {"stringValue": v.get("StringValue"), "dataType": v.get("DataType")}
                for k, v in (message.get("MessageAttributes") or {}).items()
            },
            "md5OfBody": message.get("MD5OfBody"),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.mapping.queue_arn,
            "awsRegion": self.region,
        }
