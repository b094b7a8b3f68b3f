#!/usr/bin/env python3
"""Install, upgrade, test and uninstall the chart: with the `helm` binary where there is one,
else through helm-python-sdk (Helm v4's Go SDK). Used by `make deploy` and the e2e tests.

usage: helmctl.py {deploy,test,uninstall} --release R --namespace NS [--values JSON] ...
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHART = Path(__file__).resolve().parent.parent / "deploy" / "helm" / "reportjobs"


def _helm_cli(*, args: argparse.Namespace) -> int:
    base = ["helm", "--kubeconfig", args.kubeconfig, "--namespace", args.namespace]
    if args.action == "deploy":
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as values:
            json.dump(args.values, values)
        command = [
            *base,
            "upgrade",
            "--install",
            args.release,
            str(CHART),
            "--create-namespace",
            "--wait",
            "--timeout",
            f"{args.timeout}s",
            "-f",
            values.name,
        ]
    elif args.action == "test":
        command = [*base, "test", args.release, "--logs", "--timeout", f"{args.timeout}s"]
    else:
        command = [*base, "uninstall", args.release, "--ignore-not-found", "--wait"]
    try:
        return subprocess.call(command)
    finally:
        if args.action == "deploy":
            os.unlink(values.name)


def _helm_sdk(*, args: argparse.Namespace) -> int:
    import helm_python

    with helm_python.Config(kubeconfig_path=args.kubeconfig, namespace=args.namespace) as config:
        if args.action == "deploy":
            try:
                config.status(args.release)
            except helm_python.HelmNotFoundError:
                config.install(
                    CHART,
                    args.release,
                    args.values,
                    namespace=args.namespace,
                    create_namespace=True,
                    wait="watcher",
                    timeout=args.timeout,
                )
            else:
                config.upgrade(
                    CHART,
                    args.release,
                    args.values,
                    namespace=args.namespace,
                    wait="watcher",
                    timeout=args.timeout,
                )
        elif args.action == "test":
            result = config.test(args.release, timeout=args.timeout, logs=True)
            print(result.get("logs", "") if isinstance(result, dict) else result)
        else:
            config.uninstall(
                args.release, ignore_not_found=True, wait="watcher", timeout=args.timeout
            )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("action", choices=["deploy", "test", "uninstall"])
    parser.add_argument("--release", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG", ""))
    parser.add_argument("--values", type=json.loads, default={}, help="values as JSON")
    parser.add_argument("--timeout", type=int, default=300, help="seconds")
    args = parser.parse_args()
    if not args.kubeconfig:
        parser.error("--kubeconfig or KUBECONFIG is required")
    if shutil.which("helm") and os.environ.get("REPORTJOBS_HELM") != "sdk":
        return _helm_cli(args=args)
    return _helm_sdk(args=args)


if __name__ == "__main__":
    sys.exit(main())
