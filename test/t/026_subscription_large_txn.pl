# 026_subscription_large_txn.pl: the strata worker's memory stays bounded
# whatever the size of a transaction (issue #15).
#
# 1. One transaction appends 2,000,000 events (2,000 strata.append calls of
#    1,000 events, in one statement).  A subscription records each event
#    it is handed, with a serial arrival number.  Halfway through, the
#    worker is killed with SIGKILL (the postmaster restarts every
#    process); the new worker resumes.  The subscription must get every
#    event exactly once, in order, and neither worker's peak resident set
#    size (VmHWM, which the kernel keeps, and RssAnon sampled from /proc
#    every 100 ms) may exceed WORKER_BOUND_MB, with PostgreSQL's default
#    logical_decoding_work_mem (64MB) and strata.worker_memory (32MB).
# 2. With strata.worker_memory at its least (64kB), one transaction whose
#    positions have a gap after every event (50,000 runs of one event)
#    keeps its runs in a temporary file of the worker (log_temp_files
#    shows it); two subscriptions, one of them taking only one type of
#    event, each get their events exactly once, in order.
# 3. Still at 64kB, 4,000 small transactions from pgbench exceed the
#    budget with their entries: a subscription gets them exactly once,
#    in the commit order of a reference slot.
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

my $WORKER_BOUND_MB = 128;
my $EVENTS = 2_000_000;

my $node = strata_node('largetxn',
	conf => "restart_after_crash = on\nlog_temp_files = 0\n");
$node->safe_psql('postgres', q{
	CREATE EXTENSION strata;
	CREATE TABLE seen (n bigserial PRIMARY KEY, position bigint NOT NULL);
	CREATE FUNCTION record_event(e strata.events) RETURNS void
	LANGUAGE sql SET search_path = public, pg_temp AS $$
		INSERT INTO seen (position) VALUES (e.position)
	$$;
	SELECT strata.subscribe('big', 'record_event(strata.events)',
							categories => ARRAY['big']);
});
ok($node->poll_query_until('postgres',
	q{SELECT state = 'live' FROM strata.subscription_status WHERE name = 'big'}),
	'the subscription goes live');

sub worker_pid
{
	return $node->safe_psql('postgres', q{
		SELECT pid FROM pg_stat_activity
		WHERE backend_type = 'strata worker' AND datname = 'postgres'});
}

# /proc/PID/status, in kB: (VmHWM, the kernel's peak; VmRSS; RssAnon)
sub memory_of
{
	my ($pid) = @_;
	my %kb;
	open(my $fh, '<', "/proc/$pid/status") or return;
	while (<$fh>)
	{
		$kb{$1} = $2 if /^(VmHWM|VmRSS|RssAnon):\s+(\d+) kB/;
	}
	close($fh);
	return \%kb;
}

# A sampler of a process's RssAnon every 100 ms, until it exits; the
# largest sample is read back with sampled_peak.
sub start_sampler
{
	my ($pid, $file) = @_;
	unlink $file;
	return IPC::Run::start([
		'bash', '-c', q{
			peak=0
			while [ -r /proc/$1/status ]; do
				kb=$(awk '$1 == "RssAnon:" { print $2 }' /proc/$1/status 2>/dev/null)
				if [ -n "$kb" ] && [ "$kb" -gt "$peak" ]; then
					peak=$kb
					echo "$peak" > "$2"
				fi
				sleep 0.1
			done
		}, 'sampler', $pid, $file ]);
}

sub sampled_peak
{
	my ($file) = @_;
	open(my $fh, '<', $file) or return 0;
	my $kb = <$fh> // 0;
	close($fh);
	chomp $kb;
	return $kb;
}

# ---- 1. two million events in one transaction, a SIGKILL halfway --------
my $pid = worker_pid();
ok($pid, 'the worker runs');
my $dir = $PostgreSQL::Test::Utils::tmp_check;
my $sampler = start_sampler($pid, "$dir/rss_first");

my $t0 = time;
my $last = $node->safe_psql('postgres', qq{
	SELECT count(strata.append('big-' || g,
		(SELECT jsonb_agg(jsonb_build_object('type', 'T', 'data', jsonb_build_object('i', i)))
		 FROM generate_series(1, 1000) i)))
	FROM generate_series(1, $EVENTS / 1000) g;
	SELECT max(position) FROM strata.events;
});
note(sprintf('appended %d events in one transaction in %.1f s', $EVENTS, time - $t0));
is($node->safe_psql('postgres', 'SELECT count(*) FROM strata.events'), $EVENTS,
	'one transaction appended them all');

# halfway: kill the worker
my $deadline = time + 600;
while (time < $deadline)
{
	last if $node->safe_psql('postgres', 'SELECT count(*) FROM seen') >= $EVENTS / 2;
	usleep(100_000);
}
my $handled = $node->safe_psql('postgres', 'SELECT count(*) FROM seen');
cmp_ok($handled, '>=', $EVENTS / 2, "halfway: $handled events handled before the kill");
my $first = memory_of($pid);
my $log_offset = -s $node->logfile;
kill 'KILL', $pid;
$node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset);
$sampler->finish;
my $first_sampled = sampled_peak("$dir/rss_first");
$node->poll_query_until('postgres', 'SELECT true') or die 'no connection after the crash';
ok($node->poll_query_until('postgres', qq{
	SELECT count(*) = 1 FROM pg_stat_activity
	WHERE backend_type = 'strata worker' AND datname = 'postgres' AND pid <> $pid}),
	'a new worker runs after the crash');
my $resumed_at = $node->safe_psql('postgres', 'SELECT count(*) FROM seen');
my $pid2 = worker_pid();
$sampler = start_sampler($pid2, "$dir/rss_second");

ok($node->poll_query_until('postgres', qq{
	SELECT count(*) >= $EVENTS FROM seen}),
	'the subscription gets to the end after the crash');
# a last look: nothing more arrives once the worker has caught up
ok($node->poll_query_until('postgres', q{
	SELECT strata.wait_for('big', (SELECT max(position) FROM strata.events), '60s')}),
	'wait_for sees the last position processed');
my $second = memory_of($pid2);
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid2)");
$sampler->finish;
my $second_sampled = sampled_peak("$dir/rss_second");

is($node->safe_psql('postgres', 'SELECT count(*) FROM seen'), $EVENTS,
	'the handler ran once per event');
is($node->safe_psql('postgres',
	'SELECT count(*) FROM seen s JOIN strata.events e USING (position)'), $EVENTS,
	'every event handled is one of the transaction');
is($node->safe_psql('postgres', 'SELECT count(DISTINCT position) FROM seen'), $EVENTS,
	'no event was handled twice');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (SELECT position, lag(position) OVER (ORDER BY n) AS prev FROM seen) s
	WHERE prev >= position}), 0,
	'the events came in the order the transaction wrote them');
cmp_ok($resumed_at, '<', $EVENTS, "the new worker resumed at $resumed_at events");

note(sprintf('first worker: VmHWM %d kB, RssAnon sampled peak %d kB; '
	  . 'second worker: VmHWM %d kB, RssAnon sampled peak %d kB',
	$first->{VmHWM}, $first_sampled, $second->{VmHWM}, $second_sampled));
cmp_ok($first->{VmHWM}, '<', $WORKER_BOUND_MB * 1024,
	"the first worker's peak resident memory stayed under $WORKER_BOUND_MB MB");
cmp_ok($second->{VmHWM}, '<', $WORKER_BOUND_MB * 1024,
	"the second worker's too");
cmp_ok($first_sampled, '>', 0, 'the sampler read the first worker');
cmp_ok(($first_sampled > $second_sampled ? $first_sampled : $second_sampled),
	'<', $WORKER_BOUND_MB * 1024, "and so did its sampled anonymous memory");

# ---- 2. runs beyond strata.worker_memory go to a temporary file ---------
$node->safe_psql('postgres', q{
	ALTER SYSTEM SET strata.worker_memory = '64kB';
	SELECT pg_reload_conf();
	CREATE TABLE seen_all (n bigserial PRIMARY KEY, position bigint NOT NULL);
	CREATE TABLE seen_f2 (n bigserial PRIMARY KEY, position bigint NOT NULL,
						  type text NOT NULL);
	CREATE FUNCTION record_all(e strata.events) RETURNS void
	LANGUAGE sql SET search_path = public, pg_temp AS $$
		INSERT INTO seen_all (position) VALUES (e.position)
	$$;
	CREATE FUNCTION record_f2(e strata.events) RETURNS void
	LANGUAGE sql SET search_path = public, pg_temp AS $$
		INSERT INTO seen_f2 (position, type) VALUES (e.position, e.type)
	$$;
	SELECT strata.subscribe('frag_all', 'record_all(strata.events)',
							categories => ARRAY['frag']);
	SELECT strata.subscribe('frag_f2', 'record_f2(strata.events)',
							categories => ARRAY['frag'], types => ARRAY['F2']);
});
ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 2 FROM strata.subscription_status
	WHERE name LIKE 'frag%' AND state = 'live'}),
	'the two subscriptions go live');
my $pid3 = worker_pid();
is($node->safe_psql('postgres', 'SHOW strata.worker_memory'), '64kB',
	'strata.worker_memory is 64kB');
$log_offset = -s $node->logfile;
# a gap after every event: every event is a run of its own
$node->safe_psql('postgres', q{
	SELECT count(strata.append('frag-' || g,
			jsonb_build_array(jsonb_build_object('type', 'F' || (g % 2 + 1)))))
		   + count(nextval('strata._position_seq'))
	FROM generate_series(1, 50000) g;
});
ok($node->poll_query_until('postgres', q{
	SELECT strata.wait_for('frag_all', (SELECT max(position) FROM strata.events), '60s')
	   AND strata.wait_for('frag_f2', (SELECT max(position) FROM strata.events), '60s')}),
	'both subscriptions processed the transaction');
is($node->safe_psql('postgres', q{
	SELECT count(*) || ' ' || count(DISTINCT position) FROM seen_all}), '50000 50000',
	'all its events reached the first subscription, once each');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (SELECT position, lag(position) OVER (ORDER BY n) AS prev FROM seen_all) s
	WHERE prev >= position}), 0, 'in order');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (SELECT position, lag(position) OVER (ORDER BY n) AS prev FROM seen_all) s
	WHERE prev + 1 = position}), 0, 'every event of it was a run of its own');
is($node->safe_psql('postgres', q{
	SELECT count(*) || ' ' || count(DISTINCT position) || ' ' || count(*) FILTER (WHERE type = 'F2')
	FROM seen_f2}), '25000 25000 25000',
	'the second subscription got its 25,000 events of type F2, once each');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (SELECT position, lag(position) OVER (ORDER BY n) AS prev FROM seen_f2) s
	WHERE prev >= position}), 0, 'in order too');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM strata.events e
	WHERE category = 'frag' AND type = 'F2'
	  AND NOT EXISTS (SELECT FROM seen_f2 s WHERE s.position = e.position)}), 0,
	'none of them is missing');
ok($node->wait_for_log(qr/temporary file: path "base\/pgsql_tmp\/pgsql_tmp$pid3\./, $log_offset),
	'the worker kept the runs in a temporary file, and deleted it');

# ---- 3. over the budget: subscriptions fall behind and catch up ---------
# Thousands of small transactions at 64kB, for a handler that takes a
# millisecond an event: the transactions waiting for it exceed the
# budget, so it is given no more and catches up later by a rewind;
# still exactly once, in commit order.
$node->safe_psql('postgres', q{
	CREATE TABLE seen_small (n bigserial PRIMARY KEY, position bigint NOT NULL);
	CREATE FUNCTION record_small(e strata.events) RETURNS void
	LANGUAGE sql SET search_path = public, pg_temp AS $$
		INSERT INTO seen_small (position) VALUES (e.position);
		SELECT pg_sleep(0.001);
	$$;
	SELECT strata.subscribe('small', 'record_small(strata.events)',
							categories => ARRAY['cat1', 'cat2', 'cat3']);
});
ok($node->poll_query_until('postgres', q{
	SELECT state = 'live' FROM strata.subscription_status WHERE name = 'small'}),
	'a third subscription goes live');
$node->safe_psql('postgres', q{SELECT pg_create_logical_replication_slot('check', 'strata')});
$log_offset = -s $node->logfile;
my ($pgb_out, $pgb_err);
my $writers = strata_writers($node, 1000, \$pgb_out, \$pgb_err);
$writers->finish;
like($pgb_out, qr/number of failed transactions: 0/, '4,000 small transactions committed')
  or diag($pgb_err);
ok($node->poll_query_until('postgres', q{
	SELECT strata.wait_for('small', (SELECT max(position) FROM strata.events), '60s')}),
	'the subscription processed them');
is($node->safe_psql('postgres', q{
	SELECT count(*) || ' ' || count(DISTINCT position) FROM seen_small}),
	$node->safe_psql('postgres', q{
	SELECT count(*) || ' ' || count(*) FROM strata.events WHERE category LIKE 'cat%'}),
	'every event reached it once');
is($node->safe_psql('postgres', q{SELECT string_agg(position::text, ',' ORDER BY n) FROM seen_small}),
	$node->safe_psql('postgres', q{
		SELECT string_agg(data::jsonb->>'position', ',' ORDER BY o)
		FROM pg_logical_slot_get_changes('check', NULL, NULL, 'format', 'json',
										 'categories', 'cat1,cat2,cat3')
			 WITH ORDINALITY AS c(lsn, xid, data, o)}),
	'in commit order (that of a reference slot)');
$node->safe_psql('postgres', q{SELECT pg_drop_replication_slot('check')});
my $rewinds = () = slurp_file($node->logfile, $log_offset)
  =~ /starting logical decoding for slot "strata_/g;
cmp_ok($rewinds, '>', 0,
	"the subscription fell behind over the budget and caught up: the worker decoded again $rewinds times");

$node->stop;
done_testing();
