#!/usr/bin/python3
"""Drives a weir broker with confluent-kafka (librdkafka) transactions.

Usage: confluent_txn.py <bootstrap> <scenario> <args...>

Scenarios (each prints one JSON document on stdout; exit status 1 and a
message on stderr when something fails):

  eos <input> <output> <group> <txn_id> <n> <batch> <abort_batch>
      the consume-transform-produce loop: a consumer in <group> reads the
      <n> records of <input>; a transactional producer writes each record
      transformed to the same partition of <output>, then
      send_offsets_to_transaction(position) and commit_transaction, every
      <batch> records (and at the end of the input). Transaction number
      <abort_batch> (from 0) is flushed, then aborted with
      abort_transaction instead, and the consumer seeks back to the
      committed offsets to process those records again.
  fence <topic> <txn_id>
      producer 1 begins a transaction and produces "fenced"; producer 2
      with the same transactional.id runs init_transactions; producer 1's
      commit_transaction must fail; producer 2 then commits "survivor".
  read <topic> <isolation> <hw,hw,...>
      a consumer with isolation.level=<isolation> reads every partition
      from the beginning until it reports end of partition at offset >=
      the given high watermark (one per partition, in partition order).

Every document carries "client_errors": what librdkafka logged at error
level (outside the fence scenario's expected failure), which the tests
require to be empty.

Set INTEROP_DEBUG=1 for librdkafka protocol debug logs on stderr.
"""

import json
import logging
import os
import sys
import time

from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError,
                             KafkaException, Producer, TopicPartition)

TIMEOUT = 30.0


class Collect(logging.Handler):
    """Keeps the client's error-level log lines while active."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.lines = []
        self.expected = []
        self.active = True

    def emit(self, record):
        (self.lines if self.active else self.expected).append(record.getMessage())


ERRORS = Collect()
LOGGER = logging.getLogger("librdkafka")
LOGGER.addHandler(ERRORS)
if os.environ.get("INTEROP_DEBUG"):
    LOGGER.addHandler(logging.StreamHandler(sys.stderr))
LOGGER.setLevel(logging.DEBUG)
LOGGER.propagate = False


def base_conf(bootstrap):
    conf = {"bootstrap.servers": bootstrap, "client.id": "weir-interop-confluent-txn",
            "logger": LOGGER}
    if os.environ.get("INTEROP_DEBUG"):
        conf["debug"] = "broker,protocol,cgrp,fetch,eos,msg"
    return conf


def emit(doc):
    doc["client_errors"] = ERRORS.lines
    print(json.dumps(doc))


def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)


def txn_producer(bootstrap, txn_id):
    conf = base_conf(bootstrap)
    conf.update({"transactional.id": txn_id, "linger.ms": 5,
                 "transaction.timeout.ms": 60000})
    return Producer(conf)


def check_delivery(errors):
    def on_delivery(err, msg):
        if err is not None:
            errors.append("%s[%d] %s: %s" % (msg.topic(), msg.partition(), msg.key(), err))
    return on_delivery


def kerr(e):
    err = e.args[0]
    return {"name": err.name(), "code": err.code(), "str": err.str(), "fatal": err.fatal(),
            "retriable": err.retriable(), "txn_requires_abort": err.txn_requires_abort()}


def eos(bootstrap, inp, out, group, txn_id, n, batch_size, abort_batch):
    cconf = base_conf(bootstrap)
    cconf.update({"group.id": group, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "isolation.level": "read_committed",
                  "enable.partition.eof": True, "session.timeout.ms": 6000,
                  "heartbeat.interval.ms": 200, "fetch.wait.max.ms": 100})
    consumer = Consumer(cconf)
    producer = txn_producer(bootstrap, txn_id)
    producer.init_transactions(TIMEOUT)
    consumer.subscribe([inp])

    parts = len(consumer.list_topics(inp, timeout=TIMEOUT).topics[inp].partitions)
    txns = []          # one entry per transaction, in order
    errors = []        # delivery failures
    committed = set()  # input positions whose output was committed
    batch = []         # input positions of the open transaction
    eof = set()
    aborted = False
    producer.begin_transaction()
    deadline = time.time() + TIMEOUT
    while len(committed) < n:
        if time.time() > deadline:
            fail("committed %d of %d input records before the deadline; txns %s" % (len(committed), n, txns))
        msg = consumer.poll(0.1)
        if msg is not None and msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                eof.add(msg.partition())
            else:
                fail("consume: %s" % msg.error())
        elif msg is not None:
            eof.discard(msg.partition())
            pos = "%d@%d" % (msg.partition(), msg.offset())
            producer.produce(out, partition=msg.partition(), key=msg.key(),
                             value=b"T:" + msg.value().upper(),
                             headers=[("src", pos), ("txn", str(len(txns)))],
                             on_delivery=check_delivery(errors))
            producer.poll(0)
            batch.append(pos)
        if not batch or (len(batch) < batch_size and len(eof) < parts):
            continue
        # End of a batch (or of the input): end the transaction.
        txn = {"inputs": batch}
        if len(txns) == abort_batch and not aborted:
            # Let the records reach the log, so the abort has something
            # to hide, then abort and rewind to the committed offsets.
            if producer.flush(TIMEOUT):
                fail("flush before abort timed out")
            producer.abort_transaction(TIMEOUT)
            aborted = True
            txn["result"] = "aborted"
            back = consumer.committed(consumer.assignment(), timeout=TIMEOUT)
            txn["rewound_to"] = {}
            for tp in back:
                if tp.error is not None:
                    fail("committed %s[%d]: %s" % (tp.topic, tp.partition, tp.error))
                if tp.offset < 0:
                    tp.offset = OFFSET_BEGINNING
                txn["rewound_to"][str(tp.partition)] = tp.offset
                consumer.seek(tp)
            eof.clear()
        else:
            positions = [tp for tp in consumer.position(consumer.assignment()) if tp.offset >= 0]
            txn["offsets"] = {str(tp.partition): tp.offset for tp in positions}
            producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), TIMEOUT)
            producer.commit_transaction(TIMEOUT)
            txn["result"] = "committed"
            committed.update(batch)
        txns.append(txn)
        batch = []
        producer.begin_transaction()
    # Nothing is left to process: close the empty transaction.
    producer.abort_transaction(TIMEOUT)
    consumer.close()
    if errors:
        fail("delivery failures: %s" % errors)
    emit({"txns": txns})


def fence(bootstrap, topic, txn_id):
    errors = []
    p1 = txn_producer(bootstrap, txn_id)
    p1.init_transactions(TIMEOUT)
    p1.begin_transaction()
    p1.produce(topic, partition=0, key=b"p1", value=b"fenced", on_delivery=check_delivery(errors))
    if p1.flush(TIMEOUT):
        fail("producer 1 flush timed out")
    if errors:
        fail("producer 1 delivery failed: %s" % errors)

    p2 = txn_producer(bootstrap, txn_id)
    p2.init_transactions(TIMEOUT)

    # From here on, producer 1 is expected to log its fencing.
    ERRORS.active = False
    doc = {}
    try:
        p1.commit_transaction(TIMEOUT)
        doc["commit_error"] = None
    except KafkaException as e:
        doc["commit_error"] = kerr(e)
    try:
        p1.begin_transaction()
        doc["begin_after_error"] = None
    except KafkaException as e:
        doc["begin_after_error"] = kerr(e)
    doc["fenced_logs"] = ERRORS.expected
    ERRORS.active = True

    p2.begin_transaction()
    p2.produce(topic, partition=0, key=b"p2", value=b"survivor", on_delivery=check_delivery(errors))
    p2.commit_transaction(TIMEOUT)
    if errors:
        fail("producer 2 delivery failed: %s" % errors)
    emit(doc)


def read(bootstrap, topic, isolation, hws):
    conf = base_conf(bootstrap)
    conf.update({"group.id": "weir-interop-unused", "enable.auto.commit": False,
                 "isolation.level": isolation, "enable.partition.eof": True,
                 "fetch.wait.max.ms": 100})
    c = Consumer(conf)
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(len(hws))])
    got, eof = [], {}
    deadline = time.time() + TIMEOUT
    try:
        while any(eof.get(p, -1) < hw for p, hw in enumerate(hws)):
            if time.time() > deadline:
                fail("read %s: end of partition at %s, want %s, after %d records" % (isolation, eof, hws, len(got)))
            msg = c.poll(0.1)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    eof[msg.partition()] = msg.offset()
                    continue
                fail("consume: %s" % msg.error())
            eof.pop(msg.partition(), None)
            got.append({"topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset(),
                        "key": msg.key().decode(), "value": msg.value().decode(),
                        "headers": {k: v.decode() for k, v in (msg.headers() or [])}})
    finally:
        c.close()
    emit({"records": got, "eof": {str(p): o for p, o in eof.items()}})


def main():
    if len(sys.argv) < 3:
        fail(__doc__)
    bootstrap, scenario, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    if scenario == "eos":
        eos(bootstrap, args[0], args[1], args[2], args[3], int(args[4]), int(args[5]), int(args[6]))
    elif scenario == "fence":
        fence(bootstrap, args[0], args[1])
    elif scenario == "read":
        read(bootstrap, args[0], args[1], [int(h) for h in args[2].split(",")])
    else:
        fail("unknown scenario %r" % scenario)


if __name__ == "__main__":
    main()
