# 004_standby.pl: a streaming standby (pg_basebackup -R).  Streams are
# readable there; appends are refused as in any read-only transaction; the
# global reads are refused with a clear error, because the in-flight
# registry lives on the primary.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', "shared_preload_libraries = 'strata'");
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION strata');
$primary->backup('base');

my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;

$primary->safe_psql('postgres',
	q{SELECT strata.append('acct-1', '[{"type": "Opened"}, {"type": "Deposited", "data": {"amount": 5}}]')});
$primary->wait_for_catchup($standby);

is($standby->safe_psql('postgres',
	q{SELECT string_agg(version || ':' || type, ',') FROM strata.read_stream('acct-1')}),
	'0:Opened,1:Deposited', 'read_stream works on the standby');
is($standby->safe_psql('postgres', q{SELECT strata.stream_version('acct-1')}), '1',
	'stream_version works on the standby');

my ($ret, $out, $err) = $standby->psql('postgres', 'SELECT * FROM strata.read_all()',
	extra_params => ['-v', 'VERBOSITY=verbose']);
like($err, qr/ERROR:  0A000: strata.read_all\(\) cannot run on a hot standby/,
	'read_all is refused on the standby with 0A000');
($ret, $out, $err) = $standby->psql('postgres', q{SELECT * FROM strata.read_category('acct')},
	extra_params => ['-v', 'VERBOSITY=verbose']);
like($err, qr/ERROR:  0A000: strata.read_category\(\) cannot run on a hot standby/,
	'read_category is refused on the standby with 0A000');
($ret, $out, $err) = $standby->psql('postgres', q{SELECT strata.append('acct-1', '{"type": "X"}')},
	extra_params => ['-v', 'VERBOSITY=verbose']);
like($err, qr/ERROR:  25006: cannot execute strata.append\(\) in a read-only transaction/,
	'append is refused on the standby with 25006');

# aggregates: load works on the standby, from the primary's snapshots, and
# writes none there
$primary->safe_psql('postgres', q{
	CREATE FUNCTION acct_reduce(state jsonb, e strata.events) RETURNS jsonb
	LANGUAGE sql AS $$ SELECT jsonb_build_object('n', coalesce((state->>'n')::int, 0) + 1) $$;
	SELECT strata.define_aggregate('acct', 'acct_reduce(jsonb, strata.events)', '{}', 2);
	SELECT strata.load('acct-1');
	SELECT strata.append('acct-1', '[{"type": "X"}, {"type": "Y"}, {"type": "Z"}]');
});
$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres', q{SELECT count(*) FROM strata.snapshots}), '1',
	'the primary wrote one snapshot');
is($standby->safe_psql('postgres', q{SELECT state->>'n', version FROM strata.load('acct-1')}),
	'5|4', 'load works on the standby');
is($standby->safe_psql('postgres', q{SELECT count(*) FROM strata.snapshots}), '1',
	'load on the standby wrote no snapshot');

# promoted, the standby becomes a primary with a working registry
$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()');
is($standby->safe_psql('postgres', q{SELECT strata.append('acct-1', '{"type": "Closed"}', 4)}), '5',
	'after promotion, appends continue the stream');
is($standby->safe_psql('postgres', q{SELECT count(*) FROM strata.read_all()}), '6',
	'after promotion, read_all works');

$standby->stop;
$primary->stop;
done_testing();
