/*-------------------------------------------------------------------------
 *
 * epoch.c
 *	  Epochs (0.6.0): positions never go back across a failover, and a
 *	  cursor that points into positions lost at one is refused.
 *
 * An epoch is the stretch of positions issued on one system (system
 * identifier) and one timeline, a row of strata.epochs.  After a
 * promotion, a restore from a physical backup or anything else that puts
 * the database on another system or timeline, the first append (or the
 * strata worker, when it starts) opens a new epoch before any position is
 * issued: its first position is EPOCH_GAP times the timeline step above
 * the highest position that survived (or above the previous epoch's
 * first position, when nothing of that epoch survived), and the position
 * sequence is raised to it.  A former primary whose last events never
 * reached this node issued them above what survived and, unless it issued
 * more than EPOCH_GAP positions this node never saw, below the new first
 * position: no position is ever handed out twice, without knowing the
 * former primary's last one.  The positions in between are the epoch's
 * lost range; a reader whose cursor is in one has seen events that no
 * longer exist, and read_all, read_category and wait_for (0.6.0) raise
 * ST006 for it.
 *
 * Every backend keeps the epochs in a cache, loaded with a fresh snapshot
 * and dropped by the relcache invalidation that the opening of an epoch
 * sends at commit (on standbys too, where it is replayed).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "strata.h"
#include "epoch.h"

typedef struct Epoch
{
	uint64		sysid;
	TimeLineID	timeline;
	int64		first;
	int64		survived; /* valid when has_survived */
	bool		has_survived;
	TimestampTz started;
} Epoch;

static Epoch *epochs = NULL;
static int	  nepochs = 0;
static bool	  epochs_valid = false;
static Oid	  epochs_relid = InvalidOid;

/* The timeline this backend found a committed epoch of, for appends */
static TimeLineID ensured_timeline = 0;
/*
 * An epoch opened by the current transaction, in which subtransaction:
 * forgotten if that aborts
 */
static bool				opened_in_xact = false;
static SubTransactionId opened_subid = InvalidSubTransactionId;

static void
epoch_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == epochs_relid)
	{
		epochs_valid = false;
		epochs_relid = InvalidOid;
	}
}

static void
epoch_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	if (!opened_in_xact)
		return;
	if (event == SUBXACT_EVENT_ABORT_SUB && mySubid == opened_subid)
	{
		ensured_timeline = 0;
		epochs_valid = false;
		opened_in_xact = false;
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB && mySubid == opened_subid)
		opened_subid = parentSubid;
}

static void
epoch_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
	{
		if (opened_in_xact)
			ensured_timeline = 0;
		epochs_valid = false;
	}
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_PARALLEL_ABORT || event == XACT_EVENT_PREPARE)
		opened_in_xact = false;
}

/*
 * Read strata.epochs into the cache with a fresh snapshot (so that an
 * epoch another backend committed a moment ago is seen, whatever the
 * isolation level), unless the cache is valid.
 */
static void
epoch_load(void)
{
	static bool	  callbacks = false;
	Relation	  rel;
	Snapshot	  snapshot;
	TableScanDesc scan;
	HeapTuple	  tuple;
	int			  n = 0;
	int			  size = 4;
	Epoch		 *list;

	if (epochs_valid)
		return;
	if (!callbacks)
	{
		CacheRegisterRelcacheCallback(epoch_relcache_callback, (Datum) 0);
		RegisterXactCallback(epoch_xact_callback, NULL);
		RegisterSubXactCallback(epoch_subxact_callback, NULL);
		callbacks = true;
	}
	epochs_relid = strata_relid("epochs");
	/* built where an error frees it; kept in CacheMemoryContext at the end */
	list = palloc(sizeof(Epoch) * size);
	rel = table_open(epochs_relid, AccessShareLock);
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	scan = table_beginscan(rel, snapshot, 0, NULL);
	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Datum values[Natts_epochs];
		bool  nulls[Natts_epochs];
		char *sysid;

		if (RelationGetDescr(rel)->natts != Natts_epochs)
			elog(ERROR, "strata.epochs has %d columns, not %d",
				 RelationGetDescr(rel)->natts, Natts_epochs);
		heap_deform_tuple(tuple, RelationGetDescr(rel), values, nulls);
		if (n == size)
		{
			size *= 2;
			list = repalloc(list, sizeof(Epoch) * size);
		}
		sysid = TextDatumGetCString(values[Anum_epochs_system_identifier - 1]);
		list[n].sysid = strtou64(sysid, NULL, 10);
		list[n].timeline = DatumGetInt32(values[Anum_epochs_timeline - 1]);
		list[n].first = DatumGetInt64(values[Anum_epochs_first_position - 1]);
		list[n].has_survived = !nulls[Anum_epochs_survived_position - 1];
		list[n].survived =
			list[n].has_survived
				? DatumGetInt64(values[Anum_epochs_survived_position - 1])
				: 0;
		list[n].started =
			DatumGetTimestampTz(values[Anum_epochs_started_at - 1]);
		pfree(sysid);
		n++;
	}
	table_endscan(scan);
	UnregisterSnapshot(snapshot);
	table_close(rel, AccessShareLock);

	if (epochs != NULL)
		pfree(epochs);
	epochs = MemoryContextAlloc(CacheMemoryContext, sizeof(Epoch) * Max(n, 1));
	memcpy(epochs, list, sizeof(Epoch) * n);
	pfree(list);
	nepochs = n;
	epochs_valid = true;
}

/* The latest epoch (the highest first position), or NULL */
static Epoch *
epoch_latest(void)
{
	Epoch *latest = NULL;

	for (int i = 0; i < nepochs; i++)
		if (latest == NULL || epochs[i].first > latest->first)
			latest = &epochs[i];
	return latest;
}

/* One int8 result of an SPI query, or 'dflt' for a NULL */
static int64
epoch_spi_int8(const char *query, int64 dflt)
{
	bool  isnull;
	Datum d;

	if (SPI_execute(query, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not run \"%s\"", query);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
					  &isnull);
	return isnull ? dflt : DatumGetInt64(d);
}

/*
 * Open the epoch of this system and timeline (the lock on strata.epochs
 * is held): raise the position sequence above anything an earlier epoch
 * may have issued, and record the epoch.  Run as the extension's owner,
 * connected to SPI.
 */
static void
epoch_open(uint64 sysid, TimeLineID timeline, Epoch *latest)
{
	int64 next;
	int64 first;
	int64 survived = 0;
	bool  has_survived = false;
	char  sysid_s[32];
	Datum args[Natts_epochs];
	char  nulls[Natts_epochs];

	next = epoch_spi_int8("SELECT CASE WHEN is_called THEN last_value "
						  "OPERATOR(pg_catalog.+) 1 ELSE last_value END "
						  "FROM strata._position_seq",
						  1);
	if (latest == NULL)
	{
		/* the first epoch: every position so far */
		first = 1;
	}
	else
	{
		int64 base;
		int64 step = 1;

		survived = epoch_spi_int8(
			"SELECT pg_catalog.max(position) FROM strata.events", 0);
		has_survived = true;
		/* nothing of the latest epoch survived: above its start */
		base = Max(survived, latest->first - 1);
		if (latest->sysid == sysid && timeline > latest->timeline)
			step = timeline - latest->timeline;
		if (base > PG_INT64_MAX - EPOCH_GAP * step)
			ereport(ERROR,
					(errcode(ERRCODE_SEQUENCE_GENERATOR_LIMIT_EXCEEDED),
					 errmsg("no positions are left for a new epoch"),
					 errdetail("The new epoch would start " INT64_FORMAT
							   " positions after position " INT64_FORMAT ".",
							   EPOCH_GAP * step, base)));
		first = Max(base + EPOCH_GAP * step, next);
		if (first > next)
		{
			Datum setval_args[1] = {Int64GetDatum(first)};

			if (SPI_execute_with_args(
					"SELECT pg_catalog.setval('strata._position_seq', $1, "
					"false)",
					1, (Oid[]){INT8OID}, setval_args, NULL, false,
					1) != SPI_OK_SELECT)
				elog(ERROR, "could not raise strata._position_seq");
		}
	}

	snprintf(sysid_s, sizeof(sysid_s), UINT64_FORMAT, sysid);
	memset(nulls, ' ', sizeof(nulls));
	args[Anum_epochs_system_identifier - 1] = CStringGetTextDatum(sysid_s);
	args[Anum_epochs_timeline - 1] = Int32GetDatum((int32) timeline);
	args[Anum_epochs_first_position - 1] = Int64GetDatum(first);
	args[Anum_epochs_survived_position - 1] = Int64GetDatum(survived);
	if (!has_survived)
		nulls[Anum_epochs_survived_position - 1] = 'n';
	args[Anum_epochs_started_at - 1] =
		TimestampTzGetDatum(GetCurrentTimestamp());
	if (SPI_execute_with_args(
			"INSERT INTO strata.epochs VALUES ($1, $2, $3, $4, $5)",
			Natts_epochs,
			(Oid[]){TEXTOID, INT4OID, INT8OID, INT8OID, TIMESTAMPTZOID}, args,
			nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record the epoch");

	/* the others read the epochs again once this commits */
	CacheInvalidateRelcacheByRelid(epochs_relid);
	epochs_valid = false;
	opened_in_xact = true;
	opened_subid = GetCurrentSubTransactionId();
	if (latest != NULL)
		ereport(LOG, (errmsg("strata positions continue at " INT64_FORMAT
							 " on timeline %u",
							 first, timeline),
					  errdetail("Position " INT64_FORMAT " is the last that "
								"survived; positions up to " INT64_FORMAT
								" may have been issued before and were lost.",
								survived, first - 1)));
}

/*
 * Before the first position of a transaction: make sure the epoch of
 * this system and timeline is open, opening it if needed.  Cheap once
 * this backend has seen it committed.  Called by append (as the
 * extension's owner, connected to SPI) and by the worker at its start.
 */
void
epoch_ensure(void)
{
	TimeLineID timeline = GetWALInsertionTimeLine();
	uint64	   sysid = GetSystemIdentifier();
	Epoch	  *latest;

	if (timeline == ensured_timeline)
		return;
	epoch_load();
	latest = epoch_latest();
	if (latest == NULL || latest->sysid != sysid ||
		latest->timeline != timeline)
	{
		/* one backend opens it; the others wait and see it */
		LockRelationOid(epochs_relid, ExclusiveLock);
		epochs_valid = false;
		epoch_load();
		latest = epoch_latest();
		if (latest == NULL || latest->sysid != sysid ||
			latest->timeline != timeline)
		{
			epoch_open(sysid, timeline, latest);
			return;
		}
	}
	/* committed by another backend, or by this one in this transaction */
	ensured_timeline = timeline;
}

/*
 * Refuse a reader's cursor or awaited position that lies in the lost
 * range of an epoch: the reader has seen events that no longer exist
 * (ST006).  'func' names the function in the message.
 */
void
epoch_check_cursor(int64 position, const char *func)
{
	epoch_load();
	for (int i = 0; i < nepochs; i++)
	{
		Epoch *e = &epochs[i];

		if (e->has_survived && position > e->survived && position < e->first)
			ereport(ERROR,
					(errcode(ERRCODE_STRATA_POSITION_LOST),
					 errmsg("position " INT64_FORMAT " was lost at a failover",
							position),
					 errdetail("%s was given position " INT64_FORMAT
							   ". Positions " INT64_FORMAT " to " INT64_FORMAT
							   " may have been issued before the database "
							   "went on on timeline %u at %s, and no event "
							   "at them survived.",
							   func, position, e->survived + 1, e->first - 1,
							   e->timeline, timestamptz_to_str(e->started)),
					 errhint("The reader's state includes events that no "
							 "longer exist: rebuild it from the events up "
							 "to position " INT64_FORMAT
							 " and go on from there, or keep it, accepting "
							 "the loss, and go on from there.",
							 e->survived)));
	}
}
