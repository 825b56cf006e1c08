# 028_failover_slot.pl: on PostgreSQL 17 and later the strata worker's
# slot is a failover slot, so a standby with sync_replication_slots keeps
# a copy of it, and after a promotion the subscriptions go on from that
# copy: exactly once, with the same stream, and without catching up from
# strata.events.  The primary lists the standby's physical slot in
# synchronized_standby_slots, as docs/api.md says to, so that the worker
# confirms a position to its slot only once the standby has the WAL of the
# progress behind it (decode_confirm).  Skipped before 17.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use StrataNode;
use Time::HiRes qw(usleep);

my ($major) = `postgres -V` =~ /\(PostgreSQL\) (\d+)/;
plan skip_all => "failover slots need PostgreSQL 17 or later (this is $major)"
  if $major < 17;

my $primary = strata_node('primary',
	conf => "cluster_name = 'primary'\nsynchronized_standby_slots = 'sb1'\n");
# the worker's slot exists already, as an ordinary slot (one made before
# 17, or by an older pg_strata): the worker makes it a failover slot
my $slot = $primary->safe_psql('postgres',
	q{SELECT 'strata_' || oid FROM pg_database WHERE datname = 'postgres'});
$primary->safe_psql('postgres',
	"SELECT pg_create_logical_replication_slot('$slot', 'strata')");
is($primary->safe_psql('postgres',
	"SELECT failover FROM pg_replication_slots WHERE slot_name = '$slot'"),
	'f', 'an ordinary slot of the worker\'s name');
my $offset = -s $primary->logfile;
$primary->safe_psql('postgres', q{
	SELECT pg_create_physical_replication_slot('sb1');
	CREATE EXTENSION strata;
	CREATE TABLE seen (position bigint NOT NULL, node text NOT NULL);
	CREATE FUNCTION seen_apply(e strata.events) RETURNS void LANGUAGE sql
	AS $$ INSERT INTO public.seen VALUES (e.position, pg_catalog.current_setting('cluster_name')) $$;
	SELECT strata.subscribe('sub', 'seen_apply(strata.events)');
});
ok($primary->poll_query_until('postgres',
	"SELECT active AND failover FROM pg_replication_slots WHERE slot_name = '$slot'"),
	'the worker took the slot and made it a failover slot');
like(slurp_file($primary->logfile, $offset),
	qr/strata worker made replication slot "$slot" a failover slot/, 'and said so');

# append n events, one transaction each; the last one's position
sub append_events
{
	my ($node, $prefix, $n) = @_;
	my $sql = join('', map {
		"SELECT strata.append('$prefix-$_', '{\"type\": \"E\", \"data\": {\"i\": $_}}');\n"
	} 1 .. $n);
	$node->safe_psql('postgres', $sql);
	return $node->safe_psql('postgres', 'SELECT max(position) FROM strata.events');
}

# ---- the primary: a failover slot, synchronized by the standby -----------
my $last = append_events($primary, 'before', 20);
# before the standby exists its slot sb1 has no WAL: the worker's slot
# confirms nothing yet, but the subscription runs
is($primary->safe_psql('postgres', "SELECT strata.wait_for('sub', $last, '30s')"), 't',
	'the subscription runs on the primary');
is($primary->safe_psql('postgres',
	"SELECT failover FROM pg_replication_slots WHERE slot_name = '$slot'"),
	't', "the worker's slot $slot is a failover slot");

$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
# slot synchronization needs the database in primary_conninfo
(my $conninfo = $primary->connstr('postgres')) =~ s/'/''/g;
$standby->append_conf('postgresql.conf', qq{
cluster_name = 'standby'
primary_slot_name = 'sb1'
primary_conninfo = '$conninfo'
hot_standby_feedback = on
sync_replication_slots = on
});
$standby->start;

# the standby's copy becomes usable (persistent) once the primary's slot
# has moved on after the copy was made: keep appending until it is
my $synced = 0;
for my $i (1 .. 120)
{
	append_events($primary, "sync$i", 1);
	$synced = $standby->safe_psql('postgres', qq{
		SELECT count(*) FROM pg_replication_slots
		WHERE slot_name = '$slot' AND synced AND NOT temporary AND failover});
	last if $synced;
	usleep(500_000);
}
is($synced, '1', 'the standby keeps a synchronized copy of the slot');

# events the primary's subscription handles (or not yet) when it dies
$last = append_events($primary, 'busy', 200);
$primary->wait_for_catchup($standby);
my $stream = $primary->safe_psql('postgres', 'SELECT id FROM strata._stream');
my $handled_on_primary = $standby->safe_psql('postgres',
	q{SELECT count(*) FROM seen WHERE node = 'primary'});
note("events handled on the primary that reached the standby: $handled_on_primary; "
	  . 'the copy of the slot: '
	  . $standby->safe_psql('postgres',
		"SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '$slot'"));
$primary->stop('immediate');

# ---- the promotion -----------------------------------------------------
my $log_offset = -s $standby->logfile;
$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'the standby was not promoted';
$last = append_events($standby, 'after', 50);
is($standby->safe_psql('postgres', "SELECT strata.wait_for('sub', $last, '60s')"), 't',
	'the subscription goes on on the promoted standby');

is(strata_handled_once($standby, 'seen'),
	'0/0', 'every event, before and after the promotion, was handled exactly once');
cmp_ok($standby->safe_psql('postgres', q{SELECT count(*) FROM seen WHERE node = 'standby'}),
	'>=', 50, 'the new primary handled the events appended after the promotion');
is($standby->safe_psql('postgres', 'SELECT id FROM strata._stream'), $stream,
	'the stream is the same: the worker went on with the slot, no new one');
is($standby->safe_psql('postgres',
	"SELECT synced FROM pg_replication_slots WHERE slot_name = '$slot'"),
	't', 'the slot is the synchronized copy');
is($standby->safe_psql('postgres', q{SELECT state FROM strata.subscription_status WHERE name = 'sub'}),
	'live', 'the subscription is live');
my $log = slurp_file($standby->logfile, $log_offset);
unlike($log, qr/strata worker created replication slot/, 'no slot was created');
unlike($log, qr/catching up from/, 'no subscription caught up from strata.events');
unlike($log, qr/was invalidated/, 'the slot was not invalidated');

$standby->stop;
done_testing();
