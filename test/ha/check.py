#!/usr/bin/python3
# test/ha/check.py: the checks of test/ha/patroni.sh after a failover.
#
#   check.py MODE ACKS_FILE KILL_TIME OLD_PORT NEW_PORT
#
# MODE is sync or async; ACKS_FILE the lines "id position port time" of
# test/ha/load.py (every event a server acknowledged); KILL_TIME when the
# old leader's postmaster was killed (unix time); OLD_PORT and NEW_PORT the
# PostgreSQL ports of the old leader and of the promoted replica.  It reads
# strata.events and public.handled on the new leader, and strata.events on
# the old node too when it answers (Patroni starts it again as a replica;
# with use_pg_rewind off, a diverged old leader stays on its own history,
# readable), and prints one line per check, "ok: ..." or "FAILED: ...",
# then the counts, and exits 1 if any check failed.
#
# Checks (docs/ha.md):
#   both modes: no position issued twice: across the acknowledgements, the
#     new leader's events and the old node's, one position has one id;
#     the subscription 'rec' handled each event of the new leader's
#     strata.events exactly once (strata.wait_for first);
#   sync: every acknowledged event is on the new leader, same id, same
#     position;
#   async: some acknowledged events were lost (else the test made no lag);
#     each lost position lies in a lost range of strata.epochs
#     (survived_position < p < first_position); read_all() after the old
#     leader's highest acknowledged position raises ST006 when it was lost.
import sys
import time
from collections import defaultdict

import psycopg2

mode, acks_path, kill_time, old_port, new_port = (
    sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
failures = []


def check(ok, what):
    print(("ok: " if ok else "FAILED: ") + what)
    if not ok:
        failures.append(what)


def connect(port, tries=1):
    for i in range(tries):
        try:
            c = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres",
                                 connect_timeout=2, application_name="ha-check")
            c.autocommit = True
            return c
        except psycopg2.Error as e:
            last = e
            time.sleep(1)
    print("note: no connection to port %d: %s" % (port, str(last).strip().splitlines()[0]))
    return None


acks = []          # (id, position, port, time)
for line in open(acks_path):
    f = line.split()
    acks.append((f[0], int(f[1]), int(f[2]), float(f[3])))
old_acks = [a for a in acks if a[2] == old_port]
new_acks = [a for a in acks if a[2] == new_port and a[3] > kill_time]
failover = min(a[3] for a in new_acks) - kill_time if new_acks else None
check(len(old_acks) > 0, "%d events acknowledged by the old leader" % len(old_acks))
check(len(new_acks) > 0, "%d events acknowledged by the new leader" % len(new_acks))

new = connect(new_port, 5)
if new is None:
    check(False, "the new leader answers")
    sys.exit(1)
cur = new.cursor()
cur.execute("SELECT pg_is_in_recovery(), timeline_id FROM pg_control_checkpoint()")
in_recovery, timeline = cur.fetchone()
check(not in_recovery, "the new leader (port %d) is a primary (checkpoint timeline %d)" % (new_port, timeline))
cur.execute("SELECT id::text, position FROM strata.events")
new_events = {i: p for i, p in cur.fetchall()}
new_by_pos = {p: i for i, p in new_events.items()}

# the old node's history, if it answers: with use_pg_rewind off it stays
# on its own (diverged) timeline as a hot standby; without a divergence it
# follows the new leader, and shows nothing new
old_events = {}
old = connect(old_port, 20)
if old is not None:
    ocur = old.cursor()
    ocur.execute("SELECT id::text, position FROM strata.events")
    old_events = {i: p for i, p in ocur.fetchall()}
    print("note: the old node answers: %d events there, %d on the new leader"
          % (len(old_events), len(new_events)))

# no position issued twice: one id per position, whoever says so
ids_at = defaultdict(set)
for i, p, _, _ in acks:
    ids_at[p].add(i)
for i, p in new_events.items():
    ids_at[p].add(i)
for i, p in old_events.items():
    ids_at[p].add(i)
twice = sorted(p for p, s in ids_at.items() if len(s) > 1)
# an id at two positions would be as wrong
pos_of = defaultdict(set)
for i, p, _, _ in acks:
    pos_of[i].add(p)
for src in (new_events, old_events):
    for i, p in src.items():
        pos_of[i].add(p)
moved = [i for i, s in pos_of.items() if len(s) > 1]
check(not twice, "no position issued twice (%d positions with two ids%s)"
      % (len(twice), (": " + ", ".join(map(str, twice[:5])) + (" ..." if len(twice) > 5 else "")) if twice else ""))
check(not moved, "no event id at two positions (%d)" % len(moved))

# acknowledged events that the new leader does not have (at that position)
lost = [(i, p) for i, p, port, _ in acks if new_events.get(i) != p]
lost_old = [(i, p) for i, p, port, _ in old_acks if new_events.get(i) != p]
if mode == "sync":
    check(not lost, "every acknowledged event is on the new leader at its position (%d lost)" % len(lost))
else:
    check(len(lost_old) > 0, "asynchronous replication lost acknowledged events (%d); the test made the replica lag"
          % len(lost_old))
    check(len(lost) == len(lost_old), "only events of the old leader were lost (%d of the new leader's)"
          % (len(lost) - len(lost_old)))
    if twice:
        reused = [p for _, p in lost_old if p in new_by_pos]
        print("note: the new leader gave %d of the %d lost positions (%d to %d) to other events: "
              "a consumer of the old leader that reached them skips those events"
              % (len(reused), len(lost_old), min(p for _, p in lost_old), max(p for _, p in lost_old)))
    # the lost ranges of strata.epochs
    try:
        cur.execute("SELECT timeline, first_position, survived_position FROM strata.epochs ORDER BY timeline")
        epochs = cur.fetchall()
        print("note: strata.epochs: " + "; ".join("timeline %s first %s survived %s" % e for e in epochs))
        outside = [p for _, p in lost_old
                   if not any(s is not None and s < p < f for _, f, s in epochs)]
        check(lost_old and not outside, "each lost position lies in a lost range of strata.epochs (%d outside)"
              % len(outside))
    except psycopg2.Error as e:
        check(False, "strata.epochs: %s" % str(e).strip().splitlines()[0])
    if old_acks:
        top = max(p for _, p, _, _ in old_acks)
        top_lost = new_by_pos.get(top) != [i for i, p, _, _ in old_acks if p == top][0]
        try:
            cur.execute("SELECT count(*) FROM strata.read_all(after_position => %s, max_count => 1)", (top,))
            if top_lost:
                check(False, "read_all(after_position => %d), the old leader's last acknowledged position, lost, "
                      "raises ST006 (it returned without an error)" % top)
            else:
                check(True, "read_all(after_position => %d), the old leader's last acknowledged position, "
                      "not lost, returns without an error" % top)
        except psycopg2.Error as e:
            check(top_lost and e.pgcode == "ST006",
                  "read_all(after_position => %d)%s raises %s: %s"
                  % (top, " (lost)" if top_lost else " (not lost)", e.pgcode, str(e).strip().splitlines()[0]))

# the subscription: every event of the new leader handled exactly once
top = max(new_events.values()) if new_events else 0
t0 = time.time()
try:
    cur.execute("SELECT strata.wait_for('rec', %s, '60s')", (top,))
    waited = cur.fetchone()[0]
except psycopg2.Error as e:
    waited = False
    print("note: wait_for raised %s: %s" % (e.pgcode, str(e).strip().splitlines()[0]))
check(waited, "wait_for('rec', %d) returned true (%.1f s)" % (top, time.time() - t0))
cur.execute("SELECT position, count(*) FROM public.handled GROUP BY position")
handled = dict(cur.fetchall())
twice_handled = [p for p, n in handled.items() if n > 1]
missed = [p for p in new_by_pos if p not in handled]
strange = [p for p in handled if p not in new_by_pos]
check(not twice_handled, "no event handled twice (%d)" % len(twice_handled))
check(not missed, "every event of strata.events handled (%d missed)" % len(missed))
check(not strange, "nothing handled that strata.events does not hold (%d)" % len(strange))
cur.execute("SELECT state FROM strata.subscription_status WHERE name = 'rec'")
print("note: subscription 'rec' is %s on the new leader" % cur.fetchone()[0])

print("counts %s: acknowledged %d (old leader %d, new leader %d), lost %d, events on the new leader %d, "
      "handled %d, positions issued twice %d, failover %s s"
      % (mode, len(acks), len(old_acks), len(new_acks), len(lost), len(new_events), sum(handled.values()),
         len(twice), "%.2f" % failover if failover is not None else "n/a"))
if failures:
    print("%s: %d checks FAILED" % (mode, len(failures)))
    sys.exit(1)
print("%s: every check passed" % mode)
