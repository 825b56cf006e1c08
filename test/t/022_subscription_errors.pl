# 022_subscription_errors.pl: a failing handler.  The handler records the
# event, then raises for events whose data has "fail": true, so a failed
# attempt that left its effects behind would show as a duplicate.  With
# strata.retry_base_delay = 10 (ms) and strata.max_attempts = 3:
#   - on_error 'park': the failing events are parked with their error,
#     SQLSTATE and 3 attempts, the other events (before, after, and between
#     them in the same transaction) are processed in order, the subscription
#     goes on; retry_parked replays nothing while the handler still fails,
#     and, once the handler is fixed, returns the count and empties
#     parked_events: every event handled exactly once;
#   - on_error 'stop': the subscription stops at the failing event (state
#     'stopped', later events wait), resume_subscription while the handler
#     still fails stops again, and after the fix it continues from there;
#   - the times are real: first_failed_at, parked_at (at least the base
#     delay later), last_error_at, last_processed_at and now() inside the
#     handler are not older than the append that caused them;
#   - strata.max_attempts changed with ALTER SYSTEM and pg_reload_conf
#     (SIGHUP) applies to the next failing event.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use StrataNode;

my $node = strata_node('suberr', conf => "strata.retry_base_delay = 10\nstrata.max_attempts = 3\n");
$node->safe_psql('postgres', q{
	CREATE EXTENSION strata;
	CREATE TABLE seen (n bigserial PRIMARY KEY, sub text NOT NULL, position bigint NOT NULL,
					   at timestamptz NOT NULL DEFAULT now());
	CREATE FUNCTION h_park(e strata.events) RETURNS void LANGUAGE plpgsql
	SET search_path = public, pg_temp AS $$
	BEGIN
		INSERT INTO seen (sub, position) VALUES ('park', e.position);
		IF (e.data->>'fail')::boolean THEN
			RAISE EXCEPTION 'bad event %', e.position;
		END IF;
	END $$;
	CREATE FUNCTION h_stop(e strata.events) RETURNS void LANGUAGE plpgsql
	SET search_path = public, pg_temp AS $$
	BEGIN
		INSERT INTO seen (sub, position) VALUES ('stop', e.position);
		IF (e.data->>'fail')::boolean THEN
			RAISE EXCEPTION 'bad order %', e.position;
		END IF;
	END $$;
	SELECT strata.subscribe('park', 'h_park(strata.events)', categories => '{acct}');
	SELECT strata.subscribe('stop', 'h_stop(strata.events)', categories => '{ord}',
							on_error => 'stop');
});
is($node->safe_psql('postgres', 'SHOW strata.max_attempts'), '3', 'max_attempts is 3');
ok($node->poll_query_until('postgres',
	q{SELECT count(*) = 2 FROM strata.subscription_status WHERE state = 'live'}),
	'both subscriptions go live');

# Append, return the positions of the events appended.
sub append
{
	my ($stream, $events) = @_;
	my $n = () = $events =~ /"type"/g;
	my $v = $node->safe_psql('postgres', "SELECT strata.append('$stream', '$events')");
	return split /,/, $node->safe_psql('postgres', qq{
		SELECT string_agg(position::text, ',' ORDER BY position) FROM strata.events
		WHERE stream = '$stream' AND version > $v - $n});
}

sub seen
{
	my ($sub) = @_;
	return $node->safe_psql('postgres',
		"SELECT coalesce(string_agg(position::text, ',' ORDER BY n), '') FROM seen WHERE sub = '$sub'");
}

# ---- on_error 'park' --------------------------------------------------
my $t_park = $node->safe_psql('postgres', 'SELECT clock_timestamp()');
my @ok1 = append('acct-1', '{"type": "Opened"}');
my @fail1 = append('acct-1', '{"type": "Broken", "data": {"fail": true}}');
# one transaction: ok, failing, ok
my @mixed = append('acct-2', '[{"type": "A"}, {"type": "Broken", "data": {"fail": true}}, {"type": "C"}]');
my @ok2 = append('acct-3', '{"type": "D"}');
my @parked = ($fail1[0], $mixed[1]);
my @good = (@ok1, $mixed[0], $mixed[2], @ok2);

ok($node->poll_query_until('postgres',
	q{SELECT count(*) = 2 FROM strata.parked_events WHERE subscription = 'park'}),
	'two failing events are parked');
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 4 FROM seen WHERE sub = 'park'"),
	'the other four are processed');
is(seen('park'), join(',', @good), 'the others in order, each once; the failed attempts left nothing');
is($node->safe_psql('postgres', qq{SELECT bool_and(at >= '$t_park') FROM seen WHERE sub = 'park'}),
	't', "now() in the handler's transaction is not older than the append");
is($node->safe_psql('postgres', q{
	SELECT string_agg(position || ':' || attempts || ':' || sqlstate || ':' || error, ',' ORDER BY position)
	FROM strata.parked_events WHERE subscription = 'park'}),
	"$parked[0]:3:P0001:bad event $parked[0],$parked[1]:3:P0001:bad event $parked[1]",
	'parked with 3 attempts, the SQLSTATE and the error');
is($node->safe_psql('postgres', qq{
	SELECT bool_and(first_failed_at >= '$t_park')
	FROM strata.parked_events WHERE subscription = 'park'}),
	't', 'first_failed_at is after the append');
is($node->safe_psql('postgres', q{
	SELECT string_agg(CASE WHEN parked_at >= first_failed_at + interval '10ms' THEN 'ok'
		ELSE first_failed_at || ' .. ' || parked_at END, ',')
	FROM strata.parked_events WHERE subscription = 'park'}),
	'ok,ok', 'parked at least the base retry delay after the first failure');
is($node->safe_psql('postgres', q{
	SELECT state, parked, last_error FROM strata.subscription_status WHERE name = 'park'}),
	"live|2|bad event $parked[1]", 'status: live, 2 parked, the last error');
is($node->safe_psql('postgres', qq{
	SELECT last_error_at >= '$t_park' AND last_processed_at >= '$t_park'
	FROM strata.subscription_status WHERE name = 'park'}),
	't', 'and when it happened (last_error_at and last_processed_at are after the append)');

# the subscription goes on
my @ok3 = append('acct-4', '[{"type": "E"}, {"type": "F"}]');
push @good, @ok3;
ok($node->poll_query_until('postgres', "SELECT count(*) = 6 FROM seen WHERE sub = 'park'"),
	'later events are processed');

# retry while the handler still fails: nothing succeeds, nothing is lost
is($node->safe_psql('postgres', q{SELECT strata.retry_parked('park')}), '0',
	'retry_parked with the handler still failing returns 0');
is($node->safe_psql('postgres',
	q{SELECT count(*) FROM strata.parked_events WHERE subscription = 'park'}),
	'2', 'the events stay parked');
is(seen('park'), join(',', @good), 'and the failed replays left nothing');

# fix the handler
$node->safe_psql('postgres', q{
	CREATE OR REPLACE FUNCTION h_park(e strata.events) RETURNS void LANGUAGE plpgsql
	SET search_path = public, pg_temp AS $$
	BEGIN
		INSERT INTO seen (sub, position) VALUES ('park', e.position);
	END $$;
});
is($node->safe_psql('postgres', q{SELECT strata.retry_parked('park')}), '2',
	'after the fix retry_parked returns 2');
is($node->safe_psql('postgres', q{SELECT count(*) FROM strata.parked_events}),
	'0', 'parked_events is empty');
is(seen('park'), join(',', @good, @parked),
	'the parked events were handled once, in position order, after the others');
is($node->safe_psql('postgres', q{SELECT string_agg(position::text, ',' ORDER BY position)
	FROM strata.events WHERE category = 'acct'}),
	$node->safe_psql('postgres', q{SELECT string_agg(position::text, ',' ORDER BY position)
	FROM seen WHERE sub = 'park'}),
	'every acct event handled exactly once');
is($node->safe_psql('postgres', q{SELECT parked FROM strata.subscription_status WHERE name = 'park'}),
	'0', 'status: nothing parked');
is($node->safe_psql('postgres', q{SELECT strata.retry_parked('park')}), '0',
	'retry_parked with nothing parked returns 0');

# ---- on_error 'stop' ---------------------------------------------------
my $t_stop = $node->safe_psql('postgres', 'SELECT clock_timestamp()');
my @s1 = append('ord-1', '{"type": "Placed"}');
my @s2 = append('ord-1', '{"type": "Broken", "data": {"fail": true}}');
my @s3 = append('ord-2', '{"type": "Placed"}');
ok($node->poll_query_until('postgres',
	q{SELECT state = 'stopped' FROM strata.subscription_status WHERE name = 'stop'}),
	'with on_error stop the subscription stops');
is(seen('stop'), $s1[0], 'at the failing event: the one before was processed, the one after not');
my ($err_at, $err) = split /\|/, $node->safe_psql('postgres',
	q{SELECT last_error_at, last_error FROM strata.subscription_status WHERE name = 'stop'});
is($err, "bad order $s2[0]", 'status: the last error');
is($node->safe_psql('postgres', "SELECT '$err_at'::timestamptz >= '$t_stop'"), 't',
	"last_error_at is after the append ($err_at)");
is($node->safe_psql('postgres', q{SELECT count(*) FROM strata.parked_events WHERE subscription = 'stop'}),
	'0', 'nothing parked');

# the worker goes on for the other subscription; this one stays stopped
my @s4 = append('ord-3', '{"type": "Placed"}');
my @ok4 = append('acct-5', '{"type": "G"}');
is($node->safe_psql('postgres', "SELECT strata.wait_for('park', $ok4[0], '30s')"), 't',
	'another subscription goes on meanwhile');
is(seen('stop'), $s1[0], 'the stopped one processed nothing more');
is($node->safe_psql('postgres', q{SELECT state FROM strata.subscription_status WHERE name = 'stop'}),
	'stopped', 'and is still stopped');

# resume while the handler still fails: it stops again at the same event
$node->safe_psql('postgres', q{SELECT strata.resume_subscription('stop')});
ok($node->poll_query_until('postgres', q{
	SELECT state = 'stopped' FROM strata.subscription_status WHERE name = 'stop'}),
	'resumed with the handler still failing, it stops again');
is($node->safe_psql('postgres', qq{
	SELECT last_error_at > '$err_at' FROM strata.subscription_status WHERE name = 'stop'}),
	't', 'with a new last_error_at');
is(seen('stop'), $s1[0], 'at the same event');

# fix the handler, resume: it continues from the failing event
$node->safe_psql('postgres', q{
	CREATE OR REPLACE FUNCTION h_stop(e strata.events) RETURNS void LANGUAGE plpgsql
	SET search_path = public, pg_temp AS $$
	BEGIN
		INSERT INTO seen (sub, position) VALUES ('stop', e.position);
	END $$;
	SELECT strata.resume_subscription('stop');
});
ok($node->poll_query_until('postgres', "SELECT count(*) = 4 FROM seen WHERE sub = 'stop'"),
	'after the fix and resume_subscription it continues');
is(seen('stop'), join(',', @s1, @s2, @s3, @s4), 'from the failing event, each once, in order');
ok($node->poll_query_until('postgres',
	q{SELECT state = 'live' FROM strata.subscription_status WHERE name = 'stop'}),
	'and is live again');
is(seen('park'), join(',', @good, @parked, @ok4), 'the park subscription saw its events once');

# ---- the GUCs are reloaded on SIGHUP -------------------------------------
$node->safe_psql('postgres', q{
	ALTER SYSTEM SET strata.max_attempts = 2;
	SELECT pg_reload_conf();
	CREATE OR REPLACE FUNCTION h_park(e strata.events) RETURNS void LANGUAGE plpgsql
	SET search_path = public, pg_temp AS $$
	BEGIN
		IF (e.data->>'fail')::boolean THEN
			RAISE EXCEPTION 'still bad %', e.position;
		END IF;
		INSERT INTO seen (sub, position) VALUES ('park', e.position);
	END $$;
});
my @fail2 = append('acct-6', '{"type": "Broken", "data": {"fail": true}}');
ok($node->poll_query_until('postgres', qq{
	SELECT count(*) = 1 FROM strata.parked_events WHERE position = $fail2[0]}),
	'after a reload, a failing event is parked');
is($node->safe_psql('postgres', qq{
	SELECT attempts || ':' || error FROM strata.parked_events WHERE position = $fail2[0]}),
	"2:still bad $fail2[0]", 'after strata.max_attempts = 2 attempts');

$node->stop;
done_testing();
