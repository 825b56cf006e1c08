# 010_decoder_feed.pl: the strata output plugin as a live feed.  Four
# pgbench writers append (some transactions roll back, all of them also
# update another table, commits land out of position order) while
# pg_recvlogical and the example consumer (examples/strata_consumer) follow
# the feed over the replication protocol and are killed (SIGKILL) and
# stopped (SIGINT/SIGTERM) and restarted several times.  Then:
#   - a reference slot read once at the end holds every committed event
#     exactly once, in commit order (commit LSNs never go down);
#   - the consumer's file equals the reference line for line: nothing lost,
#     nothing repeated, across crashes;
#   - each pg_recvlogical run received a contiguous stretch of the
#     reference starting no later than where the previous runs got to:
#     nothing lost, repeats only of the unconfirmed tail.
# Finally a 100,000-event transaction goes through a walsender whose
# anonymous memory stays far below the size of the transaction.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep time);
use File::Basename qw(dirname);

# the build directory: TESTDIR up to 16, the parent of TESTDATADIR after
my $builddir = $ENV{TESTDIR} // dirname($ENV{TESTDATADIR});
my $consumer = "$builddir/examples/strata_consumer";
ok(-x $consumer, "example consumer is built ($consumer)")
  or BAIL_OUT('build examples/strata_consumer first (make)');

my $node = PostgreSQL::Test::Cluster->new('feed');
$node->init(allows_streaming => 'logical');
my $conf = "shared_preload_libraries = 'strata'\nmax_connections = 30\n"
  . "wal_sender_timeout = '10s'\n";
# 15.19 and later allow only the output plugins listed here; older servers
# do not know the parameter and would not start with it.
if (`postgres --describe-config` =~ /^output_plugin_libraries\t/m)
{
	$conf .= "output_plugin_libraries = 'pgoutput, test_decoding, strata'\n";
}
$node->append_conf('postgresql.conf', $conf);
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION strata;
	CREATE TABLE noise (k int PRIMARY KEY, v int);
	INSERT INTO noise SELECT g, 0 FROM generate_series(1, 40) g;
	SELECT pg_create_logical_replication_slot('ref', 'strata');
	SELECT pg_create_logical_replication_slot('recv', 'strata');
	SELECT pg_create_logical_replication_slot('cons', 'strata');
});
my $connstr = $node->connstr('postgres');
my $dir = $PostgreSQL::Test::Utils::tmp_check;

# ---- writers ----------------------------------------------------------
my $script = "$dir/writer.sql";
PostgreSQL::Test::Utils::append_to_file($script, q{
\set s random(1, 40)
\set c random(1, 3)
\set n random(1, 3)
\set r random(1, 8)
BEGIN;
SELECT strata.append('cat' || :c || '-' || :s, (SELECT jsonb_agg(jsonb_build_object('type', 'T' || i, 'data', jsonb_build_object('i', i, 'note', E'two\nlines "quoted"'))) FROM generate_series(1, :n) i));
UPDATE noise SET v = v + 1 WHERE k = :s;
SELECT pg_sleep(random() * 0.004);
\if :r = 1
ROLLBACK;
\else
COMMIT;
\endif
});
my ($pgb_out, $pgb_err) = ('', '');
my $pgbench = IPC::Run::start(
	[ 'pgbench', '-n', '-c', '4', '-j', '2', '-T', '12', '-f', $script,
	  '-h', $node->host, '-p', $node->port, 'postgres' ],
	'>', \$pgb_out, '2>', \$pgb_err);

# ---- the two followers, restartable -----------------------------------
my @recv_files;
my $recv;
sub start_recv
{
	my $file = "$dir/recv." . scalar(@recv_files) . '.ndjson';
	push @recv_files, $file;
	$recv = IPC::Run::start(
		[ 'pg_recvlogical', '-d', $connstr, '-S', 'recv', '--start',
		  '--no-loop', '-f', $file, '-F', '1', '-s', '1' ],
		'>', "$dir/recv.log", '2>>', "$dir/recv.log");
}

my $cons_file = "$dir/consumer.ndjson";
my $cons;
my $cons_starts = 0;
sub start_consumer
{
	$cons_starts++;
	$cons = IPC::Run::start(
		[ $consumer, '-d', $connstr, '-S', 'cons', '-c', '-o', $cons_file,
		  '-s', '1', '-v' ],
		'>', "$dir/consumer.out", '2>>', "$dir/consumer.log");
}

# Stop a follower, then wait until the server has noticed and released
# its slot, as a supervisor restarting it would.
sub stop_proc
{
	my ($h, $signal, $slot) = @_;
	$h->signal($signal);
	eval { $h->finish; };
	$node->poll_query_until('postgres',
		"SELECT NOT active FROM pg_replication_slots WHERE slot_name = '$slot'")
	  or die "slot $slot stays active";
}

start_recv();
start_consumer();

# Kill and restart both while the writers run: SIGKILL, then a clean
# stop, then SIGKILL again, at different moments for the two.
my @plan = (
	[ 1.5, 'recv', 'KILL' ], [ 2.5, 'cons', 'KILL' ],
	[ 4.0, 'recv', 'INT' ],  [ 5.0, 'cons', 'TERM' ],
	[ 6.5, 'recv', 'KILL' ], [ 7.0, 'cons', 'KILL' ],
	[ 8.5, 'cons', 'KILL' ], [ 9.5, 'recv', 'KILL' ]);
my $t0 = time;
for my $step (@plan)
{
	my ($at, $who, $signal) = @$step;
	while (time - $t0 < $at)
	{
		$pgbench->pump_nb if $pgbench->pumpable;
		usleep(50_000);
	}
	if ($who eq 'recv') { stop_proc($recv, $signal, 'recv'); start_recv(); }
	else { stop_proc($cons, $signal, 'cons'); start_consumer(); }
}
$pgbench->finish;
like($pgb_out, qr/number of failed transactions: 0/, 'writers ran without failures')
  or diag($pgb_err);

# A last event marks the end of the feed.
$node->safe_psql('postgres',
	q{SELECT strata.append('sentinel-1', '{"type": "End"}')});

sub slurp_lines
{
	my ($file) = @_;
	return () unless -e $file;
	open(my $fh, '<', $file) or die "open $file: $!";
	my @lines = <$fh>;
	close $fh;
	chomp @lines;
	return grep { $_ ne '' } @lines;
}

my $deadline = time + 60;
while (time < $deadline)
{
	my $r = grep { /"stream":"sentinel-1"/ } slurp_lines($recv_files[-1]);
	my $c = grep { /"stream":"sentinel-1"/ } slurp_lines($cons_file);
	last if $r && $c;
	usleep(200_000);
}
stop_proc($recv, 'INT', 'recv');
stop_proc($cons, 'INT', 'cons');

# ---- the reference: every committed event, in commit order -------------
my @ref = split /\n/, $node->safe_psql('postgres',
	q{SELECT data FROM pg_logical_slot_get_changes('ref', NULL, NULL)});
my @ref_pos = map { /^\{"position":(\d+),/ ? $1 : die "bad line $_" } @ref;
my $table = $node->safe_psql('postgres',
	q{SELECT string_agg(position::text, ',' ORDER BY position) FROM strata.events});
is(join(',', sort { $a <=> $b } @ref_pos), $table,
	'the feed holds exactly the committed events (' . scalar(@ref) . ')');
cmp_ok(scalar(@ref), '>', 200, 'the writers committed a fair number of events');

sub lsn_num
{
	my ($hi, $lo) = split m{/}, $_[0];
	return hex($hi) * 4294967296 + hex($lo);
}
my ($in_order, $out_of_position) = (1, 0);
for my $i (1 .. $#ref)
{
	my ($l0) = $ref[ $i - 1 ] =~ /"commit_lsn":"([^"]+)"/;
	my ($l1) = $ref[$i] =~ /"commit_lsn":"([^"]+)"/;
	my ($a, $b) = (lsn_num($l0), lsn_num($l1));
	$in_order = 0 if $b < $a || ($a == $b && $ref_pos[$i] <= $ref_pos[ $i - 1 ]);
	$out_of_position++ if $ref_pos[$i] < $ref_pos[ $i - 1 ];
}
ok($in_order, 'commit LSNs never go down, positions increase within a transaction');
note("$out_of_position times an event came after a larger position (commit order is not position order)");
is(scalar(grep { !/"xid":\d+,"commit_lsn":"[0-9A-F]+\/[0-9A-F]+","commit_time":"[^"]+"\}$/ } @ref),
	0, 'every event carries its transaction (xid, commit LSN, commit time)');

# ---- the example consumer: exactly once ---------------------------------
my @cons_lines = slurp_lines($cons_file);
cmp_ok($cons_starts, '>=', 5, "the consumer was started $cons_starts times");
is(scalar(@cons_lines), scalar(@ref), 'consumer: as many events as committed');
is_deeply(\@cons_lines, \@ref,
	'consumer: every committed event exactly once, in commit order, across kills');
my $log = slurp_file("$dir/consumer.log");
unlike($log, qr/strata_consumer: (?!created|streaming|confirmed|stopped|slot|\S+ holds)/,
	'consumer: no error messages');

# ---- pg_recvlogical: nothing lost, repeats only of an unconfirmed tail --
my %index;
@index{@ref_pos} = (0 .. $#ref_pos);
my ($covered, $repeated, $runs_ok) = (0, 0, 1);
for my $file (@recv_files)
{
	my @lines = slurp_lines($file);
	next unless @lines;
	my ($first) = $lines[0] =~ /^\{"position":(\d+),/;
	my $start = defined $first ? $index{$first} : undef;
	if (!defined $start || $start > $covered)
	{
		$runs_ok = 0;
		diag("$file starts at an unexpected event: $lines[0]");
		last;
	}
	for my $k (0 .. $#lines)
	{
		my $expected = $ref[ $start + $k ] // '';
		next if $lines[$k] eq $expected;
		# a SIGKILL may cut the very last line of a run
		next if $k == $#lines && index($expected, $lines[$k]) == 0;
		$runs_ok = 0;
		diag("$file line $k differs:\n got $lines[$k]\n want $expected");
		last;
	}
	$repeated += $covered - $start;
	$covered = $start + @lines if $start + @lines > $covered;
}
ok($runs_ok, 'pg_recvlogical: each run continues the feed in commit order, no gap');
is($covered, scalar(@ref), 'pg_recvlogical: every committed event received');
note(scalar(@recv_files) . " pg_recvlogical runs, $repeated events received again (unconfirmed tails)");

# ---- a 100,000-event transaction: flat memory in the walsender ---------
my $big = "$dir/big.ndjson";
$node->safe_psql('postgres', q{ALTER SYSTEM SET logical_decoding_work_mem = '64kB'; SELECT pg_reload_conf();});
my $bigrecv = IPC::Run::start(
	[ 'pg_recvlogical', '-d', $connstr, '-S', 'recv', '--start', '--no-loop',
	  '-f', $big, '-F', '1', '-s', '1', '-o', 'include-metadata=false' ],
	'>', "$dir/big.log", '2>&1');
my $walsender;
$deadline = time + 30;
while (time < $deadline && !$walsender)
{
	$walsender = $node->safe_psql('postgres',
		q{SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'recv' AND active});
	usleep(100_000) unless $walsender;
}
ok($walsender, 'pg_recvlogical connected');
sub rss_anon_kb
{
	open(my $fh, '<', "/proc/$walsender/status") or return 0;
	my ($kb) = join('', <$fh>) =~ /^RssAnon:\s+(\d+) kB/m;
	return $kb // 0;
}
my $rss_before = rss_anon_kb();
my $w = $node->background_psql('postgres');
$w->query_safe(q{
	BEGIN;
	SELECT count(strata.append('bulk-' || g, (SELECT jsonb_agg(jsonb_build_object('type', 'Bulk', 'data', jsonb_build_object('i', i, 'pad', repeat('p', 500)))) FROM generate_series(1, 100) i))) FROM generate_series(1, 1000) g;
	COMMIT;
});
$w->quit;
my $max_rss = $rss_before;
$deadline = time + 120;
my $n = 0;
while (time < $deadline)
{
	my $r = rss_anon_kb();
	$max_rss = $r if $r > $max_rss;
	# (the run may begin with an unconfirmed tail of the feed above)
	$n = () = slurp_file($big) =~ /"stream":"bulk-/g if -e $big;
	last if $n >= 100_000;
	usleep(20_000);
}
stop_proc($bigrecv, 'INT', 'recv');
is($n, 100_000, 'the 100,000 events of one transaction all arrived');
my $size_mb = (-s $big) / 1048576;
note(sprintf('walsender RssAnon %d kB before, at most %d kB while sending %.0f MB', $rss_before, $max_rss, $size_mb));
cmp_ok($max_rss - $rss_before, '<', 32 * 1024,
	'walsender memory grew by less than 32 MB for a ' . int($size_mb) . ' MB transaction');

# ---- the consumer refuses bad input clearly -----------------------------
sub run_consumer
{
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run([ $consumer, @_ ], '>', \$out, '2>', \$err,
		IPC::Run::timeout(60));
	return ($ok, $err);
}
my ($ok, $err) = run_consumer('-d', $connstr, '-S', 'cons', '-P', 'bogus=1');
ok(!$ok, 'consumer: an unknown plugin option fails');
like($err, qr/unrecognized option "bogus" of the strata output plugin/,
	'consumer: and says why (the server\'s error)');
($ok, $err) = run_consumer('-d', $connstr, '-S', 'no_such_slot');
like($err, qr/replication slot "no_such_slot" does not exist/,
	'consumer: a missing slot is reported');
PostgreSQL::Test::Utils::append_to_file("$dir/bad.ndjson.lsn", "garbage\n");
($ok, $err) = run_consumer('-d', $connstr, '-S', 'cons', '-o', "$dir/bad.ndjson");
like($err, qr/invalid state file/, 'consumer: a corrupt state file is refused');

# ---- decoding without shared_preload_libraries ---------------------------
# Decoding loads strata.so itself (its _PG_init then only defines the GUCs),
# in a backend and in a walsender.
$node->safe_psql('postgres', q{
	SELECT pg_create_logical_replication_slot('late', 'strata');
	SELECT strata.append('late-1', '{"type": "Late"}');
});
$node->append_conf('postgresql.conf', "shared_preload_libraries = ''");
$node->restart;
is($node->safe_psql('postgres', q{SHOW shared_preload_libraries}), '', 'not preloaded');
my $late = "$dir/late.ndjson";
($ok, $err) = ('', '');
IPC::Run::run(
	[ 'pg_recvlogical', '-d', $connstr, '-S', 'late', '--start', '-f', $late,
	  '--endpos', $node->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()'),
	  '-o', 'types=Late' ],
	'2>', \$err, IPC::Run::timeout(60));
like(slurp_file($late), qr/^\{"position":\d+,"stream":"late-1",.*"type":"Late"/,
	'pg_recvlogical decodes through a walsender without the preload');
is($err, '', 'without any error');

$node->stop;
done_testing();
