# 020_subscription_exactly_once.pl: a subscription with an in-database
# handler under concurrent writers.  Four pgbench clients append 20,000
# events to many streams (transactions sleep before committing, so commits
# land out of position order; some roll back an append in a savepoint) while
# the worker runs the handler, which records each event in a table whose
# serial column is the arrival order.  Then:
#   - the handler saw exactly the committed events, each once (and not the
#     event appended before the subscription, which starts from 'now');
#   - in commit order: the arrival order equals the order of a reference
#     slot of the strata plugin created before the writers started;
#   - the status view and wait_for agree.
# Also the worker framework: launcher and worker in pg_stat_activity, the
# worker's slot, a worker that exits on SIGTERM and comes back (without a
# crash restart), and DROP DATABASE of a database whose worker runs.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use StrataNode;
use IPC::Run;

my $node = strata_node('subs');
$node->safe_psql('postgres', q{
	CREATE EXTENSION strata;
	CREATE TABLE seen (n bigserial PRIMARY KEY, position bigint NOT NULL,
					   stream text NOT NULL, version bigint NOT NULL);
	CREATE FUNCTION record_event(e strata.events) RETURNS void
	LANGUAGE sql SET search_path = public, pg_temp AS $$
		INSERT INTO seen (position, stream, version)
		VALUES (e.position, e.stream, e.version)
	$$;
});

# ---- the worker framework ----------------------------------------------
ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'strata launcher'}),
	'a strata launcher runs');
ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM pg_stat_activity
	WHERE backend_type = 'strata worker' AND datname = 'postgres'}),
	'a strata worker runs for the database with the extension');
my $dboid = $node->safe_psql('postgres',
	q{SELECT oid FROM pg_database WHERE datname = 'postgres'});
ok($node->poll_query_until('postgres', qq{
	SELECT count(*) = 1 FROM pg_replication_slots
	WHERE slot_name = 'strata_$dboid' AND plugin = 'strata' AND slot_type = 'logical'}),
	"the worker holds the logical slot strata_$dboid");

# An event before the subscription: 'now' must not deliver it.
$node->safe_psql('postgres', q{SELECT strata.append('pre-1', '{"type": "Before"}')});
my $pre = $node->safe_psql('postgres', q{SELECT position FROM strata.events WHERE stream = 'pre-1'});

# The reference: every event committed from here on, in commit order.
$node->safe_psql('postgres', q{SELECT pg_create_logical_replication_slot('check', 'strata')});
$node->safe_psql('postgres',
	q{SELECT strata.subscribe('s1', 'record_event(strata.events)', start_from => 'now')});
ok($node->poll_query_until('postgres',
	q{SELECT state = 'live' FROM strata.subscription_status WHERE name = 's1'}),
	'the subscription goes live');

# ---- writers: 4 clients x 2,500 transactions x 2 events ----------------
my $dir = $PostgreSQL::Test::Utils::tmp_check;
my $script = "$dir/writer020.sql";
PostgreSQL::Test::Utils::append_to_file($script, q{
\set s random(1, 40)
\set c random(1, 3)
\set r random(1, 10)
BEGIN;
SELECT strata.append('cat' || :c || '-' || :s, '[{"type": "A", "data": {"k": 1}}, {"type": "B"}]');
\if :r = 1
SAVEPOINT sp;
SELECT strata.append('rb-' || :client_id, '{"type": "RolledBack"}');
ROLLBACK TO SAVEPOINT sp;
\endif
SELECT pg_sleep(random() * 0.002);
COMMIT;
});
my ($pgb_out, $pgb_err) = ('', '');
IPC::Run::run(
	[ 'pgbench', '-n', '-c', '4', '-j', '2', '-t', '2500', '-f', $script,
	  '-h', $node->host, '-p', $node->port, 'postgres' ],
	'>', \$pgb_out, '2>', \$pgb_err);
like($pgb_out, qr/number of failed transactions: 0/, 'writers ran without failures')
  or diag($pgb_err);
is($node->safe_psql('postgres', q{SELECT count(*) FROM strata.events WHERE position > } . $pre),
	'20000', '20,000 events committed');

ok($node->poll_query_until('postgres', qq{
	SELECT count(DISTINCT position) = (SELECT count(*) FROM strata.events WHERE position > $pre)
	FROM seen}),
	'the handler got every event');

# ---- exactly once -------------------------------------------------------
is($node->safe_psql('postgres', 'SELECT count(*) FROM seen'), '20000',
	'the handler ran 20,000 times');
is($node->safe_psql('postgres',
	'SELECT count(*) FROM (SELECT position FROM seen GROUP BY position HAVING count(*) > 1) d'),
	'0', 'no event handled twice');
is($node->safe_psql('postgres', qq{
	SELECT count(*) FROM strata.events e
	WHERE e.position > $pre
	  AND NOT EXISTS (SELECT 1 FROM seen s WHERE s.position = e.position
						AND s.stream = e.stream AND s.version = e.version)}),
	'0', 'no committed event missing (position, stream and version match)');
is($node->safe_psql('postgres', "SELECT count(*) FROM seen WHERE position <= $pre"),
	'0', "start_from 'now': the earlier event was not delivered");
is($node->safe_psql('postgres', q{SELECT count(*) FROM seen WHERE stream LIKE 'rb-%'}),
	'0', 'no event of a rolled-back savepoint delivered');

# ---- in commit order ----------------------------------------------------
sub compare_order
{
	my ($got, $want, $what) = @_;
	my $i = 0;
	$i++ while $i < @$got && $i < @$want && $got->[$i] == $want->[$i];
	ok($i == @$got && $i == @$want, $what)
	  or diag("first difference at index $i: received "
		  . ($got->[$i] // 'nothing') . ', commit order has '
		  . ($want->[$i] // 'nothing') . ' ('
		  . scalar(@$got) . ' received, ' . scalar(@$want) . ' committed)');
}
my @ref = split /,/, $node->safe_psql('postgres', q{
	SELECT string_agg(data::jsonb->>'position', ',' ORDER BY o)
	FROM pg_logical_slot_get_changes('check', NULL, NULL, 'format', 'json')
		 WITH ORDINALITY AS c(lsn, xid, data, o)});
is(scalar(@ref), 20000, 'the reference slot decoded 20,000 events');
my @got = split /,/, $node->safe_psql('postgres',
	q{SELECT string_agg(position::text, ',' ORDER BY n) FROM seen});
compare_order(\@got, \@ref, 'events arrived in commit order (the order of logical decoding)');
my $inversions = grep { $ref[$_] < $ref[ $_ - 1 ] } 1 .. $#ref;
note("$inversions times an event committed after a larger position");

# ---- status and wait_for -----------------------------------------------
# events_behind is an estimate from positions and the watermark (0.5.0),
# and the watermark passes the last events only at a later round of the
# worker, which samples it (docs/architecture.md, "The watermark moves"):
# wait for that round
$node->poll_query_until('postgres',
	q{SELECT events_behind = 0 FROM strata.subscription_status WHERE name = 's1'});
is($node->safe_psql('postgres', qq{
	SELECT state, events_behind, parked, last_position = $ref[-1], checkpoint IS NOT NULL
	FROM strata.subscription_status WHERE name = 's1'}),
	'live|0|0|t|t', 'status: live, nothing behind, nothing parked, last position is the last commit');
is($node->safe_psql('postgres', "SELECT strata.wait_for('s1', $ref[-1], '10s')"), 't',
	'wait_for of the last event returns true');

# ---- SIGTERM: the worker exits cleanly and comes back ------------------
my $launcher = $node->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'strata launcher'});
my $worker = $node->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'strata worker' AND datname = 'postgres'});
my $log_offset = -s $node->logfile;
kill 'TERM', $worker;
ok($node->poll_query_until('postgres', qq{
	SELECT count(*) = 1 FROM pg_stat_activity
	WHERE backend_type = 'strata worker' AND datname = 'postgres' AND pid <> $worker}),
	'after SIGTERM a new worker runs');
ok(!kill(0, $worker), 'the old worker exited');
is($node->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'strata launcher'}),
	$launcher, 'the launcher was not restarted');
my $log = slurp_file($node->logfile, $log_offset);
unlike($log, qr/terminating any other active server processes|reinitializing/,
	'the SIGTERM caused no crash restart');
$node->safe_psql('postgres', q{SELECT strata.append('after-term', '{"type": "C"}')});
my $after = $node->safe_psql('postgres', q{SELECT position FROM strata.events WHERE stream = 'after-term'});
is($node->safe_psql('postgres', "SELECT strata.wait_for('s1', $after, '30s')"), 't',
	'the new worker delivers a new event');
is($node->safe_psql('postgres', "SELECT count(*) FROM seen WHERE position = $after"), '1',
	'once');
is($node->safe_psql('postgres', 'SELECT count(*) FROM seen'), '20001',
	'and nothing else was delivered again');

# ---- DROP DATABASE while its worker runs ---------------------------------
$node->safe_psql('postgres', 'CREATE DATABASE other');
$node->safe_psql('other', q{
	CREATE EXTENSION strata;
	CREATE TABLE seen (position bigint);
	CREATE FUNCTION rec(e strata.events) RETURNS void
	LANGUAGE sql SET search_path = public, pg_temp
	AS $$ INSERT INTO seen VALUES (e.position) $$;
	SELECT strata.subscribe('o', 'rec(strata.events)');
});
ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM pg_stat_activity
	WHERE backend_type = 'strata worker' AND datname = 'other'}),
	'a worker starts for a new database with the extension');
$node->safe_psql('other', q{SELECT strata.append('x-1', '{"type": "X"}')});
ok($node->poll_query_until('other', 'SELECT count(*) = 1 FROM seen'),
	'it delivers its events');
my $otheroid = $node->safe_psql('postgres', q{SELECT oid FROM pg_database WHERE datname = 'other'});
my ($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE other');
is($ret, 0, 'DROP DATABASE works while its worker runs') or diag($err);
ok($node->poll_query_until('postgres', qq{
	SELECT count(*) = 0 FROM pg_replication_slots WHERE datoid = $otheroid}),
	"the dropped database's slot is gone");
ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'strata worker'}),
	'one worker left, for postgres');
$node->safe_psql('postgres', q{SELECT strata.append('after-drop', '{"type": "D"}')});
$after = $node->safe_psql('postgres', q{SELECT position FROM strata.events WHERE stream = 'after-drop'});
is($node->safe_psql('postgres', "SELECT strata.wait_for('s1', $after, '30s')"), 't',
	'the other worker goes on');

$node->stop;
done_testing();
