# 001_preload.pl: without shared_preload_libraries, CREATE EXTENSION and
# every function fail with a clear error and a hint; with it, they work.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('nopreload');
$node->init;
$node->start;

my ($ret, $out, $err) = $node->psql('postgres', 'CREATE EXTENSION strata');
isnt($ret, 0, 'CREATE EXTENSION fails without preload');
like($err, qr/pg_strata must be loaded via shared_preload_libraries/,
	'error names the cause');
like($err, qr/HINT:  Add 'strata' to shared_preload_libraries/,
	'hint says what to set');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM pg_namespace WHERE nspname = 'strata'"),
	'0', 'nothing was left behind');

# Installed while preloaded, then the preload removed: functions refuse.
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'strata'");
$node->restart;
$node->safe_psql('postgres', 'CREATE EXTENSION strata');
is($node->safe_psql('postgres',
	q{SELECT strata.append('t-1', '{"type": "A"}')}), '0',
	'append works when preloaded');
$node->append_conf('postgresql.conf', "shared_preload_libraries = ''");
$node->restart;
foreach my $sql (
	q{SELECT strata.append('t-1', '{"type": "A"}')},
	q{SELECT * FROM strata.read_all()},
	q{SELECT * FROM strata.read_stream('t-1')},
	q{SELECT strata.stream_version('t-1')})
{
	($ret, $out, $err) = $node->psql('postgres', $sql, extra_params => ['-v', 'VERBOSITY=verbose']);
	like($err, qr/ERROR:  55000: pg_strata must be loaded via shared_preload_libraries/,
		"refused with SQLSTATE 55000: $sql");
}

$node->stop;
done_testing();
