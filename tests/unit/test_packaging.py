"""Our import packages, console scripts, the stdlib `operator` and the CRD copies."""

import importlib
import subprocess
import sys
import sysconfig
from importlib.metadata import entry_points
from pathlib import Path

import yaml

from reportjobs_model import crd
from reportjobs_model.phase import Phase

REPO = Path(__file__).resolve().parents[2]
CRD_FILE = REPO / "deploy" / "crds" / "reportjobs.io_reportjobs.yaml"
CHART_CRD_FILE = REPO / "deploy" / "helm" / "reportjobs" / "crds" / "reportjobs.io_reportjobs.yaml"


def test_import_operator_is_still_the_standard_library() -> None:
    for package in (
        "reportjobs_model",
        "reportjobs_gateway",
        "reportjobs_operator",
        "reportjobs_worker",
    ):
        importlib.import_module(package)
    import operator

    assert Path(operator.__file__).parent == Path(sysconfig.get_paths()["stdlib"])
    assert operator.itemgetter(1)("ab") == "b"


def test_import_operator_from_the_repository_root() -> None:
    """The `operator/` folder at the root must not shadow the stdlib module."""
    found = subprocess.run(
        [sys.executable, "-c", "import operator, reportjobs_operator; print(operator.__file__)"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(found).parent == Path(sysconfig.get_paths()["stdlib"])


def test_console_scripts() -> None:
    scripts = {ep.name: ep for ep in entry_points(group="console_scripts")}
    for name in ("reportjobs-gateway", "reportjobs-operator", "reportjobs-worker"):
        assert callable(scripts[name].load()), name


def test_chart_crd_is_a_byte_identical_copy() -> None:
    assert CRD_FILE.read_bytes() == CHART_CRD_FILE.read_bytes()


def test_crd_matches_the_model() -> None:
    manifest = yaml.safe_load(CRD_FILE.read_text(encoding="utf-8"))
    spec = manifest["spec"]
    assert manifest["metadata"]["name"] == f"{crd.PLURAL}.{crd.GROUP}"
    assert (spec["group"], spec["names"]["kind"], spec["names"]["plural"]) == (
        crd.GROUP,
        crd.KIND,
        crd.PLURAL,
    )
    (version,) = spec["versions"]
    assert version["name"] == crd.VERSION
    assert version["subresources"] == {"status": {}}
    schema = version["schema"]["openAPIV3Schema"]["properties"]
    object_id = schema["spec"]["properties"]["objectId"]
    assert (object_id["minLength"], object_id["maxLength"]) == (1, 256)
    phases = schema["status"]["properties"]["phase"]["enum"]
    assert phases == [phase.value for phase in Phase]
