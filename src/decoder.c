/*-------------------------------------------------------------------------
 *
 * decoder.c
 *	  The logical decoding output plugin "strata": the committed inserts
 *	  into strata.events, in commit order, as one JSON object per event.
 *
 * PostgreSQL loads strata.so as an output plugin when a slot is created
 * with plugin 'strata' (pg_create_logical_replication_slot, pg_recvlogical,
 * CREATE_REPLICATION_SLOT ... LOGICAL strata) and calls
 * _PG_output_plugin_init to get the callbacks.  The plugin decodes the
 * rows strata.append inserted, straight from the WAL records of the
 * events table: no second copy of an event is ever written.  Every other
 * table, every UPDATE, DELETE and TRUNCATE, and (by construction of
 * logical decoding) every other database is ignored.
 *
 * The plugin defines no streaming and no two-phase callbacks, so
 * PostgreSQL hands it a transaction only once it has committed, in commit
 * order, and spills large transactions to disk beyond
 * logical_decoding_work_mem.  Each event is written as soon as it is
 * decoded (one OutputPluginWrite per event) and the plugin's memory
 * context is reset after each change, so memory stays flat however large
 * a transaction is.
 *
 * Options (parsed once, at startup; unknown options and bad values are
 * errors): categories, types, include-data, include-metadata,
 * include-transaction, format.  See docs/api.md.
 *
 * Every byte the plugin writes is UTF-8, whatever the database encoding:
 * nothing in PostgreSQL converts what an output plugin sends a walsender,
 * and JSON exchanged between systems is UTF-8 (RFC 8259).  A message is
 * built in the database encoding (every server encoding keeps ASCII bytes
 * for ASCII characters, so the JSON structure is the same in all of them),
 * then, unless the database is UTF8, its non-ASCII tail is converted with
 * the database's default conversion to UTF8, or, in SQL_ASCII, where no
 * encoding is known, checked as UTF-8, each byte that does not begin a
 * valid sequence written as U+FFFD.  See decoder_to_utf8.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_conversion.h"
#include "catalog/pg_language.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "replication/logical.h"
#include "replication/output_plugin.h"
#include "replication/reorderbuffer.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/uuid.h"

#include "strata.h"
#include "compat.h"
#include "decoder.h"
#include "events.h"


/*
 * On PostgreSQL 15 an output plugin has to keep a walsender alive itself
 * through long stretches of changes it does not write (from 16 on, the
 * reorder buffer does it): every this many changes, it reports progress.
 */
#define DECODER_PROGRESS_EVERY 100

/*
 * The columns of strata.events (events.h), as the plugin checks them
 * before it reads them by number
 */
static const struct
{
	const char *name;
	Oid			type;
} decoder_columns[Natts_events] = {
	[Anum_events_position - 1] = {"position", INT8OID},
	[Anum_events_stream - 1] = {"stream", TEXTOID},
	[Anum_events_version - 1] = {"version", INT8OID},
	[Anum_events_id - 1] = {"id", UUIDOID},
	[Anum_events_type - 1] = {"type", TEXTOID},
	[Anum_events_data - 1] = {"data", JSONBOID},
	[Anum_events_metadata - 1] = {"metadata", JSONBOID},
	[Anum_events_recorded_at - 1] = {"recorded_at", TIMESTAMPTZOID},
	[Anum_events_category - 1] = {"category", TEXTOID},
};

typedef enum DecoderFormat
{
	DECODER_FORMAT_JSON,
	DECODER_FORMAT_TEXT
} DecoderFormat;

/* What an event's text needs to be UTF-8, from the database encoding */
typedef enum DecoderEncoding
{
	DECODER_ENCODING_UTF8,	  /* nothing: the database is UTF8 */
	DECODER_ENCODING_CONVERT, /* the default conversion to UTF8 */
	DECODER_ENCODING_CHECK	  /* SQL_ASCII: invalid UTF-8 made U+FFFD */
} DecoderEncoding;

/*
 * How much of an event's text is converted in one call of the conversion
 * function, so that a large event never needs MAX_CONVERSION_GROWTH times
 * its size at once
 */
#define DECODER_CONVERT_CHUNK 65536

/* The replacement character U+FFFD in UTF-8 */
#define DECODER_REPLACEMENT		"\xEF\xBF\xBD"
#define DECODER_REPLACEMENT_LEN 3

/* A comma-separated filter option: the names an event must match one of */
typedef struct DecoderFilter
{
	int	   count; /* 0: no filter */
	char **names;
	int	  *lengths;
} DecoderFilter;

/* The plugin's state for one decoding session */
typedef struct DecoderData
{
	MemoryContext context; /* per change, reset after each */

	/* options */
	DecoderFilter categories;
	DecoderFilter types;
	bool		  include_data;
	bool		  include_metadata;
	bool		  include_transaction;
	DecoderFormat format;

	/* the database encoding, and how events are made UTF-8 */
	int				db_encoding;
	DecoderEncoding encoding;
	bool			have_conversion; /* conversion looked up (CONVERT) */
	FmgrInfo		conversion;		 /* its function, in ctx->context */
	StringInfoData	unconverted;	 /* an event's tail, in ctx->context */

	/* the transaction being decoded */
	bool   sent_begin; /* its begin object was written */
	uint64 txn_events; /* events written for it */
	bool   have_commit_time;
	char   commit_time[MAXDATELEN + 1];

	/* the last recorded_at formatted (one value per strata.append) */
	bool		have_recorded_at;
	TimestampTz recorded_at;
	char		recorded_at_text[MAXDATELEN + 1];

	/* heap_deform_tuple's arrays: the columns of strata.events */
	Datum values[Natts_events];
	bool  nulls[Natts_events];

	int changes_since_progress; /* COMPAT_PLUGIN_SENDS_PROGRESS only */
} DecoderData;

/*
 * Which relation is strata.events in this database, and whether its
 * columns were checked.  Looked up by schema and table name on first use,
 * under the decoding's historic catalog snapshot, and forgotten whenever
 * pg_class, pg_namespace or the relation itself is invalidated (a DROP
 * EXTENSION, a rename, an ALTER TABLE), so the OID is never hard-coded or
 * stale.
 */
static bool decoder_cache_valid = false;
static Oid	decoder_events_relid = InvalidOid;
static bool decoder_columns_valid = false;
static bool decoder_callbacks_registered = false;

static void decoder_startup(LogicalDecodingContext *ctx,
							OutputPluginOptions *opt, bool is_init);
static void decoder_shutdown(LogicalDecodingContext *ctx);
static void decoder_begin(LogicalDecodingContext *ctx, ReorderBufferTXN *txn);
static void decoder_commit(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
						   XLogRecPtr commit_lsn);
static void decoder_change(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
						   Relation relation, ReorderBufferChange *change);
static void decoder_find_conversion(LogicalDecodingContext *ctx,
									DecoderData *data);

/*
 * The writer of a captured decoding: the plugin never writes text then,
 * and these only satisfy the API (and mark the capture, see decoder.h).
 */
void
decoder_capture_prepare_write(LogicalDecodingContext *ctx, XLogRecPtr lsn,
							  TransactionId xid, bool last_write)
{
	resetStringInfo(ctx->out);
}

void
decoder_capture_write(LogicalDecodingContext *ctx, XLogRecPtr lsn,
					  TransactionId xid, bool last_write)
{
}

/* The receiver of a captured decoding, or NULL when the plugin writes */
static inline DecoderCapture *
decoder_capture_of(LogicalDecodingContext *ctx)
{
	if (ctx->write != decoder_capture_write)
		return NULL;
	Assert(ctx->output_writer_private != NULL);
	return (DecoderCapture *) ctx->output_writer_private;
}

/*
 * Entry point: PostgreSQL calls it when it loads strata.so as an output
 * plugin.  No streaming or two-phase callbacks: transactions are decoded
 * once committed, whole, in commit order.
 */
void
_PG_output_plugin_init(OutputPluginCallbacks *cb)
{
	AssertVariableIsOfType(&_PG_output_plugin_init, LogicalOutputPluginInit);

	cb->startup_cb = decoder_startup;
	cb->begin_cb = decoder_begin;
	cb->change_cb = decoder_change;
	cb->commit_cb = decoder_commit;
	cb->shutdown_cb = decoder_shutdown;
}

/* Forget the events table on any change to pg_class or pg_namespace */
static void
decoder_syscache_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	decoder_cache_valid = false;
	decoder_columns_valid = false;
}

/* Forget the events table when it (or every relation) is invalidated */
static void
decoder_relcache_callback(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == decoder_events_relid)
	{
		decoder_cache_valid = false;
		decoder_columns_valid = false;
	}
}

/*
 * Is this relation strata.events?  One comparison of OIDs in the common
 * case; two syscache probes after an invalidation.
 */
static bool
decoder_is_events(Relation relation)
{
	if (!decoder_cache_valid)
	{
		Oid nspid = get_namespace_oid(STRATA_SCHEMA, true);

		decoder_events_relid = OidIsValid(nspid)
								   ? get_relname_relid(EVENTS_RELNAME, nspid)
								   : InvalidOid;
		decoder_columns_valid = false;
		decoder_cache_valid = true;
	}
	return OidIsValid(decoder_events_relid) &&
		   RelationGetRelid(relation) == decoder_events_relid;
}

/*
 * Check that strata.events has the columns of events.h, with their names
 * and types, in table order, so a table that is not the one the plugin
 * knows is refused instead of being misread.
 */
static void
decoder_check_columns(Relation relation)
{
	TupleDesc desc = RelationGetDescr(relation);

	/* columns added after the nine are allowed (and not decoded) */
	if (desc->natts < Natts_events)
		events_check_desc(desc);
	for (int c = 0; c < Natts_events; c++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, c);

		if (att->attisdropped ||
			strcmp(NameStr(att->attname), decoder_columns[c].name) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("table %s.%s has no column \"%s\" at position %d",
							STRATA_SCHEMA, EVENTS_RELNAME,
							decoder_columns[c].name, c + 1),
					 errdetail("The strata output plugin decodes the events "
							   "table of pg_strata."),
					 errhint("Do not alter strata.events; reinstall the "
							 "extension.")));
		if (att->atttypid != decoder_columns[c].type)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("column \"%s\" of table %s.%s has type %s",
							NameStr(att->attname), STRATA_SCHEMA,
							EVENTS_RELNAME, format_type_be(att->atttypid)),
					 errdetail("The strata output plugin decodes the "
							   "events table of pg_strata, whose column "
							   "\"%s\" has type %s.",
							   decoder_columns[c].name,
							   format_type_be(decoder_columns[c].type)),
					 errhint("Do not alter strata.events; reinstall the "
							 "extension.")));
	}
	decoder_columns_valid = true;
}

/* Parse a boolean option; an option given without a value means true */
static bool
decoder_parse_bool(DefElem *elem)
{
	bool result;

	if (elem->arg == NULL)
		return true;
	if (!parse_bool(strVal(elem->arg), &result))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value \"%s\" for option \"%s\" of the strata "
						"output plugin",
						strVal(elem->arg), elem->defname),
				 errdetail("The option takes a boolean value."),
				 errhint("Use true or false.")));
	return result;
}

/*
 * Parse a comma-separated list of names ("account, order") into a filter.
 * Blanks around names are dropped; an empty list or an empty name is an
 * error, because it would silently filter out everything.
 */
static void
decoder_parse_filter(DefElem *elem, DecoderFilter *filter)
{
	char *list;
	char *p;
	int	  max;

	if (elem->arg == NULL || strVal(elem->arg)[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" of the strata output plugin needs a "
						"value",
						elem->defname),
				 errdetail("The option takes a comma-separated list of "
						   "names."),
				 errhint("Leave the option out to decode every event.")));

	list = pstrdup(strVal(elem->arg));
	max = 1;
	for (p = list; *p; p++)
		if (*p == ',')
			max++;
	filter->names = palloc(sizeof(char *) * max);
	filter->lengths = palloc(sizeof(int) * max);
	filter->count = 0;

	p = list;
	for (;;)
	{
		char *comma = strchr(p, ',');
		char *end = comma ? comma : p + strlen(p);

		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if (end == p)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid value \"%s\" for option \"%s\" of the "
							"strata output plugin",
							strVal(elem->arg), elem->defname),
					 errdetail("The list has an empty name."),
					 errhint("Give names separated by commas, for example "
							 "'account,order'.")));
		*end = '\0';
		filter->names[filter->count] = p;
		filter->lengths[filter->count] = end - p;
		filter->count++;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
}

/*
 * Startup: parse and check the options, set up the memory context.  Runs
 * when a slot is created too (is_init), so that a slot cannot be created
 * with options that would fail later.
 */
static void
decoder_startup(LogicalDecodingContext *ctx, OutputPluginOptions *opt,
				bool is_init)
{
	DecoderData *data;
	ListCell	*option;

	data = MemoryContextAllocZero(ctx->context, sizeof(DecoderData));
	data->context = AllocSetContextCreate(ctx->context, "strata decoder",
										  ALLOCSET_DEFAULT_SIZES);
	data->include_data = true;
	data->include_metadata = true;
	data->include_transaction = false;
	data->format = DECODER_FORMAT_JSON;

	/*
	 * The output is UTF-8.  PostgreSQL holds a textual plugin's output to
	 * be valid text in the database encoding (pg_logical_slot_get_changes
	 * returns it as text, which the client's encoding conversion then
	 * reads as such): true in UTF8, and in SQL_ASCII, where any bytes are;
	 * elsewhere the output is declared binary, so that PostgreSQL refuses
	 * the text functions rather than hand out UTF-8 labelled as, say,
	 * LATIN1 (pg_logical_slot_get_binary_changes and the replication
	 * protocol take it).
	 */
	data->db_encoding = GetDatabaseEncoding();
	if (data->db_encoding == PG_UTF8)
		data->encoding = DECODER_ENCODING_UTF8;
	else if (data->db_encoding == PG_SQL_ASCII)
		data->encoding = DECODER_ENCODING_CHECK;
	else
		data->encoding = DECODER_ENCODING_CONVERT;
	if (data->encoding != DECODER_ENCODING_UTF8)
	{
		MemoryContext old = MemoryContextSwitchTo(ctx->context);

		initStringInfo(&data->unconverted);
		MemoryContextSwitchTo(old);
	}

	opt->output_type = data->encoding == DECODER_ENCODING_CONVERT
						   ? OUTPUT_PLUGIN_BINARY_OUTPUT
						   : OUTPUT_PLUGIN_TEXTUAL_OUTPUT;
	opt->receive_rewrites = false;

	foreach (option, ctx->output_plugin_options)
	{
		DefElem *elem = lfirst(option);

		Assert(elem->arg == NULL || IsA(elem->arg, String));

		if (strcmp(elem->defname, "categories") == 0)
			decoder_parse_filter(elem, &data->categories);
		else if (strcmp(elem->defname, "types") == 0)
			decoder_parse_filter(elem, &data->types);
		else if (strcmp(elem->defname, "include-data") == 0)
			data->include_data = decoder_parse_bool(elem);
		else if (strcmp(elem->defname, "include-metadata") == 0)
			data->include_metadata = decoder_parse_bool(elem);
		else if (strcmp(elem->defname, "include-transaction") == 0)
			data->include_transaction = decoder_parse_bool(elem);
		else if (strcmp(elem->defname, "format") == 0)
		{
			const char *value = elem->arg ? strVal(elem->arg) : "";

			if (strcmp(value, "json") == 0)
				data->format = DECODER_FORMAT_JSON;
			else if (strcmp(value, "text") == 0)
				data->format = DECODER_FORMAT_TEXT;
			else
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid value \"%s\" for option \"format\" "
								"of the strata output plugin",
								value),
						 errdetail("The formats are json (one JSON object "
								   "per event) and text (one line per event, "
								   "for people)."),
						 errhint("Use format 'json' or 'text'.")));
		}
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unrecognized option \"%s\" of the strata output "
							"plugin",
							elem->defname),
					 errdetail("The options are categories, types, "
							   "include-data, include-metadata, "
							   "include-transaction and format."),
					 errhint("See the strata output plugin in docs/api.md.")));
	}

	/*
	 * A database whose encoding has no conversion to UTF8 (MULE_INTERNAL)
	 * is refused as soon as possible: when the slot is created or decoding
	 * starts from SQL.  A walsender starts decoding outside a transaction,
	 * where pg_conversion cannot be read: there, on the first event.  The
	 * strata worker's decoding writes no text and needs none.
	 */
	if (data->encoding == DECODER_ENCODING_CONVERT &&
		ctx->write != decoder_capture_write && IsTransactionState())
		decoder_find_conversion(ctx, data);

	if (!decoder_callbacks_registered)
	{
		CacheRegisterSyscacheCallback(RELNAMENSP, decoder_syscache_callback,
									  (Datum) 0);
		CacheRegisterSyscacheCallback(NAMESPACEOID, decoder_syscache_callback,
									  (Datum) 0);
		CacheRegisterRelcacheCallback(decoder_relcache_callback, (Datum) 0);
		decoder_callbacks_registered = true;
	}
	decoder_cache_valid = false;
	decoder_columns_valid = false;

	ctx->output_plugin_private = data;
}

/* Shutdown: everything lives in ctx->context, freed by the caller */
static void
decoder_shutdown(LogicalDecodingContext *ctx)
{
	DecoderData *data = ctx->output_plugin_private;

	MemoryContextDelete(data->context);
}

/* Append an LSN as a JSON string, "X/Y" like pg_lsn */
static void
decoder_append_lsn(StringInfo out, XLogRecPtr lsn)
{
	appendStringInfo(out, "\"%X/%X\"", LSN_FORMAT_ARGS(lsn));
}

/* Append an unsigned or signed integer without going through printf */
static void
decoder_append_int64(StringInfo out, int64 value)
{
	char buf[MAXINT8LEN + 1];
	int	 len = pg_lltoa(value, buf);

	appendBinaryStringInfo(out, buf, len);
}

/*
 * Format a timestamptz as JSON does (ISO 8601), always in UTC ("+00:00"),
 * whatever the session's TimeZone, so that the feed does not depend on
 * who reads it.
 */
static void
decoder_format_time(char *buf, TimestampTz value)
{
	int utc = 0;

	JsonEncodeDateTime(buf, TimestampTzGetDatum(value), TIMESTAMPTZOID, &utc);
}

/* The commit time of the transaction being decoded, formatted once */
static const char *
decoder_commit_time(DecoderData *data, ReorderBufferTXN *txn)
{
	if (!data->have_commit_time)
	{
		decoder_format_time(data->commit_time, txn->xact_time.commit_time);
		data->have_commit_time = true;
	}
	return data->commit_time;
}

/* Append a text datum as a JSON string */
static void
decoder_append_text(StringInfo out, Datum value)
{
	escape_json(out, TextDatumGetCString(value));
}

/* Append a uuid in its canonical 8-4-4-4-12 form, quoted */
static void
decoder_append_uuid(StringInfo out, Datum value)
{
	static const char hex[] = "0123456789abcdef";
	pg_uuid_t		 *uuid = DatumGetUUIDP(value);
	char			  buf[38];
	int				  j = 0;

	buf[j++] = '"';
	for (int i = 0; i < UUID_LEN; i++)
	{
		if (i == 4 || i == 6 || i == 8 || i == 10)
			buf[j++] = '-';
		buf[j++] = hex[uuid->data[i] >> 4];
		buf[j++] = hex[uuid->data[i] & 0x0F];
	}
	buf[j++] = '"';
	appendBinaryStringInfo(out, buf, j);
}

/* Append a jsonb datum as JSON text */
static void
decoder_append_jsonb(StringInfo out, Datum value)
{
	Jsonb *jb = DatumGetJsonbP(value);

	(void) JsonbToCString(out, &jb->root, VARSIZE(jb));
}

/* Does a text datum match one of the names of a filter? */
static bool
decoder_filter_match(DecoderFilter *filter, Datum value)
{
	text	   *t = DatumGetTextPP(value);
	int			len = VARSIZE_ANY_EXHDR(t);
	const char *s = VARDATA_ANY(t);

	for (int i = 0; i < filter->count; i++)
		if (filter->lengths[i] == len && memcmp(filter->names[i], s, len) == 0)
			return true;
	return false;
}

/*
 * Look up PostgreSQL's own default conversion to UTF8, once per decoding
 * session: at startup when it runs in a transaction, else on the first
 * event (in the decoding's transaction: the lookup reads pg_conversion).
 * Every server encoding but MULE_INTERNAL (and SQL_ASCII, which has none
 * and is checked instead) has one.  Only pg_catalog is searched, not the
 * search_path: a default conversion another role created in its own
 * schema is never run by a decoding process (the worker's, or a
 * walsender of any role).  And the function must be C (or internal)
 * code, which only a superuser can install: so the function called below
 * is one of the server's conversions, never a role's code (which would
 * have to go through usercall.c).
 */
static void
decoder_find_conversion(LogicalDecodingContext *ctx, DecoderData *data)
{
	/* the conversion's function (FindDefaultConversion returns its proc) */
	Oid proc = FindDefaultConversion(PG_CATALOG_NAMESPACE, data->db_encoding,
									 PG_UTF8);

	if (OidIsValid(proc))
	{
		HeapTuple tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(proc));
		Oid		  lang = InvalidOid;

		if (HeapTupleIsValid(tup))
		{
			lang = ((Form_pg_proc) GETSTRUCT(tup))->prolang;
			ReleaseSysCache(tup);
		}
		if (lang != ClanguageId && lang != INTERNALlanguageId)
			proc = InvalidOid;
	}
	if (!OidIsValid(proc))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("the strata output plugin cannot convert encoding "
						"\"%s\" to \"UTF8\"",
						pg_encoding_to_char(data->db_encoding)),
				 errdetail("The plugin writes UTF-8, and PostgreSQL has no "
						   "conversion from the database encoding to UTF8."),
				 errhint("Decode a database of another encoding (UTF8 "
						 "preferably).")));
	fmgr_info_cxt(proc, &data->conversion, ctx->context);
	data->have_conversion = true;
}

/*
 * Append len bytes of the database encoding, converted to UTF-8, to out,
 * DECODER_CONVERT_CHUNK bytes a call.  A character the conversion cannot
 * map (none in the LATIN and WIN encodings; a few code points of some
 * others) is written as U+FFFD rather than stop the feed: an error here
 * would be raised again on every retry, and the slot could never move past
 * the event.
 */
static void
decoder_convert(DecoderData *data, StringInfo out, const char *src, int len)
{
	while (len > 0)
	{
		int chunk = Min(len, DECODER_CONVERT_CHUNK);
		int done;
		int charlen;

		enlargeStringInfo(out, chunk * MAX_CONVERSION_GROWTH);
		done = DatumGetInt32(
			FunctionCall6(&data->conversion, Int32GetDatum(data->db_encoding),
						  Int32GetDatum(PG_UTF8), CStringGetDatum(src),
						  PointerGetDatum(out->data + out->len),
						  Int32GetDatum(chunk), BoolGetDatum(true)));
		out->len += strlen(out->data + out->len);
		src += done;
		len -= done;
		if (done == chunk)
			continue;

		/* stopped at a character: cut by the chunk's end, or unmappable */
		charlen = pg_encoding_mblen(data->db_encoding, src);
		if (charlen > chunk - done && charlen <= len)
			continue;
		appendBinaryStringInfo(out, DECODER_REPLACEMENT,
							   DECODER_REPLACEMENT_LEN);
		charlen = Max(Min(charlen, len), 1);
		src += charlen;
		len -= charlen;
	}
}

/*
 * Append len bytes of a SQL_ASCII database to out as valid UTF-8: valid
 * sequences as they are (SQL_ASCII databases mostly hold what UTF-8
 * clients wrote), each byte that does not begin one as U+FFFD.
 */
static void
decoder_check_utf8(StringInfo out, const char *src, int len)
{
	while (len > 0)
	{
		int valid = pg_encoding_verifymbstr(PG_UTF8, src, len);

		appendBinaryStringInfo(out, src, valid);
		src += valid;
		len -= valid;
		if (len > 0)
		{
			appendBinaryStringInfo(out, DECODER_REPLACEMENT,
								   DECODER_REPLACEMENT_LEN);
			src++;
			len--;
		}
	}
}

/*
 * Make the event written to out from offset start UTF-8 (not called in a
 * UTF8 database).  Its ASCII (or, in SQL_ASCII, valid UTF-8) prefix stays
 * where it is, which is all of it for most events; the rest is moved
 * aside and appended back converted.  Only ASCII bytes are JSON syntax in
 * any server encoding and conversion keeps them, so the result is the
 * same JSON with its strings in UTF-8.
 */
static void
decoder_to_utf8(LogicalDecodingContext *ctx, DecoderData *data, StringInfo out,
				int start)
{
	const char *s = out->data + start;
	int			len = out->len - start;
	int			keep;

	if (data->encoding == DECODER_ENCODING_CHECK)
		keep = pg_encoding_verifymbstr(PG_UTF8, s, len);
	else
	{
		if (!data->have_conversion)
			decoder_find_conversion(ctx, data);
		keep = 0;
		while (keep < len && !IS_HIGHBIT_SET(s[keep]))
			keep++;
	}
	if (keep == len)
		return;

	resetStringInfo(&data->unconverted);
	appendBinaryStringInfo(&data->unconverted, s + keep, len - keep);
	out->len = start + keep;
	out->data[out->len] = '\0';
	if (data->encoding == DECODER_ENCODING_CHECK)
		decoder_check_utf8(out, data->unconverted.data, data->unconverted.len);
	else
		decoder_convert(data, out, data->unconverted.data,
						data->unconverted.len);
}

/* Write the begin object of a transaction (include-transaction) */
static void
decoder_write_begin(LogicalDecodingContext *ctx, DecoderData *data,
					ReorderBufferTXN *txn)
{
	StringInfo out = ctx->out;

	OutputPluginPrepareWrite(ctx, true);
	if (data->format == DECODER_FORMAT_TEXT)
		appendStringInfo(out, "BEGIN %u", txn->xid);
	else
	{
		appendStringInfo(
			out, "{\"kind\":\"begin\",\"xid\":%u,\"commit_lsn\":", txn->xid);
		decoder_append_lsn(out, txn->final_lsn);
		appendStringInfo(out, ",\"commit_time\":\"%s\"}",
						 decoder_commit_time(data, txn));
	}
	OutputPluginWrite(ctx, true);
	data->sent_begin = true;
}

/* Write one event: the decoded row of strata.events in values/nulls */
static void
decoder_write_event(LogicalDecodingContext *ctx, DecoderData *data,
					ReorderBufferTXN *txn)
{
	StringInfo out = ctx->out;
	Datum	  *v = data->values;
	int		   start;

#define VAL(attnum) (v[AttrNumberGetAttrOffset(attnum)])

	if (data->have_recorded_at == false ||
		data->recorded_at != DatumGetTimestampTz(VAL(Anum_events_recorded_at)))
	{
		data->recorded_at = DatumGetTimestampTz(VAL(Anum_events_recorded_at));
		decoder_format_time(data->recorded_at_text, data->recorded_at);
		data->have_recorded_at = true;
	}

	OutputPluginPrepareWrite(ctx, true);
	start = out->len;

	if (data->format == DECODER_FORMAT_TEXT)
	{
		appendStringInfoString(out, "event ");
		decoder_append_int64(out, DatumGetInt64(VAL(Anum_events_position)));
		appendStringInfoChar(out, ' ');
		appendStringInfoString(out,
							   TextDatumGetCString(VAL(Anum_events_stream)));
		appendStringInfoChar(out, '@');
		decoder_append_int64(out, DatumGetInt64(VAL(Anum_events_version)));
		appendStringInfoChar(out, ' ');
		appendStringInfoString(out,
							   TextDatumGetCString(VAL(Anum_events_type)));
		if (data->include_data)
		{
			appendStringInfoString(out, " data=");
			decoder_append_jsonb(out, VAL(Anum_events_data));
		}
		if (data->include_metadata)
		{
			appendStringInfoString(out, " metadata=");
			decoder_append_jsonb(out, VAL(Anum_events_metadata));
		}
	}
	else
	{
		appendStringInfoString(out, "{\"position\":");
		decoder_append_int64(out, DatumGetInt64(VAL(Anum_events_position)));
		appendStringInfoString(out, ",\"stream\":");
		decoder_append_text(out, VAL(Anum_events_stream));
		appendStringInfoString(out, ",\"version\":");
		decoder_append_int64(out, DatumGetInt64(VAL(Anum_events_version)));
		appendStringInfoString(out, ",\"id\":");
		decoder_append_uuid(out, VAL(Anum_events_id));
		appendStringInfoString(out, ",\"type\":");
		decoder_append_text(out, VAL(Anum_events_type));
		appendStringInfoString(out, ",\"category\":");
		decoder_append_text(out, VAL(Anum_events_category));
		if (data->include_data)
		{
			appendStringInfoString(out, ",\"data\":");
			decoder_append_jsonb(out, VAL(Anum_events_data));
		}
		if (data->include_metadata)
		{
			appendStringInfoString(out, ",\"metadata\":");
			decoder_append_jsonb(out, VAL(Anum_events_metadata));
		}
		appendStringInfo(out, ",\"recorded_at\":\"%s\",\"xid\":%u",
						 data->recorded_at_text, txn->xid);
		appendStringInfoString(out, ",\"commit_lsn\":");
		decoder_append_lsn(out, txn->final_lsn);
		appendStringInfo(out, ",\"commit_time\":\"%s\"}",
						 decoder_commit_time(data, txn));
	}

	if (data->encoding != DECODER_ENCODING_UTF8)
		decoder_to_utf8(ctx, data, out, start);
	OutputPluginWrite(ctx, true);
	data->txn_events++;

#undef VAL
}

/* Begin of a committed transaction: nothing is written until an event */
static void
decoder_begin(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
	DecoderData *data = ctx->output_plugin_private;

	data->sent_begin = false;
	data->txn_events = 0;
	data->have_commit_time = false;
}

/*
 * Commit: close the transaction if it had events (include-transaction),
 * and report progress, telling the walsender when the transaction was
 * skipped so that it can confirm the position to the client.
 */
static void
decoder_commit(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
			   XLogRecPtr commit_lsn)
{
	DecoderData	   *data = ctx->output_plugin_private;
	DecoderCapture *capture = decoder_capture_of(ctx);
	StringInfo		out = ctx->out;

	OutputPluginUpdateProgress(ctx, data->txn_events == 0);
	data->changes_since_progress = 0;

	if (capture != NULL)
	{
		if (data->txn_events > 0)
			capture->commit(capture->arg, txn);
		return;
	}

	if (!data->sent_begin)
		return;

	OutputPluginPrepareWrite(ctx, true);
	if (data->format == DECODER_FORMAT_TEXT)
		appendStringInfo(out, "COMMIT %u (" UINT64_FORMAT " events)", txn->xid,
						 data->txn_events);
	else
	{
		appendStringInfo(
			out, "{\"kind\":\"commit\",\"xid\":%u,\"commit_lsn\":", txn->xid);
		decoder_append_lsn(out, txn->final_lsn);
		appendStringInfoString(out, ",\"end_lsn\":");
		decoder_append_lsn(out, txn->end_lsn);
		appendStringInfo(
			out, ",\"commit_time\":\"%s\",\"events\":" UINT64_FORMAT "}",
			decoder_commit_time(data, txn), data->txn_events);
	}
	OutputPluginWrite(ctx, true);
}

/*
 * One change of a committed transaction: write it if it is an insert into
 * strata.events that passes the filters; ignore anything else.
 */
static void
decoder_change(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
			   Relation relation, ReorderBufferChange *change)
{
	DecoderData	   *data = ctx->output_plugin_private;
	DecoderCapture *capture = decoder_capture_of(ctx);
	HeapTuple		tuple;
	TupleDesc		desc;
	MemoryContext	old;

	if (COMPAT_PLUGIN_SENDS_PROGRESS &&
		++data->changes_since_progress >= DECODER_PROGRESS_EVERY)
	{
		OutputPluginUpdateProgress(ctx, false);
		data->changes_since_progress = 0;
	}

	if (change->action != REORDER_BUFFER_CHANGE_INSERT ||
		!decoder_is_events(relation))
		return;

	tuple = compat_change_newtuple(change);
	if (tuple == NULL)
		return;

	if (!decoder_columns_valid)
		decoder_check_columns(relation);
	desc = RelationGetDescr(relation);
	/* the arrays are Natts_events wide: a comparison per change */
	if (desc->natts < Natts_events)
		events_check_desc(desc);

	old = MemoryContextSwitchTo(data->context);

	if (likely(desc->natts == Natts_events))
		heap_deform_tuple(tuple, desc, data->values, data->nulls);
	else
	{
		/* a column added to the table: the nine first are decoded */
		Datum *values = palloc(sizeof(Datum) * desc->natts);
		bool  *nulls = palloc(sizeof(bool) * desc->natts);

		heap_deform_tuple(tuple, desc, values, nulls);
		memcpy(data->values, values, sizeof(data->values));
		memcpy(data->nulls, nulls, sizeof(data->nulls));
	}

	/* The columns are NOT NULL; a null can only come from a broken table */
	for (int c = 0; c < Natts_events; c++)
		if (data->nulls[c])
			elog(ERROR, "null in column \"%s\" of %s.%s",
				 decoder_columns[c].name, STRATA_SCHEMA, EVENTS_RELNAME);

	if (capture != NULL)
	{
		data->txn_events++;
		capture->event(capture->arg, txn, tuple, desc,
					   DatumGetInt64(data->values[Anum_events_position - 1]),
					   data->values[Anum_events_category - 1],
					   data->values[Anum_events_type - 1]);
	}
	else if ((data->categories.count == 0 ||
			  decoder_filter_match(&data->categories,
								   data->values[Anum_events_category - 1])) &&
			 (data->types.count == 0 ||
			  decoder_filter_match(&data->types,
								   data->values[Anum_events_type - 1])))
	{
		if (data->include_transaction && !data->sent_begin)
			decoder_write_begin(ctx, data, txn);
		decoder_write_event(ctx, data, txn);
	}

	MemoryContextSwitchTo(old);
	MemoryContextReset(data->context);
}
