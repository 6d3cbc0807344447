#!/usr/bin/env python3
"""Build a tiny busybox image locally (no registry, no network).

usage: mkimage.py OUTDIR [NAME]

Writes into OUTDIR:
  rootfs.tar  - a plain root filesystem (for `podman import`)
  image.tar   - an image archive holding both an OCI image layout
                (oci-layout, index.json, blobs/sha256/...) and a docker-archive
                manifest.json, so `ctr images import` and `podman load` accept it.
The root filesystem is /bin/busybox (from busybox-static) plus one symlink per
applet, and the empty directories a container needs.
"""
import hashlib, io, json, os, subprocess, sys, tarfile

BUSYBOX = "/bin/busybox"


def tarinfo(name, **kw):
    ti = tarfile.TarInfo(name)
    ti.mtime = 0
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    for k, v in kw.items():
        setattr(ti, k, v)
    return ti


def rootfs_bytes():
    applets = subprocess.run([BUSYBOX, "--list"], check=True, capture_output=True,
                             text=True).stdout.split()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for d in ["bin", "dev", "etc", "proc", "sys", "tmp", "root", "run", "var"]:
            tf.addfile(tarinfo(d + "/", type=tarfile.DIRTYPE,
                               mode=0o1777 if d == "tmp" else 0o755))
        data = open(BUSYBOX, "rb").read()
        tf.addfile(tarinfo("bin/busybox", size=len(data), mode=0o755), io.BytesIO(data))
        for a in sorted(set(applets)):
            if a == "busybox":
                continue
            tf.addfile(tarinfo("bin/" + a, type=tarfile.SYMTYPE, linkname="busybox",
                               mode=0o777))
        for name, text in [("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
                           ("etc/group", "root:x:0:\n")]:
            b = text.encode()
            tf.addfile(tarinfo(name, size=len(b), mode=0o644), io.BytesIO(b))
    return buf.getvalue()


def main():
    out = sys.argv[1]
    name = sys.argv[2] if len(sys.argv) > 2 else "localhost/bulkhead-busybox:test"
    os.makedirs(out, exist_ok=True)
    layer = rootfs_bytes()
    with open(os.path.join(out, "rootfs.tar"), "wb") as f:
        f.write(layer)

    def blob(b):
        return "sha256:" + hashlib.sha256(b).hexdigest(), b

    layer_digest, _ = blob(layer)
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created_by": "tests/engines/mkimage.py"}],
    }, sort_keys=True).encode()
    config_digest, _ = blob(config)
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest, "size": len(layer)}],
    }, sort_keys=True).encode()
    manifest_digest, _ = blob(manifest)
    index = json.dumps({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": manifest_digest, "size": len(manifest),
                       "annotations": {"io.containerd.image.name": name,
                                       "org.opencontainers.image.ref.name": name}}],
    }, sort_keys=True).encode()
    docker_manifest = json.dumps([{
        "Config": "blobs/sha256/" + config_digest[7:],
        "RepoTags": [name],
        "Layers": ["blobs/sha256/" + layer_digest[7:]],
    }]).encode()

    with tarfile.open(os.path.join(out, "image.tar"), "w", format=tarfile.PAX_FORMAT) as tf:
        def add(path, b, mode=0o644):
            tf.addfile(tarinfo(path, size=len(b), mode=mode), io.BytesIO(b))
        tf.addfile(tarinfo("blobs/", type=tarfile.DIRTYPE, mode=0o755))
        tf.addfile(tarinfo("blobs/sha256/", type=tarfile.DIRTYPE, mode=0o755))
        for d, b in [(layer_digest, layer), (config_digest, config),
                     (manifest_digest, manifest)]:
            add("blobs/sha256/" + d[7:], b)
        add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add("index.json", index)
        add("manifest.json", docker_manifest)
    print(name)


if __name__ == "__main__":
    main()
