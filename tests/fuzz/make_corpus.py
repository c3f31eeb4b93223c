#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets (tests/fuzz/corpus/<target>/).

    tests/fuzz/make_corpus.py [--meshtrain build/launcher/meshtrain]

The files are committed; run this again after changing it. Seeds are small
valid inputs (one TF_CONFIG per role, the configs/*.json job configs, RPC
requests that register and use the coordination service and the ps, frame
headers and hellos the transports send) and hostile ones: arrays and objects
nested 63, 64 and 65 deep (ParseJson's limit is 64) and ~50,000 deep (a
103 KB TF_CONFIG nested 51,500 deep once crashed the parser), huge numbers,
invalid UTF-8, control characters, truncations and lengths that overflow.
With --meshtrain, the checkpoint seeds are also made the real way: a tiny job
is trained and its index.json and safetensors files are copied (one_device and
parameter_server, so manifests with one part and with ps parts).
"""

import argparse
import json
import os
import shutil
import struct
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")


def write(target, name, data):
    directory = os.path.join(CORPUS, target)
    os.makedirs(directory, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def nested(depth, kind):
    """A value nested `depth` levels: [[...]] or {"a":{"a":...}}."""
    if kind == "array":
        return "[" * depth + "1" + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


def hostile_json(target, wrap):
    """Inputs every JSON parser must refuse cleanly; `wrap(text)` puts a value
    where the document takes a nested one."""
    for depth in (63, 64, 65):
        for kind in ("array", "object"):
            write(target, f"depth-{depth}-{kind}.json", wrap(nested(depth, kind)))
    # The crash of issue 20: 51,500 levels of arrays (~103 KB), and objects as
    # deep as fits in ~110 KB.
    write(target, "depth-51500-array.json", wrap(nested(51500, "array")))
    write(target, "depth-18000-object.json", wrap(nested(18000, "object")))
    write(target, "depth-50000-unclosed.json", "[" * 50000)
    write(target, "huge-numbers.json", wrap("[1e400, -1e400, 99999999999999999999999999, "
                                            "-9223372036854775809, 18446744073709551616, 0.0e-999]"))
    write(target, "invalid-utf8.json", wrap(b'["\xff\xfe", "\xc3\x28", "\xed\xa0\x80"]'.decode(
        "utf-8", "surrogateescape")))
    write(target, "control-characters.json", wrap('["a\\u0000b", "\\u001b[31m", "tab\\tline\\n"]'))
    write(target, "raw-control.json", wrap('["a\x01\x02\x1b[0m"]'))
    write(target, "empty.json", "")
    write(target, "null.json", "null")
    write(target, "bom.json", "\ufeff{}")
    write(target, "truncated-string.json", '{"a": "unterminated')
    write(target, "long-key.json", "{" + json.dumps("k" * 5000) + ": 1}")


# --- TF_CONFIG ---------------------------------------------------------------

CLUSTER = {
    "chief": ["host0:2222"],
    "worker": ["host1:2222", "host2:2222"],
    "ps": ["host3:2222"],
    "evaluator": ["host4:2222"],
}


def tf_config():
    t = "tf_config"
    for job, index in (("chief", 0), ("worker", 0), ("worker", 1), ("ps", 0), ("evaluator", 0)):
        write(t, f"{job}-{index}.json", json.dumps({"cluster": CLUSTER,
                                                    "task": {"type": job, "index": index}}))
    write(t, "workers-only.json", json.dumps({
        "cluster": {"worker": ["10.0.0.1:2222", "10.0.0.2:2222"]},
        "task": {"type": "worker", "index": 1, "trial": 3},
        "rpc_layer": "grpc", "environment": "cloud"}))
    write(t, "ipv6.json", json.dumps({
        "cluster": {"chief": ["[::1]:2222"], "worker": ["[fe80::1]:2223"]},
        "task": {"type": "chief", "index": 0}, "rpc_layer": "tcp"}))
    write(t, "index-out-of-range.json", json.dumps({"cluster": CLUSTER,
                                                    "task": {"type": "worker", "index": 7}}))
    write(t, "index-huge.json", '{"cluster": {"worker": ["h:1"]}, '
          '"task": {"type": "worker", "index": 1e400}}')
    write(t, "index-negative.json", '{"cluster": {"worker": ["h:1"]}, '
          '"task": {"type": "worker", "index": -9223372036854775808}}')
    write(t, "port-overflow.json", json.dumps({"cluster": {"worker": ["h:99999999999"]},
                                               "task": {"type": "worker", "index": 0}}))
    write(t, "unknown-job.json", json.dumps({"cluster": {"master": ["h:1"]},
                                             "task": {"type": "master", "index": 0}}))
    write(t, "address-control.json", json.dumps({"cluster": {"worker": ["h\u0000\u001b:1"]},
                                                 "task": {"type": "worker", "index": 0}}))
    hostile_json(t, lambda v: '{"cluster": {"worker": ["h:1"]}, "task": {"type": "worker", '
                              '"index": 0}, "environment": ' + v + "}")
    write(t, "top-level-array.json", nested(51500, "array"))


# --- job config --------------------------------------------------------------

def job_config():
    t = "job_config"
    configs = os.path.join(ROOT, "configs")
    for name in sorted(os.listdir(configs)):
        if name.endswith(".json"):
            shutil.copy(os.path.join(configs, name), os.path.join(CORPUS, t, name))
    small = {"name": "s", "data": {"dataset": "synthetic", "features": 3, "num_classes": 2},
             "model": {"type": "mlp", "hidden_units": [4]},
             "optimizer": {"type": "sgd", "learning_rate": 0.1, "momentum": 0.9},
             "training": {"global_batch_size": 8, "epochs": 1},
             "strategy": {"name": "mirrored"}}
    write(t, "small.json", json.dumps(small))
    write(t, "negative-batch.json", json.dumps(dict(small, training={"global_batch_size": -1})))
    write(t, "huge-batch.json", json.dumps(small).replace('"global_batch_size": 8',
                                                          '"global_batch_size": 1e30'))
    write(t, "typo.json", json.dumps(dict(small, optimizer={"type": "sgd", "learning_rat": 1})))
    layers = {"type": "sequential", "input_shape": [3, 1],
              "layers": [{"type": "reshape", "target_shape": [-1]}, {"type": "dense", "units": 2}]}
    write(t, "sequential.json", json.dumps(dict(small, model=layers)))
    write(t, "sequential-huge.json", json.dumps(dict(small, model=dict(
        layers, input_shape=[4611686018427387904, 4], layers=[{"type": "dense", "units": 1 << 62}]))))
    hostile_json(t, lambda v: '{"name": ' + v + "}")


# --- checkpoint manifest and safetensors --------------------------------------

def manifest(files, variables):
    return json.dumps({
        "files": files, "final": False, "format": "meshtrain-checkpoint",
        "input": {"epoch": 0, "step": 1, "tasks": {}}, "meta": {}, "num_ps": 0,
        "num_workers": 1, "optimizer": "sgd", "replicas_in_sync": 1, "seed": 1,
        "slot_names": [], "step": 1, "strategy": "one_device", "unix_micros": 0,
        "variables": variables, "version": 1}, indent=1)


def checkpoint_manifest():
    t = "checkpoint_manifest"
    part = {"file": "model.safetensors", "key": "w", "row_offset": 0, "rows": 2, "updates": 0,
            "slots": {}}
    variable = {"name": "w", "dtype": "float32", "shape": [2, 3], "partitions": [part]}
    files = [{"name": "model.safetensors", "bytes": 100, "crc32c": "0000abcd"}]
    write(t, "hand-written.json", manifest(files, [variable]))
    write(t, "rows-overflow.json", manifest(files, [dict(variable, partitions=[
        dict(part, row_offset=9223372036854775807, rows=1)])]))
    write(t, "shape-overflow.json", manifest(files, [dict(variable, shape=[4294967296, 4294967296, 16])]))
    write(t, "negative-rows.json", manifest(files, [dict(variable, partitions=[dict(part, rows=-2)])]))
    write(t, "bad-crc.json", manifest([dict(files[0], crc32c="zz\u0000")], [variable]))
    write(t, "missing-file.json", manifest([], [variable]))
    hostile_json(t, lambda v: manifest(files, [variable])[:-1] + ', "extra": ' + v + "}")


def safetensors(header, data=b""):
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def safetensors_header():
    t = "safetensors_header"
    floats = struct.pack("<6f", 1, 2, 3, 4, 5, 6)
    good = {"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
            "__metadata__": {"format": "pt"}}
    write(t, "hand-written.safetensors", safetensors(good, floats))
    write(t, "empty-header.safetensors", safetensors({}))
    write(t, "length-overflow.safetensors", struct.pack("<Q", 2**64 - 1) + b"{}")
    write(t, "length-past-end.safetensors", struct.pack("<Q", 1000) + b"{}")
    write(t, "short.safetensors", b"\x02\x00\x00")
    write(t, "offsets-overflow.safetensors", safetensors(
        {"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [2**64 - 8, 16]}}, floats))
    write(t, "shape-overflow.safetensors", safetensors(
        {"w": {"dtype": "F32", "shape": [2**62, 4], "data_offsets": [0, 0]}}))
    write(t, "overlap.safetensors", safetensors(
        {"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]},
         "b": {"dtype": "F32", "shape": [3], "data_offsets": [8, 20]}}, floats))
    write(t, "metadata-not-string.safetensors", safetensors(
        {"__metadata__": {"k": [1, 2]}}))
    for depth in (63, 64, 65):
        write(t, f"depth-{depth}.safetensors",
              struct.pack("<Q", depth * 2 + 1) + nested(depth, "array").encode())
    deep = ('{"w":' + nested(51500, "array") + "}").encode()
    write(t, "depth-51500.safetensors", struct.pack("<Q", len(deep)) + deep)
    deep = nested(18000, "object").encode()
    write(t, "depth-18000-object.safetensors", struct.pack("<Q", len(deep)) + deep)


def real_checkpoints(meshtrain):
    """Trains a tiny job under two strategies and copies their checkpoints."""
    job = {"name": "tiny",
           "data": {"dataset": "synthetic", "train_examples": 64, "test_examples": 16,
                    "features": 3, "num_classes": 2},
           "model": {"type": "mlp", "hidden_units": [4]},
           "optimizer": {"type": "adam", "learning_rate": 0.01},
           "training": {"global_batch_size": 16, "epochs": 1, "seed": 3},
           "strategy": {"name": "one_device"}}
    with tempfile.TemporaryDirectory() as tmp:
        config = os.path.join(tmp, "tiny.json")
        with open(config, "w") as f:
            json.dump(job, f)
        runs = {"one_device": [meshtrain, "train"],
                "ps": [meshtrain, "launch", "--workers", "2", "--ps", "1",
                       "--strategy", "parameter_server"]}
        for name, command in runs.items():
            model_dir = os.path.join(tmp, name)
            subprocess.run(command + ["--config", config, "--model-dir", model_dir],
                           check=True, capture_output=True, timeout=300)
            ckpt = sorted(d for d in os.listdir(model_dir) if d.startswith("ckpt-"))[-1]
            for file in os.listdir(os.path.join(model_dir, ckpt)):
                path = os.path.join(model_dir, ckpt, file)
                if file == "index.json":
                    shutil.copy(path, os.path.join(CORPUS, "checkpoint_manifest",
                                                   f"real-{name}.json"))
                elif file.endswith(".safetensors"):
                    shutil.copy(path, os.path.join(CORPUS, "safetensors_header",
                                                   f"real-{name}.safetensors"))


# --- RPC requests ------------------------------------------------------------
# Protobuf wire format, by hand (no protobuf module needed).

def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field_varint(number, value):
    return varint(number << 3) + varint(value)


def field_fixed64(number, value):
    return varint(number << 3 | 1) + struct.pack("<Q", value & (2**64 - 1))


def field_bytes(number, value):
    if isinstance(value, str):
        value = value.encode()
    return varint(number << 3 | 2) + varint(len(value)) + value


def task_ref(job, index):
    return field_bytes(1, job) + field_varint(2, index)


# Method numbers of rpc_requests_fuzz.cc (kMethods order).
(REGISTER, HEARTBEAT, REPORT_ERROR, BARRIER, KV_SET, KV_GET, KV_DELETE, SHUTDOWN, DISCONNECT,
 SEND_CHUNK, PULL_DENSE, PUSH_DENSE, PULL_ROWS, PUSH_ROWS, LEAVE, STATS, SAVE_SHARDS,
 RESTORE_SHARDS) = range(18)

FINGERPRINT = "chief=127.0.0.1:1;worker=127.0.0.1:2"


def call(method, request):
    return bytes([method]) + struct.pack("<H", len(request)) + request


def register(job, incarnation=7, fingerprint=FINGERPRINT):
    return call(REGISTER, field_bytes(1, task_ref(job, 0)) + field_fixed64(2, incarnation) +
                field_bytes(3, "boot:host") + field_bytes(4, fingerprint) + field_varint(5, 1))


def sender(job="worker"):
    return field_bytes(1, task_ref(job, 0)) + field_fixed64(2, 7)


def partition_ref(variable, partition=0):
    return field_bytes(1, variable) + field_varint(2, partition)


def ps_tensor(variable, shape, floats, version=0):
    data = struct.pack(f"<{len(floats)}f", *floats)
    out = field_bytes(1, partition_ref(variable)) + field_bytes(2, "float32")
    for d in shape:
        out += field_varint(3, d)
    return out + field_bytes(4, data) + field_varint(5, version)


def chunk(payload, offset=0, total=None, payload_bytes=None, cuts=b"\x05\x40"):
    header = (field_bytes(1, "ring") + field_bytes(2, task_ref("worker", 1)) +
              field_fixed64(3, 9) + field_bytes(4, task_ref("worker", 0)) + field_fixed64(5, 7) +
              field_varint(6, 0) +
              field_varint(7, len(payload) if payload_bytes is None else payload_bytes) +
              field_varint(8, offset) +
              field_varint(9, offset + len(payload) if total is None else total))
    return cuts + field_bytes(1, header) + field_bytes(2, payload)


def rpc_requests():
    t = "rpc_requests"
    both = register("chief") + register("worker")
    write(t, "register-both.bin", both)
    write(t, "register-wrong-fingerprint.bin", register("worker", fingerprint="x=1"))
    write(t, "register-unknown-task.bin", call(REGISTER, field_bytes(1, task_ref("ps", 99))))
    write(t, "register-incarnation-0.bin", register("worker", incarnation=0))
    write(t, "heartbeat.bin", both + call(HEARTBEAT, sender() + field_varint(3, 0)))
    write(t, "report-error.bin", both + call(REPORT_ERROR, sender() + field_varint(3, 14) +
                                             field_bytes(4, "peer died\n\x00\xff")))
    write(t, "report-error-bad-code.bin", both + call(REPORT_ERROR, sender() +
                                                      field_varint(3, 2**31 + 5)))
    write(t, "barrier.bin", both + call(BARRIER, sender() + field_bytes(3, "b1") +
                                        field_bytes(4, task_ref("worker", 0)) +
                                        field_bytes(4, task_ref("chief", 0)) + field_varint(5, 1)))
    write(t, "barrier-not-participant.bin", both + call(BARRIER, sender() + field_bytes(3, "b") +
                                                        field_bytes(4, task_ref("chief", 0))))
    write(t, "kv.bin", both + call(KV_SET, sender() + field_bytes(3, "k") + field_bytes(4, "v")) +
          call(KV_GET, sender() + field_bytes(3, "k")) +
          call(KV_DELETE, sender() + field_bytes(3, "k")) +
          call(KV_GET, sender() + field_bytes(3, "k") + field_varint(4, 2**63 - 1)))
    write(t, "shutdown-disconnect.bin", both + call(SHUTDOWN, sender()) + call(DISCONNECT, sender()))
    write(t, "recovery.bin", both + call(REPORT_ERROR, sender() + field_varint(3, 14)) +
          register("worker", incarnation=8) +
          call(REGISTER, field_bytes(1, task_ref("chief", 0)) + field_fixed64(2, 7) +
               field_bytes(4, FINGERPRINT) + field_varint(7, 1)))
    write(t, "truncated-varint.bin", call(HEARTBEAT, b"\x1a\xff\xff\xff"))
    write(t, "length-overflow.bin", b"\x00\xff\xff" + field_bytes(1, b"\x0a\xff\xff\xff\xff\x0f"))

    write(t, "chunk.bin", call(SEND_CHUNK, chunk(struct.pack("<4f", 1, 2, 3, 4))))
    write(t, "chunk-offset.bin", call(SEND_CHUNK, chunk(b"abcd", offset=12, total=16)))
    write(t, "chunk-empty.bin", call(SEND_CHUNK, chunk(b"", total=0)))
    write(t, "chunk-offset-overflow.bin", call(SEND_CHUNK, chunk(b"abcd", offset=2**64 - 2,
                                                                 total=8)))
    write(t, "chunk-payload-lies.bin", call(SEND_CHUNK, chunk(b"abcd", payload_bytes=2**63)))
    write(t, "chunk-header-only.bin", call(SEND_CHUNK, b"\x00\x00" + chunk(b"")[2:12]))

    kernel = ps_tensor("kernel", [3, 2], [0.5] * 6)
    write(t, "pull-dense.bin", call(PULL_DENSE, field_varint(1, 0) +
                                    field_bytes(2, partition_ref("kernel"))))
    write(t, "pull-dense-wait.bin", call(PULL_DENSE, field_varint(1, 1) +
                                         field_bytes(2, partition_ref("kernel")) +
                                         field_varint(3, 5)))
    write(t, "push-dense.bin", call(PUSH_DENSE, field_varint(1, 0) + field_bytes(2, kernel) +
                                    field_varint(3, 1)))
    write(t, "push-dense-bad-shape.bin", call(PUSH_DENSE, field_varint(1, 0) + field_bytes(
        2, ps_tensor("kernel", [2**62, 4], [1.0]))))
    write(t, "push-dense-twice.bin", call(PUSH_DENSE, field_varint(1, 1) + field_bytes(2, kernel) +
                                          field_bytes(2, kernel)))
    rows = struct.pack("<4f", 1, 2, 3, 4)
    table = field_bytes(2, partition_ref("table"))
    write(t, "pull-rows.bin", call(PULL_ROWS, field_varint(1, 0) + table + field_varint(3, 1) +
                                   field_varint(3, 7)))
    write(t, "pull-rows-out-of-range.bin", call(PULL_ROWS, field_varint(1, 0) + table +
                                                field_varint(3, 2**64 - 1)))
    write(t, "push-rows.bin", call(PUSH_ROWS, field_varint(1, 1) + table + field_varint(3, 2) +
                                   field_varint(3, 5) + field_bytes(4, rows)))
    write(t, "push-rows-repeated-id.bin", call(PUSH_ROWS, field_varint(1, 1) + table +
                                               field_varint(3, 2) + field_varint(3, 2) +
                                               field_bytes(4, rows)))
    # Regression: no rows once reached memcpy with a null pointer (UBSan).
    write(t, "push-rows-empty.bin", call(PUSH_ROWS, field_varint(1, 1) + table))
    write(t, "leave-stats.bin", call(LEAVE, field_varint(1, 1)) + call(STATS, b"") +
          call(LEAVE, field_varint(1, 2**31 - 1)))
    write(t, "save-shards.bin", call(SAVE_SHARDS, field_bytes(1, "/tmp/x/ckpt-1") +
                                     field_bytes(2, "ps-00000-of-00001.safetensors")))
    write(t, "save-shards-escape.bin", call(SAVE_SHARDS, field_bytes(1, "../../etc") +
                                            field_bytes(2, "../passwd")))
    write(t, "restore-shards.bin", call(RESTORE_SHARDS, field_bytes(1, "/proc/self/ckpt-1")))


# --- TCP frame headers and hellos, dense link headers --------------------------

FRAME, HELLO, HELLO_REPLY, DENSE_REQUEST, DENSE_REPLY = range(5)
JOB_ID = b"job-7f3a9c"
INCARNATION = 0x5EED5EED5EED5EED


def hello(rank=2, world=4, stream=0, streams=4, job=JOB_ID, incarnation=INCARNATION,
          magic=0x6C6C6568, version=2, flags=0):
    # struct TcpHello (runtime/transport/tcp_wire.h): 4 bytes of padding align
    # the incarnation after the flags.
    return struct.pack("<IIiiIIIxxxxQ", magic, version, rank, world, stream, streams, flags,
                       incarnation) + job.ljust(128, b"\0")[:128]


def tcp_frame():
    t = "tcp_frame"
    frame = lambda magic, seq, n, want_seq, want_n: bytes([FRAME]) + struct.pack(
        "<IIQIQ", magic, seq, n, want_seq, want_n)
    write(t, "frame.bin", frame(0x66706374, 3, 4096, 3, 4096))
    write(t, "frame-wrong-seq.bin", frame(0x66706374, 4, 4096, 3, 4096))
    write(t, "frame-length-overflow.bin", frame(0x66706374, 0, 2**64 - 1, 0, 16))
    write(t, "frame-bad-magic.bin", frame(0x12345678, 0, 0, 0, 0))
    write(t, "frame-truncated.bin", bytes([FRAME]) + b"tcpf\x01")
    awaited = struct.pack("<H", 0xFFFF)
    write(t, "hello.bin", bytes([HELLO]) + hello() + awaited)
    write(t, "hello-stale.bin", bytes([HELLO]) + hello(incarnation=1) + awaited)
    write(t, "hello-encryption-differs.bin", bytes([HELLO]) + hello(flags=1) + awaited)
    write(t, "hello-version-1.bin", bytes([HELLO]) + hello(version=1) + awaited)
    write(t, "hello-wrong-job.bin", bytes([HELLO]) + hello(job=b"job-\x1b[31m\xff\n") + awaited)
    write(t, "hello-unterminated-job.bin", bytes([HELLO]) + hello(job=b"J" * 128) + awaited)
    write(t, "hello-rank-negative.bin", bytes([HELLO]) + hello(rank=-2**31) + awaited)
    write(t, "hello-stream-overflow.bin", bytes([HELLO]) + hello(stream=2**32 - 1) + awaited)
    write(t, "hello-not-awaited.bin", bytes([HELLO]) + hello(rank=3, stream=3) + b"\0\0")
    reply = lambda accepted, rank, reason: bytes([HELLO_REPLY]) + struct.pack(
        "<IIIiQ", 0x6C6C6568, 1, accepted, rank, INCARNATION) + reason.ljust(192, b"\0")[:192]
    write(t, "hello-reply.bin", reply(1, 0, b""))
    write(t, "hello-reply-rejected.bin", reply(0, 0, b"stale incarnation (a stale process)"))
    write(t, "hello-reply-unterminated.bin", reply(0, 0, b"\xff\n" * 96))
    write(t, "hello-reply-wrong-rank.bin", reply(1, 5, b""))
    request = lambda kind, worker, n, min_version, timeout: bytes([DENSE_REQUEST]) + struct.pack(
        "<IIiiqq", 0x4B4E4C44, kind, worker, n, min_version, timeout) + b"\0" * 32
    write(t, "dense-pull.bin", request(1, 1, 3, 0, 0))
    write(t, "dense-push-pull.bin", request(2, 1, 3, 5, 30000))
    write(t, "dense-leave.bin", request(3, 1, 3, 0, 0))
    write(t, "dense-bad-kind.bin", request(2**32 - 1, 1, 3, 0, 0))
    write(t, "dense-timeout-overflow.bin", request(1, 1, 3, -2**63, 2**63 - 1))
    reply_header = lambda code, error_bytes, n: bytes([DENSE_REPLY]) + struct.pack(
        "<Iiii6q", 0x594C5044, code, error_bytes, n, 1, 1, 0, 0, 0, 0)
    write(t, "dense-reply.bin", reply_header(0, 0, 3))
    write(t, "dense-reply-error.bin", reply_header(14, 20, 3))
    write(t, "dense-reply-error-huge.bin", reply_header(2, 2**31 - 1, 3))
    write(t, "dense-reply-negative.bin", reply_header(2, -1, 3))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--meshtrain", help="the meshtrain binary, to make real checkpoints")
    args = parser.parse_args()
    for make in (tf_config, job_config, checkpoint_manifest, safetensors_header, rpc_requests,
                 tcp_frame):
        os.makedirs(os.path.join(CORPUS, make.__name__), exist_ok=True)
        make()
    if args.meshtrain:
        real_checkpoints(os.path.abspath(args.meshtrain))


if __name__ == "__main__":
    main()
