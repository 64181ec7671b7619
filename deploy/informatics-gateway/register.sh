#!/usr/bin/env bash
# Register the GTV MAP's DICOM entities with the MONAI Deploy Informatics Gateway and its clinical workflow with the
# Workflow Manager (their REST configuration APIs). Edit the JSON files first: PACS and planning-system AE titles,
# hosts and port are the hospital's.
#   deploy/informatics-gateway/register.sh IG_URL MWM_URL [WORKFLOW_JSON]
#   e.g. register.sh http://mig:5000 http://mwm:5001 deploy/workflow-manager/gbm-gtv-workflow.json
set -euo pipefail
IG=${1:?Informatics Gateway URL}; MWM=${2:?Workflow Manager URL}
WORKFLOW=${3:-deploy/workflow-manager/gbm-gtv-workflow.json}
here=$(dirname "$0")
post() { curl -fsS -X POST -H 'Content-Type: application/json' --data @"$2" "$1"; echo; }
post "$IG/config/ae" "$here/ae-gbmgtv.json"               # SCP AE title that receives MR studies
post "$IG/config/source" "$here/source-pacs.json"         # who may send (data_origins of the workflow)
post "$IG/config/destination" "$here/destination-tps.json" # where results go (export_destinations)
post "$MWM/workflows" "$WORKFLOW"
