/*-------------------------------------------------------------------------
 *
 * events.h
 *	  The table strata.events, the event log, described once: its columns
 *	  in table order, as sql/strata--0.1.0.sql creates them (no later
 *	  version changes them).
 *
 * Code that reads or forms rows of strata.events by attribute number
 * (heap tuples, slots, the Datum arrays of heap_form_tuple) uses these
 * numbers, and checks with events_check_desc() that the table it reads
 * has exactly these columns.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STRATA_EVENTS_H
#define STRATA_EVENTS_H

#include "postgres.h"

#include "access/tupdesc.h"

#include "strata.h"

/* The table, in STRATA_SCHEMA */
#define EVENTS_RELNAME "events"

/* The attributes of strata.events */
#define Natts_events			9
#define Anum_events_position	1
#define Anum_events_stream		2
#define Anum_events_version		3
#define Anum_events_id			4
#define Anum_events_type		5
#define Anum_events_data		6
#define Anum_events_metadata	7
#define Anum_events_recorded_at 8
#define Anum_events_category	9

/* The columns in table order, for a SELECT list or an INSERT */
#define EVENTS_COLUMNS                                                        \
	"position, stream, version, id, type, data, metadata, recorded_at, "      \
	"category"

/*
 * Refuse the tuple descriptor of strata.events (of the table, or of its
 * row type) unless it has the Natts_events attributes above.
 */
static inline void
events_check_desc(TupleDesc desc)
{
	if (desc->natts != Natts_events)
		ereport(
			ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("table %s.%s has %d columns, expected %d", STRATA_SCHEMA,
					EVENTS_RELNAME, desc->natts, Natts_events),
			 errdetail("pg_strata reads the columns of its events table "
					   "by number."),
			 errhint("Do not alter strata.events; reinstall the "
					 "extension.")));
}

#endif /* STRATA_EVENTS_H */
