#!/usr/bin/python3
# test/ha/load.py: the load generator of test/ha/patroni.sh.  Several
# connections append one event per transaction to the leader of a Patroni
# cluster and record each event the server acknowledged.
#
#   load.py DSN CLIENTS ACKS_FILE STOP_FILE
#
# DSN names every node (host=...,... port=...,... target_session_attrs=
# read-write), so that libpq finds the leader, the old one or the new.
# Each client, in a loop: BEGIN; strata.append() of one event with an id
# (a uuid) of its own; its position, read back in the same transaction;
# COMMIT.  Only once COMMIT has returned does it write the line
# "id position port unix_time" to ACKS_FILE: the file holds exactly the
# events the server acknowledged, where and when.  Any error (the leader
# killed, no leader yet, a read-only node) ends the connection; the client
# connects again 50 ms later.  Errors are counted, one line each on
# stderr ("error port time: message").  It stops once STOP_FILE exists.
#
# Run with /usr/bin/python3: Debian's psycopg2 (which patroni brings) is
# not importable from another Python.
import json
import os
import sys
import threading
import time
import uuid

import psycopg2

dsn, clients, acks_path, stop_path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
lock = threading.Lock()
acks = open(acks_path, "a", buffering=1)


def client(n):
    k = 0
    while not os.path.exists(stop_path):
        conn = None
        try:
            conn = psycopg2.connect(dsn, connect_timeout=2, application_name="ha-load-%d" % n)
            port = conn.info.port
            cur = conn.cursor()
            while not os.path.exists(stop_path):
                eid = str(uuid.uuid4())
                k += 1
                event = {"id": eid, "type": "E", "data": {"client": n, "k": k}}
                cur.execute("SELECT strata.append(%s, %s::jsonb)",
                            ("s%d-%d" % (n, k % 20), json.dumps(event)))
                cur.execute("SELECT position FROM strata.events WHERE id = %s", (eid,))
                position = cur.fetchone()[0]
                conn.commit()
                t = time.time()
                with lock:
                    acks.write("%s %d %d %.6f\n" % (eid, position, port, t))
        except psycopg2.Error as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            sys.stderr.write("error %s %.6f: %s\n" % (conn.info.port if conn else "-", time.time(), msg))
            sys.stderr.flush()
        finally:
            if conn is not None:
                try:
                    conn.close()
                except psycopg2.Error:
                    pass
        time.sleep(0.05)


threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
for t in threads:
    t.start()
for t in threads:
    t.join()
acks.close()
