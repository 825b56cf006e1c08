# 030_security_worker.pl: the worker runs the handlers of several owners
# in one session; nothing of one call may reach the next (0.3.0: a
# handler's set_config(..., false) stayed for the handlers that followed,
# and its temporary tables shadowed their tables).  And a handler cannot
# hold the worker: strata.handler_timeout turns a hanging call into a
# failed attempt, a pause or an unsubscribe interrupts it.  And a
# subscription whose owner was dropped from another database stops
# instead of running as whoever gets the OID.
#
#   1. Two owners, one worker: the attacker's handler sets search_path
#      (and work_mem) for the session and tries a temporary table named as
#      the victim's; the victim's handler (a superuser's) still runs as
#      itself with the safe search_path, finds no planted table, and a
#      handler that declares SET search_path gets it.  The temporary
#      table is refused and parked as a handler error.
#   2. With strata.handler_timeout = 0 (off), a handler sleeping in
#      pg_sleep(3600) holds neither the worker nor the other
#      subscriptions (0.4.0: they waited behind it): they go on within a
#      second; pause_subscription interrupts it within seconds (the
#      paused one's attempts are not counted), and so does unsubscribe.
#   3. strata.handler_timeout = 500ms (ALTER SYSTEM, reload): the sleeping
#      handler fails with 57014 after 500ms, is retried, then parked
#      with a message naming strata.handler_timeout.
#   4. The owner dropped from another database: the subscription fails
#      (42704) without calling the handler; a superuser gives it a new
#      owner and it runs as that owner.
#   5. A handler that catches query_canceled and sleeps again still does
#      not hold the worker: the other subscriptions go on, and a pause
#      stops it.  A cancel (57014) can be caught by PL/pgSQL
#      (EXCEPTION WHEN query_canceled), so a single cancel is not enough.
#   6. A handler that pauses its own subscription is refused (55006), as
#      a handler failure, instead of making the worker retry its batch for
#      ever.
#   7. An event at the largest position stops the worker at every round:
#      subscription_status shows 'failing' with the error, not 'live'.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use FindBin;
use lib $FindBin::RealBin;
use StrataNode;

# handler_timeout off from the start: part 2 must show that a pause, not
# the timeout, ends the call
my $node = strata_node('secworker',
	conf => "strata.retry_base_delay = 10\nstrata.max_attempts = 3\n"
	  . "strata.handler_timeout = 0\n");

# ---- 1. two owners in one worker session ------------------------------
$node->safe_psql('postgres', q{
	CREATE EXTENSION strata;
	CREATE ROLE attacker LOGIN;
	CREATE ROLE victim SUPERUSER LOGIN;
	SELECT strata.grant_privileges('attacker', 'subscriber');
	-- the attacker's schema, with a table named as the one the victim's
	-- handler uses unqualified
	CREATE SCHEMA attacker_schema AUTHORIZATION attacker;
	CREATE TABLE public.log (who text, what text);
	GRANT SELECT ON public.log TO PUBLIC;
	-- which table an unqualified name resolves to, schema-qualified
	CREATE FUNCTION public.resolve(name text) RETURNS text LANGUAGE sql AS $$
		SELECT coalesce((SELECT regexp_replace(n.nspname, '^pg_temp_[0-9]+$', 'pg_temp') || '.' || c.relname
						 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
						 WHERE c.oid = pg_catalog.to_regclass(name)), '(none)') $$;
	-- what the victim's handlers saw
	CREATE TABLE public.victim_seen (n serial, handler text, type text, cu text, path text,
									 log_is text, work_mem text);
});
$node->safe_psql('postgres', q{
	SET ROLE attacker;
	CREATE TABLE attacker_schema.log (who text, what text);
	CREATE TABLE attacker_schema.a_seen (n serial, type text, cu text, path text);
	CREATE FUNCTION attacker_schema.handler(e strata.events) RETURNS void
	LANGUAGE plpgsql AS $$
	BEGIN
		INSERT INTO attacker_schema.a_seen (type, cu, path)
		VALUES (e.type, current_user, current_setting('search_path'));
		IF e.type = 'SetPath' THEN
			PERFORM set_config('search_path', 'attacker_schema, public', false);
			PERFORM set_config('work_mem', '77kB', false);
		ELSIF e.type = 'TempTable' THEN
			CREATE TEMP TABLE log (who text, what text);
		END IF;
	END $$;
	-- subscribed first: in each round the worker runs it first
	SELECT strata.subscribe('a_sub', 'attacker_schema.handler(strata.events)',
							categories => ARRAY['shared']);
});
$node->safe_psql('postgres', q{
	SET ROLE victim;
	CREATE FUNCTION public.victim_handler(e strata.events) RETURNS void
	LANGUAGE plpgsql AS $$
	BEGIN
		INSERT INTO public.victim_seen (handler, type, cu, path, log_is, work_mem)
		VALUES ('plain', e.type, current_user, current_setting('search_path'),
				public.resolve('log'), current_setting('work_mem'));
	END $$;
	-- a handler that declares its path gets it
	CREATE FUNCTION public.victim_handler_path(e strata.events) RETURNS void
	LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
	BEGIN
		INSERT INTO victim_seen (handler, type, cu, path, log_is, work_mem)
		VALUES ('with path', e.type, current_user, current_setting('search_path'),
				public.resolve('log'), current_setting('work_mem'));
	END $$;
	SELECT strata.subscribe('v_sub', 'public.victim_handler(strata.events)',
							categories => ARRAY['shared']);
	SELECT strata.subscribe('v_sub_path', 'public.victim_handler_path(strata.events)',
							categories => ARRAY['shared']);
});
ok($node->poll_query_until('postgres',
	q{SELECT count(*) = 3 FROM strata.subscription_status WHERE state = 'live'}),
	'the three subscriptions go live');

# one event per transaction, so that each is a round of its own
$node->safe_psql('postgres', qq{SELECT strata.append('shared-1', '{"type": "$_"}')})
  for qw(SetPath Probe1 TempTable Probe2);
ok($node->poll_query_until('postgres',
	q{SELECT count(*) = 8 FROM public.victim_seen}),
	'the victim\'s handlers saw the four events each');
ok($node->poll_query_until('postgres',
	q{SELECT count(*) = 1 FROM strata.parked_events WHERE subscription = 'a_sub'}),
	'the attacker\'s failing event is parked');

is($node->safe_psql('postgres', q{
	SELECT string_agg(format('%s/%s: %s; %s; log=%s; work_mem=%s', handler, type, cu, path, log_is, work_mem),
					  E'\n' ORDER BY handler, n) FROM public.victim_seen}),
	join("\n",
		map({ "plain/$_: victim; pg_catalog, pg_temp; log=(none); work_mem=4MB" } qw(SetPath Probe1 TempTable Probe2)),
		map({ "with path/$_: victim; public, pg_temp; log=public.log; work_mem=4MB" } qw(SetPath Probe1 TempTable Probe2))),
	'each victim handler ran as the victim, with its own search_path, no planted table, the default work_mem');
is($node->safe_psql('postgres', q{
	SELECT string_agg(format('%s: %s; %s', type, cu, path), E'\n' ORDER BY n)
	FROM attacker_schema.a_seen}),
	join("\n", map({ "$_: attacker; pg_catalog, pg_temp" } qw(SetPath Probe1 Probe2))),
	'the attacker\'s handler ran as the attacker, with the safe path every time (its own set_config did not last)');
is($node->safe_psql('postgres', q{
	SELECT attempts || ' ' || sqlstate || ' ' || error FROM strata.parked_events
	WHERE subscription = 'a_sub'}),
	'3 42501 cannot create temporary table within security-restricted operation',
	'its temporary table was refused (42501) on every attempt, and parked');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM attacker_schema.log}), '0', 'nothing was written to the attacker\'s table');
is($node->safe_psql('postgres', q{
	SELECT string_agg(name || ' ' || state, ', ' ORDER BY name) FROM strata.subscription_status}),
	'a_sub live, v_sub live, v_sub_path live', 'all three subscriptions are live');

# ---- 2. pause and unsubscribe interrupt a hanging handler -----------------
$node->safe_psql('postgres', q{
	CREATE TABLE public.seen (sub text, type text, at timestamptz DEFAULT clock_timestamp());
	CREATE FUNCTION public.sleeper(e strata.events) RETURNS void LANGUAGE plpgsql AS $$
	BEGIN
		INSERT INTO public.seen (sub, type) VALUES ('sleeper', e.type);
		IF e.type = 'Hang' THEN
			PERFORM pg_sleep(3600);
		END IF;
	END $$;
	CREATE FUNCTION public.recorder(e strata.events) RETURNS void LANGUAGE sql AS $$
		INSERT INTO public.seen (sub, type) VALUES ('recorder', e.type) $$;
	SELECT strata.subscribe('sleepy', 'public.sleeper(strata.events)', categories => ARRAY['hang']);
	SELECT strata.subscribe('sleepy2', 'public.sleeper(strata.events)', categories => ARRAY['hang2']);
	SELECT strata.subscribe('rec', 'public.recorder(strata.events)', categories => ARRAY['rec']);
});
ok($node->poll_query_until('postgres',
	q{SELECT count(*) = 3 FROM strata.subscription_status
	  WHERE name IN ('sleepy', 'sleepy2', 'rec') AND state = 'live'}),
	'the sleeper and the recorder go live');

# Wait until a handler process sleeps in the handler; the next event of
# the recorder does not wait behind it; then the change interrupts it.
sub hang_then
{
	my ($category, $what, $sql) = @_;
	$node->safe_psql('postgres', qq{SELECT strata.append('$category-1', '{"type": "Hang"}')});
	ok($node->poll_query_until('postgres', q{
		SELECT count(*) = 1 FROM pg_stat_activity
		WHERE backend_type = 'strata handler' AND wait_event = 'PgSleep'}),
		"$what: a handler process sleeps in the handler");
	$node->safe_psql('postgres', q{SELECT strata.append('rec-1', '{"type": "Beside"}')});
	my $pos = $node->safe_psql('postgres', q{SELECT max(position) FROM strata.events WHERE category = 'rec'});
	is($node->safe_psql('postgres', "SELECT strata.wait_for('rec', $pos, '1s')"), 't',
		"$what: the recorder does not wait behind the sleeping handler");
	my $t0 = time();
	$node->safe_psql('postgres', $sql);
	ok($node->poll_query_until('postgres', q{
		SELECT count(*) = 0 FROM pg_stat_activity WHERE wait_event = 'PgSleep'}),
		"$what: the sleeping handler is interrupted");
	my $elapsed = time() - $t0;
	ok($elapsed < 3, sprintf("%s: within seconds (%.2f s)", $what, $elapsed));
}

hang_then('hang', 'pause', q{SELECT strata.pause_subscription('sleepy')});
is($node->safe_psql('postgres', q{
	SELECT state || ' ' || attempts || ' ' || coalesce(last_error, '(no error)') || ' ' ||
		   (SELECT count(*) FROM strata.parked_events WHERE subscription = 'sleepy')
	FROM strata.subscriptions WHERE name = 'sleepy'}),
	'paused 0 (no error) 0', 'the paused subscription: no attempt counted, no error, nothing parked');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'}), '0',
	'nobody sleeps any more');

hang_then('hang2', 'unsubscribe', q{SELECT strata.unsubscribe('sleepy2')});
is($node->safe_psql('postgres', q{SELECT count(*) FROM strata.subscriptions WHERE name = 'sleepy2'}),
	'0', 'the subscription is gone');

# ---- 3. strata.handler_timeout ---------------------------------------------
$node->safe_psql('postgres', q{
	ALTER SYSTEM SET strata.handler_timeout = '500ms';
	SELECT pg_reload_conf();
});
# the worker reads the new value at its next round; the paused sleeper,
# resumed, hangs on its event again: each attempt ends after 500ms
my $t0 = time();
$node->safe_psql('postgres', q{SELECT strata.resume_subscription('sleepy')});
ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM strata.parked_events WHERE subscription = 'sleepy'}),
	'the hanging event is parked');
my $elapsed = time() - $t0;
is($node->safe_psql('postgres', q{
	SELECT attempts || ' ' || sqlstate || ' ' || error FROM strata.parked_events
	WHERE subscription = 'sleepy'}),
	'3 57014 handler of subscription "sleepy" ran longer than strata.handler_timeout (500 ms)',
	'after 3 attempts of 500ms, with SQLSTATE 57014 and a message naming strata.handler_timeout');
ok($elapsed >= 1.5 && $elapsed < 30, sprintf('in about 3 x 500ms (%.2f s)', $elapsed));
is($node->safe_psql('postgres', q{SELECT state FROM strata.subscription_status WHERE name = 'sleepy'}),
	'live', 'and the subscription goes on');
$node->safe_psql('postgres', q{SELECT strata.append('hang-2', '{"type": "Quick"}')});
ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM public.seen WHERE sub = 'sleeper' AND type = 'Quick'}),
	'with its next event');

# ---- 4. an owner dropped from another database ------------------------------
$node->safe_psql('postgres', q{
	CREATE ROLE subscribers;
	SELECT strata.grant_privileges('subscribers', 'subscriber');
	-- owns nothing but a subscription: its privileges come from the group
	CREATE ROLE gone IN ROLE subscribers;
	CREATE ROLE heir IN ROLE subscribers;
	CREATE TABLE public.who_seen (type text, cu text);
	GRANT INSERT ON public.who_seen TO subscribers;
	CREATE FUNCTION public.who(e strata.events) RETURNS void LANGUAGE sql AS $$
		INSERT INTO public.who_seen VALUES (e.type, current_user) $$;
	SET ROLE gone;
	SELECT strata.subscribe('orphan', 'public.who(strata.events)', categories => ARRAY['orph']);
});
my ($ret, $out, $err) = $node->psql('postgres', 'DROP ROLE gone');
like($err, qr/role "gone" cannot be dropped because some pg_strata objects depend on it/,
	'in its database the role cannot be dropped');
$node->safe_psql('postgres', 'CREATE DATABASE other');
$node->safe_psql('other', 'DROP ROLE gone');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_roles WHERE rolname = 'gone'}), '0',
	'from another database it can');
$node->safe_psql('postgres', q{SELECT strata.append('orph-1', '{"type": "Orphaned"}')});
ok($node->poll_query_until('postgres', q{
	SELECT last_error LIKE '%no longer exists%' FROM strata.subscription_status WHERE name = 'orphan'}),
	'the subscription fails: its owner no longer exists');
diag($node->safe_psql('postgres', q{
	SELECT state || ': ' || last_error FROM strata.subscription_status WHERE name = 'orphan'}));
is($node->safe_psql('postgres', q{SELECT count(*) FROM public.who_seen}), '0',
	'and its handler did not run');
is($node->safe_psql('postgres', q{SET ROLE heir; SELECT count(*) FROM strata.subscription_status}), '0',
	'a role without pg_read_all_stats reads the status (without the orphan) with no error');
$node->safe_psql('postgres', q{
	SELECT strata.alter_subscription_owner('orphan', 'heir');
	SELECT strata.resume_subscription('orphan');
});
ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM public.who_seen WHERE type = 'Orphaned'}),
	'given a new owner by a superuser, it runs');
is($node->safe_psql('postgres', q{SELECT owner || ' ' || cu FROM strata.subscriptions, public.who_seen
	WHERE name = 'orphan'}), 'heir heir', 'as the new owner');

# ---- 5. a handler that catches the cancel -----------------------------------
# PL/pgSQL can catch query_canceled (57014): the one cancel of the timeout
# or of a pause must not be all there is, or one role's handler holds the
# worker, and with it every other role's subscription, for ever.
$node->safe_psql('postgres', q{
	SET ROLE attacker;
	CREATE FUNCTION attacker_schema.stubborn(e strata.events) RETURNS void LANGUAGE plpgsql AS $$
	BEGIN
		LOOP
			BEGIN
				PERFORM pg_sleep(3600);
			EXCEPTION WHEN query_canceled THEN
				NULL;	-- and sleep again
			END;
		END LOOP;
	END $$;
	SELECT strata.subscribe('stubborn', 'attacker_schema.stubborn(strata.events)',
							categories => ARRAY['stub']);
});
ok($node->poll_query_until('postgres',
	q{SELECT state = 'live' FROM strata.subscription_status WHERE name = 'stubborn'}),
	'the stubborn subscription goes live');
$node->safe_psql('postgres', q{SELECT strata.append('stub-1', '{"type": "Hang"}')});
ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM pg_stat_activity
	WHERE backend_type = 'strata handler' AND wait_event = 'PgSleep'}),
	'stubborn: a handler process sleeps in the handler');
$node->safe_psql('postgres', q{SELECT strata.append('rec-1', '{"type": "AfterStubborn"}')});
my $rec = $node->safe_psql('postgres', q{SELECT max(position) FROM strata.events WHERE category = 'rec'});
is($node->safe_psql('postgres', "SELECT strata.wait_for('rec', $rec, '30s')"), 't',
	'stubborn: the other subscriptions go on, though the handler catches the timeout\'s cancel');
$node->safe_psql('postgres', q{SELECT strata.pause_subscription('stubborn')});
local $PostgreSQL::Test::Utils::timeout_default = 30;
ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 0 FROM pg_stat_activity
	WHERE backend_type = 'strata handler' AND wait_event = 'PgSleep'}),
	'stubborn: once paused, its handler no longer runs');

# ---- 6. a handler that changes its own subscription --------------------------
# The change would roll back with the worker's batch, which then finds the
# subscription changed and runs again, for ever: it is refused instead, a
# failure of the handler like any other (retried, then parked).
$node->safe_psql('postgres', q{
	CREATE FUNCTION public.self_pause(e strata.events) RETURNS void LANGUAGE sql
	AS $$ SELECT strata.pause_subscription('selfpause') $$;
	SELECT strata.subscribe('selfpause', 'public.self_pause(strata.events)',
							categories => ARRAY['selfp']);
});
ok($node->poll_query_until('postgres',
	q{SELECT state = 'live' FROM strata.subscription_status WHERE name = 'selfpause'}),
	'self-pause: the subscription goes live');
$node->safe_psql('postgres', q{SELECT strata.append('selfp-1', '{"type": "PauseMe"}')});
ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM strata.parked_events WHERE subscription = 'selfpause'}),
	'self-pause: the event is parked after its attempts');
is($node->safe_psql('postgres', q{
	SELECT sqlstate || ' ' || (error LIKE '%cannot change its own subscription%')
	FROM strata.parked_events WHERE subscription = 'selfpause'}), '55006 true',
	'self-pause: refused with 55006');
is($node->safe_psql('postgres', q{SELECT state FROM strata.subscriptions WHERE name = 'selfpause'}),
	'active', 'self-pause: the subscription was not paused');

# ---- 7. a worker that fails at every round says so ---------------------------
# Only the extension's owner can write such a row now (0.3.0: any writer):
# an event at the largest bigint position, which no progress range can
# hold.  The worker fails at every round; subscription_status must say so
# (0.3.0: 'live', with no error).
$node->safe_psql('postgres', q{
	INSERT INTO strata.events VALUES (9223372036854775807, 'bad-1', 0,
		gen_random_uuid(), 'Forged', '{}', '{}', now(), 'bad');
});
ok($node->poll_query_until('postgres', q{
	SELECT state = 'failing' AND last_error LIKE '%position 9223372036854775807 is out of range%'
	FROM strata.subscription_status WHERE name = 'rec'}),
	'a worker failing at every round shows as failing, with its error');

$node->stop('immediate');
done_testing();
