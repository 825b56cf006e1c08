/* sql/strata--0.3.0--0.4.0.sql: upgrade of pg_strata from 0.3.0 to 0.4.0 */

\echo Use "ALTER EXTENSION strata UPDATE TO '0.4.0'" to load this file. \quit

-- 0.4.0 draws the trust boundary (docs/architecture.md, "Security"):
--  * nobody but the extension's owner writes the extension's tables; the
--    SQL functions check the caller's right and write for it;
--  * user code runs as the role that owns its definition or subscription,
--    in a security-restricted operation (src/usercall.c);
--  * owners are roles (regrole), so that pg_dump writes their names;
--  * the status views and tables show a role only what it owns.

-- A position plus one never overflows (progress ranges are half-open).
ALTER SEQUENCE strata._position_seq MAXVALUE 9223372036854775806;

-- Owners as role references.  Definitions made before 0.4.0 recorded no
-- owner: an async projection gets its subscription's (the role that
-- defined it), the others the owner of their function, the role whose
-- code it is, unless that is a superuser: code that ran as its callers
-- must not start running as a superuser unasked.  Those get no owner
-- (NULL, with a WARNING each) and fail until defined again.
-- An owner whose role no longer exists becomes NULL (a bare OID could
-- name another role after a restore elsewhere): such a subscription
-- stops until it gets a new owner, such a definition fails until it is
-- defined again.
ALTER TABLE strata.subscriptions ALTER COLUMN owner DROP NOT NULL;
UPDATE strata.subscriptions s
	SET owner = NULL, state = 'stopped', generation = generation + 1,
		last_error = 'the role that owned the subscription no longer exists',
		last_error_at = pg_catalog.now()
	WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.oid = s.owner);
ALTER TABLE strata.subscriptions
	ALTER COLUMN owner TYPE regrole USING owner::regrole;
COMMENT ON COLUMN strata.subscriptions.owner IS
	'Role that owns the subscription; the handler runs as this role (NULL: the role was dropped, the subscription is stopped). Change it with strata.alter_subscription_owner.';

ALTER TABLE strata.aggregates ADD COLUMN owner regrole;
UPDATE strata.aggregates a SET owner =
	(SELECT p.proowner FROM pg_catalog.pg_proc p
	 JOIN pg_catalog.pg_roles r ON r.oid = p.proowner
	 WHERE p.oid = a.reducer AND NOT r.rolsuper);
COMMENT ON COLUMN strata.aggregates.owner IS
	'Role that owns the aggregate; the reducer runs as this role (NULL: the role was dropped; define the aggregate again).';

ALTER TABLE strata.commands ADD COLUMN owner regrole;
UPDATE strata.commands c SET owner =
	(SELECT p.proowner FROM pg_catalog.pg_proc p
	 JOIN pg_catalog.pg_roles r ON r.oid = p.proowner
	 WHERE p.oid = c.handler AND NOT r.rolsuper);
COMMENT ON COLUMN strata.commands.owner IS
	'Role that owns the command; the handler runs as this role (NULL: the role was dropped; define the command again).';

ALTER TABLE strata.projections ADD COLUMN owner regrole;
UPDATE strata.projections j SET owner =
	(SELECT p.proowner FROM pg_catalog.pg_proc p
	 JOIN pg_catalog.pg_roles r ON r.oid = p.proowner
	 WHERE p.oid = j.handler AND NOT r.rolsuper);
COMMENT ON COLUMN strata.projections.owner IS
	'Role that owns the projection; the handler (inline or async) runs as this role (NULL: the role was dropped; define the projection again).';
UPDATE strata.projections j SET owner = s.owner
	FROM strata.subscriptions s WHERE s.projection = j.name;
DO $$
DECLARE
	d record;
BEGIN
	FOR d IN
		SELECT 'aggregate of category' AS kind, category AS name, reducer AS f
		FROM strata.aggregates WHERE owner IS NULL
		UNION ALL
		SELECT 'command type', command_type, handler
		FROM strata.commands WHERE owner IS NULL
		UNION ALL
		SELECT 'projection', name, handler
		FROM strata.projections WHERE owner IS NULL
	LOOP
		RAISE WARNING '% "%" has no owner', d.kind, d.name
			USING DETAIL = pg_catalog.format(
				'Its function %s is owned by a superuser (or was dropped); it ran as its callers before 0.4.0, and runs as its owner from now on.',
				d.f),
			HINT = 'A superuser drops it (strata.drop_*), then the role it should run as defines it again.';
	END LOOP;
END
$$;

-- Nobody but the extension's owner writes its tables, not even roles a
-- DBA granted INSERT or UPDATE as 0.3.0's documentation said, and only
-- events, streams and (row by row) subscriptions and parked events are
-- read directly: other grants are revoked here (with a WARNING for each).
-- (0.2.0 granted this one itself: no warning for it)
REVOKE SELECT ON strata.projections FROM PUBLIC;
DO $$
DECLARE
	g record;
BEGIN
	FOR g IN
		SELECT c.oid::regclass AS rel, a.grantee::regrole AS grantee,
			   a.privilege_type
		FROM pg_catalog.pg_class c
		CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) a
		WHERE c.relnamespace = 'strata'::regnamespace
		  AND c.relkind IN ('r', 'S')
		  AND a.grantee <> c.relowner
		  AND (a.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE',
									'REFERENCES', 'TRIGGER', 'USAGE')
			   -- definitions are read through strata.definitions
			   OR c.relname NOT IN ('events', 'streams', 'subscriptions',
									'parked_events'))
	LOOP
		-- a regrole's text is quoted already where a name needs it
		IF g.grantee = 0 THEN
			EXECUTE pg_catalog.format('REVOKE %s ON %s FROM PUBLIC',
									  g.privilege_type, g.rel);
		ELSE
			EXECUTE pg_catalog.format('REVOKE %s ON %s FROM %s',
									  g.privilege_type, g.rel, g.grantee);
		END IF;
		RAISE WARNING 'revoked % on % from %', g.privilege_type, g.rel,
			CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE g.grantee::text END;
	END LOOP;
END
$$;

-- Definitions are read through strata.definitions; the tables are private.
REVOKE ALL ON strata.aggregates, strata.commands, strata.projections,
	strata.snapshots, strata._definition_seq, strata._position_seq,
	strata._stream FROM PUBLIC;

-- Subscriptions and parked events: every role may read the rows of the
-- subscriptions it owns (or whose owner it is a member of); members of
-- pg_read_all_stats read them all.  The extension's owner, which the
-- worker and the functions write as, is not subject to the policies.
ALTER TABLE strata.subscriptions ENABLE ROW LEVEL SECURITY;
CREATE POLICY subscriptions_visible ON strata.subscriptions FOR SELECT
	USING (pg_catalog.pg_has_role(owner::pg_catalog.oid, 'USAGE')
		   OR pg_catalog.pg_has_role('pg_read_all_stats'::pg_catalog.name,
									 'USAGE'));
ALTER TABLE strata.parked_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY parked_events_visible ON strata.parked_events FOR SELECT
	USING (EXISTS (SELECT FROM strata.subscriptions s
				   WHERE s.name OPERATOR(pg_catalog.=) subscription));
REVOKE ALL ON strata.subscriptions, strata.parked_events FROM PUBLIC;
GRANT SELECT ON strata.subscriptions, strata.parked_events TO PUBLIC;

-- The views show the same rows, and who owns them.
CREATE OR REPLACE VIEW strata.definitions WITH (security_barrier) AS
	SELECT d.kind, d.name, d.function, d.categories, d.types, d.options,
		   d.defined_at, d.owner
	FROM (
		SELECT 'aggregate'::text AS kind, category AS name,
			   reducer AS function, ARRAY[category] AS categories,
			   NULL::text[] AS types,
			   pg_catalog.jsonb_build_object(
				   'initial_state', initial_state,
				   'snapshot_every', snapshot_every,
				   'definition_id', definition_id) AS options,
			   defined_at, owner
		FROM strata.aggregates
		UNION ALL
		SELECT 'command', command_type, handler, ARRAY[category], NULL,
			   pg_catalog.jsonb_build_object('record_rejections',
											 record_rejections),
			   defined_at, owner
		FROM strata.commands
		UNION ALL
		SELECT 'projection', name, handler, categories, types,
			   pg_catalog.jsonb_build_object('mode', mode), defined_at, owner
		FROM strata.projections) d
	WHERE pg_catalog.pg_has_role(d.owner::pg_catalog.oid, 'USAGE')
	   OR pg_catalog.pg_has_role('pg_read_all_stats'::pg_catalog.name, 'USAGE');
COMMENT ON VIEW strata.definitions IS
	'Every aggregate, command and projection definition whose owner the current role has the privileges of (all of them for pg_read_all_stats): kind, name, function, categories, types, options, owner.';
COMMENT ON COLUMN strata.definitions.owner IS 'Role that owns the definition; its function runs as this role.';
GRANT SELECT ON strata.definitions TO PUBLIC;

-- Worker state for the status view: a worker that keeps failing
CREATE FUNCTION strata._worker_error(OUT failures int, OUT last_error text,
									 OUT last_error_at timestamptz)
	RETURNS record LANGUAGE c VOLATILE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'strata_worker_error';
COMMENT ON FUNCTION strata._worker_error() IS
	'Private: consecutive failed rounds of this database''s strata worker, and the last error.';

CREATE OR REPLACE VIEW strata.subscription_status WITH (security_barrier) AS
	SELECT s.name,
		   CASE WHEN s.state <> 'active' THEN s.state
				WHEN we.failures > 0 THEN 'failing'
				WHEN NOT x.following THEN 'catching up'
				WHEN s.attempts > 0 THEN 'retrying'
				ELSE 'live' END AS state,
		   s.checkpoint_lsn AS checkpoint,
		   s.checkpoint_index,
		   s.watermark,
		   b.events_behind,
		   coalesce(extract(epoch FROM pg_catalog.now() - b.oldest_behind), 0)::float8 AS seconds_behind,
		   w.retained_wal_bytes,
		   coalesce(w.retained_wal_bytes > pg_catalog.pg_size_bytes(
				pg_catalog.current_setting('strata.wal_warning_size')), false)
				AS wal_warning,
		   (SELECT pg_catalog.count(*) FROM strata.parked_events p
			WHERE p.subscription OPERATOR(pg_catalog.=) s.name) AS parked,
		   s.last_position,
		   s.last_processed_at,
		   CASE WHEN we.failures > 0 AND s.state = 'active'
				THEN we.last_error ELSE s.last_error END AS last_error,
		   CASE WHEN we.failures > 0 AND s.state = 'active'
				THEN we.last_error_at ELSE s.last_error_at END AS last_error_at,
		   s.projection,
		   s.owner
	FROM strata.subscriptions s
	CROSS JOIN strata._worker_error() we
	CROSS JOIN LATERAL (
		SELECT pg_catalog.count(*) AS events_behind,
			   pg_catalog.min(e.recorded_at) AS oldest_behind
		FROM strata.events e
		WHERE e.position OPERATOR(pg_catalog.>=) s.watermark
		  AND NOT s.delivered OPERATOR(pg_catalog.@>) e.position
		  AND (s.categories IS NULL
			   OR e.category OPERATOR(pg_catalog.=) ANY (s.categories))
		  AND (s.types IS NULL
			   OR e.type OPERATOR(pg_catalog.=) ANY (s.types))) b
	CROSS JOIN LATERAL (
		SELECT s.phase OPERATOR(pg_catalog.=) 'live' AND
			   s.stream_id IS NOT DISTINCT FROM
			   (SELECT id FROM strata._stream LIMIT 1) AS following) x
	CROSS JOIN LATERAL (
		SELECT CASE WHEN x.following AND NOT pg_catalog.pg_is_in_recovery()
					THEN pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(),
													s.checkpoint_lsn)::bigint
			   END AS retained_wal_bytes) w
	WHERE pg_catalog.pg_has_role(s.owner::pg_catalog.oid, 'USAGE')
	   OR pg_catalog.pg_has_role('pg_read_all_stats'::pg_catalog.name, 'USAGE');
COMMENT ON VIEW strata.subscription_status IS
	'Each subscription whose owner the current role has the privileges of (all of them for pg_read_all_stats): state, checkpoint, events and seconds behind, WAL it retains, parked events, last error.';
COMMENT ON COLUMN strata.subscription_status.state IS
	'live, catching up, retrying (a handler error is being retried), failing (the database''s strata worker failed its last rounds: see last_error), paused or stopped.';
COMMENT ON COLUMN strata.subscription_status.last_error IS
	'Message of the last handler error, or of the worker''s last failure while it is failing.';
COMMENT ON COLUMN strata.subscription_status.owner IS 'Role that owns the subscription; its handler runs as this role.';
REVOKE ALL ON strata.subscription_status FROM PUBLIC;
GRANT SELECT ON strata.subscription_status TO PUBLIC;

-- Changing who a subscription runs as
CREATE FUNCTION strata.alter_subscription_owner(name text, new_owner regrole)
	RETURNS void LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_alter_subscription_owner';
COMMENT ON FUNCTION strata.alter_subscription_owner(text, regrole) IS
	'Make another role the owner of a subscription (its handler runs as that role); for members of both roles, as ALTER ... OWNER TO.';

-- The documented grant sets (docs/api.md, "Privileges"), in one call.
CREATE FUNCTION strata.grant_privileges(role regrole, kind text)
	RETURNS void LANGUAGE plpgsql VOLATILE STRICT
	SET search_path = pg_catalog, pg_temp
	AS $fn$
DECLARE
	f text;
	funcs text[];
BEGIN
	IF kind NOT IN ('reader', 'writer', 'subscriber', 'definer', 'operator') THEN
		RAISE EXCEPTION 'invalid privilege kind "%"', kind
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use reader, writer, subscriber, definer or operator.';
	END IF;
	EXECUTE format('GRANT USAGE ON SCHEMA strata TO %s', role);
	EXECUTE format('GRANT SELECT ON strata.events, strata.streams TO %s', role);
	funcs := ARRAY['strata.load(text,bigint)'];
	IF kind = 'writer' THEN
		funcs := funcs || ARRAY['strata.append(text,jsonb,bigint)',
								'strata.execute(text,jsonb)'];
	ELSIF kind = 'subscriber' THEN
		funcs := funcs || ARRAY[
			'strata.subscribe(text,regprocedure,text[],text[],text,text)',
			'strata.unsubscribe(text)', 'strata.pause_subscription(text)',
			'strata.resume_subscription(text)', 'strata.retry_parked(text)',
			'strata.alter_subscription_owner(text,regrole)'];
	ELSIF kind = 'definer' THEN
		funcs := funcs || ARRAY[
			'strata.define_aggregate(text,regprocedure,jsonb,integer)',
			'strata.drop_aggregate(text)',
			'strata.define_command(text,text,regprocedure,boolean)',
			'strata.drop_command(text)',
			'strata.define_projection(text,regprocedure,text[],text[],text)',
			'strata.drop_projection(text)',
			'strata.rebuild_projection(text,regprocedure)'];
	ELSIF kind = 'operator' THEN
		funcs := funcs || ARRAY['strata.pause_subscription(text)',
								'strata.resume_subscription(text)',
								'strata.retry_parked(text)'];
		EXECUTE format('GRANT pg_read_all_stats, pg_signal_backend TO %s',
					   role);
	END IF;
	FOREACH f IN ARRAY funcs LOOP
		EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s', f, role);
	END LOOP;
END
$fn$;
COMMENT ON FUNCTION strata.grant_privileges(regrole, text) IS
	'Grant a role one of the documented privilege sets: reader, writer, subscriber, definer or operator (each includes reader).';

-- Each version binds the C entry points of its own API (src/version.h):
-- from 0.4.0 on, definitions have owners, which their functions run as.
CREATE OR REPLACE FUNCTION strata.append(stream text, events jsonb,
										 expected_version bigint DEFAULT NULL)
	RETURNS bigint
	LANGUAGE c VOLATILE PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_append_0_4';
CREATE OR REPLACE FUNCTION strata.load(stream text,
									   at_version bigint DEFAULT NULL,
									   OUT state jsonb, OUT version bigint)
	RETURNS record LANGUAGE c VOLATILE PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_load_0_4';
CREATE OR REPLACE FUNCTION strata.execute(stream text, command jsonb)
	RETURNS bigint
	LANGUAGE c VOLATILE PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_execute_0_4';
CREATE OR REPLACE FUNCTION strata.define_aggregate(category text,
												   reducer regprocedure,
												   initial_state jsonb DEFAULT '{}',
												   snapshot_every int DEFAULT 100)
	RETURNS void LANGUAGE c VOLATILE PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_define_aggregate_0_4';
CREATE OR REPLACE FUNCTION strata.define_command(command_type text,
												 category text,
												 handler regprocedure,
												 record_rejections boolean DEFAULT false)
	RETURNS void LANGUAGE c VOLATILE PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_define_command_0_4';
CREATE OR REPLACE FUNCTION strata.define_projection(name text,
													handler regprocedure,
													categories text[] DEFAULT NULL,
													types text[] DEFAULT NULL,
													mode text DEFAULT 'inline')
	RETURNS void LANGUAGE c VOLATILE PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_define_projection_0_4';
CREATE OR REPLACE FUNCTION strata.drop_aggregate(category text) RETURNS void
	LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_drop_aggregate_0_4';
CREATE OR REPLACE FUNCTION strata.drop_command(command_type text) RETURNS void
	LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_drop_command_0_4';
CREATE OR REPLACE FUNCTION strata.drop_projection(name text) RETURNS void
	LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_drop_projection_0_4';
CREATE OR REPLACE FUNCTION strata.rebuild_projection(name text,
													 reset regprocedure DEFAULT NULL)
	RETURNS bigint LANGUAGE c VOLATILE PARALLEL UNSAFE
	AS 'MODULE_PATHNAME', 'strata_rebuild_projection_0_4';

-- Every function that writes is for the roles a DBA grants it to; reads
-- stay PUBLIC (they check SELECT on strata.events themselves).
REVOKE EXECUTE ON FUNCTION
	strata.append(text, jsonb, bigint),
	strata.execute(text, jsonb),
	strata.load(text, bigint),
	strata.define_aggregate(text, regprocedure, jsonb, int),
	strata.drop_aggregate(text),
	strata.define_command(text, text, regprocedure, boolean),
	strata.drop_command(text),
	strata.define_projection(text, regprocedure, text[], text[], text),
	strata.drop_projection(text),
	strata.rebuild_projection(text, regprocedure),
	strata.subscribe(text, regprocedure, text[], text[], text, text),
	strata.unsubscribe(text),
	strata.pause_subscription(text),
	strata.resume_subscription(text),
	strata.retry_parked(text),
	strata.alter_subscription_owner(text, regrole),
	strata.grant_privileges(regrole, text),
	strata._worker_notify(),
	strata._check_preload()
FROM PUBLIC;

-- A GRANT or REVOKE run by an extension script records the object's whole
-- ACL as its initial privileges (pg_init_privs), which pg_dump leaves out
-- of dumps: the grants a DBA had made before this update (SELECT on
-- strata.events, EXECUTE on strata.append...) would vanish from them.
-- Keep as initial only what a fresh install has: the entries of the
-- owner and of PUBLIC.
UPDATE pg_catalog.pg_init_privs ip
SET initprivs = ARRAY(
		SELECT a FROM pg_catalog.unnest(ip.initprivs) a
		WHERE (SELECT x.grantee FROM pg_catalog.aclexplode(ARRAY[a]) x LIMIT 1)
			  IN (0, (SELECT x.grantor FROM pg_catalog.aclexplode(ARRAY[a]) x
					  LIMIT 1)))
WHERE ip.privtype = 'e'
  AND (ip.classoid, ip.objoid) IN (
		SELECT d.classid, d.objid FROM pg_catalog.pg_depend d
		WHERE d.refclassid = 'pg_catalog.pg_extension'::regclass
		  AND d.deptype = 'e'
		  AND d.refobjid = (SELECT e.oid FROM pg_catalog.pg_extension e
							WHERE e.extname = 'strata'));
-- PostgreSQL 17 and later also record a role named in initial privileges
-- as a dependency of the object (pg_shdepend, deptype 'i'); without the
-- entries the UPDATE above took out, DROP OWNED BY and DROP ROLE would
-- still find the role in them.  (None exist before 17.)
DELETE FROM pg_catalog.pg_shdepend sd
WHERE sd.deptype = 'i'
  AND sd.dbid = (SELECT db.oid FROM pg_catalog.pg_database db
				 WHERE db.datname = pg_catalog.current_database())
  AND (sd.classid, sd.objid) IN (
		SELECT d.classid, d.objid FROM pg_catalog.pg_depend d
		WHERE d.refclassid = 'pg_catalog.pg_extension'::regclass
		  AND d.deptype = 'e'
		  AND d.refobjid = (SELECT e.oid FROM pg_catalog.pg_extension e
							WHERE e.extname = 'strata'))
  AND NOT EXISTS (
		SELECT FROM pg_catalog.pg_init_privs ip,
			 pg_catalog.aclexplode(ip.initprivs) x
		WHERE ip.classoid = sd.classid AND ip.objoid = sd.objid
		  AND ip.objsubid = sd.objsubid
		  AND sd.refobjid IN (x.grantee, x.grantor));

-- The worker reads every subscription again (their owners changed type).
UPDATE strata.subscriptions SET generation = generation + 1;
SELECT strata._worker_notify();
