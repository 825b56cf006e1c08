# StrataNode.pm: the node the subscription TAP tests start: a
# PostgreSQL::Test::Cluster with pg_strata preloaded, logical WAL, room
# for the launcher, a worker per database and their slots.
package StrataNode;

use strict;
use warnings;
use Exporter 'import';
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;

our @EXPORT = qw(strata_node strata_writers strata_handled_once);

# strata_node(name, conf => 'extra postgresql.conf lines',
#             init => [extra initdb options]): a started node.
sub strata_node
{
	my ($name, %opts) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);

	$node->init(allows_streaming => 'logical', extra => $opts{init} // []);
	my $conf = "shared_preload_libraries = 'strata'\nmax_connections = 30\n"
	  . "shared_buffers = 64MB\nmax_worker_processes = 16\n"
	  . "max_replication_slots = 10\n"
	  . ($opts{conf} // '');
	# 15.19 and later allow only the output plugins listed here (the worker
	# decodes with the strata plugin); older servers do not know the
	# parameter and would not start with it.
	if (`postgres --describe-config` =~ /^output_plugin_libraries\t/m)
	{
		$conf .=
		  "output_plugin_libraries = 'pgoutput, test_decoding, strata'\n";
	}
	$node->append_conf('postgresql.conf', $conf);
	$node->start;
	return $node;
}

# strata_writers(node, transactions, \$out, \$err): start pgbench in the
# background: 4 clients, each running 'transactions' transactions of two
# events appended to one of 120 streams in 3 categories (cat1..cat3),
# committed after a random pause of up to 2 ms, so that commits often
# come in another order than positions.  Returns the IPC::Run handle;
# pgbench's output goes to $out and $err.
my $writer_script;

sub strata_writers
{
	my ($node, $transactions, $out, $err) = @_;

	if (!defined $writer_script)
	{
		$writer_script = "$PostgreSQL::Test::Utils::tmp_check/strata_writer.sql";
		unlink $writer_script;
		PostgreSQL::Test::Utils::append_to_file($writer_script, q{
\set s random(1, 40)
\set c random(1, 3)
BEGIN;
SELECT strata.append('cat' || :c || '-' || :s, '[{"type": "A"}, {"type": "B"}]');
SELECT pg_sleep(random() * 0.002);
COMMIT;
});
	}
	($$out, $$err) = ('', '');
	return IPC::Run::start(
		[
			'pgbench', '-n', '-c', '4', '-j', '2', '-t', $transactions,
			'-f', $writer_script, '-h', $node->host, '-p', $node->port,
			'postgres'
		],
		'>', $out, '2>', $err);
}

# strata_handled_once(node, table): "n/m", where n is how many events of
# strata.events the table of handled positions (a column "position")
# holds more than once, and m how many it misses: "0/0" when each event
# was handled exactly once.
sub strata_handled_once
{
	my ($node, $table) = @_;
	return $node->safe_psql('postgres', qq{
	SELECT count(*) FILTER (WHERE n <> 1) || '/' || count(*) FILTER (WHERE n IS NULL)
	FROM (SELECT e.position, h.n FROM strata.events e
		  LEFT JOIN (SELECT position, count(*) AS n FROM $table GROUP BY position) h
		  USING (position)) x});
}

1;
