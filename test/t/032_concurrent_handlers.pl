# 032_concurrent_handlers.pl: a handler that sleeps does not hold the
# other subscriptions of its database (0.4.0: the worker ran every handler
# of the database in its own process, one at a time, so one handler in
# pg_sleep held the others until strata.handler_timeout cancelled it).
#
#   1. At default settings (strata.handler_timeout one minute,
#      strata.handler_workers 2): one handler sleeps in pg_sleep(3600);
#      another subscription's wait_for still returns true within a second,
#      twenty times in a row, and every event reaches it exactly once, in
#      order.
#   2. Events keep coming for the sleeper meanwhile: once it is resumed
#      (after a pause, which interrupts the sleep) it gets every one of
#      them, exactly once and in order.
#   3. kill -9 of a handler process in the middle of a handler: the
#      server restarts every process (crash recovery); afterwards both
#      subscriptions have every event exactly once.
#   4. The worker itself never runs a handler: its backend type is
#      'strata worker', and handlers run in 'strata handler' processes.
#   5. With max_worker_processes too low for the handler processes, the
#      subscription shows 'failing' with an error naming the setting (not
#      'catching up' with nothing said).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use FindBin;
use lib $FindBin::RealBin;
use StrataNode;

# default settings: no strata.* line
# (a crash restarts the server: part 3)
my $node = strata_node('concurrent', conf => "restart_after_crash = on\n");

$node->safe_psql('postgres', q{
	CREATE EXTENSION strata;
	CREATE TABLE public.seen (n bigserial, sub text, position bigint, type text);
	CREATE TABLE public.hang_done (position bigint);
	CREATE FUNCTION public.sleeper(e strata.events) RETURNS void LANGUAGE plpgsql AS $$
	BEGIN
		INSERT INTO public.seen (sub, position, type) VALUES ('sleeper', e.position, e.type);
		IF e.type = 'Hang' AND NOT EXISTS (SELECT FROM public.hang_done WHERE position = e.position) THEN
			PERFORM pg_sleep(3600);
		END IF;
	END $$;
	CREATE FUNCTION public.recorder(e strata.events) RETURNS void LANGUAGE sql AS $$
		INSERT INTO public.seen (sub, position, type) VALUES ('recorder', e.position, e.type) $$;
	SELECT strata.subscribe('sleepy', 'public.sleeper(strata.events)', categories => ARRAY['hang']);
	SELECT strata.subscribe('rec', 'public.recorder(strata.events)');
});
ok($node->poll_query_until('postgres',
	q{SELECT count(*) = 2 FROM strata.subscription_status WHERE state = 'live'}),
	'both subscriptions go live');

# ---- 1. one handler asleep, the other on time --------------------------
$node->safe_psql('postgres', q{SELECT strata.append('hang-1', '{"type": "Hang"}')});
ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM pg_stat_activity
	WHERE backend_type = 'strata handler' AND wait_event = 'PgSleep'}),
	'a handler process sleeps in pg_sleep(3600)');

my ($worst, $late) = (0, 0);
for my $i (1 .. 20)
{
	$node->safe_psql('postgres', qq{SELECT strata.append('rec-$i', '{"type": "R$i"}')});
	my $pos = $node->safe_psql('postgres', qq{SELECT max(position) FROM strata.events WHERE stream = 'rec-$i'});
	my $t0 = time();
	my $ok = $node->safe_psql('postgres', "SELECT strata.wait_for('rec', $pos, '1s')");
	my $dt = time() - $t0;
	$worst = $dt if $dt > $worst;
	$late++ if $ok ne 't';
	# and one more for the sleeper, which waits behind its own handler
	$node->safe_psql('postgres', qq{SELECT strata.append('hang-1', '{"type": "H$i"}')}) if $i % 5 == 0;
}
is($late, 0, sprintf('while it sleeps, wait_for on the other subscription is true within 1 s, 20 times (worst %.3f s)', $worst));
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM pg_stat_activity
	WHERE backend_type = 'strata handler' AND wait_event = 'PgSleep'}), '1',
	'the sleeper still sleeps');
is($node->safe_psql('postgres', q{
	SELECT count(*) || ' ' || count(DISTINCT position) || ' ' ||
		   bool_and(position IS NOT NULL)
	FROM public.seen WHERE sub = 'recorder'}),
	'25 25 true', 'the recorder saw each of its events once (the hang events too)');
is($node->safe_psql('postgres', q{
	SELECT string_agg(position::text, ',' ORDER BY n) = string_agg(position::text, ',' ORDER BY position)
	FROM public.seen WHERE sub = 'recorder'}), 't', 'in order');

# ---- 2. the sleeper, interrupted and resumed, gets everything ----------
$node->safe_psql('postgres', q{
	INSERT INTO public.hang_done SELECT position FROM strata.events WHERE type = 'Hang';
	SELECT strata.pause_subscription('sleepy');
});
ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 0 FROM pg_stat_activity WHERE wait_event = 'PgSleep'}),
	'the pause interrupts the sleeping handler');
$node->safe_psql('postgres', q{SELECT strata.resume_subscription('sleepy')});
my $last = $node->safe_psql('postgres', q{SELECT max(position) FROM strata.events WHERE category = 'hang'});
is($node->safe_psql('postgres', "SELECT strata.wait_for('sleepy', $last, '30s')"), 't',
	'resumed, the sleeper catches up');
is($node->safe_psql('postgres', q{
	SELECT string_agg(type, ',' ORDER BY n) FROM (
		SELECT DISTINCT ON (position) n, type FROM public.seen WHERE sub = 'sleeper'
		ORDER BY position, n DESC) s}),
	'Hang,H5,H10,H15,H20', 'every event of the sleeper, in order');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM public.seen WHERE sub = 'sleeper' AND type <> 'Hang'}), '4',
	'the events that came while it slept ran once each');

# ---- 3. kill -9 of a handler process in the middle of a handler ----------
$node->safe_psql('postgres', q{
	DELETE FROM public.hang_done;
	SELECT strata.append('hang-2', '{"type": "Hang"}');
});
ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM pg_stat_activity
	WHERE backend_type = 'strata handler' AND wait_event = 'PgSleep'}),
	'the sleeper sleeps again');
my $pid = $node->safe_psql('postgres', q{
	SELECT pid FROM pg_stat_activity WHERE backend_type = 'strata handler' AND wait_event = 'PgSleep'});
$node->safe_psql('postgres', q{INSERT INTO public.hang_done SELECT position FROM strata.events WHERE type = 'Hang'});
kill 'KILL', $pid;
ok($node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'strata worker'}),
	'the server came back with a worker');
$node->safe_psql('postgres', q{SELECT strata.append('rec-after', '{"type": "AfterKill"}')});
$last = $node->safe_psql('postgres', q{SELECT max(position) FROM strata.events});
is($node->safe_psql('postgres', "SELECT strata.wait_for('rec', $last, '60s')"), 't', 'the recorder goes on');
is($node->safe_psql('postgres', "SELECT strata.wait_for('sleepy', $last, '60s')"), 't', 'and the sleeper');
is($node->safe_psql('postgres', q{
	SELECT count(*) = count(DISTINCT position) AND count(*) = (SELECT count(*) FROM strata.events)
	FROM public.seen WHERE sub = 'recorder'}), 't', 'the recorder has every event exactly once');
is($node->safe_psql('postgres', q{
	SELECT count(DISTINCT position) = (SELECT count(*) FROM strata.events WHERE category = 'hang')
	FROM public.seen WHERE sub = 'sleeper'}), 't', 'the sleeper every one of its events');

# ---- 4. processes ----------------------------------------------------------
is($node->safe_psql('postgres', q{
	SELECT string_agg(backend_type || ' ' || count, ', ' ORDER BY backend_type) FROM (
		SELECT backend_type, count(*) FROM pg_stat_activity
		WHERE backend_type LIKE 'strata%' GROUP BY 1) s}),
	'strata handler 2, strata launcher 1, strata worker 1',
	'one launcher, one worker and strata.handler_workers (2) handler processes');

$node->stop('immediate');

# ---- 5. no room for the handler processes ------------------------------------
# room for the strata launcher, the logical replication launcher and the
# strata worker, none for its handler processes
my $small = strata_node('small', conf => "max_worker_processes = 3\n");
$small->safe_psql('postgres', q{
	CREATE EXTENSION strata;
	CREATE FUNCTION public.noop(e strata.events) RETURNS void LANGUAGE sql AS $$ SELECT $$;
	SELECT strata.subscribe('s', 'public.noop(strata.events)');
});
ok($small->poll_query_until('postgres', q{
	SELECT state = 'failing' AND last_error LIKE '%raise max_worker_processes%'
	FROM strata.subscription_status WHERE name = 's'}),
	'without room for handler processes, the status says failing, and why');
$small->stop('immediate');
done_testing();
