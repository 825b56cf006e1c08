# 029_failover_positions.pl: positions never go back across a failover
# (issue #16, epochs).  A primary and an asynchronous standby that falls
# behind (stopped): the primary appends events the standby never gets,
# and a consumer of the primary reads them; the primary is stopped in
# immediate mode and the standby promoted.  Every position the new
# primary issues is above every position the old one issued; the epoch
# in strata.epochs names the lost range; the old consumer's cursor gets
# ST006 from read_all, read_category and wait_for, while a cursor at the
# last surviving position reads on; the subscription handles every
# surviving event and every new one exactly once.  Then the old primary
# rejoins as a standby with pg_rewind, keeping its stale slot, and is
# promoted in turn: its worker replaces that slot instead of decoding
# from it, positions go on above the second primary's, and the
# subscription still handles every event exactly once.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use StrataNode;

# wal_log_hints: the old primary rejoins with pg_rewind at the end
my $primary = strata_node('primary', conf => "wal_log_hints = on\n");
$primary->safe_psql('postgres', q{
	CREATE EXTENSION strata;
	CREATE TABLE handled (position bigint NOT NULL);
	CREATE FUNCTION rec(e strata.events) RETURNS void LANGUAGE sql
	AS $$ INSERT INTO public.handled VALUES (e.position) $$;
	SELECT strata.subscribe('rec', 'rec(strata.events)');
});

# append n events to category acct, one transaction each; the positions
sub append_events
{
	my ($node, $prefix, $n) = @_;
	$node->safe_psql('postgres', join('', map {
		"SELECT strata.append('acct-$prefix$_', '{\"type\": \"E\"}');\n"
	} 1 .. $n));
	return split /\n/, $node->safe_psql('postgres',
		"SELECT position FROM strata.events WHERE stream LIKE 'acct-$prefix%' ORDER BY position");
}

my @kept = append_events($primary, 'k', 20);
is($primary->safe_psql('postgres', "SELECT strata.wait_for('rec', $kept[-1], '30s')"), 't',
	'the subscription runs on the primary');
my $epoch1 = $primary->safe_psql('postgres',
	'SELECT timeline || \'/\' || first_position || \'/\' || coalesce(survived_position::text, \'none\') FROM strata.epochs');
is($epoch1, '1/1/none', 'the first epoch: timeline 1, from position 1, nothing lost');

$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);
# the standby falls behind for good
$standby->stop('fast');

my @lost = append_events($primary, 'lost', 30);
my $old_cursor = $lost[-1];
# a consumer of the primary has read them all
is($primary->safe_psql('postgres', "SELECT max(position) FROM strata.read_all($kept[-1])"),
	$old_cursor, "a consumer of the old primary read up to $old_cursor");
my $old_max = $primary->safe_psql('postgres',
	q{SELECT last_value FROM strata._position_seq});
my $slot = $primary->safe_psql('postgres',
	q{SELECT 'strata_' || oid FROM pg_database WHERE datname = 'postgres'});
$primary->stop('immediate');
# the old primary's slot as it left it, for a copied data directory below
my $saved_slot = "$PostgreSQL::Test::Utils::tmp_check/saved_$slot";
system('cp', '-a', $primary->data_dir . "/pg_replslot/$slot", $saved_slot) == 0
  or die 'could not save the slot';

# ---- the promotion ----------------------------------------------------
$standby->start;
my $offset = -s $standby->logfile;
$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'the standby was not promoted';
is($standby->safe_psql('postgres', 'SELECT count(*) FROM strata.events'), '20',
	'the 30 events the standby never got are gone');

my @new = append_events($standby, 'n', 10);
cmp_ok($new[0], '>', $old_max,
	"every new position ($new[0] and on) is above every position the old primary issued (up to $old_max)");

my $epoch = $standby->safe_psql('postgres', q{
	SELECT timeline || '/' || survived_position || '/' || first_position
	FROM strata.epochs ORDER BY first_position DESC LIMIT 1});
my ($tli, $survived, $first) = split m{/}, $epoch;
is($tli, '2', 'a new epoch on timeline 2');
is($survived, $kept[-1], "it names the last surviving position ($kept[-1])");
is($first, $kept[-1] + 2**40, 'and starts 2^40 above it');
is($new[0], $first, 'the first new position is the epoch\'s first');
like(slurp_file($standby->logfile, $offset),
	qr/strata positions continue at $first on timeline 2/, 'the log says where positions continue');

# ---- readers with a cursor from the old primary ---------------------------
for my $call ("strata.read_all($old_cursor)", "strata.read_category('acct', $old_cursor)",
	"strata.wait_for('rec', $old_cursor, '1s')")
{
	my ($ret, $out, $err) = $standby->psql('postgres',
		"\\set VERBOSITY verbose\nSELECT count(*) FROM $call");
	like($err, qr/ERROR:  ST006: position $old_cursor was lost at a failover/,
		"$call raises ST006");
}
my ($ret, $out, $err) = $standby->psql('postgres',
	"SELECT count(*) FROM strata.read_all($lost[0])");
like($err, qr/DETAIL:  strata.read_all was given position $lost[0]\. Positions @{[$kept[-1] + 1]} to @{[$first - 1]} may have been issued/,
	'the detail gives the lost range');
is($standby->safe_psql('postgres', "SELECT count(*) FROM strata.read_all($kept[-1])"), '10',
	'a cursor at the last surviving position reads the new events');
like($err, qr/HINT:  .*from the events up to position $kept[-1] and go on from there/,
	'the hint says where to go on from');

# ---- the subscription, exactly once -------------------------------------
is($standby->safe_psql('postgres', "SELECT strata.wait_for('rec', $new[-1], '60s')"), 't',
	'the subscription handles the new events on the new primary');
is(strata_handled_once($standby, 'handled'),
	'0/0', 'every surviving event and every new one handled exactly once');

# ---- the epochs after a restart, and a second failover's step -------------
$standby->restart;
my @more = append_events($standby, 'm', 1);
is($standby->safe_psql('postgres', 'SELECT count(*) FROM strata.epochs'), '2',
	'a restart on the same timeline opens no epoch');
cmp_ok($more[0], '>', $new[-1], 'and positions go on');

# ---- the old primary rejoins with pg_rewind and is promoted in turn ------
my $stream_b = $standby->safe_psql('postgres', 'SELECT id FROM strata._stream');
# pg_rewind copies the source's configuration: keep the old primary's own
my $conf = slurp_file($primary->data_dir . '/postgresql.conf');
command_ok(['pg_rewind', '--target-pgdata', $primary->data_dir,
	'--source-server', $standby->connstr('postgres')], 'pg_rewind the old primary');
open(my $fh, '>', $primary->data_dir . '/postgresql.conf') or die $!;
print $fh $conf;
close $fh;
# pg_rewind leaves the target's slots out; a data directory copied with
# its pg_replslot (or an old primary rejoined without pg_rewind) keeps
# the old slot: put it back, as such a node would have it
ok(!-e $primary->data_dir . "/pg_replslot/$slot", 'pg_rewind removed the old slot');
system('cp', '-a', $saved_slot, $primary->data_dir . "/pg_replslot/$slot") == 0
  or die 'could not put the slot back';
$primary->enable_streaming($standby);
$primary->start;
my @b = append_events($standby, 'b', 5);
$standby->wait_for_catchup($primary);
my $stale = $primary->safe_psql('postgres',
	"SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$slot'");
is($stale, '1', 'the rejoined old primary has its old, stale slot');
$standby->stop('fast');

$offset = -s $primary->logfile;
$primary->promote;
$primary->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'the old primary was not promoted';
my @c = append_events($primary, 'c', 5);
cmp_ok($c[0], '>', $b[-1], 'positions go on above the second primary\'s');
is($primary->safe_psql('postgres', "SELECT strata.wait_for('rec', $c[-1], '60s')"), 't',
	'the subscription goes on on the old primary');
like(slurp_file($primary->logfile, $offset),
	qr/strata worker replaces replication slot "$slot": it was taken on another timeline/,
	'its worker replaced the stale slot');
isnt($primary->safe_psql('postgres', 'SELECT id FROM strata._stream'), $stream_b,
	'in a new stream');
is(strata_handled_once($primary, 'handled'),
	'0/0', 'every event handled exactly once, across both failovers');
is($primary->safe_psql('postgres', 'SELECT count(*) FROM strata.epochs'), '3',
	'three epochs: one per timeline');

$primary->stop;
done_testing();
