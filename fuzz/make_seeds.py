#!/usr/bin/env python3
"""Writes the committed seed corpora under fuzz/corpus/<target>/seed-*.

Seeds come from real files of Debian packages on this machine (the host's /bin, qemu-user-static,
the busybox fixtures of tests/ under /var/cache/execguard-fixtures) and from the command lines,
configurations and binfmt_misc entries execguard meets. Binaries are truncated to their first
4 KiB: the program headers and PT_INTERP of every one of them lie there, and the classify target
can make the file claim its real size (control byte 1) so that "segments past the end" is not
the only path. Missing sources are skipped. Rerun after changing a target's input format.
"""

import glob
import json
import os
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
ID = "8f2b4c6d0e1a3b5c7d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e"
HEAD = 4096


def head(path, n=HEAD):
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except OSError:
        return None


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def sparse_byte(size):
    """Control byte 1 of classify: claim at least `size` bytes (1 << (b % 41) added)."""
    for b in range(205, 246):
        if (1 << (b % 41)) >= size:
            return b
    return 245


ELF_SOURCES = [
    ("ls-x86_64-dyn", "/bin/ls"),
    ("busybox-x86_64", "/bin/busybox"),
    ("ld-linux-x86_64", "/lib64/ld-linux-x86-64.so.2"),
    ("libc-so", "/usr/lib/x86_64-linux-gnu/libc.so.6"),
    ("crt1-o-rel", "/usr/lib/x86_64-linux-gnu/crt1.o"),
    ("qemu-aarch64-static-pie", "/usr/bin/qemu-aarch64-static"),
    ("busybox-arm64-static", "/var/cache/execguard-fixtures/arm64/bin/busybox"),
    ("busybox-arm64-dyn", "/var/cache/execguard-fixtures/arm64-dyn/bin/busybox"),
    ("busybox-armhf", "/var/cache/execguard-fixtures/armhf/bin/busybox"),
    ("busybox-ppc64el", "/var/cache/execguard-fixtures/ppc64el/bin/busybox"),
    ("busybox-s390x-be", "/var/cache/execguard-fixtures/s390x/bin/busybox"),
]

TEXT_SEEDS = {
    "sh-script": b"#!/bin/sh\nset -e\nexec /app \"$@\"\n",
    "env-python-crlf": b"#!/usr/bin/env python3\r\nprint('hi')\r\n",
    "bom-shebang": b"\xef\xbb\xbf#!/bin/bash\necho\n",
    "blank-then-shebang": b"\n  #!/bin/sh\necho\n",
    "hash-space-bang": b"# !/bin/sh\necho\n",
    "no-newline": b"#!/bin/sh -e",
    "git-lfs": b"version https://git-lfs.github.com/spec/v1\noid sha256:"
    + b"4d7a" * 16
    + b"\nsize 12345678\n",
    "html": b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head></html>\n",
    "zeros": b"\0" * 512,
}


def classify_seeds():
    for name, path in ELF_SOURCES:
        data = head(path)
        if data is None:
            print("skip", path, file=sys.stderr)
            continue
        size = os.path.getsize(path)
        # Header 4096, the real size claimed, whole reads.
        write("classify", name, bytes([7, sparse_byte(size), 0]) + data)
    if (d := head("/bin/ls")) is not None:
        # Short header, short reads, an older kernel's program header limit.
        write("classify", "ls-short-reads", bytes([2, 0, 0x41]) + d)
    for name, data in TEXT_SEEDS.items():
        write("classify", name, bytes([7, 0, 0]) + data)
    for name, path in [("gzip", "/usr/share/man/man1/ls.1.gz"), ("gzip", "/etc/alternatives/createuser.1.gz")]:
        if (d := head(path, 512)) is not None:
            write("classify", name, bytes([7, 0, 0]) + d)
            break


def shebang_seeds():
    for name, data in TEXT_SEEDS.items():
        write("shebang", name, data)
    write("shebang", "long-line", b"#!/usr/bin/" + b"x" * 300 + b"\n")
    write("shebang", "nul-in-arg", b"#!/bin/sh a \0 b\n")
    write("shebang", "only-bang", b"#!")
    write("shebang", "tabs", b"#!\t/bin/bash\t-x\t \n")


def reg_lines():
    lines = []
    for p in sorted(glob.glob("/usr/lib/binfmt.d/*.conf")):
        try:
            for line in open(p, "rb").read().splitlines():
                if line and not line.startswith(b"#"):
                    lines.append((os.path.basename(p)[:-5], line))
        except OSError:
            pass
    return lines


ELF_FOR = {
    "qemu-aarch64": "/var/cache/execguard-fixtures/arm64/bin/busybox",
    "qemu-arm": "/var/cache/execguard-fixtures/armhf/bin/busybox",
    "qemu-ppc64le": "/var/cache/execguard-fixtures/ppc64el/bin/busybox",
    "qemu-s390x": "/var/cache/execguard-fixtures/s390x/bin/busybox",
}


def binfmt_seeds():
    lines = reg_lines()
    keep = {n: l for n, l in lines if n in ELF_FOR or n in ("qemu-riscv64", "qemu-mips", "python3.11")}
    for n, line in keep.items():
        write("binfmt", "register-" + n, b"\x01" + line)
    write("binfmt", "register-ext", b"\x01:egtest:E::egtestext::/bin/false:\n")
    write("binfmt", "register-delim", b"\x01#odd#M#2#\\x7fELF##/usr/bin/int:x#PC")
    entries = [
        ("qemu-aarch64", b"enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: POF\noffset 0\n"
         b"magic 7f454c460201010000000000000000000200b700\nmask ffffffffffffff00fffffffffffffffffeffffff\n"),
        ("x", b"disabled\ninterpreter /bin/false\nflags: \nextension .egtestext\n"),
        ("x", b"enabled\ninterpreter /a\nb\nflags: F\noffset 250\nmagic 010203040506\n"),
    ]
    names = ["qemu-aarch64", "x"]
    for i, (name, text) in enumerate(entries):
        write("binfmt", "entry-%d" % i, bytes([0, names.index(name)]) + text)
    for n, elf in ELF_FOR.items():
        if n not in keep or (h := head(elf, 256)) is None:
            continue
        regs = [keep[n]] + [l for m, l in keep.items() if m != n][:2]
        data = bytes([2, len(regs)])
        for l in regs:
            data += struct.pack("<H", len(l)) + l
        path = b"/bin/busybox"
        data += bytes([len(path)]) + path + h
        write("binfmt", "match-" + n, data)
    ext = b":egtest:E::egtestext::/bin/false:"
    write("binfmt", "match-ext", bytes([3, 1]) + struct.pack("<H", len(ext)) + ext + bytes([14]) + b"/app/x.egtestext" + b"data")


def argv(s):
    return "\0".join(s.split()).encode()


def scan_seeds():
    b = "/run/containerd/io.containerd.runtime.v2.task/k8s.io/" + ID
    seeds = {
        "containerd-create": f"--root /run/containerd/runc/k8s.io --log {b}/log.json --log-format json "
        f"create --bundle {b} --pid-file {b}/init.pid {ID}",
        "containerd-globals": f"--root /run/containerd/runc/default --debug --log {b}/log.json "
        f"--log-format json --criu /usr/sbin/criu --systemd-cgroup --rootless=true create --bundle /b "
        f"--pid-file /b/init.pid --no-pivot --no-new-keyring --preserve-fds 2 {ID}",
        "docker-create-tty": f"--root /var/run/docker/runtime-runc/moby --log {b}/log.json --log-format json "
        f"create --bundle {b} --pid-file {b}/init.pid --console-socket /tmp/pty1/pty.sock {ID}",
        "exec-process": f"--root /run/runc exec --process /tmp/runc-process123 --detach --pid-file /p {ID}",
        "exec-verbatim": f"exec -t {ID} sh -c x",
        "own-flags": f"--execguard-runtime /usr/sbin/runc --execguard-config=/etc/eg.json --execguard-version "
        f"run -b /b -d {ID}",
        "own-trailing": "--execguard-runtime",
        "crun-log": f"--log journald:x --cgroup-manager systemd run -f /c.json --bundle= {ID}",
        "ps": f"ps {ID} -ef",
        "kill": f"kill {ID} 9",
        "double-dash": "--root /r -- create -b /b ID",
        "version": "-v",
    }
    for name, line in seeds.items():
        write("scan", name, argv(line))


def config_seeds():
    ex = os.path.join(HERE, "..", "config.example.json")
    if (d := head(ex, 65536)) is not None:
        write("config", "example", d)
    write("config", "enforce", json.dumps({"mode": "enforce", "runtime": "/usr/bin/crun",
                                           "silence": ["emulated", "shebang-crlf"],
                                           "log": {"path": None}}).encode())
    write("config", "bad-key", b'{"mdoe": "warn"}')
    write("config", "bad-code", b'{"silence": ["nope"], "check_timeout_ms": 0}')


def spec_seeds():
    import subprocess
    import tempfile
    runc = shutil.which("runc")
    if runc:
        with tempfile.TemporaryDirectory() as t:
            if subprocess.run([runc, "spec", "--bundle", t], capture_output=True).returncode == 0:
                d = open(os.path.join(t, "config.json"), "rb").read()
                write("spec", "runc-spec", b"\0" + d)
                v = json.loads(d)
                v["process"]["args"] = ["/usr/bin/app", "--flag"]
                v["root"]["path"] = "../rootfs"
                v["mounts"].append({"destination": "/data", "type": "bind", "source": "data",
                                    "options": ["rbind", "noexec"]})
                v["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
                v["annotations"] = {"run.oci.handler": "krun"}
                write("spec", "edited", b"\0" + json.dumps(v).encode())
                write("spec", "process-file", b"\1" + json.dumps(v["process"]).encode())
    write("spec", "lenient", b'\0{"ociVersion": 1, "process": {"args": "x", "user": {"uid": -1}}}')
    write("spec", "array", b"\0[1, 2]")


def main():
    for t in ["classify", "shebang", "binfmt", "scan", "config", "spec"]:
        for old in glob.glob(os.path.join(CORPUS, t, "seed-*")):
            os.remove(old)
    classify_seeds()
    shebang_seeds()
    binfmt_seeds()
    scan_seeds()
    config_seeds()
    spec_seeds()


if __name__ == "__main__":
    main()
