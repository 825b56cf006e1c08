# 006_schema_dump.pl: a fresh CREATE EXTENSION (sql/strata.sql) and the
# first release's install script updated along the whole upgrade chain
# give the same schema, as pg_dump sees it.
#
# pg_dump leaves out what an extension creates; with --binary-upgrade it
# dumps every member (then "ALTER EXTENSION strata ADD ..."): tables with
# their columns in order, defaults and constraints, function definitions
# and bodies, views, policies, triggers, comments, and the initial
# privileges (between binary_upgrade_set_record_init_privs calls).  The
# two dumps must be equal but for the lines filtered below.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('schema_dump');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'strata'");
$node->start;

my $default = $node->safe_psql('postgres',
	q{SELECT default_version FROM pg_available_extensions WHERE name = 'strata'});

$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION strata');
$node->safe_psql('postgres', 'CREATE DATABASE chain');
$node->safe_psql('chain', q{CREATE EXTENSION strata VERSION '0.1.0'});
$node->safe_psql('chain', 'ALTER EXTENSION strata UPDATE');
for my $db ('fresh', 'chain')
{
	is($node->safe_psql($db,
			q{SELECT extversion FROM pg_extension WHERE extname = 'strata'}),
		$default, "$db: version $default");
}

# The lines that differ whatever the scripts do:
sub normalized_dump
{
	my ($db) = @_;
	my ($out, $err) = run_command(
		[ 'pg_dump', '--schema-only', '--binary-upgrade', '-d', $node->connstr($db) ]);
	is($err, '', "pg_dump of $db without errors");
	my @lines;
	for (split /\n/, $out)
	{
		# \restrict and \unrestrict (pg_dump 15.14 on) carry a random key,
		# new at every run.
		next if /^\\(un)?restrict /;
		# The OIDs and relfilenodes the restore is to reuse are the ones
		# each database handed out: blank the numbers, keep the calls (their
		# count and kind still say which relations, types and toast tables
		# exist).
		s/(binary_upgrade_set_next_\w+)\('\d+'::pg_catalog\.oid\)/$1('OID'::pg_catalog.oid)/;
		# The transaction ids a relation was created in, and the OID of the
		# toast table whose ones are set.
		s/relfrozenxid = '\d+', relminmxid = '\d+'/relfrozenxid = 'XID', relminmxid = 'XID'/;
		s/^WHERE oid = '\d+';$/WHERE oid = 'OID';/;
		# The WAL position each column was created at (pg_dump of 15.20 on
		# keeps them across a binary upgrade): the two databases were made
		# at different times.  Their count still says how many columns.
		s#(binary_upgrade_set_next_attribute_versions\(')\{([^\}]*)\}#$1 . '{' . join(',', map { 'LSN' } split(/,/, $2)) . '}'#e;
		# The configuration tables (pg_extension_config_dump) by OID: they
		# are compared by name below.
		s/(binary_upgrade_create_empty_extension\(.*?, )'\{[\d,]*\}'/$1'{OIDS}'/;
		# A column added by ALTER TABLE ... ADD COLUMN ... DEFAULT (the
		# chain's projections.mode, 0.3.0) keeps its default as the value of
		# the rows that predate it (attmissingval); a table created with
		# the column has none.  The default itself is in CREATE TABLE.
		next if /^-- set missing value\.$/;
		next if /binary_upgrade_set_missing_value\(/;
		push @lines, $_;
	}
	my $text = join("\n", @lines) . "\n";
	# blank lines left around a removed one
	$text =~ s/\n{3,}/\n\n/g;
	return $text;
}

my $fresh = normalized_dump('fresh');
my $chain = normalized_dump('chain');

# The comparison has substance: the members and what matters about them
# are in the dump.  (ok rather than like, which would print the dump)
my $members = $node->safe_psql('fresh', q{
	SELECT count(*) FROM pg_depend
	WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
	  AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'strata')
	  -- 17 and later also record the row types of its tables and views
	  -- (and their arrays) as members, which pg_dump does not ADD
	  AND NOT (classid = 'pg_type'::regclass AND EXISTS (
		SELECT FROM pg_type t LEFT JOIN pg_type elem ON elem.oid = t.typelem
		LEFT JOIN pg_class c ON c.oid = coalesce(nullif(t.typrelid, 0), elem.typrelid)
		WHERE t.oid = objid AND c.relkind IN ('r', 'v', 'm', 'p', 'f')))});
my $added = () = $fresh =~ /^ALTER EXTENSION strata ADD /mg;
is($added, $members, "the dump adds every member of the extension ($members)");
ok($fresh =~ qr/^CREATE TABLE strata\.projections \(\n    name text NOT NULL,\n    handler regprocedure NOT NULL,\n/m,
	'columns, in order');
ok($fresh =~ qr/^    mode text DEFAULT 'inline'::text NOT NULL,$/m, 'column defaults');
ok($fresh =~ qr/^\tEXECUTE format\('GRANT USAGE ON SCHEMA strata TO %s', role\);$/m,
	'function bodies');
ok($fresh =~ qr/^CREATE VIEW strata\.subscription_status WITH \(security_barrier='true'\) AS$/m,
	'views and their options');
ok($fresh =~ qr/^CREATE POLICY subscriptions_visible ON strata\.subscriptions /m, 'policies');
ok($fresh =~ qr/^COMMENT ON COLUMN strata\.events\.stream IS 'Stream name, category-id\.';$/m,
	'comments');
ok($fresh =~ qr/binary_upgrade_set_record_init_privs\(true\);\nREVOKE ALL ON FUNCTION strata\.append\(/,
	'initial privileges');
ok($fresh =~ qr/^GRANT SELECT ON TABLE strata\.definitions TO PUBLIC;$/m, 'grants');

my $dir = $PostgreSQL::Test::Utils::tmp_check;
unlink "$dir/006_chain.sql", "$dir/006_fresh.sql";
PostgreSQL::Test::Utils::append_to_file("$dir/006_chain.sql", $chain);
PostgreSQL::Test::Utils::append_to_file("$dir/006_fresh.sql", $fresh);
my ($diff) = run_command([ 'diff', '-u', "$dir/006_chain.sql", "$dir/006_fresh.sql" ]);
is($diff, '', 'a fresh install dumps as the upgrade chain')
  or diag($diff);

# What pg_dump takes from each configuration table, in order.
my $config = q{
	SELECT extconfig::regclass[]::text || ' ' || extcondition::text
	FROM pg_extension WHERE extname = 'strata'};
is($node->safe_psql('fresh', $config), $node->safe_psql('chain', $config),
	'the same configuration tables');

$node->stop;
done_testing();
