/*-------------------------------------------------------------------------
 *
 * stream.c
 *	  Stream names and categories, and strata.stream_version().
 *
 * Stream names follow the category-id convention: the category is the
 * text before the first '-', and a name without '-' is its own category.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"

#include "strata.h"
#include "stream.h"

PG_FUNCTION_INFO_V1(strata_stream_version);
PG_FUNCTION_INFO_V1(strata_category);

/*
 * Check a name (a stream name or an event type) of 'len' bytes and return
 * it as a NUL-terminated palloc'd string.  'what' names the thing in
 * messages.  A name is refused when empty, longer than 'max_bytes', or
 * when it holds a control character (C0, DEL or, in UTF-8, C1), which
 * would make logs and feeds ambiguous.
 */
char *
stream_validate_name(const char *name, int len, const char *what,
					 int max_bytes)
{
	bool utf8 = (GetDatabaseEncoding() == PG_UTF8);

	if (len == 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("%s must not be empty", what)));
	if (len > max_bytes)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s is too long", what),
				 errdetail("It is %d bytes long; the limit is %d bytes.", len,
						   max_bytes)));

	for (int i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) name[i];
		bool		  control = (c < 0x20 || c == 0x7f);

		if (utf8 && c == 0xc2 && i + 1 < len &&
			(unsigned char) name[i + 1] >= 0x80 &&
			(unsigned char) name[i + 1] <= 0x9f)
			control = true;
		if (control)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must not contain control characters", what),
					 errdetail("Byte %d of the %s is 0x%02x.", i + 1, what,
							   c == 0xc2 ? (unsigned char) name[i + 1] : c)));
	}

	return pnstrdup(name, len);
}

/*
 * The category of a valid stream name: the text before the first '-'.
 */
char *
stream_category(const char *name)
{
	const char *dash = strchr(name, '-');

	if (dash == NULL)
		return pstrdup(name);
	return pnstrdup(name, dash - name);
}

/*
 * Validate a stream name given as a SQL argument; return it as a C string
 * and, if 'category' is not NULL, its category.
 */
char *
stream_name_arg(text *arg, char **category)
{
	char *name = stream_validate_name(VARDATA_ANY(arg), VARSIZE_ANY_EXHDR(arg),
									  "stream name", STREAM_NAME_MAX_BYTES);

	if (name[0] == '-')
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("invalid stream name \"%s\"", name),
						errdetail("A stream name must not begin with '-': its "
								  "category would be empty."),
						errhint("Name streams category-id, for example "
								"\"account-42\".")));
	if (category != NULL)
		*category = stream_category(name);
	return name;
}

/*
 * Validate a category given as text of 'len' bytes (a valid name without
 * '-'); return it as a C string.
 */
char *
stream_validate_category(const char *name, int len)
{
	char *category =
		stream_validate_name(name, len, "category", STREAM_NAME_MAX_BYTES);

	if (strchr(category, '-') != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid category \"%s\"", category),
				 errdetail("A category is the part of a stream name before "
						   "the first '-', so it never contains '-'.")));
	return category;
}

/*
 * strata.stream_version(stream text) RETURNS bigint: the version of the
 * last event of the stream, -1 when the stream has no event.
 */
Datum
strata_stream_version(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	Oid				  argtypes[1] = {TEXTOID};
	char			 *name;
	Datum			  arg;
	int64			  version = -1;
	int				  ret;

	strata_require_preload();
	name = stream_name_arg(PG_GETARG_TEXT_PP(0), NULL);
	arg = CStringGetTextDatum(name);

	SPI_connect();
	ret = SPI_execute_plan(
		strata_prepare(&plan,
					   "SELECT version FROM strata.streams "
					   "WHERE stream OPERATOR(pg_catalog.=) $1",
					   1, argtypes),
		&arg, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_plan failed: %s",
			 SPI_result_code_string(ret));
	if (SPI_processed > 0)
	{
		bool isnull;

		version = DatumGetInt64(SPI_getbinval(
			SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}
	SPI_finish();

	PG_RETURN_INT64(version);
}

/*
 * strata.category(stream text) RETURNS text: the category of a stream name.
 */
Datum
strata_category(PG_FUNCTION_ARGS)
{
	char *category;

	(void) stream_name_arg(PG_GETARG_TEXT_PP(0), &category);
	PG_RETURN_TEXT_P(cstring_to_text(category));
}
