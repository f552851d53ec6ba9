"""Tenants and API keys in the tenants table (single-table design, keys `pk` / `sk`).

    pk = TENANT#<id>   sk = TENANT          the tenant
    pk = TENANT#<id>   sk = KEY#<key id>    a key's listing entry (no digest)
    pk = KEY#<key id>  sk = KEY             the key itself, with its digest: one GetItem per authorization

Every method that touches a key takes the tenant id and checks it, so one tenant can never read,
list or revoke another's key: a mismatch looks exactly like a key that does not exist.
"""

from __future__ import annotations

import time
from typing import Any

from deepseek_gateway.auth import api_keys
from deepseek_gateway.dynamo_types import condition_failed
from deepseek_gateway.dynamo_types import deserialize as _deserialize
from deepseek_gateway.dynamo_types import serialize as _serialize
from deepseek_gateway.errors import ConflictError, NotFoundError, quoted_id
from deepseek_gateway.policy.models import TenantPolicy
from deepseek_gateway.tenancy.models import ApiKey, CreatedKey, KeyCreate, Limits, Tenant, TenantCreate, TenantUpdate


def _item(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _serialize(v) for k, v in values.items() if v is not None}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    """The record's fields, without the table's keys."""
    return {k: _deserialize(v) for k, v in item.items() if k not in {"pk", "sk"}}


class TenantNotFoundError(NotFoundError):
    def __init__(self, tenant_id: str) -> None:
        super().__init__(f"No tenant `{quoted_id(tenant_id)}`.", code="tenant_not_found")


class KeyNotFoundError(NotFoundError):
    def __init__(self, key_id: str) -> None:
        super().__init__(f"No API key `{quoted_id(key_id)}`.", code="key_not_found")


class TenantStore:
    def __init__(self, table_name: str, client: Any, clock: Any = time.time) -> None:
        self._table = table_name
        self._db = client
        self._clock = clock

    # --- tenants -------------------------------------------------------------------------------

    def create_tenant(self, data: TenantCreate) -> Tenant:
        now = int(self._clock())
        tenant = Tenant(**data.model_dump(), created_at=now, updated_at=now)
        try:
            self._db.put_item(
                TableName=self._table,
                Item=_item({"pk": f"TENANT#{tenant.tenant_id}", "sk": "TENANT", **tenant.model_dump(mode="json")}),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except Exception as exc:
            if condition_failed(exc):
                raise ConflictError(f"Tenant `{tenant.tenant_id}` already exists.", param="tenant_id") from None
            raise
        return tenant

    def get_tenant(self, tenant_id: str) -> Tenant | None:
        item = self._db.get_item(
            TableName=self._table, Key=_item({"pk": f"TENANT#{tenant_id}", "sk": "TENANT"}), ConsistentRead=True
        ).get("Item")
        return Tenant.model_validate(_plain(item)) if item else None

    def require_tenant(self, tenant_id: str) -> Tenant:
        tenant = self.get_tenant(tenant_id)
        if tenant is None:
            raise TenantNotFoundError(tenant_id)
        return tenant

    def list_tenants(self) -> list[Tenant]:
        tenants: list[Tenant] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "sk = :tenant",
            "ExpressionAttributeValues": {":tenant": {"S": "TENANT"}},
        }
        while True:
            page = self._db.scan(**kwargs)
            tenants.extend(Tenant.model_validate(_plain(i)) for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return sorted(tenants, key=lambda t: t.tenant_id)
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def update_tenant(self, tenant_id: str, changes: TenantUpdate) -> Tenant:
        current = self.require_tenant(tenant_id).model_dump()
        for field, value in changes.model_dump(exclude_unset=True).items():
            # limits and notifications merge field by field, so a PATCH of one limit keeps the others
            is_nested = isinstance(value, dict) and isinstance(current.get(field), dict)
            current[field] = {**current[field], **value} if is_nested else value
        tenant = Tenant.model_validate({**current, "updated_at": int(self._clock())})
        self._db.put_item(
            TableName=self._table,
            Item=_item({"pk": f"TENANT#{tenant_id}", "sk": "TENANT", **tenant.model_dump(mode="json")}),
            ConditionExpression="attribute_exists(pk)",
        )
        return tenant

    # --- policy --------------------------------------------------------------------------------

    def get_policy(self, tenant_id: str) -> TenantPolicy | None:
        item = self._db.get_item(
            TableName=self._table, Key=_item({"pk": f"TENANT#{tenant_id}", "sk": "POLICY"}), ConsistentRead=True
        ).get("Item")
        return TenantPolicy.model_validate_json(_plain(item)["policy"]) if item else None

    def put_policy(self, tenant_id: str, policy: TenantPolicy) -> TenantPolicy:
        """Stores a policy already validated by the policy engine (see the admin API)."""
        self.require_tenant(tenant_id)
        self._db.put_item(TableName=self._table, Item=_item({
            # As JSON text: settings hold floats, which DynamoDB's number type refuses.
            "pk": f"TENANT#{tenant_id}", "sk": "POLICY", "policy": policy.model_dump_json(),
            "updated_at": int(self._clock())}))
        return policy

    def delete_policy(self, tenant_id: str) -> None:
        self.require_tenant(tenant_id)
        self._db.delete_item(TableName=self._table, Key=_item({"pk": f"TENANT#{tenant_id}", "sk": "POLICY"}))

    def snapshot(self, tenant_id: str, key_id: str | None) -> tuple[Tenant | None, TenantPolicy | None, Limits | None]:
        """Tenant, policy and the key's own limits in one BatchGetItem: what the chat path caches."""
        wanted = ["TENANT", "POLICY"] + ([f"KEY#{key_id}"] if key_id else [])
        keys = [_item({"pk": f"TENANT#{tenant_id}", "sk": sk}) for sk in wanted]
        found = self._db.batch_get_item(RequestItems={self._table: {"Keys": keys, "ConsistentRead": True}})
        items = {(i["pk"]["S"], i["sk"]["S"]): i for i in found.get("Responses", {}).get(self._table, [])}
        tenant_item = items.get((f"TENANT#{tenant_id}", "TENANT"))
        policy_item = items.get((f"TENANT#{tenant_id}", "POLICY"))
        key_item = items.get((f"TENANT#{tenant_id}", f"KEY#{key_id}")) if key_id else None
        return (
            Tenant.model_validate(_plain(tenant_item)) if tenant_item else None,
            TenantPolicy.model_validate_json(_plain(policy_item)["policy"]) if policy_item else None,
            ApiKey.model_validate(_plain(key_item)).limits if key_item else None,
        )

    # --- keys ----------------------------------------------------------------------------------

    def create_key(self, tenant_id: str, data: KeyCreate) -> CreatedKey:
        new = api_keys.generate()
        record = ApiKey(
            key_id=new.key_id,
            tenant_id=tenant_id,
            name=data.name,
            scopes=data.scopes,
            created_at=int(self._clock()),
            expires_at=data.expires_at,
            limits=data.limits,
            prefix=new.secret[: len(api_keys.PREFIX) + 16],
        )
        fields = record.model_dump(mode="json")
        try:
            self._db.transact_write_items(TransactItems=[
                {"ConditionCheck": {"TableName": self._table,
                                    "Key": _item({"pk": f"TENANT#{tenant_id}", "sk": "TENANT"}),
                                    "ConditionExpression": "attribute_exists(pk)"}},
                {"Put": {"TableName": self._table,
                         "Item": _item({"pk": f"KEY#{new.key_id}", "sk": "KEY", **fields, "digest": new.digest}),
                         "ConditionExpression": "attribute_not_exists(pk)"}},
                {"Put": {"TableName": self._table,
                         "Item": _item({"pk": f"TENANT#{tenant_id}", "sk": f"KEY#{new.key_id}", **fields})}},
            ])
        except Exception as exc:
            if condition_failed(exc):
                raise TenantNotFoundError(tenant_id) from None
            raise
        return CreatedKey(**fields, key=new.secret)

    def list_keys(self, tenant_id: str) -> list[ApiKey]:
        page = self._db.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :key)",
            ExpressionAttributeValues={":pk": {"S": f"TENANT#{tenant_id}"}, ":key": {"S": "KEY#"}},
        )
        return [ApiKey.model_validate(_plain(i)) for i in page.get("Items", [])]  # listing entries: no digest

    def has_key(self, tenant_id: str, key_id: str) -> bool:
        item = self._db.get_item(TableName=self._table,
                                 Key=_item({"pk": f"TENANT#{tenant_id}", "sk": f"KEY#{key_id}"})).get("Item")
        return item is not None

    def revoke_key(self, tenant_id: str, key_id: str) -> ApiKey:
        now = int(self._clock())
        update = {"UpdateExpression": "SET revoked_at = if_not_exists(revoked_at, :now)",
                  "ExpressionAttributeValues": {":now": {"N": str(now)}, ":tenant": {"S": tenant_id}},
                  "ConditionExpression": "tenant_id = :tenant"}
        try:
            self._db.transact_write_items(TransactItems=[
                {"Update": {"TableName": self._table, "Key": _item({"pk": f"KEY#{key_id}", "sk": "KEY"}), **update}},
                {"Update": {"TableName": self._table,
                            "Key": _item({"pk": f"TENANT#{tenant_id}", "sk": f"KEY#{key_id}"}), **update}},
            ])
        except Exception as exc:
            if condition_failed(exc):
                raise KeyNotFoundError(key_id) from None
            raise
        return next(k for k in self.list_keys(tenant_id) if k.key_id == key_id)

    def key_for_authorization(self, key_id: str) -> dict[str, Any] | None:
        """The stored key with its digest; only the authorizer calls this."""
        item = self._db.get_item(
            TableName=self._table, Key=_item({"pk": f"KEY#{key_id}", "sk": "KEY"}), ConsistentRead=True
        ).get("Item")
        return _plain(item) if item else None
