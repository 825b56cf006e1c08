# 025_subscription_slot_lost.pl: the worker's slot is invalidated
# (max_slot_wal_keep_size) while a subscription is paused and events keep
# coming.  After resume the worker logs a WARNING, creates a new slot, and
# the subscription catches up from strata.events: every event exactly
# once, nothing skipped.  Then the slot is dropped by hand (as after a
# restore): the same recovery.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use StrataNode;

my $node = strata_node('lost', conf => "max_slot_wal_keep_size = '2MB'\nmin_wal_size = '2MB'\nmax_wal_size = '4MB'\n", init => ['--wal-segsize=1']);
$node->safe_psql('postgres', q{
	CREATE EXTENSION strata;
	CREATE TABLE seen (n bigserial, position bigint NOT NULL);
	CREATE FUNCTION record(e strata.events) RETURNS void LANGUAGE sql
	SET search_path = public, pg_temp AS $$
		INSERT INTO seen (position) VALUES (e.position) $$;
	SELECT strata.append('lost-' || i, '{"type": "Before"}') FROM generate_series(1, 50) i;
	SELECT strata.subscribe('s', 'record(strata.events)', start_from => 'beginning');
});

my $slot = $node->safe_psql('postgres',
	q{SELECT 'strata_' || oid FROM pg_database WHERE datname = 'postgres'});
sub wait_all
{
	my ($what) = @_;
	my $max = $node->safe_psql('postgres', 'SELECT max(position) FROM strata.events');
	is($node->safe_psql('postgres', "SELECT strata.wait_for('s', $max, '60s')"),
		't', "$what: the subscription reached the last event");
}
sub exactly_once
{
	my ($what) = @_;
	is($node->safe_psql('postgres', q{
		SELECT count(*) FROM (SELECT position FROM strata.events
			EXCEPT SELECT position FROM seen) missing}), '0', "$what: nothing missing");
	is($node->safe_psql('postgres', q{
		SELECT count(*) FROM (SELECT position FROM seen GROUP BY position
			HAVING count(*) > 1) twice}), '0', "$what: nothing twice");
}
wait_all('before');
ok($node->poll_query_until('postgres',
	qq{SELECT count(*) = 1 FROM pg_replication_slots WHERE slot_name = '$slot' AND active}),
	'the worker holds its slot');
exactly_once('before');

# ---- paused: the slot keeps the WAL from the checkpoint, until it is lost
$node->safe_psql('postgres', q{SELECT strata.pause_subscription('s')});
$node->safe_psql('postgres',
	q{SELECT strata.append('lost-' || i, '{"type": "WhilePaused"}') FROM generate_series(1, 200) i});
cmp_ok($node->safe_psql('postgres',
	q{SELECT retained_wal_bytes FROM strata.subscription_status WHERE name = 's'}),
	'>', 0, 'a paused subscription retains WAL');
$node->safe_psql('postgres', 'CREATE TABLE filler (x text)');
my $log_offset = -s $node->logfile;
my $lost = 0;
for my $i (1 .. 30)
{
	$node->safe_psql('postgres', q{
		INSERT INTO filler SELECT repeat('x', 1000) FROM generate_series(1, 2000);
		SELECT pg_switch_wal();
		CHECKPOINT;
	});
	if ($node->safe_psql('postgres',
		qq{SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$slot' AND wal_status = 'lost'}) eq '1'
		|| $node->log_contains(qr/invalidating slot "$slot"|terminating process \d+ to release replication slot "$slot"/, $log_offset))
	{
		$lost = 1;
		last;
	}
}
ok($lost, 'the slot was invalidated by max_slot_wal_keep_size');

# ---- resume: a new slot, catching up from the table ---------------------
$node->safe_psql('postgres', q{SELECT strata.resume_subscription('s')});
$node->safe_psql('postgres',
	q{SELECT strata.append('lost-' || i, '{"type": "AfterResume"}') FROM generate_series(1, 20) i});
wait_all('after the lost slot');
ok($node->wait_for_log(qr/replication slot "$slot" was invalidated; strata subscriptions catch up/, $log_offset),
	'the worker said it replaced the invalidated slot');
exactly_once('after the lost slot');
ok($node->poll_query_until('postgres',
	qq{SELECT count(*) = 1 FROM pg_replication_slots WHERE slot_name = '$slot' AND wal_status <> 'lost'}),
	'a new slot is in place');
is($node->safe_psql('postgres', q{SELECT state FROM strata.subscription_status WHERE name = 's'}),
	'live', 'the subscription follows the WAL again');

# ---- the slot dropped by hand (as on a restored database) ---------------
my $pid = $node->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'strata worker' AND datname = 'postgres'});
$node->safe_psql('postgres', q{SELECT strata.pause_subscription('s')});
$node->safe_psql('postgres', qq{SELECT pg_terminate_backend($pid)});
ok($node->poll_query_until('postgres',
	qq{SELECT count(*) = 1 FROM pg_replication_slots WHERE slot_name = '$slot' AND NOT active}),
	'the worker released its slot');
$node->safe_psql('postgres', qq{SELECT pg_drop_replication_slot('$slot')});
$node->safe_psql('postgres',
	q{SELECT strata.append('lost-' || i, '{"type": "NoSlot"}') FROM generate_series(1, 30) i});
$node->safe_psql('postgres', q{SELECT strata.resume_subscription('s')});
wait_all('after the slot was dropped');
exactly_once('after the slot was dropped');

# ---- the extension dropped while no worker runs: the next worker, which
# finds no extension, drops the slot (it would keep WAL for ever) --------
ok($node->poll_query_until('postgres',
	qq{SELECT count(*) = 1 FROM pg_replication_slots WHERE slot_name = '$slot'}),
	'the worker has its slot again');
$node->append_conf('postgresql.conf', 'strata.max_workers = 0');
$node->restart;
$node->safe_psql('postgres', 'DROP EXTENSION strata CASCADE');
is($node->safe_psql('postgres',
	qq{SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$slot'}),
	'1', 'with no worker running, the slot outlives DROP EXTENSION');
$node->append_conf('postgresql.conf', 'strata.max_workers = 8');
$node->restart;
ok($node->poll_query_until('postgres',
	qq{SELECT count(*) = 0 FROM pg_replication_slots WHERE slot_name = '$slot'}),
	'a worker that finds no extension drops the slot');

$node->stop;
done_testing();
