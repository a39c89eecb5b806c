"""IAM coverage: each function's role grants every AWS action its adapters call.

AWS adapters declare `aws_service: ClassVar[str]` (the IAM prefix) and call AWS only as
`self._client.<operation>(...)` or through `self._client.get_paginator("<operation>")`,
so the actions are derived from the source with `ast`: `put_item` -> `dynamodb:PutItem`.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.terraform

ROOT = Path(__file__).resolve().parents[2]
SOURCE_ROOTS = [ROOT / "common" / "src", ROOT / "items" / "src", ROOT / "schedulers" / "src"] + [
    p / "src" for p in sorted((ROOT / "plugins").iterdir()) if (p / "src").is_dir()
]

_COMMON_RUNTIME = [
    "serverless_scheduler_common.runtime.dynamodb:DynamoDBRunRepository",
    "serverless_scheduler_common.runtime.dynamodb:DynamoDBFireLedger",
    "serverless_scheduler_common.runtime.dynamodb:DynamoDBJobControl",
    "serverless_scheduler_common.runtime.sqs:SqsDeadLetterStore",
]

#: The AWS adapters each function's handler wires (module:Class).
FUNCTION_ADAPTERS: dict[str, list[str]] = {
    "items": [
        "serverless_scheduler_items.dynamodb_repository:DynamoDBJobRepository",
        "serverless_scheduler_common.runtime.sns:SnsPublisher",
        "serverless_scheduler_common.runtime.dynamodb:DynamoDBRunRepository",
    ],
    "sync": [
        "serverless_scheduler_schedulers.eventbridge:EventBridgeScheduleBackend",
        "serverless_scheduler_schedulers.streams:SqsDeadLetterSink",
    ],
    "reconcile": [
        "serverless_scheduler_schedulers.eventbridge:EventBridgeScheduleBackend",
        "serverless_scheduler_schedulers.dynamodb_jobs:DynamoDBJobSnapshots",
    ],
    "html_checker": [*_COMMON_RUNTIME, "serverless_scheduler_common.state:DynamoDBStateStore"],
    "webhook": list(_COMMON_RUNTIME),
}

#: AWS adapters no Lambda function wires, with the reason.
NOT_IN_LAMBDA: set[str] = set()

#: Operations whose IAM action is named differently from the API operation.
IAM_ALIASES = {
    "sns:PublishBatch": "sns:Publish",
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    "s3:ListObjectsV2": "s3:ListBucket",
    "s3:HeadObject": "s3:GetObject",
    "s3:DeleteObjects": "s3:DeleteObject",
}

FUNCTION_ADDRESSES = {
    "items": "module.items.module.function",
    "sync": "module.schedulers.module.sync",
    "reconcile": "module.schedulers.module.reconcile",
    "html_checker": "module.html_checker.module.consumer.module.function",
    "webhook": "module.webhook.module.consumer.module.function",
}


def _pascal(operation: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in operation.split("_"))


def _is_self_client(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "_client"
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
    )


def adapter_actions(tree: ast.ClassDef) -> set[str] | None:
    """The IAM actions a class calls, or None when it is not an AWS adapter."""
    service = None
    for stmt in tree.body:
        if (
            isinstance(stmt, ast.AnnAssign)
            and isinstance(stmt.target, ast.Name)
            and stmt.target.id == "aws_service"
            and isinstance(stmt.value, ast.Constant)
        ):
            service = str(stmt.value.value)
    if service is None:
        return None
    actions: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        if not _is_self_client(node.func.value):
            continue
        if node.func.attr == "get_paginator":
            arg = node.args[0]
            assert isinstance(arg, ast.Constant), "get_paginator needs a literal operation"
            operation = str(arg.value)
        else:
            operation = node.func.attr
        action = f"{service}:{_pascal(operation)}"
        actions.add(IAM_ALIASES.get(action, action))
    return actions


def discover_adapters() -> dict[str, set[str]]:
    """Every AWS adapter class in the workspace: "module:Class" -> IAM actions."""
    found: dict[str, set[str]] = {}
    for root in SOURCE_ROOTS:
        for path in root.rglob("*.py"):
            module = ".".join(path.relative_to(root).with_suffix("").parts)
            module = module.removesuffix(".__init__")
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.ClassDef):
                    actions = adapter_actions(node)
                    if actions is not None:
                        found[f"{module}:{node.name}"] = actions
    return found


@pytest.fixture(scope="module")
def adapters() -> dict[str, set[str]]:
    return discover_adapters()


def test_action_derivation_follows_the_naming_rules() -> None:
    code = (
        "class DynamoDBThing:\n"
        "    aws_service: ClassVar[str] = 'dynamodb'\n"
        "    def go(self):\n"
        "        self._client.batch_write_item(RequestItems={})\n"
        "        self._retry(lambda: self._client.put_item(Item={}))\n"
        "        self._client.get_paginator('query').paginate()\n"
        "        self._client.exceptions.ConditionalCheckFailedException\n"
        "        other.delete_item()\n"
    )
    cls = ast.parse(code).body[0]
    assert isinstance(cls, ast.ClassDef)
    assert adapter_actions(cls) == {"dynamodb:BatchWriteItem", "dynamodb:PutItem", "dynamodb:Query"}


def test_every_aws_adapter_is_wired_or_explained(adapters: dict[str, set[str]]) -> None:
    assert adapters, "no AWS adapter found: is `aws_service` still the convention?"
    wired = {a for names in FUNCTION_ADAPTERS.values() for a in names}
    unexplained = sorted(set(adapters) - wired - NOT_IN_LAMBDA)
    assert not unexplained, f"adapters no function claims: {unexplained}"
    stale = sorted((wired | NOT_IN_LAMBDA) - set(adapters))
    assert not stale, f"listed adapters that no longer exist: {stale}"


@pytest.mark.parametrize("name", sorted(FUNCTION_ADAPTERS))
def test_role_grants_every_action_its_adapters_call(
    name: str, adapters: dict[str, set[str]], tree: Any
) -> None:
    needed = set().union(*(adapters[a] for a in FUNCTION_ADAPTERS[name] if a in adapters))
    assert needed, f"{name}: no AWS action derived"
    instances = {(i.deployment, i.address): i for i in tree.lambda_instances()}
    for env in ("dev", "prod"):
        granted = instances[(env, FUNCTION_ADDRESSES[name])].actions
        missing = sorted(needed - granted)
        assert not missing, f"{env}/{name}: role lacks {missing}"


def test_no_statement_grants_wildcard_actions(tree: Any) -> None:
    instances = tree.lambda_instances()
    assert len(instances) == 2 * len(FUNCTION_ADDRESSES)
    for inst in instances:
        assert inst.actions, inst.address
        wild = sorted(a for a in inst.actions if a == "*" or a.endswith(":*"))
        assert not wild, f"{inst.deployment}/{inst.address} grants {wild}"
    for path in (ROOT / "terraform").rglob("*.tf"):
        text = path.read_text()
        assert '"*:*"' not in text and 'actions   = ["*"]' not in text, path
