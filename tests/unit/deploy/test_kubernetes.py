"""deploy/kubernetes/*.yaml: the Job (batch/v1) and the Argo WorkflowTemplate (argoproj.io/v1alpha1).

Field lists: Kubernetes API reference v1.30 (kubernetes.io/docs/reference/kubernetes-api/): JobSpec,
PodSpec, Container, SecurityContext, PodSecurityContext, ResourceRequirements, VolumeMount, Volume;
Argo Workflows field reference (argo-workflows.readthedocs.io/en/latest/fields/): WorkflowSpec, Template, Inputs,
Outputs, Artifact. Only the fields these files use are listed; a misspelt field fails the test.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
K8S = REPO / "deploy" / "kubernetes"

JOB_SPEC = {"backoffLimit", "activeDeadlineSeconds", "ttlSecondsAfterFinished", "template", "completions",
            "parallelism", "selector", "suspend", "podFailurePolicy", "backoffLimitPerIndex"}
POD_SPEC = {"restartPolicy", "automountServiceAccountToken", "securityContext", "nodeSelector", "tolerations",
            "containers", "volumes", "serviceAccountName", "imagePullSecrets", "priorityClassName", "affinity"}
CONTAINER = {"name", "image", "imagePullPolicy", "env", "resources", "securityContext", "volumeMounts", "command",
             "args", "workingDir"}
POD_SECURITY = {"runAsNonRoot", "runAsUser", "runAsGroup", "fsGroup", "seccompProfile", "supplementalGroups"}
SECURITY = {"runAsNonRoot", "runAsUser", "runAsGroup", "allowPrivilegeEscalation", "readOnlyRootFilesystem",
            "capabilities", "privileged", "seccompProfile"}
VOLUME_MOUNT = {"name", "mountPath", "readOnly", "subPath"}
WORKFLOW_SPEC = {"entrypoint", "templates", "activeDeadlineSeconds", "podGC", "securityContext", "arguments",
                 "serviceAccountName", "volumes", "ttlStrategy", "nodeSelector", "tolerations"}
TEMPLATE = {"name", "inputs", "outputs", "container", "nodeSelector", "tolerations", "volumes", "metadata",
            "activeDeadlineSeconds", "retryStrategy", "securityContext"}
ARTIFACT = {"name", "path", "archive", "optional", "s3", "mode"}
APP_YAML = yaml.safe_load((REPO / "app.yaml").read_text())


def load(name: str) -> dict:
    return yaml.safe_load((K8S / name).read_text())


def check_container(container: dict, *, input_read_only: bool) -> None:
    assert set(container) <= CONTAINER
    assert set(container["securityContext"]) <= SECURITY
    sc = container["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] != 0 and sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True and sc["capabilities"]["drop"] == ["ALL"]
    res = container["resources"]
    assert res["limits"]["nvidia.com/gpu"] == res["requests"]["nvidia.com/gpu"] == APP_YAML["resources"]["gpu"]
    assert res["requests"]["memory"] == APP_YAML["resources"]["memory"]
    assert int(res["requests"]["cpu"]) == APP_YAML["resources"]["cpu"]
    assert container["image"].endswith(f":{APP_YAML['application']['version']}")
    mounts = {m["mountPath"]: m for m in container.get("volumeMounts", [])}
    assert all(set(m) <= VOLUME_MOUNT for m in mounts.values())
    assert {"/tmp", "/var/holoscan/logs"} <= set(mounts), "writable folders on a read-only root file system"
    if input_read_only:
        assert mounts["/var/holoscan/input"]["readOnly"] is True


def test_job():
    job = load("job.yaml")
    assert job["apiVersion"] == "batch/v1" and job["kind"] == "Job"
    assert set(job["spec"]) <= JOB_SPEC
    pod = job["spec"]["template"]["spec"]
    assert set(pod) <= POD_SPEC and pod["restartPolicy"] in {"Never", "OnFailure"}
    assert set(pod["securityContext"]) <= POD_SECURITY and pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    check_container(container, input_read_only=True)
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["input"]["persistentVolumeClaim"]["readOnly"] is True
    assert {m["name"] for m in container["volumeMounts"]} == set(volumes)


def test_argo_workflow_template():
    wt = load("argo-workflowtemplate.yaml")
    assert wt["apiVersion"] == "argoproj.io/v1alpha1" and wt["kind"] == "WorkflowTemplate"
    spec = wt["spec"]
    assert set(spec) <= WORKFLOW_SPEC and set(spec["securityContext"]) <= POD_SECURITY
    assert spec["securityContext"]["runAsNonRoot"] is True
    (template,) = spec["templates"]
    assert set(template) <= TEMPLATE and template["name"] == spec["entrypoint"]
    for artifact in template["inputs"]["artifacts"] + template["outputs"]["artifacts"]:
        assert set(artifact) <= ARTIFACT
    paths = {a["name"]: a["path"] for a in template["inputs"]["artifacts"] + template["outputs"]["artifacts"]}
    assert paths == {"input-dicom": "/var/holoscan/input", "output": "/var/holoscan/output"}
    check_container(template["container"], input_read_only=False)  # Argo copies the input artifact in
    assert {m["name"] for m in template["container"]["volumeMounts"]} == {v["name"] for v in template["volumes"]}


@pytest.mark.parametrize("name", ["job.yaml", "argo-workflowtemplate.yaml"])
def test_gpu_nodes_are_selected(name):
    text = (K8S / name).read_text()
    assert "nvidia.com/gpu.present" in text and "key: nvidia.com/gpu" in text
