# 027_visibility.pl: failures and progress are visible where the user
# looks (issue #11, "Failures must be visible", "Progress of long work").
#   1. wal_level = replica: subscribe and define_projection(async) warn,
#      naming wal_level; subscription_status says 'not running' with the
#      setting in last_error; wait_for raises 55000 at once instead of
#      timing out.
#   2. output_plugin_libraries without strata (where the server has the
#      parameter) and strata.databases without the database: the same,
#      naming each setting; once the configuration is fixed and reloaded,
#      the subscription runs (wait_for true, state live).
#   3. wait_for on a parked event raises ST005 (the handler's error in the
#      detail); a paused subscription's wait times out with a NOTICE.
#   4. progress: a subscription catching up from history shows in
#      strata.progress (kind catch-up, position and events_done moving
#      within a batch, an estimate of the total and of the time left) and
#      in its handler process's pg_stat_activity.query; the server log has
#      a line when the catch-up starts and when it hands over to the WAL;
#      a rebuild of an inline projection shows in strata.progress
#      (kind rebuild, exact total) from another session, and is gone after.
use strict;
use warnings;
use IPC::Run;
use Time::HiRes qw(usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use StrataNode;

my $has_opl = `postgres --describe-config` =~ /^output_plugin_libraries\t/m;

# psql's stderr of a statement that may warn or fail
sub run_sql
{
	my ($node, $sql) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', $sql);
	return ($ret, $out, $err);
}

# append one event, return its position
sub append_pos
{
	my ($node, $stream, $event) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT strata.append('$stream', '$event') \\g /dev/null
		SELECT max(position) FROM strata.events});
}

my $handler = q{
	CREATE TABLE seen (position bigint PRIMARY KEY);
	CREATE FUNCTION h(e strata.events) RETURNS void LANGUAGE sql
		AS $$ INSERT INTO public.seen VALUES (e.position) $$;
};

# ---------- 1. wal_level = replica
my $a = strata_node('replica', conf => "wal_level = replica\n");
$a->safe_psql('postgres', "CREATE EXTENSION strata; $handler");
my ($ret, $out, $err) = run_sql($a, q{SELECT strata.subscribe('s', 'h(strata.events)')});
is($ret, 0, 'subscribe succeeds under wal_level = replica');
like($err, qr/WARNING:  no strata worker runs while wal_level is "replica"/,
	'subscribe warns, naming wal_level');
like($err, qr/HINT:  Set wal_level = logical and restart the server/,
	'with the fix in the hint');
($ret, $out, $err) = run_sql($a, q{
	CREATE FUNCTION p(e strata.events) RETURNS void LANGUAGE sql AS $$ SELECT $$;
	SELECT strata.define_projection('pa', 'p(strata.events)', mode => 'async')});
like($err, qr/WARNING:  no strata worker runs while wal_level.*\n.*The async projection is stored/,
	'define_projection(async) warns too');
is($a->safe_psql('postgres', q{SELECT state || ' | ' || last_error
	FROM strata.subscription_status WHERE name = 's'}),
	'not running | no strata worker runs while wal_level is "replica". '
	  . 'Set wal_level = logical and restart the server.',
	'subscription_status: not running, last_error names wal_level');
$a->safe_psql('postgres', q{SELECT strata.append('x-1', '{"type": "A"}')});
my $t0 = time;
($ret, $out, $err) = run_sql($a, q{
	\set VERBOSITY verbose
	SELECT strata.wait_for('s', 1, '30s')});
isnt($ret, 0, 'wait_for fails');
like($err, qr/ERROR:  55000: no strata worker runs while wal_level is "replica"/,
	'wait_for raises 55000 naming wal_level');
like($err, qr/DETAIL:  No strata worker can process subscription "s" until wal_level is changed/,
	'its detail names the subscription');
ok(time - $t0 < 20, 'at once, not after its timeout');
$a->stop;

# ---------- 2. output_plugin_libraries, strata.databases
my $b = strata_node('config',
	conf => "strata.retry_base_delay = 10\nstrata.max_attempts = 1\n"
	  . "strata.worker_batch_size = 200\n");
$b->safe_psql('postgres', "CREATE EXTENSION strata; $handler");
SKIP:
{
	skip 'the server has no output_plugin_libraries', 4 unless $has_opl;
	$b->append_conf('postgresql.conf', "output_plugin_libraries = 'pgoutput'\n");
	$b->reload;
	($ret, $out, $err) = run_sql($b, q{SELECT strata.subscribe('s', 'h(strata.events)')});
	like($err, qr/WARNING:  output_plugin_libraries does not list "strata"/,
		'subscribe warns, naming output_plugin_libraries');
	like($b->safe_psql('postgres', q{SELECT state || ' | ' || last_error
		FROM strata.subscription_status WHERE name = 's'}),
		qr/^not running \| output_plugin_libraries does not list "strata".*Add strata to output_plugin_libraries \(now 'pgoutput'\) and reload/,
		'subscription_status names output_plugin_libraries');
	($ret, $out, $err) = run_sql($b, q{SELECT strata.wait_for('s', 1, '30s')});
	like($err, qr/ERROR:  output_plugin_libraries does not list "strata"/,
		'wait_for raises, naming output_plugin_libraries');
	$b->append_conf('postgresql.conf',
		"output_plugin_libraries = 'pgoutput, test_decoding, strata'\n");
	$b->reload;
	$b->safe_psql('postgres', q{SELECT strata.unsubscribe('s')});
	pass('output_plugin_libraries fixed');
}
$b->append_conf('postgresql.conf', "strata.databases = 'elsewhere'\n");
$b->reload;
($ret, $out, $err) = run_sql($b, q{SELECT strata.subscribe('s', 'h(strata.events)')});
like($err, qr/WARNING:  strata.databases does not list database "postgres"/,
	'subscribe warns, naming strata.databases');
like($b->safe_psql('postgres', q{SELECT last_error FROM strata.subscription_status
	WHERE name = 's'}), qr/Add the database to strata.databases/,
	'subscription_status names strata.databases');
$b->append_conf('postgresql.conf', "strata.databases = ''\n");
$b->reload;
my $pos = append_pos($b, 'x-1', '{"type": "A"}');
is($b->safe_psql('postgres', "SELECT strata.wait_for('s', $pos, '60s')"), 't',
	'fixed and reloaded: the subscription runs');
is($b->safe_psql('postgres', q{SELECT state FROM strata.subscription_status WHERE name = 's'}),
	'live', 'and is live');

# ---------- 3. parked and paused
$b->safe_psql('postgres', q{
	CREATE FUNCTION bad(e strata.events) RETURNS void LANGUAGE plpgsql AS $$
	BEGIN
		IF e.type = 'Bad' THEN RAISE EXCEPTION 'cannot take event %', e.position; END IF;
	END $$;
	SELECT strata.subscribe('parks', 'bad(strata.events)', start_from => 'beginning');
});
my $bad = append_pos($b, 'x-2', '{"type": "Bad"}');
($ret, $out, $err) = run_sql($b, qq{
	\\set VERBOSITY verbose
	SELECT strata.wait_for('parks', $bad, '60s')});
like($err, qr/ERROR:  ST005: subscription "parks" parked the event at position $bad/,
	'wait_for on a parked event raises ST005');
like($err, qr/DETAIL:  Its handler failed on every attempt: cannot take event $bad/,
	'with the handler\'s error');
my $good = append_pos($b, 'x-2', '{"type": "Good"}');
is($b->safe_psql('postgres', "SELECT strata.wait_for('parks', $good, '60s')"), 't',
	'the next event is processed: true');
$b->safe_psql('postgres', q{SELECT strata.pause_subscription('parks')});
$good = append_pos($b, 'x-2', '{"type": "Good"}');
($ret, $out, $err) = run_sql($b, "SELECT strata.wait_for('parks', $good, '300ms')");
is($out, 'f', 'a paused subscription: false after the timeout');
like($err, qr/NOTICE:  subscription "parks" is paused/, 'with a NOTICE saying why');

# ---------- 4. progress
# 30,000 events, a handler of about 0.2 ms: the catch-up takes seconds,
# in steps of strata.worker_batch_size = 200
$b->safe_psql('postgres', q{
	SELECT strata.append('bulk-' || (i % 50), '{"type": "A"}')
	FROM generate_series(1, 30000) i;
	CREATE TABLE slow_seen (position bigint PRIMARY KEY);
	CREATE FUNCTION slow(e strata.events) RETURNS void LANGUAGE plpgsql AS $$
	BEGIN
		PERFORM pg_catalog.clock_timestamp() FROM generate_series(1, 500);
		INSERT INTO public.slow_seen VALUES (e.position);
	END $$;
});
my $last = $b->safe_psql('postgres', q{SELECT max(position) FROM strata.events});
my $log_offset = -s $b->logfile;
$b->safe_psql('postgres',
	q{SELECT strata.subscribe('history', 'slow(strata.events)', start_from => 'beginning')});
my @samples;
for (my $i = 0; $i < 600 && @samples < 5; $i++)
{
	my $row = $b->safe_psql('postgres', q{
		SELECT kind, position, events_done, events_total, target_position,
			   events_per_second IS NOT NULL AND time_left IS NOT NULL
		FROM strata.progress WHERE name = 'history' AND pid IS NOT NULL});
	push @samples, $row if $row ne '' && (split /\|/, $row)[2] > 0;
	usleep(50_000);
}
ok(@samples >= 3, 'the catch-up shows in strata.progress') or diag(join("\n", @samples));
my @first = split /\|/, $samples[0];
my @lastone = split /\|/, $samples[-1];
is($first[0], 'catch-up', 'kind catch-up');
ok($lastone[2] > $first[2], "events_done moves on ($first[2] -> $lastone[2])");
ok(scalar(grep { (split /\|/)[2] % 200 != 0 } @samples) > 0,
	'within a batch, not only at its commit');
ok($first[3] >= $last - 1000 && $first[3] <= $last + 1000,
	"events_total estimates the backlog ($first[3] for $last)");
is($first[5], 't', 'with a rate and the time left');
my $activity = $b->safe_psql('postgres', q{
	SELECT query FROM pg_stat_activity
	WHERE query LIKE 'strata subscription "history" catching up%'});
like($activity, qr/^strata subscription "history" catching up: position \d+ of \d+, \d+ of about \d+ events, \d+ events\/s, about \d+ s left/,
	'pg_stat_activity.query of the handler process shows it');
is($b->safe_psql('postgres', "SELECT strata.wait_for('history', $last, '180s')"), 't',
	'the catch-up ends');
$b->poll_query_until('postgres',
	q{SELECT count(*) = 0 FROM strata.progress WHERE name = 'history'})
  or die 'the catch-up stays in strata.progress';
pass('and leaves strata.progress');
my $log = slurp_file($b->logfile, $log_offset);
like($log, qr/LOG:  strata subscription "history" catching up from strata.events at position 1: about \d+ events up to position \d+/,
	'a log line when the catch-up starts');
like($log, qr/LOG:  strata subscription "history" caught up: \d+ events from position 1 in [\d.]+ s \(\d+ events\/s\); it follows the WAL from [0-9A-F]+\/[0-9A-F]+/,
	'and when it hands over to the WAL');

# a rebuild, seen from another session
$b->safe_psql('postgres', q{
	CREATE TABLE rebuilt (position bigint PRIMARY KEY);
	CREATE FUNCTION rb(e strata.events) RETURNS void LANGUAGE plpgsql AS $$
	BEGIN
		PERFORM pg_catalog.clock_timestamp() FROM generate_series(1, 500);
		INSERT INTO public.rebuilt VALUES (e.position) ON CONFLICT DO NOTHING;
	END $$;
	CREATE FUNCTION rb_reset() RETURNS void LANGUAGE sql AS $$ TRUNCATE public.rebuilt $$;
	SELECT strata.define_projection('inline_rb', 'rb(strata.events)', categories => '{bulk}');
});
my ($rout, $rerr) = ('', '');
my $h = IPC::Run::start(
	[ 'psql', '-X', '-At', '-h', $b->host, '-p', $b->port, '-d', 'postgres',
	  '-c', q{SELECT strata.rebuild_projection('inline_rb', 'rb_reset()')} ],
	'>', \$rout, '2>', \$rerr);
my $seen = '';
for (my $i = 0; $i < 600 && $seen eq ''; $i++)
{
	$seen = $b->safe_psql('postgres', q{
		SELECT kind || ' ' || events_total || ' ' || (events_done > 0)
		FROM strata.progress WHERE name = 'inline_rb' AND events_done > 0});
	usleep(50_000);
}
is($seen, 'rebuild 30000 true', 'a rebuild shows in strata.progress with its exact total');
$h->finish;
chomp $rout;
is($rout, '30000', 'the rebuild ran');
is($b->safe_psql('postgres', q{SELECT count(*) FROM strata.progress WHERE name = 'inline_rb'}),
	'0', 'and leaves strata.progress');

$b->stop;
done_testing();
