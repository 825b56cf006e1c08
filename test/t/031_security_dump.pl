# 031_security_dump.pl: owners are roles, not OIDs.  0.3.0 stored a
# subscription's owner as a bare OID, which pg_dump writes as a number: on
# a cluster where the roles were created in another order, the restored
# handler ran as whichever role had that OID.  Owners are regrole now, and
# pg_dump writes their names.
#
# Cluster A creates r1 then r2; r2 subscribes a handler and defines an
# inline projection, both recording current_user.  Cluster B creates r2
# then r1, so that r1 in B has the OID r2 had in A, and restores the dump.
# There the handlers run as r2.  Then, in B: DROP ROLE r2 is refused while
# it owns them; REASSIGN OWNED BY r2 TO r1 gives them to r1, which they
# run as from then on; DROP ROLE r2 then works.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use StrataNode;

# the roles first, the same way on both clusters, so that their OIDs are
# the first ones handed out
my $a = strata_node('dump_a');
$a->safe_psql('postgres', 'CREATE ROLE r1; CREATE ROLE r2;');
my $b = strata_node('dump_b');
$b->safe_psql('postgres', 'CREATE ROLE r2; CREATE ROLE r1;');
my $a_r2 = $a->safe_psql('postgres', q{SELECT 'r2'::regrole::oid});
my $b_r1 = $b->safe_psql('postgres', q{SELECT 'r1'::regrole::oid});
my $b_r2 = $b->safe_psql('postgres', q{SELECT 'r2'::regrole::oid});
is($b_r1, $a_r2, "r1 in B has the OID r2 has in A ($a_r2)");

$a->safe_psql('postgres', 'CREATE DATABASE app');
$a->safe_psql('app', q{
	CREATE EXTENSION strata;
	SELECT strata.grant_privileges(r, k)
	FROM unnest('{r1,r2}'::regrole[]) r, unnest('{writer,subscriber,definer}'::text[]) k;
	CREATE TABLE public.who_seen (what text, type text, cu text);
	GRANT INSERT ON public.who_seen TO r1, r2;
	CREATE FUNCTION public.sub_who(e strata.events) RETURNS void LANGUAGE sql AS $$
		INSERT INTO public.who_seen VALUES ('subscription', e.type, current_user) $$;
	CREATE FUNCTION public.proj_who(e strata.events) RETURNS void LANGUAGE sql AS $$
		INSERT INTO public.who_seen VALUES ('projection', e.type, current_user) $$;
	SET ROLE r2;
	SELECT strata.subscribe('r2_sub', 'public.sub_who(strata.events)', categories => ARRAY['acct']);
	SELECT strata.define_projection('r2_proj', 'public.proj_who(strata.events)', ARRAY['acct']);
});
$a->safe_psql('app', q{SELECT strata.append('acct-1', '{"type": "BeforeDump"}')});
ok($a->poll_query_until('app', q{SELECT count(*) = 2 FROM public.who_seen}),
	'in A the subscription and the projection ran');
is($a->safe_psql('app', q{
	SELECT string_agg(what || ':' || cu, ',' ORDER BY what) FROM public.who_seen}),
	'projection:r2,subscription:r2', 'as r2');

my $dump = "${PostgreSQL::Test::Utils::tmp_check}/app_031.dump";
$a->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $a->connstr('app') ], 'pg_dump of A');
$a->stop;

$b->safe_psql('postgres', 'CREATE DATABASE app');
$b->command_ok([ 'pg_restore', '-d', $b->connstr('app'), $dump ], 'pg_restore into B');
is($b->safe_psql('app', q{
	SELECT string_agg(name || ':' || owner || ':' || (owner::oid = 'r2'::regrole::oid), ',')
	FROM strata.subscriptions}),
	'r2_sub:r2:true', 'the restored subscription is owned by r2 of B');
is($b->safe_psql('app', q{
	SELECT string_agg(kind || ':' || name || ':' || owner, ',') FROM strata.definitions}),
	'projection:r2_proj:r2', 'the restored projection too');

$b->safe_psql('app', q{
	SET ROLE r1;
	SELECT strata.append('acct-1', '{"type": "AfterRestore"}');
});
ok($b->poll_query_until('app', q{
	SELECT count(*) = 2 FROM public.who_seen WHERE type = 'AfterRestore'}),
	'in B the subscription and the projection run');
is($b->safe_psql('app', q{
	SELECT string_agg(what || ':' || cu, ',' ORDER BY what) FROM public.who_seen
	WHERE type = 'AfterRestore'}),
	'projection:r2,subscription:r2', 'as r2, not as r1 (which has the OID r2 had in A)');

# DROP ROLE, REASSIGN OWNED
my ($ret, $out, $err) = $b->psql('app', 'DROP ROLE r2');
like($err, qr/ERROR:  role "r2" cannot be dropped because some pg_strata objects depend on it\n.*owner of subscription "r2_sub"\n.*owner of projection "r2_proj"/s,
	'DROP ROLE r2 is refused, naming what it owns');
is($b->safe_psql('app', q{SELECT count(*) FROM pg_roles WHERE rolname = 'r2'}), '1', 'r2 is still there');
$b->safe_psql('app', 'REASSIGN OWNED BY r2 TO r1');
is($b->safe_psql('app', q{
	SELECT string_agg(name || ':' || owner, ',') FROM strata.subscriptions}),
	'r2_sub:r1', 'REASSIGN OWNED gives the subscription to r1');
is($b->safe_psql('app', q{
	SELECT string_agg(kind || ':' || name || ':' || owner, ',') FROM strata.definitions}),
	'projection:r2_proj:r1', 'and the projection');
$b->safe_psql('app', q{SELECT strata.append('acct-1', '{"type": "AfterReassign"}')});
ok($b->poll_query_until('app', q{
	SELECT count(*) = 2 FROM public.who_seen WHERE type = 'AfterReassign'}),
	'they run');
is($b->safe_psql('app', q{
	SELECT string_agg(what || ':' || cu, ',' ORDER BY what) FROM public.who_seen
	WHERE type = 'AfterReassign'}),
	'projection:r1,subscription:r1', 'as r1');
$b->safe_psql('app', 'DROP OWNED BY r2');
$b->safe_psql('postgres', 'DROP OWNED BY r2');
($ret, $out, $err) = $b->psql('app', 'DROP ROLE r2');
is($ret, 0, "then DROP ROLE r2 works") or diag($err);

$b->stop;
done_testing();
