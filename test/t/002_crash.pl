# 002_crash.pl: real crashes.  A backend killed with SIGKILL in the middle
# of an append (the postmaster then restarts every process), and an
# immediate shutdown under load: afterwards no acknowledged event is lost,
# nothing half-written is visible, the in-flight registry is empty again
# (read_all is not held back), and positions keep increasing.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'strata'
restart_after_crash = on
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION strata');

$node->safe_psql('postgres',
	q{SELECT strata.append('acct-1', '[{"type": "Opened"}, {"type": "Deposited"}]')});

# A writer holds an append open: it has taken position 3.
my $writer = $node->background_psql('postgres');
$writer->query_safe('BEGIN');
$writer->query_safe(q{SELECT strata.append('acct-2', '{"type": "Opened"}')});
my $pid = $writer->query_safe('SELECT pg_backend_pid()');
chomp $pid;

# Another writer commits position 4; readers must stop below 3.
$node->safe_psql('postgres', q{SELECT strata.append('acct-3', '{"type": "Opened"}')});
is($node->safe_psql('postgres', 'SELECT string_agg(position::text, \',\') FROM strata.read_all()'),
	'1,2', 'read_all stops below the in-flight append');

# SIGKILL the writer: the postmaster restarts everything.
my $log_offset = -s $node->logfile;
kill 'KILL', $pid;
$writer->{run}->kill_kill;
$node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset);
$node->poll_query_until('postgres', 'SELECT true') or die 'no connection';

is($node->safe_psql('postgres', 'SELECT string_agg(stream || \':\' || version, \',\' ORDER BY position) FROM strata.read_all()'),
	'acct-1:0,acct-1:1,acct-3:0',
	'after the crash: committed events all there, the killed append gone, nothing held back');
is($node->safe_psql('postgres', q{SELECT strata.stream_version('acct-2')}), '-1',
	'the killed append left no stream');
is($node->safe_psql('postgres',
	q{SELECT strata.append('acct-2', '{"type": "Opened"}', -1) || ':' || max(position) FROM strata.events}),
	'0:4', 'the stream can be created after the crash');
ok($node->safe_psql('postgres', q{SELECT max(position) FROM strata.events}) > 4,
	'positions keep increasing after the crash');

# Immediate shutdown under load: every acknowledged append survives.
my @acked;
for my $i (1 .. 200)
{
	my $v = $node->safe_psql('postgres',
		"SELECT strata.append('load-' || ($i % 7), jsonb_build_object('type', 'Tick', 'data', $i))");
	push @acked, $i;
}
my $maxpos = $node->safe_psql('postgres', 'SELECT max(position) FROM strata.events');
$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres', q{SELECT count(*) FROM strata.events WHERE category = 'load'}),
	scalar(@acked), 'all acknowledged appends survive an immediate shutdown');
is($node->safe_psql('postgres', q{
	SELECT bool_and(s.version = e.maxv) FROM strata.streams s
	JOIN (SELECT stream, max(version) AS maxv, count(*) AS n FROM strata.events GROUP BY stream) e USING (stream)
	WHERE e.n = e.maxv + 1}), 't', 'stream versions match their events, without gaps');
is($node->safe_psql('postgres', 'SELECT count(*) FROM strata.read_all(0, 1000000)'),
	$node->safe_psql('postgres', 'SELECT count(*) FROM strata.events'),
	'read_all returns every event after recovery');
$node->safe_psql('postgres', q{SELECT strata.append('after-1', '{"type": "A"}')});
ok($node->safe_psql('postgres', q{SELECT position FROM strata.events WHERE stream = 'after-1'}) > $maxpos,
	'a position after recovery is above every earlier one');

$node->stop;
done_testing();
