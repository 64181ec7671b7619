"""deploy/workflow-manager/*.json against the MONAI Deploy Workflow Manager's workflow specification.

Field lists: Project-MONAI/monai-deploy-workflow-manager, src/WorkflowManager/Contracts/Models/ (Workflow.cs,
InformaticsGateway.cs, TaskObject.cs, TaskDestination.cs, ExportDestination.cs, ArtifactMap.cs, Artifact.cs; the
JsonProperty names) and guidelines/mwm-workflow-spec.md. Rules: the same repository's
src/WorkflowManager/WorkflowManager/Validators/WorkflowValidator.cs and Common/Miscellaneous/ValidationConstants.cs
(task types, argo and clinical-review arguments, AE title length, task id characters, destinations, artifacts).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
WORKFLOWS = sorted((REPO / "deploy" / "workflow-manager").glob("*.json"))
IG = REPO / "deploy" / "informatics-gateway"

WORKFLOW_FIELDS = {"name", "version", "description", "informatics_gateway", "tasks", "dataRetentionDays", "predicate"}
GATEWAY_FIELDS = {"ae_title", "data_origins", "export_destinations"}
TASK_FIELDS = {"id", "description", "type", "args", "task_destinations", "export_destinations", "artifacts",
               "timeout_minutes"}
DESTINATION_FIELDS = {"name", "conditions"}
ARTIFACT_MAP_FIELDS = {"input", "output"}
ARTIFACT_FIELDS = {"name", "value", "mandatory"}
TASK_TYPES = {"argo", "aide_clinical_review", "router", "export", "docker", "email", "remote_app_execution",
              "export_hl7"}
ARGO_ARGS = {"workflow_template_name", "priority", "cpu", "memory", "gpu_required"}
CLINICAL_REVIEW_REQUIRED = {"workflow_name", "reviewed_task_id", "application_version", "application_name", "mode",
                            "notifications"}
TASK_ID = re.compile(r"^[a-zA-Z0-9-_]+$")


def load(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(params=WORKFLOWS, ids=[p.name for p in WORKFLOWS])
def workflow(request) -> dict:
    return load(request.param)


def test_both_workflows_exist():
    assert {p.name for p in WORKFLOWS} == {"gbm-gtv-workflow.json", "gbm-gtv-workflow-no-review.json"}


def test_fields_are_those_of_the_specification(workflow):
    assert set(workflow) <= WORKFLOW_FIELDS and {"name", "version", "informatics_gateway", "tasks"} <= set(workflow)
    assert set(workflow["informatics_gateway"]) <= GATEWAY_FIELDS
    for task in workflow["tasks"]:
        assert set(task) <= TASK_FIELDS, task["id"]
        assert set(task.get("artifacts", {})) <= ARTIFACT_MAP_FIELDS, task["id"]
        for artifact in task.get("artifacts", {}).get("input", []) + task.get("artifacts", {}).get("output", []):
            assert set(artifact) <= ARTIFACT_FIELDS, task["id"]
        for dest in task.get("task_destinations", []) + task.get("export_destinations", []):
            assert set(dest) <= DESTINATION_FIELDS, task["id"]
        assert all(isinstance(v, str) for v in task.get("args", {}).values()), "args is Dictionary<string, string>"


def test_validator_rules(workflow):
    gateway, tasks = workflow["informatics_gateway"], workflow["tasks"]
    ids = [t["id"] for t in tasks]
    assert 0 < len(gateway["ae_title"]) <= 15
    assert all(TASK_ID.match(i) for i in ids) and len(set(ids)) == len(ids)
    destinations = [d["name"] for t in tasks for d in t.get("task_destinations", [])]
    assert len(destinations) == len(set(destinations)), "converging task destinations"
    assert ids[0] not in destinations, "a task leads back to the root task"
    assert set(ids[1:]) == set(destinations), "every task but the first is reached"
    for task in tasks:
        assert task["type"] in TASK_TYPES
        if task["type"] != "router":
            inputs = task["artifacts"]["input"]
            assert inputs and all(a["name"] and a["value"] for a in inputs), task["id"]
        for dest in task.get("export_destinations", []):
            assert dest["name"] in gateway["export_destinations"], task["id"]
        if task["type"] == "export":
            assert task["export_destinations"], task["id"]
        if task["type"] == "argo":
            assert "workflow_template_name" in task["args"] and set(task["args"]) <= ARGO_ARGS
            assert task["args"].get("priority", "high") in {"high", "standard", "low"}
            assert task["args"].get("gpu_required", "true") in {"true", "false"}
        if task["type"] == "aide_clinical_review":
            args = task["args"]
            assert CLINICAL_REVIEW_REQUIRED <= set(args)
            assert args["mode"].lower() in {"qa", "research", "clinical"}
            assert args["notifications"] in {"true", "false"}
            assert args["workflow_name"] == workflow["name"]
            reviewed = next(t for t in tasks if t["id"] == args["reviewed_task_id"])
            assert reviewed["type"] == "argo"
            for artifact in task["artifacts"]["input"]:
                if "context.input.dicom" not in artifact["value"]:
                    assert artifact["value"].split(".")[2] == args["reviewed_task_id"]


def test_routes_mr_studies_to_the_map_and_exports_to_the_configured_destination(workflow):
    assert any("'0008','0060'" in p and "'MR'" in p for p in workflow["predicate"])
    first = workflow["tasks"][0]
    assert first["type"] == "argo" and first["args"]["workflow_template_name"] == "gbm-gtv-map"
    export = next(t for t in workflow["tasks"] if t["type"] == "export")
    assert [d["name"] for d in export["export_destinations"]] == [load(IG / "destination-tps.json")["name"]]
    assert workflow["informatics_gateway"]["ae_title"] == load(IG / "ae-gbmgtv.json")["aeTitle"]
    assert workflow["informatics_gateway"]["data_origins"] == [load(IG / "source-pacs.json")["name"]]


def test_review_comes_before_export_in_the_reviewed_workflow():
    tasks = {t["id"]: t for t in load(REPO / "deploy" / "workflow-manager" / "gbm-gtv-workflow.json")["tasks"]}
    assert [d["name"] for d in tasks["gbm-gtv-map"]["task_destinations"]] == ["clinical-review"]
    assert [d["name"] for d in tasks["clinical-review"]["task_destinations"]] == ["export-to-tps"]


def test_argo_template_declares_the_task_artifacts(workflow):
    template = yaml.safe_load((REPO / "deploy" / "kubernetes" / "argo-workflowtemplate.yaml").read_text())
    task = workflow["tasks"][0]
    assert template["metadata"]["name"] == task["args"]["workflow_template_name"]
    entry = next(t for t in template["spec"]["templates"] if t["name"] == template["spec"]["entrypoint"])
    assert {a["name"] for a in entry["inputs"]["artifacts"]} == {a["name"] for a in task["artifacts"]["input"]}
    assert {a["name"] for a in entry["outputs"]["artifacts"]} == {a["name"] for a in task["artifacts"]["output"]}
