#!/usr/bin/python3
"""Drives a weir broker with confluent-kafka (librdkafka) for interop tests.

Usage: confluent_interop.py <bootstrap> <scenario> <args...>

Scenarios (each prints one JSON document on stdout; exit status 1 and a
message on stderr when something fails):

  admin <topic>                  create_topics (3 partitions, two configs),
                                 again (must fail), describe_configs,
                                 list_topics
  produce <topic> <n>            idempotent producer (acks=all), n keyed
                                 records with headers, delivery callbacks
  consume <topic> <group> <max> [idle_ms]
                                 manual-commit consumer: commit each record
                                 after processing it, stop after max
                                 records, then poll idle_ms more (no record
                                 may arrive)
  lag <topic> <group>            committed offsets, watermarks and lag

Every document carries "client_errors": what librdkafka logged at error
level (protocol parse failures and the like), which the tests require to
be empty.

Set INTEROP_DEBUG=1 for librdkafka protocol debug logs on stderr.
"""

import json
import logging
import os
import sys
import time

from confluent_kafka import (Consumer, KafkaError, KafkaException, Producer,
                             TopicPartition)
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

TIMEOUT = 30.0


class Collect(logging.Handler):
    """Keeps the client's error-level log lines."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


ERRORS = Collect()
LOGGER = logging.getLogger("librdkafka")
LOGGER.addHandler(ERRORS)
if os.environ.get("INTEROP_DEBUG"):
    LOGGER.addHandler(logging.StreamHandler(sys.stderr))
LOGGER.setLevel(logging.DEBUG)
LOGGER.propagate = False


def base_conf(bootstrap):
    conf = {"bootstrap.servers": bootstrap, "client.id": "weir-interop-confluent",
            "logger": LOGGER}
    if os.environ.get("INTEROP_DEBUG"):
        conf["debug"] = "broker,protocol,cgrp,fetch,eos,admin"
    return conf


def emit(doc):
    doc["client_errors"] = ERRORS.lines
    print(json.dumps(doc))


def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)


def admin(bootstrap, topic):
    a = AdminClient(base_conf(bootstrap))
    new = NewTopic(topic, num_partitions=3, replication_factor=1,
                   config={"retention.ms": "7200000", "cleanup.policy": "delete"})
    for _, f in a.create_topics([new], operation_timeout=10, request_timeout=TIMEOUT).items():
        f.result()
    dup = None
    try:
        for _, f in a.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)],
                                    request_timeout=TIMEOUT).items():
            f.result()
    except KafkaException as e:
        dup = e.args[0].name()

    configs = {}
    res = ConfigResource("topic", topic)
    for _, f in a.describe_configs([res], request_timeout=TIMEOUT).items():
        for name, entry in f.result().items():
            configs[name] = {"value": entry.value, "is_default": bool(entry.is_default)}

    md = a.list_topics(timeout=TIMEOUT)
    topics = {}
    for name, t in md.topics.items():
        if t.error is not None:
            fail("topic %s: %s" % (name, t.error))
        topics[name] = {
            str(p.id): {"leader": p.leader, "replicas": list(p.replicas), "isrs": list(p.isrs)}
            for p in t.partitions.values()
        }
    brokers = {str(b.id): "%s:%d" % (b.host, b.port) for b in md.brokers.values()}
    emit({"duplicate_error": dup, "configs": configs, "topics": topics,
          "brokers": brokers, "controller_id": md.controller_id})


def produce(bootstrap, topic, n):
    conf = base_conf(bootstrap)
    conf.update({"enable.idempotence": True, "acks": "all", "linger.ms": 5})
    p = Producer(conf)
    delivered, errors = [], []

    def on_delivery(err, msg):
        if err is not None:
            errors.append("%s: %s" % (msg.key(), err))
            return
        delivered.append({"partition": msg.partition(), "offset": msg.offset(),
                          "key": msg.key().decode(), "value": msg.value().decode()})

    for i in range(n):
        p.produce(topic, key="ck-%02d" % i, value="cv-%02d" % i,
                  headers=[("i", str(i)), ("lib", "confluent")], on_delivery=on_delivery)
        p.poll(0)
    left = p.flush(TIMEOUT)
    if left:
        errors.append("%d messages not delivered within %ss" % (left, TIMEOUT))
    emit({"delivered": delivered, "errors": errors})


def consume(bootstrap, topic, group, limit, idle_ms):
    conf = base_conf(bootstrap)
    conf.update({"group.id": group, "enable.auto.commit": False,
                 "auto.offset.reset": "earliest", "session.timeout.ms": 6000,
                 "heartbeat.interval.ms": 200, "fetch.wait.max.ms": 100})
    c = Consumer(conf)
    c.subscribe([topic])
    got = []
    deadline = time.time() + TIMEOUT
    try:
        while len(got) < limit:
            if time.time() > deadline:
                fail("consumed %d of %d records before the deadline: %s" % (len(got), limit, got))
            msg = c.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                fail("consume: %s" % msg.error())
            got.append({"topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset(),
                        "key": msg.key().decode(), "value": msg.value().decode(),
                        "headers": {k: v.decode() for k, v in (msg.headers() or [])}})
            # Processed: commit it (offset + 1), synchronously.
            c.commit(message=msg, asynchronous=False)
        # Then sit through some empty fetches.
        idle_end = time.time() + idle_ms / 1000.0
        while time.time() < idle_end:
            msg = c.poll(0.05)
            if msg is None:
                continue
            if msg.error():
                fail("consume while idle: %s" % msg.error())
            fail("unexpected record after the last one: %s[%d]@%d" % (msg.topic(), msg.partition(), msg.offset()))
    finally:
        c.close()
    emit({"records": got})


def lag(bootstrap, topic, group):
    conf = base_conf(bootstrap)
    conf.update({"group.id": group, "enable.auto.commit": False})
    c = Consumer(conf)
    try:
        md = c.list_topics(topic, timeout=TIMEOUT)
        parts = sorted(md.topics[topic].partitions)
        committed = c.committed([TopicPartition(topic, p) for p in parts], timeout=TIMEOUT)
        out, total = {}, 0
        for tp in committed:
            if tp.error is not None:
                fail("committed %s[%d]: %s" % (tp.topic, tp.partition, tp.error))
            low, high = c.get_watermark_offsets(tp, timeout=TIMEOUT)
            # No commit yet: the whole partition is lag.
            n = high - tp.offset if tp.offset >= 0 else high - low
            out[str(tp.partition)] = {"committed": tp.offset, "low": low, "high": high, "lag": n}
            total += n
    finally:
        c.close()
    emit({"partitions": out, "total": total})


def main():
    if len(sys.argv) < 3:
        fail(__doc__)
    bootstrap, scenario, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    if scenario == "admin":
        admin(bootstrap, args[0])
    elif scenario == "produce":
        produce(bootstrap, args[0], int(args[1]))
    elif scenario == "consume":
        consume(bootstrap, args[0], args[1], int(args[2]), int(args[3]) if len(args) > 3 else 0)
    elif scenario == "lag":
        lag(bootstrap, args[0], args[1])
    else:
        fail("unknown scenario %r" % scenario)


if __name__ == "__main__":
    main()
