# 005_dump.pl: pg_dump and restore keep the log, the streams and the
# position sequence (pg_extension_config_dump), so appends after a restore
# continue the streams and never reuse a position.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('dump');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'strata'");
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src', 'CREATE EXTENSION strata');
$node->safe_psql('src', q{
	SELECT strata.append('acct-1', '[{"type": "Opened"}, {"type": "Deposited"}]');
	SELECT strata.append('acct-2', '{"type": "Opened"}');
});
my $dump = "${PostgreSQL::Test::Utils::tmp_check}/src.dump";
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('src') ], 'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE dst');
$node->command_ok([ 'pg_restore', '-d', $node->connstr('dst'), $dump ], 'pg_restore');

is($node->safe_psql('dst', q{SELECT string_agg(position || ':' || stream || ':' || version, ',' ORDER BY position) FROM strata.read_all()}),
	'1:acct-1:0,2:acct-1:1,3:acct-2:0', 'the events are restored');
is($node->safe_psql('dst', q{SELECT strata.append('acct-1', '{"type": "Closed"}', 1)}), '2',
	'the streams continue at their versions');
is($node->safe_psql('dst', q{SELECT max(position) FROM strata.events}), '4',
	'positions continue after the restored ones');
my ($ret, $out, $err) = $node->psql('dst', 'DELETE FROM strata.events');
like($err, qr/DELETE of strata.events is not allowed/, 'the restored log is still immutable');

$node->stop;
done_testing();
