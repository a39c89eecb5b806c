"""IAM coverage: each function's role grants exactly the AWS actions its code calls.

AWS adapters declare `aws_service: ClassVar[str]` (the IAM prefix) and call AWS only as
`self._client.<operation>(...)` or through `self._client.get_paginator("<operation>")`,
so the actions are derived from the source with `ast`: `put_item` -> `dynamodb:PutItem`.
A function may use only some methods of an adapter (`module:Class[method, ...]`): then
only the actions reachable from those methods (following `self.<method>` calls) count.
Actions no API call names are stated explicitly: those an operation implies
(`IMPLIED_ACTIONS`, e.g. passing the scheduler role) and those Lambda itself uses for
the function (`PLATFORM_ACTIONS`: event source mappings, KMS for the encrypted topic).
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

#: The AWS adapters each function's handler wires: "module:Class" (every method) or
#: "module:Class[m1, m2]" (only the methods the function's code calls).
FUNCTION_ADAPTERS: dict[str, list[str]] = {
    "items": [
        # The API never scans the whole table (`list_all` serves the reconcile CLI).
        "serverless_scheduler_items.dynamodb_repository:DynamoDBJobRepository"
        "[create, get, list, update, delete]",
        "serverless_scheduler_common.runtime.sns:SnsPublisher",
        # The API only reads run history; consumers write it.
        "serverless_scheduler_common.runtime.dynamodb:DynamoDBRunRepository[list]",
    ],
    "sync": [
        # sync.apply_changes: get, delete, upsert (reconcile is the one that lists).
        "serverless_scheduler_schedulers.eventbridge:EventBridgeScheduleBackend"
        "[get, delete, upsert]",
        "serverless_scheduler_schedulers.streams:SqsDeadLetterSink",
        # Removal notices for the plugins (`JobRemoved`).
        "serverless_scheduler_common.runtime.sns:SnsPublisher[publish_removed]",
    ],
    "reconcile": [
        "serverless_scheduler_schedulers.eventbridge:EventBridgeScheduleBackend"
        "[list, upsert, delete]",
        "serverless_scheduler_schedulers.dynamodb_jobs:DynamoDBJobSnapshots",
        # An orphan schedule's job is announced to its plugin before the schedule goes.
        "serverless_scheduler_common.runtime.sns:SnsPublisher[publish_removed]",
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

#: Actions an operation needs besides its own: CreateSchedule/UpdateSchedule hand the
#: scheduler role to EventBridge Scheduler as the target's RoleArn.
IMPLIED_ACTIONS: dict[str, set[str]] = {
    "scheduler:CreateSchedule": {"iam:PassRole"},
    "scheduler:UpdateSchedule": {"iam:PassRole"},
}

_SQS_EVENT_SOURCE = {
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:ChangeMessageVisibility",
}

#: Actions Lambda performs with the function's role, not the function's code.
PLATFORM_ACTIONS: dict[str, set[str]] = {
    # sns:Publish to the KMS-encrypted distribution topic needs a data key.
    "items": {"kms:GenerateDataKey", "kms:Decrypt"},
    # The event source mapping reads the jobs table's stream; removal notices go to the
    # KMS-encrypted topic.
    "sync": {
        "kms:GenerateDataKey",
        "kms:Decrypt",
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
        "dynamodb:ListStreams",
    },
    # Removal notices go to the KMS-encrypted topic.
    "reconcile": {"kms:GenerateDataKey", "kms:Decrypt"},
    # The event source mapping polls the plugin's queue.
    "html_checker": set(_SQS_EVENT_SOURCE),
    "webhook": set(_SQS_EVENT_SOURCE),
}

FUNCTION_ADDRESSES = {
    "items": "module.platform.module.items.module.function",
    "sync": "module.platform.module.schedulers.module.sync",
    "reconcile": "module.platform.module.schedulers.module.reconcile",
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


def _reachable_methods(tree: ast.ClassDef, roots: set[str]) -> list[ast.FunctionDef]:
    """`roots` and every method they reach through `self.<method>`, plus `__init__`."""
    methods = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    unknown = roots - set(methods)
    assert not unknown, f"{tree.name} has no method(s) {sorted(unknown)}"
    todo, seen = [*roots, "__init__"], set()
    while todo:
        name = todo.pop()
        if name in seen or name not in methods:
            continue
        seen.add(name)
        for node in ast.walk(methods[name]):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "self"
                and node.attr in methods
            ):
                todo.append(node.attr)
    return [methods[n] for n in sorted(seen)]


def adapter_actions(tree: ast.ClassDef, methods: set[str] | None = None) -> set[str] | None:
    """The IAM actions a class calls, or None when it is not an AWS adapter.

    With `methods`, only the calls reachable from those methods count.
    """
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
    scopes: list[ast.AST] = [tree] if methods is None else _reachable_methods(tree, methods)
    for node in (n for scope in scopes for n in ast.walk(scope)):
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


def _adapter_classes() -> dict[str, ast.ClassDef]:
    """Every AWS adapter class in the workspace: "module:Class" -> its AST."""
    found: dict[str, ast.ClassDef] = {}
    for root in SOURCE_ROOTS:
        for path in root.rglob("*.py"):
            module = ".".join(path.relative_to(root).with_suffix("").parts)
            module = module.removesuffix(".__init__")
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.ClassDef) and adapter_actions(node) is not None:
                    found[f"{module}:{node.name}"] = node
    return found


def discover_adapters() -> dict[str, set[str]]:
    """Every AWS adapter class in the workspace: "module:Class" -> IAM actions."""
    return {name: adapter_actions(cls) or set() for name, cls in _adapter_classes().items()}


def split_entry(entry: str) -> tuple[str, set[str] | None]:
    """ "mod:Class[a, b]" -> ("mod:Class", {"a", "b"}); "mod:Class" -> ("mod:Class", None)."""
    if not entry.endswith("]"):
        return entry, None
    name, _, methods = entry[:-1].partition("[")
    return name, {m.strip() for m in methods.split(",") if m.strip()}


def needed_actions(function: str, classes: dict[str, ast.ClassDef]) -> set[str]:
    """What `function`'s code calls, with the actions those calls imply."""
    needed: set[str] = set()
    for entry in FUNCTION_ADAPTERS[function]:
        name, methods = split_entry(entry)
        needed |= adapter_actions(classes[name], methods) or set()
    for action in list(needed):
        needed |= IMPLIED_ACTIONS.get(action, set())
    return needed


@pytest.fixture(scope="module")
def adapters() -> dict[str, set[str]]:
    return discover_adapters()


@pytest.fixture(scope="module")
def adapter_classes() -> dict[str, ast.ClassDef]:
    return _adapter_classes()


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


def test_action_derivation_per_method_follows_self_calls() -> None:
    code = (
        "class DynamoDBThing:\n"
        "    aws_service: ClassVar[str] = 'dynamodb'\n"
        "    def __init__(self, client):\n"
        "        self._client = client\n"
        "    def read(self):\n"
        "        return self._load()\n"
        "    def _load(self):\n"
        "        return self._client.get_item(Key={})\n"
        "    def write(self):\n"
        "        self._client.put_item(Item={})\n"
    )
    cls = ast.parse(code).body[0]
    assert isinstance(cls, ast.ClassDef)
    assert adapter_actions(cls, {"read"}) == {"dynamodb:GetItem"}
    assert adapter_actions(cls, {"write"}) == {"dynamodb:PutItem"}
    with pytest.raises(AssertionError, match="no method"):
        adapter_actions(cls, {"missing"})
    assert split_entry("m:C[a, b]") == ("m:C", {"a", "b"})
    assert split_entry("m:C") == ("m:C", None)


def test_every_aws_adapter_is_wired_or_explained(adapters: dict[str, set[str]]) -> None:
    assert adapters, "no AWS adapter found: is `aws_service` still the convention?"
    wired = {split_entry(a)[0] for names in FUNCTION_ADAPTERS.values() for a in names}
    unexplained = sorted(set(adapters) - wired - NOT_IN_LAMBDA)
    assert not unexplained, f"adapters no function claims: {unexplained}"
    stale = sorted((wired | NOT_IN_LAMBDA) - set(adapters))
    assert not stale, f"listed adapters that no longer exist: {stale}"


@pytest.mark.parametrize("name", sorted(FUNCTION_ADAPTERS))
def test_role_grants_every_action_its_adapters_call(
    name: str, adapter_classes: dict[str, ast.ClassDef], tree: Any
) -> None:
    needed = needed_actions(name, adapter_classes) | PLATFORM_ACTIONS[name]
    assert needed, f"{name}: no AWS action derived"
    instances = {(i.deployment, i.address): i for i in tree.lambda_instances()}
    for env in ("dev", "prod"):
        granted = instances[(env, FUNCTION_ADDRESSES[name])].actions
        missing = sorted(needed - granted)
        assert not missing, f"{env}/{name}: role lacks {missing}"


@pytest.mark.parametrize("name", sorted(FUNCTION_ADAPTERS))
def test_role_grants_nothing_its_code_does_not_call(
    name: str, adapter_classes: dict[str, ast.ClassDef], tree: Any
) -> None:
    allowed = needed_actions(name, adapter_classes) | PLATFORM_ACTIONS[name]
    instances = {(i.deployment, i.address): i for i in tree.lambda_instances()}
    for env in ("dev", "prod"):
        granted = instances[(env, FUNCTION_ADDRESSES[name])].actions
        extra = sorted(granted - allowed)
        assert not extra, f"{env}/{name}: role grants {extra}, which no reachable code calls"


def test_scheduler_writes_imply_passing_the_role(adapter_classes: dict[str, ast.ClassDef]) -> None:
    for name in ("sync", "reconcile"):
        needed = needed_actions(name, adapter_classes)
        assert {"scheduler:CreateSchedule", "iam:PassRole"} <= needed, name
    assert "scheduler:ListSchedules" not in needed_actions("sync", adapter_classes)
    assert "dynamodb:Scan" in needed_actions("reconcile", adapter_classes)
    items = needed_actions("items", adapter_classes)
    assert "dynamodb:Scan" not in items and "dynamodb:PutItem" in items


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
