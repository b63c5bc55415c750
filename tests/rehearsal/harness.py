"""The synthesized stack stood up in moto server and its workflow run by moto's Step Functions interpreter.

Nothing between two steps is written here: the definition is the template's, resolved for one deployment (no state
rewritten); each Lambda task runs the project's real handler from the function's own bundle, as the CDK app builds
it, on the Lambda runtime's Python with only the runtime's boto3 beside it (tests/rehearsal/lambda_runtime.py), with
its template environment, on the event the interpreter built; SageMaker tasks go through sagemaker_task; the
Greengrass control plane is the REST stand-in of tests/lambdas.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from infra.functions import python_functions
from tests.infra.template_values import Deployment
from tests.rehearsal.asl_semantics import moto_number_literals
from tests.rehearsal.lambda_runtime import RuntimeFunction

ACCOUNT, REGION = "123456789012", "us-east-1"
# the workflow's task states, each with a Catch into Notify (test_stack checks the definition has exactly these)
TASK_STATES = (
    "ValidateInput",
    "CreateLabelingJob",
    "PrepareTrainingData",
    "PrepareCalibration",
    "CreateTrainingJob",
    "ConvertModel",
    "ScoreModel",
    "PublishModelComponent",
    "RegisterModel",
)
NOTICES = ("NotifyRejected", "NotifyAwaitingApproval")  # the gate's outcomes, said on the topic
PROMOTION_TASKS = (
    "PlanPromotion",
    "DeployToCanary",
    "CheckCanary",
    "RollBackCanary",
    "RejectVersion",
    "DeployToFleet",
    "RecordPromotion",
    "NotifyRolledBack",
    "NotifyPromoted",
)
BUCKETS = {"StorageData": "od-data", "StorageArtifacts": "od-artifacts", "StorageAccessLogs": "od-logs"}


@dataclass
class Invocation:
    function: str
    event: dict
    result: Any = None
    error: str | None = None
    message: str | None = None


@dataclass
class Run:
    status: str
    described: dict
    entered: list[str]
    events: list[dict]
    output: dict = field(default_factory=dict)

    def failed_state_event(self) -> dict | None:
        return next((e for e in reversed(self.events) if e["type"] in ("TaskFailed", "ExecutionFailed")), None)


class Rehearsal:
    def __init__(self, stack: Any, template: dict, workdir: Path, bundles: dict[str, Path]) -> None:
        self.stack, self.template, self.workdir, self.bundles = stack, template, workdir, bundles
        names = {
            logical: name
            for logical in template["Resources"]
            for prefix, name in BUCKETS.items()
            if logical.startswith(prefix) and template["Resources"][logical]["Type"] == "AWS::S3::Bucket"
        }
        self.functions: dict[str, str] = {}  # physical name -> construct id
        for made in python_functions(stack):
            construct_id, function = made.node.id, made.function
            logical = stack.get_logical_id(function.node.default_child)
            names[logical] = construct_id
            self.functions[construct_id] = logical
        for logical, resource in template["Resources"].items():
            if resource["Type"] == "AWS::SNS::Topic":
                names[logical] = "od-notifications"
            if resource["Type"] == "AWS::StepFunctions::StateMachine":
                names[logical] = next(
                    (f"od-{c.lower()}" for c in ("Ingestion", "Promotion") if logical.startswith(c)), "od-pipeline"
                )
        self.deployment = Deployment(template, region=REGION, account=ACCOUNT, names=names)
        self.runtimes: dict[str, RuntimeFunction] = {}  # started on first invocation, after deploy()
        self.invocations: list[Invocation] = []
        self.lock = threading.Lock()
        self._region = {"AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION}

    # -- the Lambdas: each from its bundle on the runtime's Python ----------------------------------------------
    def invoke(self, backend: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: dict):
        """moto's Lambda invoke, answered by the function's real handler."""
        function = backend.get_function(function_name, qualifier)
        name = function.function_name
        call = Invocation(name, json.loads(body) if body else {})
        self.invocations.append(call)
        context = {
            "function_name": name,
            "invoked_function_arn": function.function_arn,
            "timeout_s": float(function.timeout),
            "memory_mb": int(function.memory_size),
        }
        with self.lock:
            answer = self._runtime(name, function.environment_vars).invoke(call.event, context)
        if "result" not in answer:  # Lambda's runtime reports an unhandled error like this
            call.error, call.message = answer["errorType"], answer["errorMessage"]
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({k: answer[k] for k in ("errorMessage", "errorType", "stackTrace")}).encode()
        call.result = answer["result"]
        return json.dumps(call.result).encode()

    def _runtime(self, name: str, variables: dict[str, str]) -> RuntimeFunction:
        if name in self.runtimes and self.runtimes[name].variables != {**variables, **self._region}:
            self.runtimes.pop(name).close()  # its configuration was updated: Lambda starts new environments
        if name not in self.runtimes:
            log = self.workdir / "runtime-logs" / f"{name}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            environment = {**variables, **self._region}
            self.runtimes[name] = RuntimeFunction(name, self.bundles[name], environment, log)
        return self.runtimes[name]

    def close(self) -> None:
        for runtime in list(self.runtimes.values()):
            runtime.close()

    def route_lambda(self, monkeypatch) -> None:
        from moto.awslambda_simple.models import LambdaSimpleBackend

        rehearsal = self

        def invoke(backend, function_name, qualifier, body, headers, response_headers):
            return rehearsal.invoke(backend, function_name, qualifier, body, headers, response_headers)

        monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke)

    # -- the stack's resources in moto --------------------------------------------------------------------------
    def deploy(self) -> str:
        s3 = boto3.client("s3")
        for name in BUCKETS.values():
            s3.create_bucket(Bucket=name)
        role = boto3.client("iam").create_role(RoleName="od-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        client = boto3.client("lambda")
        for construct_id, logical in self.functions.items():
            props = self.template["Resources"][logical]["Properties"]
            client.create_function(
                FunctionName=construct_id,
                Runtime=props["Runtime"],
                Role=role,
                Handler=props["Handler"],
                Code={"ZipFile": b"PK\x05\x06" + b"\0" * 18},  # the code runs from the bundle layout above
                Timeout=props["Timeout"],
                MemorySize=props["MemorySize"],
                Environment={"Variables": self.deployment.resolve(props["Environment"]["Variables"])},
            )
        sqs = boto3.client("sqs")
        self.queue_url = sqs.create_queue(QueueName="od-notifications")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]
        topic = boto3.client("sns").create_topic(Name="od-notifications")["TopicArn"]
        boto3.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn["QueueArn"])
        self.machines = {}
        (group,) = self.deployment.resources("AWS::SageMaker::ModelPackageGroup").values()
        boto3.client("sagemaker").create_model_package_group(**group["Properties"])
        self.model_package_group = group["Properties"]["ModelPackageGroupName"]
        for construct, name in (
            ("Pipeline", "od-pipeline"),
            ("Ingestion", "od-ingestion"),
            ("Promotion", "od-promotion"),
        ):
            definition = json.dumps(self.deployment.state_machine_definition(construct))
            self.machines[construct] = boto3.client("stepfunctions").create_state_machine(
                name=name, definition=moto_number_literals(definition), roleArn=role
            )["stateMachineArn"]
        self.machine = self.machines["Pipeline"]
        return self.machine

    def configure(self, function: str, **settings: str) -> None:
        """A stack update that changes one function's settings (what a cdk.json change and cdk deploy do)."""
        client = boto3.client("lambda")
        variables = client.get_function_configuration(FunctionName=function)["Environment"]["Variables"]
        client.update_function_configuration(FunctionName=function, Environment={"Variables": variables | settings})

    def approval_event(self, model_package_arn: str) -> dict:
        """The "SageMaker Model Package State Change" event SageMaker sends for the package as it now is (the
        documented envelope and detail, built from its real description), checked against the stack's rule: what
        the rule's target, the promotion state machine, is started with."""
        from moto.events.models import EventPattern

        described = boto3.client("sagemaker").describe_model_package(ModelPackageName=model_package_arn)
        keys = (
            "ModelPackageGroupName",
            "ModelPackageVersion",
            "ModelPackageArn",
            "CreationTime",
            "InferenceSpecification",
            "ModelPackageStatus",
            "ModelApprovalStatus",
            "MetadataProperties",
            "ModelMetrics",
            "LastModifiedTime",
        )
        detail = {k: described[k] for k in keys if k in described}
        event = {
            "version": "0",
            "id": "1",
            "detail-type": "SageMaker Model Package State Change",
            "source": "aws.sagemaker",
            "account": ACCOUNT,
            "time": "2026-01-01T00:00:00Z",
            "region": REGION,
            "resources": [model_package_arn],
            "detail": json.loads(json.dumps(detail, default=lambda t: t.isoformat())),
        }
        (rule,) = [r for r in self.deployment.resources("AWS::Events::Rule").values() if "aws.sagemaker" in str(r)]
        pattern = self.deployment.resolve(rule["Properties"]["EventPattern"])
        assert EventPattern.load(json.dumps(pattern)).matches_event(event), (pattern, event)
        (target,) = self.deployment.resolve(rule["Properties"]["Targets"])
        assert target["Arn"] == self.machines["Promotion"] and "Input" not in target  # the event, as it is
        return event

    def create_inference_component(self, greengrass: Any) -> dict:
        """What CloudFormation does with the template: the BucketDeployment uploads odedge.zip under its key
        prefix, then the ComponentVersion is created from the inlined recipe (the service checks the artifact)."""
        from infra.edge import EDGE
        from odshared.core.archives import edge_code_zip

        (upload,) = self.deployment.resources("Custom::CDKBucketDeployment").values()
        props = self.deployment.resolve(upload["Properties"])
        key = f"{props['DestinationBucketKeyPrefix']}/odedge.zip"
        boto3.client("s3").put_object(Bucket=props["DestinationBucketName"], Key=key, Body=edge_code_zip(EDGE))
        (component,) = self.deployment.resources("AWS::GreengrassV2::ComponentVersion").values()
        recipe = self.deployment.resolve(component["Properties"]["InlineRecipe"])
        return greengrass.client().create_component_version(inlineRecipe=recipe.encode())

    def run(self, execution_input: dict, timeout: float = 420, machine: str = "Pipeline") -> Run:
        return self.wait(self.start(execution_input, machine), timeout)

    def start(self, execution_input: dict, machine: str = "Pipeline") -> str:
        """The execution's ARN, started as EventBridge's target starts it (a unique name per start)."""
        name = f"{machine.lower()}-{uuid.uuid4().hex[:12]}"
        started = boto3.client("stepfunctions").start_execution(
            stateMachineArn=self.machines[machine], name=name, input=json.dumps(execution_input)
        )
        return started["executionArn"]

    def entered(self, arn: str) -> list[str]:
        events = boto3.client("stepfunctions").get_execution_history(executionArn=arn, maxResults=1000)["events"]
        return [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")]

    def status_change_event(self, arn: str) -> tuple[dict, str]:
        """The "Step Functions Execution Status Change" event EventBridge sends for the execution as it now is (the
        documented detail, from its real description: dates in epoch milliseconds), checked against the stack's
        rule; with the name of the function the rule targets."""
        from moto.events.models import EventPattern

        described = boto3.client("stepfunctions").describe_execution(executionArn=arn)
        keys = ("executionArn", "stateMachineArn", "name", "status", "input", "output")
        detail = {k: described.get(k) for k in keys}
        detail |= {
            k: int(described[k].timestamp() * 1000) if described.get(k) else None for k in ("startDate", "stopDate")
        }
        event = {
            "version": "0",
            "id": uuid.uuid4().hex,
            "detail-type": "Step Functions Execution Status Change",
            "source": "aws.states",
            "account": ACCOUNT,
            "time": "2026-01-01T00:00:00Z",
            "region": REGION,
            "resources": [arn],
            "detail": detail,
        }
        rules = self.deployment.resources("AWS::Events::Rule").values()
        matched = [
            r
            for r in rules
            if EventPattern.load(json.dumps(self.deployment.resolve(r["Properties"]["EventPattern"]))).matches_event(
                event
            )
        ]
        assert matched, event
        # of the rules that take it (the run-failure notices' too), the one that runs a function
        functions = [
            t["Arn"]
            for rule in matched
            for t in self.deployment.resolve(rule["Properties"]["Targets"])
            if ":function:" in t["Arn"]
        ]
        (function,) = functions
        return event, function.rsplit(":", 1)[-1]

    def wait(self, arn: str, timeout: float = 420) -> Run:
        client = boto3.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while True:
            described = client.describe_execution(executionArn=arn)
            if described["status"] != "RUNNING" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        events = client.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        entered = [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")]
        output = json.loads(described["output"]) if described.get("output") else {}
        return Run(described["status"], described, entered, events, output)

    def notifications(self) -> list[dict]:
        messages = (
            boto3.client("sqs")
            .receive_message(QueueUrl=self.queue_url, WaitTimeSeconds=1, MaxNumberOfMessages=10)
            .get("Messages", [])
        )
        return [json.loads(json.loads(m["Body"])["Message"]) for m in messages]
