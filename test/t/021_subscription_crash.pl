# 021_subscription_crash.pl: exactly once and in commit order across
# crashes.  pgbench writers append while the worker runs an in-database
# handler (which records each event with a serial arrival number); in the
# middle of the stream the worker is killed with SIGKILL (the postmaster then
# restarts every process, writers included), later the whole cluster is
# stopped in immediate mode and started again, and a last round of writers
# runs to the end.  Then the handler's table holds every committed event
# exactly once, in the order of a reference slot of the strata plugin
# created before the first writer: the handler's effects and the
# subscription's checkpoint are committed together.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use StrataNode;
use IPC::Run;
use Time::HiRes qw(usleep time);

my $node = strata_node('subcrash', conf => "restart_after_crash = on\n");
$node->safe_psql('postgres', q{
	CREATE EXTENSION strata;
	CREATE TABLE seen (n bigserial PRIMARY KEY, position bigint NOT NULL,
					   stream text NOT NULL, version bigint NOT NULL);
	CREATE FUNCTION record_event(e strata.events) RETURNS void
	LANGUAGE sql SET search_path = public, pg_temp AS $$
		INSERT INTO seen (position, stream, version)
		VALUES (e.position, e.stream, e.version)
	$$;
	SELECT pg_create_logical_replication_slot('check', 'strata');
	SELECT strata.subscribe('s1', 'record_event(strata.events)');
});
ok($node->poll_query_until('postgres',
	q{SELECT state = 'live' FROM strata.subscription_status WHERE name = 's1'}),
	'the subscription goes live');

my ($pgb_out, $pgb_err);
sub start_writers
{
	my ($transactions) = @_;
	return strata_writers($node, $transactions, \$pgb_out, \$pgb_err);
}

# Wait, while the writers run, until the handler has recorded $n events.
sub wait_seen
{
	my ($n, $writers) = @_;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (time < $deadline)
	{
		$writers->pump_nb if $writers->pumpable;
		my $c = $node->safe_psql('postgres', 'SELECT count(*) FROM seen');
		return $c if $c >= $n;
		usleep(20_000);
	}
	die "the handler did not reach $n events";
}

sub worker_pid
{
	return $node->safe_psql('postgres', q{
		SELECT pid FROM pg_stat_activity
		WHERE backend_type = 'strata worker' AND datname = 'postgres'});
}

# ---- SIGKILL of the worker mid-stream ----------------------------------
my $writers = start_writers(1500);
my $before = wait_seen(5000, $writers);
note('at the kill: ' . $node->safe_psql('postgres',
	q{SELECT count(*) || ' events handled of ' || (SELECT count(*) FROM strata.events) || ' committed' FROM seen})
	. ($writers->pumpable ? ', writers running' : ', writers done'));
my $pid = worker_pid();
ok($pid, 'the worker is in pg_stat_activity');
my $log_offset = -s $node->logfile;
kill 'KILL', $pid;
$node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset);
eval { $writers->finish; };
note("writers after the crash: " . ($pgb_err =~ /aborted/ ? 'aborted' : 'finished'));
$node->poll_query_until('postgres', 'SELECT true') or die 'no connection after the crash';
ok($node->poll_query_until('postgres', qq{
	SELECT count(*) = 1 FROM pg_stat_activity
	WHERE backend_type = 'strata worker' AND datname = 'postgres' AND pid <> $pid}),
	'a new worker runs after the crash');
ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'strata launcher'}),
	'and a launcher');

# ---- immediate shutdown mid-stream -------------------------------------
my $count = $node->safe_psql('postgres', 'SELECT count(*) FROM seen');
$writers = start_writers(1500);
$before = wait_seen($count + 5000, $writers);
note('at the shutdown: ' . $node->safe_psql('postgres',
	q{SELECT count(*) || ' events handled of ' || (SELECT count(*) FROM strata.events) || ' committed' FROM seen})
	. ($writers->pumpable ? ', writers running' : ', writers done'));
$node->stop('immediate');
eval { $writers->finish; };
$node->start;
ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM pg_stat_activity
	WHERE backend_type = 'strata worker' AND datname = 'postgres'}),
	'the worker runs again after the restart');

# ---- a last round, to the end ------------------------------------------
$writers = start_writers(1250);
$writers->finish;
like($pgb_out, qr/number of failed transactions: 0/, 'the last writers ran without failures')
  or diag($pgb_err);
my $total = $node->safe_psql('postgres', 'SELECT count(*) FROM strata.events');
cmp_ok($total, '>=', 20000, "$total events committed in all");
ok($node->poll_query_until('postgres', q{
	SELECT count(DISTINCT position) = (SELECT count(*) FROM strata.events) FROM seen}),
	'the handler got every committed event');

# ---- exactly once, in commit order -------------------------------------
is($node->safe_psql('postgres', 'SELECT count(*) FROM seen'), $total,
	'the handler ran once per committed event');
is($node->safe_psql('postgres',
	'SELECT count(*) FROM (SELECT position FROM seen GROUP BY position HAVING count(*) > 1) d'),
	'0', 'no event handled twice across the crashes');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM strata.events e
	WHERE NOT EXISTS (SELECT 1 FROM seen s WHERE s.position = e.position
						AND s.stream = e.stream AND s.version = e.version)}),
	'0', 'no committed event missing');

my @ref = split /,/, $node->safe_psql('postgres', q{
	SELECT string_agg(data::jsonb->>'position', ',' ORDER BY o)
	FROM pg_logical_slot_get_changes('check', NULL, NULL, 'format', 'json')
		 WITH ORDINALITY AS c(lsn, xid, data, o)});
is(scalar(@ref), $total, 'the reference slot decoded every committed event');
my @got = split /,/, $node->safe_psql('postgres',
	q{SELECT string_agg(position::text, ',' ORDER BY n) FROM seen});
my $i = 0;
$i++ while $i < @got && $i < @ref && $got[$i] == $ref[$i];
ok($i == @got && $i == @ref, 'events arrived in commit order across the crashes')
  or diag("first difference at index $i: received " . ($got[$i] // 'nothing')
	  . ', commit order has ' . ($ref[$i] // 'nothing'));
is($node->safe_psql('postgres', q{
	SELECT state, events_behind, parked FROM strata.subscription_status WHERE name = 's1'}),
	'live|0|0', 'status: live, nothing behind, nothing parked');

$node->stop;
done_testing();
