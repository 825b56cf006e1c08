# 033_command_contention.pl: commands on one stream never fail on
# contention (issue #11).  Four pgbench clients execute 200 commands each
# on the same stream.  A command's first attempt is optimistic; after a
# conflict it takes the stream's row lock (the one strata.append takes)
# before it loads the aggregate again, so it conflicts at most once and
# then succeeds.  Every command must succeed and none be lost: the
# stream ends at 800 events after its first.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use StrataNode;
use IPC::Run;

my $node = strata_node('contention');
$node->safe_psql('postgres', q{
	CREATE EXTENSION strata;
	CREATE FUNCTION counter_reduce(state jsonb, e strata.events) RETURNS jsonb
	LANGUAGE sql AS $$
		SELECT jsonb_build_object('n', coalesce((state->>'n')::int, 0) + 1)
	$$;
	CREATE FUNCTION counter_handle(state jsonb, cmd jsonb) RETURNS jsonb
	LANGUAGE sql AS $$
		SELECT jsonb_build_object('type', 'Incremented',
			'data', jsonb_build_object('n', coalesce((state->>'n')::int, 0) + 1))
	$$;
	SELECT strata.define_aggregate('counter', 'counter_reduce(jsonb, strata.events)');
	SELECT strata.define_command('Increment', 'counter', 'counter_handle(jsonb, jsonb)');
	SELECT strata.execute('counter-1', '{"type": "Increment"}');
});

my $script = "$PostgreSQL::Test::Utils::tmp_check/increment.sql";
PostgreSQL::Test::Utils::append_to_file($script,
	q{SELECT strata.execute('counter-1', '{"type": "Increment"}');});
my ($out, $err) = ('', '');
IPC::Run::run([
		'pgbench', '-n', '-c', '4', '-j', '4', '-t', '200', '-f', $script,
		'-h', $node->host, '-p', $node->port, 'postgres'
	],
	'>', \$out, '2>', \$err);
like($out, qr/number of transactions actually processed: 800\/800/,
	'all 800 commands of four concurrent clients succeeded')
  or diag($err);
unlike($err, qr/ST001|conflicted/, 'none failed on a version conflict');
is($node->safe_psql('postgres', q{SELECT strata.stream_version('counter-1')}), '800',
	'none was lost: the stream has 801 events (versions 0 to 800)');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM strata.events WHERE stream = 'counter-1'
	  AND (data->>'n')::int = version + 1}), '801',
	'each command saw the state its predecessors left');

$node->stop;
done_testing();
