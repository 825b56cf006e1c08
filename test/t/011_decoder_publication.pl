# 011_decoder_publication.pl: the recipe of docs/consumers.md for a
# subscriber database.  The publisher publishes strata.events and
# strata.streams; the subscriber (with the extension installed) subscribes,
# and an ALWAYS trigger there records the order in which replicated events
# arrive.  The subscriber must end with the same events and stream versions,
# and its trigger must have seen the events in the publisher's commit order
# (as the strata output plugin reports it), rolled-back ones never.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

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

$pub->safe_psql('postgres', q{
	CREATE EXTENSION strata;
	SELECT strata.append('account-1', '[{"type": "Opened"}, {"type": "Deposited", "data": {"amount": 5}}]');
	CREATE PUBLICATION strata_events FOR TABLE strata.events, strata.streams
		WITH (publish = 'insert, update');
	SELECT pg_create_logical_replication_slot('order', 'strata');
});
$sub->safe_psql('postgres', q{
	CREATE EXTENSION strata;
	CREATE TABLE arrivals (n bigserial PRIMARY KEY, position bigint NOT NULL);
	CREATE FUNCTION record_arrival() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		INSERT INTO public.arrivals (position) VALUES (NEW.position);
		RETURN NULL;
	END $$;
	CREATE TRIGGER project AFTER INSERT ON strata.events
		FOR EACH ROW EXECUTE FUNCTION record_arrival();
	ALTER TABLE strata.events ENABLE ALWAYS TRIGGER project;
});
my $connstr = $pub->connstr . ' dbname=postgres';
$sub->safe_psql('postgres',
	"CREATE SUBSCRIPTION strata_events CONNECTION '$connstr' PUBLICATION strata_events");
$sub->wait_for_subscription_sync($pub, 'strata_events');

# Commits out of position order, a rollback, several streams.
my $w1 = $pub->background_psql('postgres');
$w1->query_safe(q{BEGIN; SELECT strata.append('account-2', '{"type": "Opened"}');});
$pub->safe_psql('postgres', q{SELECT strata.append('account-1', '{"type": "Withdrawn"}')});
$pub->safe_psql('postgres', q{BEGIN; SELECT strata.append('order-9', '{"type": "Lost"}'); ROLLBACK;});
$pub->safe_psql('postgres', q{SELECT strata.append('order-9', '[{"type": "Placed"}, {"type": "Paid"}]')});
$w1->query_safe(q{SELECT strata.append('account-2', '{"type": "Deposited"}'); COMMIT;});
$w1->quit;
$pub->wait_for_catchup('strata_events');

my $rows = q{SELECT string_agg(concat_ws(' ', position, stream, version, type, data, metadata, id, recorded_at), E'\n' ORDER BY position) FROM strata.events};
is($sub->safe_psql('postgres', $rows), $pub->safe_psql('postgres', $rows),
	'the subscriber has the same events');
my $streams = q{SELECT string_agg(stream || ' ' || version, ', ' ORDER BY stream) FROM strata.streams};
is($sub->safe_psql('postgres', $streams), $pub->safe_psql('postgres', $streams),
	'and the same stream versions');
is($sub->safe_psql('postgres', q{SELECT strata.stream_version('order-9')}), '1',
	'stream_version works on the subscriber');

# The order of arrival after the initial copy = the feed's commit order.
my $feed = $pub->safe_psql('postgres', q{
	SELECT string_agg(data::jsonb->>'position', ',')
	FROM pg_logical_slot_get_changes('order', NULL, NULL)});
my $arrived = $sub->safe_psql('postgres', q{
	SELECT string_agg(position::text, ',' ORDER BY n) FROM arrivals WHERE position > 2});
is($arrived, $feed, "replicated events arrive in commit order ($arrived)");
isnt($feed, join(',', sort { $a <=> $b } split /,/, $feed),
	'which is not position order here');

$sub->safe_psql('postgres', 'DROP SUBSCRIPTION strata_events');
$sub->stop;
$pub->stop;
done_testing();
