# 003_no_skip.pl: the read contract under real concurrency.  Four pgbench
# clients append in transactions that sleep a random time before committing
# (so positions commit out of order) while a consumer calls
# read_all(after_position => the highest position it has seen) and, in a
# second session, read_category does the same.  Each consumer must see
# every committed event exactly once, in increasing position order.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('noskip');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'strata'\nmax_connections = 30");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION strata');

my $script = "${PostgreSQL::Test::Utils::tmp_check}/writer.sql";
PostgreSQL::Test::Utils::append_to_file($script, q{
\set s random(1, 50)
\set c random(1, 3)
BEGIN;
SELECT strata.append('cat' || :c || '-' || :s, '[{"type": "A"}, {"type": "B"}]');
SELECT pg_sleep(random() * 0.004);
COMMIT;
});

my ($out, $err) = ('', '');
my $pgbench = IPC::Run::start(
	[ 'pgbench', '-n', '-c', '4', '-j', '4', '-t', '400', '-f', $script,
	  '-h', $node->host, '-p', $node->port, 'postgres' ],
	'>', \$out, '2>', \$err);

my %seen = ('all' => [], 'cat1' => []);
my %cursor = ('all' => 0, 'cat1' => 0);
my $reader = $node->background_psql('postgres');
my $rounds = 0;
my $done = 0;
while (1)
{
	$pgbench->pump_nb if $pgbench->pumpable;
	my $finished = !$pgbench->pumpable;
	for my $name ('all', 'cat1')
	{
		my $fn = $name eq 'all'
		  ? "strata.read_all($cursor{$name}, 100)"
		  : "strata.read_category('cat1', $cursor{$name}, 100)";
		my $got = $reader->query_safe("SELECT coalesce(string_agg(position::text, ',' ORDER BY position), '') FROM (SELECT position FROM $fn) s");
		chomp $got;
		next if $got eq '';
		my @p = split /,/, $got;
		push @{ $seen{$name} }, @p;
		$cursor{$name} = $p[-1];
	}
	$rounds++;
	usleep(5000);
	last if $done;
	$done = 1 if $finished;
}
$pgbench->finish;
is($?, 0, 'pgbench ran') or diag($err);
$reader->quit;

for my $name ('all', 'cat1')
{
	my $where = $name eq 'all' ? '' : "WHERE category = 'cat1'";
	my $expected = $node->safe_psql('postgres',
		"SELECT string_agg(position::text, ',' ORDER BY position) FROM strata.events $where");
	my $got = join(',', @{ $seen{$name} });
	my $n = scalar(@{ $seen{$name} });
	my %u = map { $_ => 1 } @{ $seen{$name} };
	is(scalar(keys %u), $n, "$name: no event seen twice ($n events)");
	my $sorted = 1;
	for my $i (1 .. $n - 1)
	{
		$sorted = 0 if $seen{$name}[$i] <= $seen{$name}[ $i - 1 ];
	}
	ok($sorted, "$name: positions seen in increasing order");
	is($got, $expected, "$name: every committed event seen exactly once");
}
is($node->safe_psql('postgres', 'SELECT count(*) FROM strata.events'), '3200',
	'all 1,600 appends of 2 events committed');
note("reader rounds: $rounds");

$node->stop;
done_testing();
