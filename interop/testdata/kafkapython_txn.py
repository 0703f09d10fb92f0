#!/usr/bin/python3
"""Drives a weir broker with kafka-python transactions for interop tests.

Usage: kafkapython_txn.py <bootstrap> <scenario> <args...>

Scenarios (each prints one JSON document on stdout; exit status 1 and a
message on stderr when something fails):

  probe                          kafka-python's version and whether it has
                                 KafkaConsumer isolation_level and a
                                 transactional KafkaProducer (both arrived
                                 in kafka-python 2.2.0; 2.0.2 has neither)
  txns <topic> <txn_id> <parts>  a transactional producer: one transaction
                                 to every partition aborted (records
                                 kp-a-<p>-<i>), then one committed
                                 (kp-c-<p>-<i>), each send awaited
  read <topic> <isolation> <hw,hw,...>
                                 KafkaConsumer with isolation_level
                                 <isolation> reads every partition from
                                 the beginning until its position reaches
                                 the given high watermark

Every document carries "client_errors": what kafka-python logged at
ERROR level, which the tests require to be empty.

Set INTEROP_DEBUG=1 for kafka-python DEBUG logs on stderr.
"""

import json
import logging
import os
import sys
import time

import kafka
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

TIMEOUT = 30.0


class Collect(logging.Handler):
    """Keeps error-level log lines."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.lines = []

    def emit(self, record):
        self.lines.append("%s: %s" % (record.name, record.getMessage()))


ERRORS = Collect()
logging.getLogger("kafka").addHandler(ERRORS)
if os.environ.get("INTEROP_DEBUG"):
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG)


def emit(doc):
    doc["client_errors"] = ERRORS.lines
    print(json.dumps(doc))


def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)


def probe():
    emit({"version": kafka.__version__,
          "isolation_level": "isolation_level" in KafkaConsumer.DEFAULT_CONFIG,
          "transactions": "transactional_id" in KafkaProducer.DEFAULT_CONFIG
          and hasattr(KafkaProducer, "init_transactions")})


def txns(bootstrap, topic, txn_id, parts):
    p = KafkaProducer(bootstrap_servers=bootstrap, client_id="weir-interop-kafkapython-txn",
                      transactional_id=txn_id, acks="all", linger_ms=5,
                      request_timeout_ms=int(TIMEOUT * 1000))
    out = {}
    try:
        p.init_transactions()
        for kind, commit in (("a", False), ("c", True)):
            p.begin_transaction()
            sent = []
            for part in range(parts):
                for i in range(3):
                    key, value = "kp-%s-%d-%d" % (kind, part, i), "v-%s-%d-%d" % (kind, part, i)
                    md = p.send(topic, key=key.encode(), value=value.encode(), partition=part,
                                headers=[("lib", b"kafka-python")]).get(timeout=TIMEOUT)
                    sent.append({"partition": md.partition, "offset": md.offset, "key": key, "value": value})
            if commit:
                p.commit_transaction()
            else:
                p.abort_transaction()
            out["committed" if commit else "aborted"] = sent
    finally:
        p.close(timeout=TIMEOUT)
    emit(out)


def read(bootstrap, topic, isolation, hws):
    c = KafkaConsumer(bootstrap_servers=bootstrap, client_id="weir-interop-kafkapython-txn",
                      isolation_level=isolation, enable_auto_commit=False,
                      fetch_max_wait_ms=100, request_timeout_ms=int(TIMEOUT * 1000) + 5000)
    tps = [TopicPartition(topic, p) for p in range(len(hws))]
    c.assign(tps)
    c.seek_to_beginning(*tps)
    got = []
    deadline = time.time() + TIMEOUT
    try:
        while True:
            pos = [c.position(tp) for tp in tps]
            if all(p >= hw for p, hw in zip(pos, hws)):
                break
            if time.time() > deadline:
                fail("read %s: positions %s, want %s, after %d records" % (isolation, pos, hws, len(got)))
            for tp, msgs in c.poll(timeout_ms=100).items():
                for m in msgs:
                    got.append({"topic": m.topic, "partition": m.partition, "offset": m.offset,
                                "key": m.key.decode(), "value": m.value.decode(),
                                "headers": {k: v.decode() for k, v in (m.headers or [])}})
    finally:
        c.close()
    emit({"records": got, "positions": pos})


def main():
    if len(sys.argv) < 3:
        fail(__doc__)
    bootstrap, scenario, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    if scenario == "probe":
        probe()
    elif scenario == "txns":
        txns(bootstrap, args[0], args[1], int(args[2]))
    elif scenario == "read":
        read(bootstrap, args[0], args[1], [int(h) for h in args[2].split(",")])
    else:
        fail("unknown scenario %r" % scenario)


if __name__ == "__main__":
    main()
