"""Manifests checked as a Kubernetes API server of 1.29-1.35 would check them, without one.

- Built-in kinds: kubernetes-validate's OpenAPI schemas of each version, in strict mode (an
  unknown field is an error, as with `kubectl apply --validate=strict` or the API server's
  `fieldValidation=Strict`; by default a server of 1.25+ drops it with a warning).
- Our ReportJob: the CRD's own openAPIV3Schema, made strict (`strict_crd_schema`: a field the
  schema does not know would be pruned silently), its formats and list types checked; its
  metadata against each version's ObjectMeta.
- The CRD itself: the structural-schema rules the apiextensions API server enforces
  (`structural_errors`), besides its kubernetes-validate schema.
- What the API server checks beyond the schemas, the same in every version (`naming_errors`):
  names, label and annotation keys, label values, ConfigMap keys, a Deployment's selector.
- The Helm chart, rendered offline by Helm's own Go SDK (helm-python-sdk's `Chart.render`: the
  values are checked against values.schema.json, `lookup` finds nothing).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import importlib.resources
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import helm_python
import jsonschema
import kubernetes_validate
import kubernetes_validate.utils
import yaml
from referencing import Registry, Resource

Obj = dict[str, Any]

VERSIONS: Final = ("1.29", "1.30", "1.31", "1.32", "1.33", "1.34", "1.35")
"""The Kubernetes versions users run (issue 21); kubernetes-validate ships each one's schemas."""

REPO: Final = Path(__file__).resolve().parents[2]
CHART: Final = REPO / "deploy" / "helm" / "reportjobs"
CRD_FILES: Final = tuple(sorted((REPO / "deploy" / "crds").glob("*.yaml")))


# -- built-in kinds: kubernetes-validate ---------------------------------------------------------


def schema_errors(manifest: Mapping[str, Any], *, version: str) -> list[str]:
    """What the `version` schema of the manifest's kind refuses in it, in strict mode (it stops at
    the first error). Raises kubernetes_validate.SchemaNotFoundError for a kind it does not
    know."""
    try:
        checked = kubernetes_validate.validate(dict(manifest), version, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{_path(error.absolute_path)}: {error.message}"]
    # No silent fallback to an older version's schemas.
    assert checked == version, f"asked for {version}, kubernetes-validate checked {checked}"
    return []


@contextlib.contextmanager
def schemas_read_once() -> Iterator[None]:
    """kubernetes-validate lists its schema directories and parses its schema files (1.5 MB of
    definitions per version) on every call: do each once while this lasts (nothing changes
    them)."""
    utils = kubernetes_validate.utils
    originals = (utils.all_versions, utils.schema_contents)
    utils.all_versions = functools.cache(originals[0])
    utils.schema_contents = functools.cache(originals[1])
    try:
        yield
    finally:
        utils.all_versions, utils.schema_contents = originals


def _path(path: Any) -> str:
    return ".".join(str(part) for part in path) or "(root)"


def _schema_file(version: str, name: str) -> Obj:
    root = importlib.resources.files("kubernetes_validate") / "kubernetes-json-schema"
    schema: Obj = json.loads((root / f"v{version}.0-local-strict" / name).read_text("utf-8"))
    return schema


@functools.cache
def _object_meta(version: str) -> jsonschema.protocols.Validator:
    definitions = _schema_file(version, "_definitions.json")
    registry: Registry[Any] = Registry().with_resource(
        definitions["$id"], Resource.from_contents(definitions)
    )
    schema = _schema_file(version, "objectmeta-meta-v1.json")
    return jsonschema.Draft202012Validator(schema, registry=registry)


def object_meta_errors(metadata: Mapping[str, Any], *, version: str) -> list[str]:
    """What `version`'s ObjectMeta schema (strict) refuses in a custom resource's metadata,
    which the API server checks as any object's."""
    return [
        f"metadata.{_path(error.absolute_path)}: {error.message}"
        for error in _object_meta(version).iter_errors(dict(metadata))
    ]


# -- custom resources: the CRD's own schema ------------------------------------------------------


_Loader: Final = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _documents(text: str) -> list[Obj]:
    return [doc for doc in yaml.load_all(text, Loader=_Loader) if doc]


def load_yaml(path: Path) -> list[Obj]:
    return copy.deepcopy(_load_yaml(path))


@functools.cache
def _load_yaml(path: Path) -> list[Obj]:
    return _documents(path.read_text("utf-8"))


def strict_crd_schema(crd: Mapping[str, Any], *, version: str) -> Obj:
    """The openAPIV3Schema of the CRD's `version`, every object that lists its properties closed
    to others (the API server would prune them: a field we write and lose is a bug). metadata
    is left to `object_meta_errors`."""
    (served,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    schema: Obj = copy.deepcopy(served["schema"]["openAPIV3Schema"])

    def close(node: Obj) -> None:
        if "properties" in node and not _keeps_unknown(node):
            node.setdefault("additionalProperties", False)
        for child in (node.get("properties") or {}).values():
            close(child)
        if isinstance(node.get("items"), dict):
            close(node["items"])

    close(schema)
    return schema


def _keeps_unknown(node: Mapping[str, Any]) -> bool:
    return bool(node.get("x-kubernetes-preserve-unknown-fields")) or "additionalProperties" in node


_RFC3339: Final = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")

FORMATS: Final = jsonschema.FormatChecker(formats=())


def _date_time(value: object) -> bool:
    if not isinstance(value, str) or not _RFC3339.match(value):
        return False
    datetime.fromisoformat(value)  # raises on a day or hour that does not exist
    return True


def _int64(value: object) -> bool:
    return not isinstance(value, int) or -(2**63) <= value < 2**63


FORMATS.checks("date-time", raises=ValueError)(_date_time)
FORMATS.checks("int64")(_int64)


def _list_type(
    validator: Any, list_type: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[jsonschema.ValidationError]:
    """x-kubernetes-list-type: the API server refuses duplicates in a set, or duplicate keys in
    a map."""
    if not isinstance(instance, list):
        return
    if list_type == "set":
        seen = [json.dumps(item, sort_keys=True) for item in instance]
    elif list_type == "map":
        keys = schema["x-kubernetes-list-map-keys"]
        seen = [json.dumps([item.get(key) for key in keys]) for item in instance]
    else:
        return
    if len(set(seen)) != len(seen):
        yield jsonschema.ValidationError(f"duplicate entries in a list of type {list_type}")


_CrdValidator: Final = jsonschema.validators.extend(
    jsonschema.Draft4Validator, {"x-kubernetes-list-type": _list_type}
)


def crd_errors(body: Mapping[str, Any], *, schema: Mapping[str, Any]) -> list[str]:
    """What the (strict) CRD schema refuses in a custom resource body."""
    validator = _CrdValidator(schema, format_checker=FORMATS)
    return [
        f"{_path(error.absolute_path)}: {error.message}"
        for error in sorted(validator.iter_errors(dict(body)), key=lambda e: list(e.path))
    ]


def structural_errors(schema: Mapping[str, Any], *, where: str = "openAPIV3Schema") -> list[str]:
    """The structural-schema rules of apiextensions.k8s.io/v1 a CRD must follow (beyond the
    shape kubernetes-validate checks): every node has a type; a map-list's items are objects
    whose keys are required scalars; a set-list's items are scalars."""
    errors = []
    escapes = ("x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields")
    if not schema.get("type") and not any(schema.get(key) for key in escapes):
        errors.append(f"{where}: no type")
    items = schema.get("items")
    list_type = schema.get("x-kubernetes-list-type")
    if list_type == "map":
        keys = schema.get("x-kubernetes-list-map-keys") or []
        properties = (items or {}).get("properties") or {}
        if (items or {}).get("type") != "object" or not keys:
            errors.append(f"{where}: a map list needs object items and map keys")
        for key in keys:
            if key not in (items or {}).get("required", []):
                errors.append(f"{where}: map key {key} is not required")
            if properties.get(key, {}).get("type") not in ("string", "integer", "boolean"):
                errors.append(f"{where}: map key {key} is not a scalar")
    if list_type == "set" and (items or {}).get("type") in ("object", "array"):
        errors.append(f"{where}: a set list's items must be scalars")
    for name, child in (schema.get("properties") or {}).items():
        errors += structural_errors(child, where=f"{where}.{name}")
    if isinstance(items, dict):
        errors += structural_errors(items, where=f"{where}[]")
    return errors


# -- names and labels: the API server's own checks ------------------------------------------------

_LABEL: Final = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS_SUBDOMAIN: Final = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
DNS_1035_LABEL: Final = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED_NAME: Final = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
CONFIG_MAP_KEY: Final = re.compile(r"^[-._a-zA-Z0-9]+$")
ANNOTATIONS_MAX_BYTES: Final = 256 * 1024

_PATH_SEGMENT_KINDS: Final = frozenset({"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"})
"""Kinds whose names need only be a path segment (no "/" or "%", not "." or "..")."""


def _qualified_name_errors(key: str) -> list[str]:
    prefix, _, name = key.rpartition("/")
    errors = []
    if prefix and (len(prefix) > 253 or not DNS_SUBDOMAIN.match(prefix)):
        errors.append(f"key {key!r}: its prefix is not a DNS subdomain")
    if len(name) > 63 or not _QUALIFIED_NAME.match(name):
        errors.append(f"key {key!r}: not a qualified name")
    return errors


def _metadata_errors(metadata: Mapping[str, Any], *, where: str) -> list[str]:
    errors = []
    for key, value in (metadata.get("labels") or {}).items():
        errors += [f"{where} label {e}" for e in _qualified_name_errors(key)]
        if value and (len(value) > 63 or not _QUALIFIED_NAME.match(value)):
            errors.append(f"{where} label {key}: value {value!r} is not a label value")
    annotations = metadata.get("annotations") or {}
    for key in annotations:
        errors += [f"{where} annotation {e}" for e in _qualified_name_errors(key)]
    size = sum(len(k.encode()) + len(str(v).encode()) for k, v in annotations.items())
    if size > ANNOTATIONS_MAX_BYTES:
        errors.append(f"{where} annotations: {size} bytes, over 256 KiB")
    return errors


def naming_errors(manifest: Mapping[str, Any]) -> list[str]:
    """What the API server refuses in the names, labels and annotations of an object (and of
    its pod template), in a ConfigMap's keys and in a Deployment's selector: checks that are no
    part of the OpenAPI schemas, and the same in every version."""
    kind, metadata = manifest["kind"], manifest["metadata"]
    name = str(metadata.get("name", ""))
    if kind == "Service":
        valid = len(name) <= 63 and DNS_1035_LABEL.match(name) is not None
    elif kind in _PATH_SEGMENT_KINDS:
        valid = name not in ("", ".", "..") and not set(name) & {"/", "%"}
    else:
        valid = len(name) <= 253 and DNS_SUBDOMAIN.match(name) is not None
    errors = [] if valid else [f"name {name!r} is not valid for a {kind}"]
    if kind == "Job" and len(name) > 63:  # its pods carry it as a label value (job-name)
        errors.append(f"Job name {name!r} is longer than a label value may be")
    errors += _metadata_errors(metadata, where="metadata")
    template = (manifest.get("spec") or {}).get("template")
    if isinstance(template, dict):
        labels = (template.get("metadata") or {}).get("labels") or {}
        errors += _metadata_errors(template.get("metadata") or {}, where="template")
        selector = (manifest["spec"].get("selector") or {}).get("matchLabels") or {}
        if kind == "Deployment" and not selector.items() <= labels.items():
            errors.append("the Deployment's selector does not match its template's labels")
    if kind == "ConfigMap":
        for key in manifest.get("data") or {}:
            if len(key) > 253 or not CONFIG_MAP_KEY.match(key):
                errors.append(f"ConfigMap key {key!r} is not valid")
    return errors


# -- the chart -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Rendered:
    template: str
    manifest: Obj

    @property
    def title(self) -> str:
        return f"{self.template}: {self.manifest['kind']} {self.manifest['metadata']['name']}"


def render_chart(
    values: Mapping[str, Any], *, release: str = "reportjobs", namespace: str = "reportjobs"
) -> list[Rendered]:
    """Every object `helm install` would create from `values` (hooks such as `helm test`'s pod
    included, CRDs apart: `chart_crds`), rendered by Helm's Go SDK, offline."""
    with helm_python.Chart.load(CHART) as chart:
        files = chart.render(dict(values), name=release, namespace=namespace, is_install=True)
    rendered = []
    for template, text in sorted(files.items()):
        if template.endswith((".yaml", ".yml")):
            rendered += [Rendered(template=template, manifest=doc) for doc in _documents(text)]
    return rendered


def chart_crds() -> list[Obj]:
    """The CRDs the chart installs (from its crds/ directory)."""
    with helm_python.Chart.load(CHART) as chart:
        return [doc for crd in chart.crds for doc in _documents(crd["data"])]
