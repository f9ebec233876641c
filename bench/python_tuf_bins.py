#!/usr/bin/env python3
"""The python-tuf side of the TUF signing benchmark (see bench/tuf/src/main.rs).

Same work as `tufa-bench-tuf`, with python-tuf 7.0.1's Metadata API as its succinct hash-bin
example (examples/manual_repo/succinct_hash_bin_delegations.py) uses it: `SuccinctRoles`,
`Metadata[Targets]`, `TargetFile`, `CryptoSigner`.

1. Setup (untimed): N synthetic targets, generated exactly as the Rust bench does (SplitMix64,
   same call order), as `TargetFile` objects.
2. Initial signing: split into 16,384 bins with `SuccinctRoles.get_role_for_target`, build,
   sign, serialise (`to_bytes`, compact JSON) and write every `1.bin-XXXX.json`, then
   `1.snapshot.json` and `timestamp.json`.
3. Incremental publish: one new target; its bin at version 2, snapshot 2, timestamp 2.

The online key is ed25519 from seed bytes 0..31, as in the Rust bench: ed25519 signatures are
deterministic, so with the same --expires both write byte-identical files.

Signing needs pyca/cryptography (securesystemslib's CryptoSigner); python-tuf alone only
verifies ed25519 (through a vendored pure-Python fallback).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import resource
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.signer import CryptoSigner

import tuf
from tuf.api.metadata import (
    Metadata,
    MetaFile,
    Snapshot,
    SuccinctRoles,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import CanonicalJSONSerializer, JSONSerializer

BIT_LENGTH = 14  # 16,384 bins, as tufa's BinLayout::default()
NAME_PREFIX = "bin"
MASK = (1 << 64) - 1

SYLLABLES = [
    "py", "req", "flask", "django", "data", "net", "ml", "tensor", "cloud", "json", "yaml", "http",
    "async", "test", "auth", "db", "sql", "web", "api", "cli", "log", "geo", "img", "text", "sci",
    "num", "plot", "crypto", "aws", "azure", "tool", "kit",
]  # fmt: skip


class Rng:
    """SplitMix64, bit for bit as the Rust bench's."""

    __slots__ = ("state",)

    def __init__(self, seed: int) -> None:
        self.state = seed

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def below(self, n: int) -> int:
        return self.next() % n

    def hex256(self) -> str:
        return "".join(f"{self.next():016x}" for _ in range(4))


def base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = []
    while True:
        out.append(digits[n % 36])
        n //= 36
        if n == 0:
            break
    return "".join(reversed(out))


def target(path: str, length: int, sha256: str) -> tuple[str, TargetFile]:
    return path, TargetFile(length, {"sha256": sha256}, path)


def wheel(rng: Rng, dist: str, version: str) -> tuple[str, TargetFile]:
    blake = rng.hex256()
    length = 10_000 + rng.below(50_000_000)
    sha = rng.hex256()
    path = f"files/{blake[:2]}/{blake[2:4]}/{blake[4:]}/{dist}-{version}-py3-none-any.whl"
    return target(path, length, sha)


def generate(n: int) -> list[tuple[str, TargetFile]]:
    rng = Rng(0x7475666162656E63)  # "tufabenc"
    out: list[tuple[str, TargetFile]] = []
    project = 0
    while len(out) < n:
        a = SYLLABLES[rng.below(32)]
        b = SYLLABLES[rng.below(32)]
        name = f"{a}-{b}-{base36(project)}"
        dist = name.replace("-", "_")
        project += 1
        length = 300 + rng.below(20_000)
        out.append(target(f"simple/{name}/index.html", length, rng.hex256()))
        if len(out) == n:
            break
        length = 400 + rng.below(40_000)
        out.append(target(f"simple/{name}/index.json", length, rng.hex256()))
        for j in range(1 + rng.below(11)):
            if len(out) == n:
                break
            version = f"{j // 4}.{j % 4}.{rng.below(10)}"
            out.append(wheel(rng, dist, version))
    return out


def peak_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


class Work:
    def __init__(self) -> None:
        self.sign = 0.0
        self.serialize = 0.0
        self.write = 0.0
        self.files = 0
        self.bytes = 0


SERIALIZER = JSONSerializer(compact=True)


def emit(md: Metadata, directory: str, name: str, work: Work) -> bytes:
    t = time.perf_counter()
    data = md.to_bytes(SERIALIZER)
    work.serialize += time.perf_counter() - t
    t = time.perf_counter()
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)
    work.write += time.perf_counter() - t
    work.files += 1
    work.bytes += len(data)
    return data


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--targets", type=lambda s: int(s.replace("_", "").replace(",", "")), default=1_000_000)
    p.add_argument("--out", help="write metadata here (must not exist yet) and keep it")
    p.add_argument("--expires", help="YYYY-MM-DDTHH:MM:SSZ (default: now + 1 day)")
    args = p.parse_args()

    if args.expires:
        expires = datetime.strptime(args.expires, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    else:
        expires = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=1)

    tmp = None
    if args.out:
        os.mkdir(args.out)
        directory = args.out
    else:
        tmp = tempfile.TemporaryDirectory(prefix="python-tuf-bench")
        directory = tmp.name

    # ---- Setup (untimed).
    t = time.perf_counter()
    targets = generate(args.targets)
    gen_secs = time.perf_counter() - t
    gen_rss = peak_rss_kib()
    signer = CryptoSigner(Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
    succinct = SuccinctRoles([signer.public_key.keyid], 1, BIT_LENGTH, NAME_PREFIX)
    bin_names = list(succinct.get_roles())

    # ---- Initial signing.
    start = time.perf_counter()
    split_targets: dict[str, dict[str, TargetFile]] = {name: {} for name in bin_names}
    for path, tf in targets:
        split_targets[succinct.get_role_for_target(path)][path] = tf
    del targets
    split = time.perf_counter() - start

    work = Work()
    bins: dict[str, Metadata[Targets]] = {}
    bin_sizes = []
    for name in bin_names:
        t = time.perf_counter()
        md = Metadata(Targets(version=1, expires=expires, targets=split_targets[name]))
        md.sign(signer)
        work.sign += time.perf_counter() - t
        bin_sizes.append(len(emit(md, directory, f"1.{name}.json", work)))
        bins[name] = md
    del split_targets

    t = time.perf_counter()
    meta = {"targets.json": MetaFile(1), "bins.json": MetaFile(1)}
    for name in bin_names:
        meta[f"{name}.json"] = MetaFile(bins[name].signed.version)
    snapshot = Metadata(Snapshot(version=1, expires=expires, meta=meta))
    snapshot.sign(signer)
    work.sign += time.perf_counter() - t
    snapshot_bytes = emit(snapshot, directory, "1.snapshot.json", work)
    t = time.perf_counter()
    timestamp = Metadata(
        Timestamp(version=1, expires=expires, snapshot_meta=MetaFile.from_data(1, snapshot_bytes, ["sha256"]))
    )
    timestamp.sign(signer)
    work.sign += time.perf_counter() - t
    emit(timestamp, directory, "timestamp.json", work)
    initial = time.perf_counter() - start
    initial_rss = peak_rss_kib()
    bin_sizes.sort()
    median_bin = bin_sizes[len(bin_sizes) // 2]

    # ---- Incremental publish of one new target.
    new_path, new_file = wheel(Rng(0x6E65777461726774), "tufa_bench_new", "1.0.0")  # "newtargt"
    start = time.perf_counter()
    inc = Work()
    t = time.perf_counter()
    name = succinct.get_role_for_target(new_path)
    md = bins[name]
    md.signed.targets[new_path] = new_file
    md.signed.version += 1
    md.sign(signer)
    inc.sign += time.perf_counter() - t
    inc_bin_bytes = emit(md, directory, f"{md.signed.version}.{name}.json", inc)
    t = time.perf_counter()
    snapshot.signed.meta[f"{name}.json"] = MetaFile(md.signed.version)
    snapshot.signed.version += 1
    snapshot.sign(signer)
    inc.sign += time.perf_counter() - t
    snapshot2_bytes = emit(snapshot, directory, f"{snapshot.signed.version}.snapshot.json", inc)
    t = time.perf_counter()
    timestamp.signed.snapshot_meta = MetaFile.from_data(snapshot.signed.version, snapshot2_bytes, ["sha256"])
    timestamp.signed.version += 1
    timestamp.sign(signer)
    inc.sign += time.perf_counter() - t
    emit(timestamp, directory, "timestamp.json", inc)
    incremental = time.perf_counter() - start
    end_rss = peak_rss_kib()

    # ---- Report (same columns as the Rust bench).
    label = f"python-tuf {tuf.__version__} (CPython {platform.python_version()})"
    n = args.targets

    def mib(kib: int) -> str:
        return f"{kib / 1024:.0f}"

    print(
        "| implementation | step | targets | wall s | split s | build+sign s | serialize s | write s | files "
        "| bytes written | snapshot.json bytes | median bin bytes | peak RSS MiB |"
    )
    print("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    print(f"| {label} | generate targets (setup, untimed) | {n} | {gen_secs:.2f} | | | | | | | | | {mib(gen_rss)} |")
    print(
        f"| {label} | initial signing | {n} | {initial:.2f} | {split:.2f} | {work.sign:.2f} | {work.serialize:.2f} "
        f"| {work.write:.2f} | {work.files} | {work.bytes} | {len(snapshot_bytes)} | {median_bin} | {mib(initial_rss)} |"
    )
    print(
        f"| {label} | incremental: 1 new target | {n} | {incremental:.2f} | | {inc.sign:.2f} | {inc.serialize:.2f} "
        f"| {inc.write:.2f} | {inc.files} | {inc.bytes} | {len(snapshot2_bytes)} | {len(inc_bin_bytes)} | {mib(end_rss)} |"
    )
    # Diagnostic (not in the table): what build+sign is made of, re-done over every bin.
    canonical = CanonicalJSONSerializer()
    t_canon = t_sign = 0.0
    signed_len = 0
    for md in bins.values():
        t = time.perf_counter()
        payload = canonical.serialize(md.signed)
        t_canon += time.perf_counter() - t
        t = time.perf_counter()
        signer.sign(payload)
        t_sign += time.perf_counter() - t
        signed_len += len(payload)
    print(
        f"Breakdown of build+sign, {label} (re-measured over all bins after the run): "
        f"canonical JSON of `signed` (to_dict + encode_canonical) {t_canon:.2f} s, "
        f"ed25519 over {signed_len // 1_000_000} MB {t_sign:.2f} s."
    )
    print(
        f"[python] targets={n} dir={directory} expires={expires:%Y-%m-%dT%H:%M:%SZ} "
        f"new target {new_path} -> {name}",
        file=sys.stderr,
    )
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
