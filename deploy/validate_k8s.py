"""Validate rendered Kubernetes manifests offline.

Built-in kinds are checked with ``kubernetes-validate`` (strict: unknown fields are errors)
against every ``--k8s-version``; custom resources (KEDA, Strimzi) against the structural
schemas in ``deploy/k8s/schemas/`` (named ``<group>_<version>_<Kind>.json``). A kind that is
neither built in nor covered by a schema is an error, so a new CRD cannot slip through
unchecked. Run by ``deploy/validate.sh`` with the tools' virtualenv:

    python deploy/validate_k8s.py --schemas deploy/k8s/schemas -k 1.30.0 -k 1.37.0 rendered.yaml
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml


def schema_name(doc: dict[str, Any]) -> str:
    api = str(doc.get("apiVersion", ""))
    group, _, version = api.rpartition("/")
    return f"{group or 'core'}_{version}_{doc.get('kind')}.json"


def describe(doc: dict[str, Any]) -> str:
    meta = doc.get("metadata") or {}
    return f"{doc.get('kind')}/{meta.get('name')} ({doc.get('apiVersion')})"


def validate_doc(doc: dict[str, Any], schemas: Path, versions: list[str]) -> list[str]:
    custom = schemas / schema_name(doc)
    if custom.exists():
        validator = jsonschema.Draft202012Validator(json.loads(custom.read_text()))
        found = [
            f"{describe(doc)}: {'.'.join(str(p) for p in err.absolute_path) or '<root>'}: "
            f"{err.message}"
            for err in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
        ]
        return list(dict.fromkeys(found))  # one message per problem, in order
    errors = []
    for version in versions:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            return [f"{describe(doc)}: not a Kubernetes {version} kind and no {custom} schema"]
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path) or "<root>"
            errors.append(f"{describe(doc)}: Kubernetes {version}: {path}: {exc.message}")
    return errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--schemas", type=Path, required=True)
    parser.add_argument("-k", "--k8s-version", action="append", dest="versions", required=True)
    args = parser.parse_args(argv)
    failed = False
    for path in args.files:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        errors: list[str] = []
        builtin = custom = 0
        for doc in docs:
            if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
                errors.append(f"not a Kubernetes object: {str(doc)[:80]}")
                continue
            if (args.schemas / schema_name(doc)).exists():
                custom += 1
            else:
                builtin += 1
            errors.extend(validate_doc(doc, args.schemas, args.versions))
        if not docs:
            errors.append("no resources")
        for err in errors:
            print(f"ERROR {path}: {err}", file=sys.stderr)
        status = "FAILED" if errors else "ok"
        print(
            f"{status} {path}: {len(docs)} resources, {builtin} built-in checked against "
            f"Kubernetes {', '.join(args.versions)}, {custom} custom checked structurally"
        )
        failed = failed or bool(errors)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
