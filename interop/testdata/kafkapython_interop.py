#!/usr/bin/python3
"""Drives a weir broker with kafka-python for interop tests.

Usage: kafkapython_interop.py <bootstrap> <scenario> <args...>

Scenarios (each prints one JSON document on stdout; exit status 1 and a
message on stderr when something fails):

  admin <topic>                  KafkaAdminClient create_topics (3
                                 partitions, two configs), again (must
                                 fail), describe_configs, describe_topics
  produce <topic> <n>            KafkaProducer acks='all', n keyed records
                                 with headers, waiting on every future
  consume <topic> <group> <max> [idle_ms]
                                 KafkaConsumer in a group, manual commit
                                 of each record after processing it, stop
                                 after max records, then poll idle_ms more
                                 (no record may arrive)
  lag <topic> <group>            committed() and end_offsets() per
                                 partition, and the lag

Every document carries "client_errors": what kafka-python logged at
ERROR level while the clients worked (not while closing), which the tests
require to be empty.

Set INTEROP_DEBUG=1 for kafka-python DEBUG logs on stderr.
"""

import json
import logging
import os
import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from kafka.structs import OffsetAndMetadata

TIMEOUT = 30.0


class Collect(logging.Handler):
    """Keeps error-level log lines while active."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.lines = []
        self.active = True

    def emit(self, record):
        if self.active:
            self.lines.append("%s: %s" % (record.name, record.getMessage()))


ERRORS = Collect()


def emit(doc):
    doc["client_errors"] = ERRORS.lines
    print(json.dumps(doc))


def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)


def offset_and_metadata(offset):
    # kafka-python 2.x: (offset, metadata); 3.x adds leader_epoch.
    if len(OffsetAndMetadata._fields) == 3:
        return OffsetAndMetadata(offset, "", -1)
    return OffsetAndMetadata(offset, "")


def admin(bootstrap, topic):
    a = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="weir-interop-kafkapython",
                         request_timeout_ms=int(TIMEOUT * 1000))
    try:
        new = NewTopic(topic, num_partitions=3, replication_factor=1,
                       topic_configs={"retention.ms": "7200000", "cleanup.policy": "delete"})
        created = errors_of(a.create_topics([new], timeout_ms=10000))
        dup = None
        try:
            dup = errors_of(a.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)],
                                            timeout_ms=10000))
        except Exception as e:  # kafka-python 3.x raises instead of returning the code
            dup = {topic: type(e).__name__}

        configs = {}
        for resp in a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)]):
            obj = resp.to_object()
            for res in obj["resources"]:
                if res["error_code"] != 0:
                    fail("describe_configs %s: error %d %s" % (res["resource_name"], res["error_code"],
                                                               res.get("error_message")))
                for e in res["config_entries"]:
                    name = e.get("config_names", e.get("config_name"))
                    if "config_source" in e:
                        is_default = e["config_source"] == 5  # DEFAULT_CONFIG
                    else:
                        is_default = bool(e["is_default"])
                    configs[name] = {"value": e["config_value"], "is_default": is_default}

        topics = {}
        for t in a.describe_topics([topic]):
            if t["error_code"] != 0:
                fail("describe_topics %s: error %d" % (t["topic"], t["error_code"]))
            topics[t["topic"]] = {
                str(p["partition"]): {"leader": p["leader"], "replicas": p["replicas"], "isrs": p["isr"]}
                for p in t["partitions"]
            }
        listed = sorted(a.list_topics())
    finally:
        ERRORS.active = False
        a.close()
    emit({"created": created, "duplicate": dup, "configs": configs,
          "topics": topics, "listed": listed})


def errors_of(resp):
    """Maps each topic of a CreateTopics response to its error code."""
    obj = resp.to_object()
    return {e["topic"]: e["error_code"] for e in obj["topic_errors"]}


def produce(bootstrap, topic, n):
    p = KafkaProducer(bootstrap_servers=bootstrap, client_id="weir-interop-kafkapython",
                      acks="all", retries=5, linger_ms=5, max_in_flight_requests_per_connection=1)
    futures = []
    for i in range(n):
        futures.append((i, p.send(topic, key=("pk-%02d" % i).encode(), value=("pv-%02d" % i).encode(),
                                  headers=[("i", str(i).encode()), ("lib", b"kafka-python")])))
    p.flush(TIMEOUT)
    delivered = []
    for i, f in futures:
        md = f.get(timeout=TIMEOUT)
        delivered.append({"partition": md.partition, "offset": md.offset,
                          "key": "pk-%02d" % i, "value": "pv-%02d" % i})
    ERRORS.active = False
    p.close(TIMEOUT)
    emit({"delivered": delivered, "errors": []})


def consume(bootstrap, topic, group, limit, idle_ms):
    c = KafkaConsumer(topic, bootstrap_servers=bootstrap, client_id="weir-interop-kafkapython",
                      group_id=group, enable_auto_commit=False, auto_offset_reset="earliest",
                      session_timeout_ms=6000, heartbeat_interval_ms=200, fetch_max_wait_ms=100)
    got = []
    deadline = time.time() + TIMEOUT
    try:
        while len(got) < limit:
            if time.time() > deadline:
                fail("consumed %d of %d records before the deadline: %s" % (len(got), limit, got))
            batches = c.poll(timeout_ms=200, max_records=1)
            for tp, records in batches.items():
                for r in records:
                    got.append({"topic": r.topic, "partition": r.partition, "offset": r.offset,
                                "key": r.key.decode(), "value": r.value.decode(),
                                "headers": {k: v.decode() for k, v in (r.headers or [])}})
                    # Processed: commit it (offset + 1), synchronously.
                    c.commit({TopicPartition(r.topic, r.partition): offset_and_metadata(r.offset + 1)})
        # Then sit through some empty fetches.
        idle_end = time.time() + idle_ms / 1000.0
        while time.time() < idle_end:
            for tp, records in c.poll(timeout_ms=50).items():
                fail("unexpected records after the last one: %s" % records)
    finally:
        # Closing cancels the fetch in flight, which kafka-python logs
        # as an error: not the broker's doing.
        ERRORS.active = False
        c.close(autocommit=False)
    emit({"records": got})


def lag(bootstrap, topic, group):
    c = KafkaConsumer(bootstrap_servers=bootstrap, client_id="weir-interop-kafkapython",
                      group_id=group, enable_auto_commit=False)
    try:
        parts = c.partitions_for_topic(topic)
        if not parts:
            fail("no partitions for %s" % topic)
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        end = c.end_offsets(tps)
        begin = c.beginning_offsets(tps)
        out, total = {}, 0
        for tp in tps:
            committed = c.committed(tp)
            # No commit yet: the whole partition is lag.
            n = end[tp] - committed if committed is not None else end[tp] - begin[tp]
            out[str(tp.partition)] = {"committed": committed if committed is not None else -1,
                                      "low": begin[tp], "high": end[tp], "lag": n}
            total += n
    finally:
        ERRORS.active = False
        c.close(autocommit=False)
    emit({"partitions": out, "total": total})


def main():
    if os.environ.get("INTEROP_DEBUG"):
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    else:
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger().addHandler(ERRORS)
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
