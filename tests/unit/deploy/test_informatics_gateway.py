"""deploy/informatics-gateway/*.json against the MONAI Deploy Informatics Gateway's configuration API.

Field lists (camelCase JSON of the C# properties): Project-MONAI/monai-deploy-informatics-gateway,
src/Api/Models/MonaiApplicationEntity.cs (POST /config/ae), src/Api/Models/BaseApplicationEntity.cs and
src/Api/SourceApplicationEntity.cs (POST /config/source), src/Api/Models/DestinationApplicationEntity.cs
(POST /config/destination); routes from src/InformaticsGateway/Services/Http/*Controller.cs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
IG = REPO / "deploy" / "informatics-gateway"

MONAI_AE_FIELDS = {"name", "aeTitle", "grouping", "workflows", "plugInAssemblies", "ignoredSopClasses",
                   "allowedSopClasses", "timeout"}
SOURCE_FIELDS = {"name", "aeTitle", "hostIp"}
DESTINATION_FIELDS = SOURCE_FIELDS | {"port"}
GROUPING = {"0020,000D", "0020,000E"}  # Study or Series Instance UID
MR_STORAGE = {"1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.4.1"}  # MR, Enhanced MR Image Storage
UID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")


def load(name: str) -> dict:
    return json.loads((IG / name).read_text())


def valid_ae_title(value: str) -> bool:
    """DICOM PS3.5 AE: at most 16 characters, not only spaces, no backslash or control characters."""
    return 0 < len(value) <= 16 and value.strip() != "" and not re.search(r"[\\\x00-\x1f]", value)


def test_monai_ae_fields_and_values():
    ae = load("ae-gbmgtv.json")
    assert set(ae) <= MONAI_AE_FIELDS and {"name", "aeTitle"} <= set(ae)
    assert valid_ae_title(ae["aeTitle"])
    assert ae["grouping"] in GROUPING and isinstance(ae["timeout"], int) and ae["timeout"] > 0
    assert not (ae.get("allowedSopClasses") and ae.get("ignoredSopClasses")), "mutually exclusive"
    assert set(ae["allowedSopClasses"]) == MR_STORAGE and all(UID.match(u) for u in ae["allowedSopClasses"])


def test_source_and_destination_fields():
    source, dest = load("source-pacs.json"), load("destination-tps.json")
    assert set(source) == SOURCE_FIELDS and set(dest) == DESTINATION_FIELDS
    for entity in (source, dest):
        assert valid_ae_title(entity["aeTitle"]) and entity["name"] and entity["hostIp"]
    assert isinstance(dest["port"], int) and 0 < dest["port"] < 65536


def test_register_script_posts_each_file():
    script = (IG / "register.sh").read_text()
    for route, name in (("config/ae", "ae-gbmgtv.json"), ("config/source", "source-pacs.json"),
                        ("config/destination", "destination-tps.json")):
        assert re.search(rf'post "\$IG/{route}" "\$here/{re.escape(name)}"', script), route
    assert 'post "$MWM/workflows"' in script
