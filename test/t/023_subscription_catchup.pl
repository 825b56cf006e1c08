# 023_subscription_catchup.pl: subscriptions that catch up.
#   - start_from 'beginning' on a database with 5,000 events of history,
#     subscribed while pgbench writers keep appending: the handler gets
#     exactly the events of strata.events, each once (no gap and no
#     duplicate at the hand-over from the events table to the WAL), the
#     history first and in position order; a second one with category and
#     type filters gets exactly the matching events.
#   - pause_subscription and resume_subscription under writers: while one
#     subscription is paused, nothing new reaches its handler (checked
#     against another subscription of the same worker, which meanwhile
#     processes thousands of events); after resume, every event exactly
#     once, in commit order (the order of a reference slot of the strata
#     plugin).
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

my $node = strata_node('subcatchup');
$node->safe_psql('postgres', q{
	CREATE EXTENSION strata;
	CREATE TABLE seen (n bigserial PRIMARY KEY, sub text NOT NULL, position bigint NOT NULL);
});
# one handler per subscription, each recording its arrivals in seen
sub handler
{
	my ($sub) = @_;
	$node->safe_psql('postgres', qq{
		CREATE FUNCTION rec_$sub(e strata.events) RETURNS void LANGUAGE sql
		SET search_path = public, pg_temp AS \$\$
			INSERT INTO seen (sub, position) VALUES ('$sub', e.position)
		\$\$});
	return "rec_$sub(strata.events)";
}

sub count_seen
{
	my ($sub) = @_;
	return $node->safe_psql('postgres', "SELECT count(*) FROM seen WHERE sub = '$sub'");
}

my ($pgb_out, $pgb_err);
sub start_writers
{
	my ($transactions) = @_;
	return strata_writers($node, $transactions, \$pgb_out, \$pgb_err);
}

# Poll $query until it returns true, pumping the writers meanwhile.
sub wait_while_writing
{
	my ($writers, $query) = @_;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (time < $deadline)
	{
		$writers->pump_nb if $writers->pumpable;
		return 1 if $node->safe_psql('postgres', $query) eq 't';
		usleep(20_000);
	}
	return 0;
}

sub first_difference
{
	my ($got, $want) = @_;
	my $i = 0;
	$i++ while $i < @$got && $i < @$want && $got->[$i] == $want->[$i];
	return undef if $i == @$got && $i == @$want;
	return "first difference at index $i: received " . ($got->[$i] // 'nothing')
	  . ', expected ' . ($want->[$i] // 'nothing')
	  . ' (' . scalar(@$got) . ' received, ' . scalar(@$want) . ' expected)';
}

# ---- start_from 'beginning' on a database with history -----------------
for my $k (1 .. 5)
{
	$node->safe_psql('postgres', q{
		SELECT count(strata.append('hist-' || (g % 50), '{"type": "H"}'))
		FROM generate_series(1, 1000) g});
}
my @history = split /,/, $node->safe_psql('postgres',
	q{SELECT string_agg(position::text, ',' ORDER BY position) FROM strata.events});
is(scalar(@history), 5000, '5,000 events of history');

my $writers = start_writers(600);
ok(wait_while_writing($writers, 'SELECT count(*) >= 5400 FROM strata.events'),
	'the writers are appending');
my ($hb, $hf) = (handler('b'), handler('bf'));
$node->safe_psql('postgres', qq{
	SELECT strata.subscribe('b', '$hb', start_from => 'beginning');
	SELECT strata.subscribe('bf', '$hf', categories => '{cat1,hist}', types => '{A,H}',
							start_from => 'beginning');
});
note('subscribed at ' . $node->safe_psql('postgres', 'SELECT count(*) FROM strata.events')
	  . ' events, writers ' . ($writers->pumpable ? 'running' : 'done'));
$writers->finish;
like($pgb_out, qr/number of failed transactions: 0/, 'writers ran without failures')
  or diag($pgb_err);
is($node->safe_psql('postgres', 'SELECT count(*) FROM strata.events'), '9800',
	'9,800 events in all');

ok($node->poll_query_until('postgres', q{
	SELECT count(DISTINCT position) = (SELECT count(*) FROM strata.events)
	FROM seen WHERE sub = 'b'}), "'beginning': the handler got every event");
is(count_seen('b'), '9800', 'each once: no duplicate at the hand-over');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM strata.events e
	WHERE NOT EXISTS (SELECT 1 FROM seen s WHERE s.sub = 'b' AND s.position = e.position)}),
	'0', 'no gap');
my @b = split /,/, $node->safe_psql('postgres',
	q{SELECT string_agg(position::text, ',' ORDER BY n) FROM seen WHERE sub = 'b'});
my @b_head = @b[ 0 .. 4999 ];
is(first_difference(\@b_head, \@history), undef, 'the history came first, in position order');

my $filtered = q{SELECT count(*) FROM strata.events
	WHERE category IN ('cat1', 'hist') AND type IN ('A', 'H')};
ok($node->poll_query_until('postgres', qq{
	SELECT count(DISTINCT position) = ($filtered) FROM seen WHERE sub = 'bf'}),
	"'beginning' with categories and types: the handler got every matching event");
is(count_seen('bf'), $node->safe_psql('postgres', $filtered), 'each once');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM seen s JOIN strata.events e USING (position)
	WHERE s.sub = 'bf' AND NOT (e.category IN ('cat1', 'hist') AND e.type IN ('A', 'H'))}),
	'0', 'and nothing else');
is($node->safe_psql('postgres', q{
	SELECT string_agg(name || ':' || state || ':' || events_behind, ',' ORDER BY name)
	FROM strata.subscription_status}),
	'b:live:0,bf:live:0', 'both live, nothing behind');

# ---- pause and resume under writers ------------------------------------
my $start = $node->safe_psql('postgres', 'SELECT max(position) FROM strata.events');
my ($hp, $hq) = (handler('p'), handler('q'));
$node->safe_psql('postgres', qq{
	SELECT pg_create_logical_replication_slot('check', 'strata');
	SELECT strata.subscribe('p', '$hp');
	SELECT strata.subscribe('q', '$hq');
});
ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 2 FROM strata.subscription_status WHERE name IN ('p', 'q') AND state = 'live'}),
	'p and q go live');

$writers = start_writers(800);
ok(wait_while_writing($writers, q{SELECT count(*) >= 500 FROM seen WHERE sub = 'p'}),
	'p processes events');
$node->safe_psql('postgres', q{SELECT strata.pause_subscription('p')});
my $paused_at = count_seen('p');
is($node->safe_psql('postgres', q{SELECT state FROM strata.subscription_status WHERE name = 'p'}),
	'paused', 'p is paused');
my $q_at_pause = count_seen('q');
ok(wait_while_writing($writers, "SELECT count(*) >= $q_at_pause + 2000 FROM seen WHERE sub = 'q'"),
	'q processes 2,000 more events meanwhile');
is(count_seen('p'), $paused_at, 'while paused, nothing new reached p');
cmp_ok($node->safe_psql('postgres',
	q{SELECT events_behind FROM strata.subscription_status WHERE name = 'p'}),
	'>', 0, 'the status shows p behind');

$node->safe_psql('postgres', q{SELECT strata.resume_subscription('p')});
$writers->finish;
like($pgb_out, qr/number of failed transactions: 0/, 'writers ran without failures')
  or diag($pgb_err);
my $n = $node->safe_psql('postgres', "SELECT count(*) FROM strata.events WHERE position > $start");
is($n, '6400', '6,400 events appended');
for my $sub ('p', 'q')
{
	ok($node->poll_query_until('postgres', qq{
		SELECT count(DISTINCT position) = $n FROM seen WHERE sub = '$sub' AND position > $start}),
		"$sub got every event");
}
is(count_seen('p'), $n, 'p: each once across the pause');
is(count_seen('q'), $n, 'q: each once');
my @ref = split /,/, $node->safe_psql('postgres', q{
	SELECT string_agg(data::jsonb->>'position', ',' ORDER BY o)
	FROM pg_logical_slot_get_changes('check', NULL, NULL, 'format', 'json')
		 WITH ORDINALITY AS c(lsn, xid, data, o)});
is(scalar(@ref), $n, 'the reference slot decoded every event');
for my $sub ('p', 'q')
{
	my @got = split /,/, $node->safe_psql('postgres',
		"SELECT string_agg(position::text, ',' ORDER BY n) FROM seen WHERE sub = '$sub'");
	is(first_difference(\@got, \@ref), undef, "$sub: in commit order");
}
is($node->safe_psql('postgres', q{
	SELECT string_agg(name || ':' || state || ':' || events_behind, ',' ORDER BY name)
	FROM strata.subscription_status}),
	'b:live:0,bf:live:0,p:live:0,q:live:0', 'all live, nothing behind');

$node->stop;
done_testing();
