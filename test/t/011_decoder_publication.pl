# 011_decoder_publication.pl: the recipe of docs/consumers.md for a
# subscriber database, run as the doc writes it: its SQL blocks are read
# from the doc (StrataDoc.pm), not retyped.  On the publisher, the
# "Server set-up" block (the feeder role) and the publication block; on
# the subscriber, the subscriber block, whose CONNECTION names the
# publisher ('host=db1' becomes this publisher's socket and port).  The
# subscription connects as feeder, who is no superuser: the initial copy
# must bring the events committed before it (the grants of the doc), and
# the later ones must follow.  The subscriber must end with the same
# events and stream versions, the doc's trigger projection must have
# seen every event, the initial copy included, and a test trigger must
# have seen the replicated events in the publisher's commit order (as the
# strata output plugin reports it), rolled-back ones never.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use StrataDoc;
use Test::More;

# The SQL of the doc: the blocks of its two sections, and which server
# each runs on (the publication section's blocks say it on their first
# line).
my $doc = "$FindBin::RealBin/../../docs/consumers.md";
my @blocks = doc_blocks($doc);
my ($setup) = grep { $_->{section} eq 'Server set-up' } @blocks;
my @publication =
  grep { $_->{section} =~ /^Through a publication/ && $_->{text} =~ /^-- on the /m }
  @blocks;
my ($on_pub) = grep { $_->{text} =~ /^-- on the publisher/ } @publication;
my ($on_sub) = grep { $_->{text} =~ /^-- on the subscriber/ } @publication;
ok($setup && $on_pub && $on_sub, 'docs/consumers.md has the three blocks')
  or BAIL_OUT('the blocks of docs/consumers.md were not found');

my $plugins = '';
if (`postgres --describe-config` =~ /^output_plugin_libraries\t/m)
{
	$plugins = "output_plugin_libraries = 'pgoutput, test_decoding, strata'\n";
}

my $pub = PostgreSQL::Test::Cluster->new('publisher');
$pub->init(allows_streaming => 'logical');
$pub->append_conf('postgresql.conf', "shared_preload_libraries = 'strata'\n$plugins");
$pub->start;
my $sub = PostgreSQL::Test::Cluster->new('subscriber');
$sub->init;
$sub->append_conf('postgresql.conf', "shared_preload_libraries = 'strata'\n");
$sub->start;

# The publisher: the doc's set-up in database app, events committed
# before the publication (the initial copy's), then the publication.
$pub->safe_psql('postgres', 'CREATE DATABASE app');
$pub->safe_psql('app', $setup->{text});
$pub->safe_psql('app', q{
	SELECT strata.append('account-1', '[{"type": "Opened"}, {"type": "Deposited", "data": {"amount": 5}}]');
	SELECT strata.append('account-3', '{"type": "Deposited", "data": {"amount": 7}}');
});
$pub->safe_psql('app', $on_pub->{text});
is($pub->safe_psql('app', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'feeder'}),
	'f', 'the subscription connects as feeder, who is no superuser');
$pub->safe_psql('app', q{SELECT pg_create_logical_replication_slot('order', 'strata')});

# The subscriber: a test trigger recording the order of arrival, then
# the doc's block, connecting to this publisher.
$sub->safe_psql('postgres', 'CREATE DATABASE app');
my $sql = $on_sub->{text};
my $host = $pub->host;
my $port = $pub->port;
ok($sql =~ s/host=db1 /host=$host port=$port /, 'the CONNECTION of the doc names the publisher');
my ($create_ext, $rest) = split /(?<=CREATE EXTENSION strata;\n)/, $sql, 2;
$sub->safe_psql('app', $create_ext);
$sub->safe_psql('app', q{
	CREATE TABLE arrivals (n bigserial PRIMARY KEY, position bigint NOT NULL);
	CREATE FUNCTION record_arrival() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		INSERT INTO public.arrivals (position) VALUES (NEW.position);
		RETURN NULL;
	END $$;
	CREATE TRIGGER record_arrival AFTER INSERT ON strata.events
		FOR EACH ROW EXECUTE FUNCTION record_arrival();
	ALTER TABLE strata.events ENABLE ALWAYS TRIGGER record_arrival;
});
$sub->safe_psql('app', $rest);
$sub->wait_for_subscription_sync($pub, 'strata_events');

my $rows = q{SELECT string_agg(concat_ws(' ', position, stream, version, type, data, metadata, id, recorded_at), E'\n' ORDER BY position) FROM strata.events};
is($sub->safe_psql('app', 'SELECT count(*) FROM strata.events'), '3',
	'the initial copy brought the events committed before the subscription');
is($sub->safe_psql('app', $rows), $pub->safe_psql('app', $rows),
	'as they are on the publisher');
my $balances = q{SELECT string_agg(stream || ' ' || balance, ', ' ORDER BY stream) FROM balances};
is($sub->safe_psql('app', $balances), 'account-1 5, account-3 7',
	"the doc's trigger projected the initial copy");

# Commits out of position order, a rollback, several streams.
my $w1 = $pub->background_psql('app');
$w1->query_safe(q{BEGIN; SELECT strata.append('account-2', '{"type": "Opened"}');});
$pub->safe_psql('app', q{SELECT strata.append('account-1', '{"type": "Deposited", "data": {"amount": 2}}')});
$pub->safe_psql('app', q{BEGIN; SELECT strata.append('order-9', '{"type": "Lost"}'); ROLLBACK;});
$pub->safe_psql('app', q{SELECT strata.append('order-9', '[{"type": "Placed"}, {"type": "Paid"}]')});
$w1->query_safe(q{SELECT strata.append('account-2', '{"type": "Deposited", "data": {"amount": 4}}'); COMMIT;});
$w1->quit;
$pub->wait_for_catchup('strata_events');

is($sub->safe_psql('app', $rows), $pub->safe_psql('app', $rows),
	'the subscriber has the same events');
my $streams = q{SELECT string_agg(stream || ' ' || version, ', ' ORDER BY stream) FROM strata.streams};
is($sub->safe_psql('app', $streams), $pub->safe_psql('app', $streams),
	'and the same stream versions');
is($sub->safe_psql('app', q{SELECT strata.stream_version('order-9')}), '1',
	'stream_version works on the subscriber');
is($sub->safe_psql('app', $balances), 'account-1 7, account-2 4, account-3 7, order-9 0',
	"the doc's trigger projected the later events too");

# The order of arrival after the initial copy = the feed's commit order.
my $feed = $pub->safe_psql('app', q{
	SELECT string_agg(data::jsonb->>'position', ',')
	FROM pg_logical_slot_get_changes('order', NULL, NULL)});
my $arrived = $sub->safe_psql('app', q{
	SELECT string_agg(position::text, ',' ORDER BY n) FROM arrivals WHERE position > 3});
is($arrived, $feed, "replicated events arrive in commit order ($arrived)");
isnt($feed, join(',', sort { $a <=> $b } split /,/, $feed),
	'which is not position order here');

$sub->safe_psql('app', 'DROP SUBSCRIPTION strata_events');
$sub->stop;
$pub->stop;
done_testing();
