# 012_decoder_encoding.pl: the strata output plugin writes UTF-8 JSON
# whatever the database encoding (issue #11).  One node, five databases:
#   - UTF8: the feed is exactly PostgreSQL's own text of the columns (to_json
#     of the strings, jsonb's output), no byte changed;
#   - LATIN1 and WIN1252 (converted): every line is valid UTF-8 and valid
#     JSON (JSON::PP and Encode, both strict), with the right characters
#     ('é', '€'...), and the same bytes as the UTF8 database's feed for the
#     same events; equal to convert_to(PostgreSQL's text, 'UTF8'); an event
#     larger than the plugin's conversion chunk converted whole;
#     pg_recvlogical writes the same bytes; format text is UTF-8 too; the
#     text SQL functions are refused (the output is declared binary there);
#   - SQL_ASCII (checked): valid UTF-8 passes through (the same bytes as the
#     UTF8 database), each byte that does not begin a valid UTF-8 sequence
#     becomes U+FFFD, and the text SQL functions return the same bytes;
#   - MULE_INTERNAL (no conversion to UTF8 exists): a slot cannot be created
#     from SQL (42883), and a slot created over the replication protocol
#     fails to decode with the same error at the first event.
# The test file is UTF-8 and has no "use utf8": its literals are bytes,
# sent as such with client_encoding UTF8.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use Encode ();
use FindBin;
use lib $FindBin::RealBin;
use StrataNode;

my $node = strata_node('encoding', conf => "max_replication_slots = 20\n");
my $json = JSON::PP->new->utf8;    # decodes UTF-8 bytes, refuses others

# bytes -> characters, dying on anything that is not strict UTF-8
sub utf8_chars
{
	my ($bytes) = @_;
	return Encode::decode('UTF-8', "$bytes", Encode::FB_CROAK);
}

sub sql
{
	my ($db, $query) = @_;
	return $node->safe_psql($db, "SET client_encoding = 'UTF8';\n$query");
}

# The feed of a slot as raw bytes, one element a message, without moving
# the slot: hex of pg_logical_slot_peek_binary_changes, so that no client
# encoding conversion touches it.
sub feed
{
	my ($db, $slot, @options) = @_;
	my $opts = join('', map { ", '$_'" } @options);
	my $hex = sql($db,
		"SELECT encode(data, 'hex') FROM pg_logical_slot_peek_binary_changes('$slot', NULL, NULL$opts)"
	);
	return map { pack('H*', $_) } grep { $_ ne '' } split /\n/, $hex;
}

# What the plugin writes of each event before "recorded_at", built from
# PostgreSQL's own text of the columns (to_json for the strings, jsonb's
# output) and converted to UTF-8 by PostgreSQL (convert_to): raw bytes.
sub expected_prefixes
{
	my ($db) = @_;
	my $hex = sql($db, q~
		SELECT encode(convert_to('{"position":' || position
			|| ',"stream":' || to_json(stream)::text
			|| ',"version":' || version || ',"id":"' || id
			|| '","type":' || to_json(type)::text
			|| ',"category":' || to_json(category)::text
			|| ',"data":' || data::text || ',"metadata":' || metadata::text,
			'UTF8'), 'hex')
		FROM strata.events ORDER BY position~);
	return map { pack('H*', $_) } split /\n/, $hex;
}

sub prefix_of
{
	my ($line) = @_;
	$line =~ /^(.*?),"recorded_at":/s or return undef;
	return $1;
}

# The events every database gets (all representable in LATIN1; ids given,
# so that their bytes are the same everywhere): one with accents in every
# string and escapes; one all ASCII; one larger than the conversion chunk
# (64 kB) of non-ASCII characters.
my $common = q{
	SELECT strata.append('café-1', $$[{"id": "0190a5d4-7e3a-7b2c-9f1e-3c4d5e6f7a8b",
		"type": "Déposé", "data": {"note": "crème brûlée", "naïve": "ÿ",
		"quoted": "a \"b\"\n\\\\ c"}, "metadata": {"by": "Zoë"}}]$$);
	SELECT strata.append('plain-1', '{"id": "0190a5d4-7e3a-7b2c-9f1e-3c4d5e6f7a8c",
		"type": "Plain", "data": {"n": 1}}');
	SELECT strata.append('café-2', jsonb_build_object('type', 'Grand',
		'id', '0190a5d4-7e3a-7b2c-9f1e-3c4d5e6f7a8d',
		'data', jsonb_build_object('note', repeat('é', 70000) || 'x' || repeat('à', 3))));
};
my @common_chars = (
	{
		stream => 'café-1', type => 'Déposé', category => 'café',
		data => { note => 'crème brûlée', 'naïve' => 'ÿ', quoted => "a \"b\"\n\\ c" },
		metadata => { by => 'Zoë' },
		id => '0190a5d4-7e3a-7b2c-9f1e-3c4d5e6f7a8b'
	},
	{
		stream => 'plain-1', type => 'Plain', category => 'plain',
		data => { n => 1 }, metadata => {},
		id => '0190a5d4-7e3a-7b2c-9f1e-3c4d5e6f7a8c'
	},
	{
		stream => 'café-2', type => 'Grand', category => 'café',
		data => { note => ('é' x 70000) . 'x' . ('à' x 3) }, metadata => {},
		id => '0190a5d4-7e3a-7b2c-9f1e-3c4d5e6f7a8d'
	});

# utf8_chars of every string in an expected event (keys too)
sub chars_of
{
	my ($v) = @_;
	return { map { utf8_chars($_) => chars_of($v->{$_}) } keys %$v }
	  if ref $v eq 'HASH';
	return $v if $v =~ /^[0-9]+$/;
	return utf8_chars($v);
}

# Check the decoded events of a feed against the expected ones
sub check_events
{
	my ($label, $lines, $expected) = @_;
	is(scalar(@$lines), scalar(@$expected), "$label: one message per event");
	for my $i (0 .. $#$expected)
	{
		my $line = $lines->[$i] // '';
		my $e = $expected->[$i];
		my $ok = eval { utf8_chars($line); 1 };
		ok($ok, "$label: event " . ($i + 1) . " is valid UTF-8");
		my $got = eval { $json->decode($line) };
		ok(defined $got, "$label: event " . ($i + 1) . " is valid JSON")
		  or diag($@);
		$got //= {};
		for my $k (qw(stream type category data metadata))
		{
			is_deeply($got->{$k}, chars_of($e->{$k}),
				"$label: event " . ($i + 1) . " $k has the right characters");
		}
		is($got->{id}, $e->{id}, "$label: event " . ($i + 1) . " id")
		  if defined $e->{id};
		is($got->{position}, $i + 1, "$label: event " . ($i + 1) . " position");
	}
}

# ---- the databases -----------------------------------------------------
for my $db (
	[ 'db_utf8',   'UTF8' ],
	[ 'db_latin1', 'LATIN1' ],
	[ 'db_win1252', 'WIN1252' ],
	[ 'db_ascii',  'SQL_ASCII' ],
	[ 'db_mule',   'MULE_INTERNAL' ])
{
	$node->safe_psql('postgres',
		"CREATE DATABASE $db->[0] ENCODING '$db->[1]' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
	);
	$node->safe_psql($db->[0], 'CREATE EXTENSION strata');
}

# ---- UTF8: nothing converted -------------------------------------------
sql('db_utf8', q{SELECT pg_create_logical_replication_slot('utf8_feed', 'strata')});
sql('db_utf8', $common . q{
	SELECT strata.append('intl-1', '{"id": "0190a5d4-7e3a-7b2c-9f1e-3c4d5e6f7a8e", "type": "Wide", "data": {"s": "€ 日本語 😀"}}');
});
my @utf8_expected = (@common_chars,
	{ stream => 'intl-1', type => 'Wide', category => 'intl',
	  data => { s => '€ 日本語 😀' }, metadata => {} });
my @utf8_feed = feed('db_utf8', 'utf8_feed');
check_events('UTF8', \@utf8_feed, \@utf8_expected);
my @utf8_sql = expected_prefixes('db_utf8');
is_deeply([ map { prefix_of($_) } @utf8_feed ], \@utf8_sql,
	'UTF8: the feed is byte for byte PostgreSQL\'s text of the columns');
my $text_feed = sql('db_utf8',
	q{SELECT string_agg(data, E'\n' ORDER BY lsn) FROM pg_logical_slot_peek_changes('utf8_feed', NULL, NULL)});
is($text_feed, join("\n", @utf8_feed),
	'UTF8: pg_logical_slot_peek_changes returns the same text');

# ---- LATIN1 and WIN1252: converted -------------------------------------
for my $case ([ 'db_latin1', 'LATIN1', '' ], [ 'db_win1252', 'WIN1252', '€ œ ‰' ])
{
	my ($db, $enc, $extra) = @$case;
	sql($db, "SELECT pg_create_logical_replication_slot('${db}_feed', 'strata')");
	sql($db, "SELECT pg_create_logical_replication_slot('${db}_recv', 'strata')");
	sql($db, $common . qq{
		SELECT strata.append('intl-1', '{"type": "Wide", "data": {"s": "ü$extra"}}');
	});
	my @expected = (@common_chars,
		{ stream => 'intl-1', type => 'Wide', category => 'intl',
		  data => { s => "ü$extra" }, metadata => {} });
	is(sql($db, q{SELECT octet_length(data->>'note') FROM strata.events WHERE stream = 'café-2'}),
		'70004', "$enc: the large event is stored in one byte a character");

	my @lines = feed($db, "${db}_feed");
	check_events($enc, \@lines, \@expected);
	is_deeply([ map { prefix_of($_) } @lines ], [ expected_prefixes($db) ],
		"$enc: the feed is convert_to(PostgreSQL's text of the columns, 'UTF8')");
	is_deeply([ map { prefix_of($_) } @lines[ 0 .. 2 ] ],
		[ map { prefix_of($_) } @utf8_feed[ 0 .. 2 ] ],
		"$enc: the same events give the same bytes as in the UTF8 database");
	is(length($lines[2]) > 2 * 70000, 1,
		"$enc: the large event grew by its conversion (" . length($lines[2]) . ' bytes)');

	# pg_recvlogical, over the replication protocol: the same bytes
	my $endpos = sql($db, 'SELECT pg_current_wal_insert_lsn()');
	my $recv = $node->pg_recvlogical_upto($db, "${db}_recv", $endpos, 60);
	is_deeply([ split /\n/, $recv ], \@lines,
		"$enc: pg_recvlogical writes the same UTF-8 bytes");

	# format text: UTF-8 as well
	my @text = feed($db, "${db}_feed", 'format', 'text');
	like(utf8_chars($text[0] // ''), qr/^event 1 \Q@{[utf8_chars('café-1@0 Déposé')]}\E /,
		"$enc: format text is UTF-8");

	# the text functions are refused: UTF-8 is not text of this database
	my ($rc, $out, $err) = $node->psql($db,
		"SELECT data FROM pg_logical_slot_peek_changes('${db}_feed', NULL, NULL)");
	isnt($rc, 0, "$enc: pg_logical_slot_peek_changes is refused");
	like($err, qr/produces binary output, but function .* expects textual data/,
		"$enc: with PostgreSQL's error for a binary plugin");
}

# ---- SQL_ASCII: checked ------------------------------------------------
sql('db_ascii', q{SELECT pg_create_logical_replication_slot('ascii_feed', 'strata')});
sql('db_ascii', $common . q{
	SELECT strata.append('intl-1', '{"id": "0190a5d4-7e3a-7b2c-9f1e-3c4d5e6f7a8e", "type": "Wide", "data": {"s": "€ 日本語 😀"}}');
	SELECT strata.append(E'caf\xe9-3', jsonb_build_object('type', E'Bad\xe2\x82',
		'data', jsonb_build_object('latin1', E'd\xe9j\xe0 vu', 'surrogate', E'<\xed\xa0\x80>',
			'ok', 'é')));
});
my @ascii_lines = feed('db_ascii', 'ascii_feed');
check_events('SQL_ASCII', \@ascii_lines, [
	@utf8_expected,
	{
		stream => "caf\xef\xbf\xbd-3", type => "Bad\xef\xbf\xbd\xef\xbf\xbd",
		category => "caf\xef\xbf\xbd",
		data => {
			latin1 => "d\xef\xbf\xbdj\xef\xbf\xbd vu",
			surrogate => "<\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd>",
			ok => 'é'
		},
		metadata => {}
	} ]);
is_deeply([ map { prefix_of($_) } @ascii_lines[ 0 .. 3 ] ],
	[ map { prefix_of($_) } @utf8_feed ],
	'SQL_ASCII: valid UTF-8 gives the same bytes as in the UTF8 database');
my $ascii_text = sql('db_ascii', q{SELECT encode(convert_to(string_agg(data, E'\n' ORDER BY lsn), 'SQL_ASCII'), 'hex')
	FROM pg_logical_slot_peek_changes('ascii_feed', NULL, NULL)});
is(pack('H*', $ascii_text), join("\n", @ascii_lines),
	'SQL_ASCII: pg_logical_slot_peek_changes returns the same bytes');

# ---- MULE_INTERNAL: refused --------------------------------------------
my ($rc, $out, $err) = $node->psql('db_mule',
	"\\set VERBOSITY verbose\nSELECT pg_create_logical_replication_slot('mule_feed', 'strata')");
isnt($rc, 0, 'MULE_INTERNAL: a slot is not created from SQL');
like($err,
	qr/ERROR:  42883: the strata output plugin cannot convert encoding "MULE_INTERNAL" to "UTF8"/,
	'MULE_INTERNAL: with the error and its SQLSTATE');
is($node->safe_psql('db_mule', q{SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'mule_feed'}), '0',
	'MULE_INTERNAL: no slot is left behind');

# over the replication protocol the slot is created (no transaction to
# read pg_conversion in), and decoding fails at the first event
$node->command_ok(
	[ 'pg_recvlogical', '-d', $node->connstr('db_mule'), '-S', 'mule_walfeed',
	  '--create-slot', '-P', 'strata' ],
	'MULE_INTERNAL: a slot is created over the replication protocol');
$node->safe_psql('db_mule', q{SELECT strata.append('plain-1', '{"type": "Plain"}')});
my $endpos = $node->safe_psql('db_mule', 'SELECT pg_current_wal_insert_lsn()');
my ($ret, $stdout, $stderr) =
  $node->pg_recvlogical_upto('db_mule', 'mule_walfeed', $endpos, 60);
isnt($ret, 0, 'MULE_INTERNAL: pg_recvlogical fails');
like($stderr, qr/the strata output plugin cannot convert encoding "MULE_INTERNAL" to "UTF8"/,
	'MULE_INTERNAL: at the first event, with the same error');
is($stdout, '', 'MULE_INTERNAL: nothing was written');

$node->stop;
done_testing();
