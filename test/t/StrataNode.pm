# StrataNode.pm: the node the subscription TAP tests start: a
# PostgreSQL::Test::Cluster with pg_strata preloaded, logical WAL, room
# for the launcher, a worker per database and their slots.
package StrataNode;

use strict;
use warnings;
use Exporter 'import';
use PostgreSQL::Test::Cluster;

our @EXPORT = qw(strata_node);

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

1;
