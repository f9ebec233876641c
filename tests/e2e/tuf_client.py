#!/usr/bin/env python3
"""A python-tuf ``ngclient`` that verifies targets from a tufa mirror (or an attack fixture).

Used by the end-to-end tests (tests/it/tuf.rs, tests/it/attacks.rs); runs in the e2e venv,
which pins tuf==7.0.1.

    tuf_client.py --metadata-url URL --targets-url URL --root FILE \
                  --metadata-dir DIR --download-dir DIR [TARGET_PATH ...]

``--root`` is the trust anchor (the bytes of ``1.root.json``), given to the Updater as
``bootstrap``. Keep ``--metadata-dir`` between runs to model a client that already trusts the
metadata it saw before (rollback and fast-forward tests need that).

Output, one JSON object per line:
- per target path, in order: ``{"path": P, "ok": true, "sha256": HEX, "length": N,
  "file": LOCAL_PATH}`` or
  ``{"path": P, "ok": false, "error": "<ExceptionClassName>: message"}``;
- last, the refresh: ``{"refresh": true, "ok": true, "root_version": N,
  "timestamp_version": N, "snapshot_version": N}`` or
  ``{"refresh": true, "ok": false, "error": "<ExceptionClassName>: message"}``.
  When the refresh fails no target is attempted (each reports ``Skipped``).

Exit status 0 only when the refresh and every target verified; 1 otherwise; 2 on bad usage.
"""

import argparse
import hashlib
import json
import os
import sys

from tuf.ngclient import Updater


def describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {' '.join(str(e).split())}"


def emit(obj: dict) -> None:
    print(json.dumps(obj, sort_keys=True), flush=True)


def trusted_versions(updater: Updater) -> dict:
    # The trusted set is private API; it is only read here, for the tests' assertions.
    out = {}
    trusted = getattr(updater, "_trusted_set", None)
    for role in ("root", "timestamp", "snapshot"):
        try:
            out[f"{role}_version"] = getattr(trusted, role).version
        except Exception:  # noqa: BLE001 - the role may not be loaded
            out[f"{role}_version"] = None
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--metadata-url", required=True)
    p.add_argument("--targets-url", required=True)
    p.add_argument("--root", required=True, help="trusted root metadata file (bootstrap)")
    p.add_argument("--metadata-dir", required=True)
    p.add_argument("--download-dir", required=True)
    p.add_argument("targets", nargs="*")
    args = p.parse_args()

    os.makedirs(args.metadata_dir, exist_ok=True)
    os.makedirs(args.download_dir, exist_ok=True)
    with open(args.root, "rb") as f:
        root_bytes = f.read()

    try:
        updater = Updater(
            metadata_dir=args.metadata_dir,
            metadata_base_url=args.metadata_url,
            target_dir=args.download_dir,
            target_base_url=args.targets_url,
            bootstrap=root_bytes,
        )
        updater.refresh()
    except Exception as e:  # noqa: BLE001 - every failure is reported, by class name
        for path in args.targets:
            emit({"path": path, "ok": False, "error": "Skipped: refresh failed"})
        emit({"refresh": True, "ok": False, "error": describe(e)})
        return 1

    all_ok = True
    for path in args.targets:
        try:
            info = updater.get_targetinfo(path)
            if info is None:
                raise LookupError(f"no signed target {path!r}")
            local = updater.download_target(info)
            with open(local, "rb") as f:
                data = f.read()
            emit(
                {
                    "path": path,
                    "ok": True,
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "length": len(data),
                    "file": os.path.abspath(local),
                }
            )
        except Exception as e:  # noqa: BLE001
            all_ok = False
            emit({"path": path, "ok": False, "error": describe(e)})

    emit({"refresh": True, "ok": True, **trusted_versions(updater)})
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
