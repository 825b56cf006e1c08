# 024_subscription_standby.pl: read-your-writes on a streaming standby
# (pg_basebackup -R).  An async projection (a subscription of the same
# name, from the beginning) maintains a read-model table on the primary;
# a client appends on the primary, calls strata.wait_for on the standby with
# the event's position and then reads the read model there: wait_for
# returns true and the event is in the table, every time.  A wait_for
# started on the standby before the append returns true when the event
# arrives; a wait_for of a position that never arrives returns false after
# its timeout, on the standby and on the primary.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use StrataNode;
use Time::HiRes qw(time);

my $primary = strata_node('primary');
$primary->safe_psql('postgres', q{
	CREATE EXTENSION strata;
	CREATE TABLE balances (position bigint PRIMARY KEY, stream text NOT NULL,
						   type text NOT NULL, amount int);
	CREATE FUNCTION balances_apply(e strata.events) RETURNS void LANGUAGE sql
	SET search_path = public, pg_temp AS $$
		INSERT INTO balances VALUES (e.position, e.stream, e.type, (e.data->>'amount')::int)
	$$;
	SELECT strata.append('acct-0', '{"type": "Opened", "data": {"amount": 0}}');
	SELECT strata.define_projection('balances', 'balances_apply(strata.events)',
									categories => '{acct}', mode => 'async');
});
is($primary->safe_psql('postgres',
	q{SELECT count(*) FROM strata.subscription_status WHERE name = 'balances' AND projection = 'balances'}),
	'1', 'the async projection runs as a subscription of the same name');
my $first = $primary->safe_psql('postgres', q{SELECT position FROM strata.events WHERE stream = 'acct-0'});
is($primary->safe_psql('postgres', "SELECT strata.wait_for('balances', $first, '30s')"), 't',
	'wait_for on the primary: the projection started from the beginning');

$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'the standby is in recovery');
note('strata processes on the standby: ' . $standby->safe_psql('postgres',
	q{SELECT coalesce(string_agg(backend_type, ', '), 'none') FROM pg_stat_activity WHERE backend_type LIKE 'strata%'}));

# ---- append on the primary, wait_for and read on the standby ------------
my $ok = 0;
my $rounds = 20;
for my $i (1 .. $rounds)
{
	my $pos = $primary->safe_psql('postgres', qq{
		SELECT strata.append('acct-$i', '{"type": "Deposited", "data": {"amount": $i}}');
		SELECT position FROM strata.events WHERE stream = 'acct-$i' AND version = 0});
	$pos = (split /\n/, $pos)[-1];
	# one session, as a client would: wait, then read
	my $got = $standby->safe_psql('postgres', qq{
		SELECT strata.wait_for('balances', $pos, '30s');
		SELECT stream || ':' || type || ':' || amount FROM balances WHERE position = $pos});
	if ($got eq "t\nacct-$i:Deposited:$i") { $ok++ } else { diag("round $i, position $pos: $got") }
}
is($ok, $rounds, 'wait_for on the standby returned true and the event was in the read model, every time');
is($standby->safe_psql('postgres', 'SELECT count(*) FROM balances'), $rounds + 1,
	'the read model on the standby has every event, the history included');
is($standby->safe_psql('postgres', q{SELECT state FROM strata.subscription_status WHERE name = 'balances'}),
	'live', 'the status view is readable on the standby');

# ---- wait_for started before the append ---------------------------------
my $next = $primary->safe_psql('postgres', 'SELECT max(position) + 1 FROM strata.events');
my $waiter = $standby->background_psql('postgres');
$waiter->query_until(qr/waiting/,
	"\\echo waiting\nSELECT strata.wait_for('balances', $next, '60s');\n");
ok($standby->poll_query_until('postgres', qq{
	SELECT count(*) = 1 FROM pg_stat_activity
	WHERE state = 'active' AND query LIKE '%strata.wait_for(''balances'', $next,%'
	  AND pid <> pg_backend_pid()}),
	'a wait_for is blocked on the standby');
my $t0 = time;
$primary->safe_psql('postgres', q{SELECT strata.append('acct-late', '{"type": "Deposited", "data": {"amount": 7}}')});
my $pos = $primary->safe_psql('postgres', q{SELECT position FROM strata.events WHERE stream = 'acct-late'});
cmp_ok($pos, '>=', $next, 'the new event has the awaited position or a later one');
my $res = $waiter->query_safe(q{SELECT 'done'});
my $elapsed = time - $t0;
like($res, qr/^t\ndone$/m, 'a wait_for started on the standby before the append returns true');
cmp_ok($elapsed, '<', 30, sprintf('when the event arrives (%.2f s)', $elapsed));
$waiter->quit;
is($standby->safe_psql('postgres', "SELECT amount FROM balances WHERE position = $pos"), '7',
	'and the event is readable');

# ---- a position that never arrives --------------------------------------
for my $node ($standby, $primary)
{
	my $name = $node == $standby ? 'standby' : 'primary';
	$t0 = time;
	is($node->safe_psql('postgres', q{SELECT strata.wait_for('balances', 1000000000, '1s')}), 'f',
		"$name: wait_for of a position that never arrives returns false");
	$elapsed = time - $t0;
	ok($elapsed >= 0.9 && $elapsed < 15, sprintf("$name: after its timeout (%.2f s)", $elapsed));
}

$standby->stop;
$primary->stop;
done_testing();
