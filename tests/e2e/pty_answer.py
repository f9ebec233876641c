#!/usr/bin/env python3
"""Runs a command on a pseudo-terminal and answers its prompts like a key holder at the keyboard.

usage: pty_answer.py --passphrase TEXT [--confirm WORD] [--timeout SECS] -- COMMAND [ARGS...]

The runbook test (tests/it/runbook.rs) runs every line of docs/KEY-CEREMONY.md through this, so
`tufa-ceremony keygen` and `sign` get their passphrases and confirmations from a terminal, the
production path, and not from the drill-only variable or files:

- a prompt whose last line mentions "passphrase" and ends with ":" is answered with TEXT;
- a prompt ending in `Type "yes":` is answered with WORD (default `yes`).

Everything the command writes to the terminal (stdout and stderr, merged as a terminal shows
them) is copied to this script's stdout. Exits with the command's exit code, or 124 when it
outlives the timeout (it is killed).
"""

import argparse
import os
import pty
import re
import select
import signal
import sys
import time

PASSPHRASE_PROMPT = re.compile(rb"passphrase[^\n]*:\s*$", re.IGNORECASE)
CONFIRM_PROMPT = re.compile(rb'type "yes"[^\n]*:\s*$', re.IGNORECASE)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--passphrase", required=True)
    ap.add_argument("--confirm", default="yes")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        ap.error("no command given")

    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execvp(command[0], command)
        finally:
            os._exit(127)

    deadline = time.monotonic() + args.timeout
    since_answer = b""
    out = sys.stdout.buffer
    while True:
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            out.write(f"\n[pty_answer: killed after {args.timeout:.0f} s]\n".encode())
            out.flush()
            return 124
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the command closed the terminal (it exited)
            data = b""
        if not data:
            break
        out.write(data)
        out.flush()
        since_answer += data
        # Only the last line can be a prompt waiting for input.
        last_line = since_answer.rsplit(b"\n", 1)[-1]
        if PASSPHRASE_PROMPT.search(last_line):
            os.write(fd, args.passphrase.encode() + b"\n")
            since_answer = b""
        elif CONFIRM_PROMPT.search(last_line):
            os.write(fd, args.confirm.encode() + b"\n")
            since_answer = b""
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
