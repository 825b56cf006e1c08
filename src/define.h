/*-------------------------------------------------------------------------
 *
 * define.h
 *	  Checks shared by the define_* functions of aggregates, commands and
 *	  projections: function signatures, privileges, names.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STRATA_DEFINE_H
#define STRATA_DEFINE_H

#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"

#include "version.h"

extern Oid	  define_events_type(void);
extern void	  define_check_function(Oid funcid, const char *role, int nargs,
									const Oid *argtypes, Oid rettype,
									const char *signature);
extern char	 *define_name_arg(text *arg, const char *what);
extern void	  define_check_list(ArrayType *arr, const char *what,
								bool is_category);
extern void	  define_invalidate(const char *relname);
extern uint64 define_delete(SPIPlanPtr *plan, const char *sql, Datum key,
							const char *func, Oid caller, const char *object);
extern void	  define_require_owners(StrataApi api);
extern void	  define_check_upserted(const char *relname, const char *keycol,
									Datum key, Oid caller, const char *object);
extern Oid	  define_lock_owner(const char *relname, const char *keycol,
								Datum key, Oid caller, const char *object);

extern int	define_strings(Datum d, char ***out);
extern bool define_in_list(char **list, int n, const char *s);

extern void define_check_not_null(FunctionCallInfo fcinfo, int nargs,
								  const char *func);

#endif /* STRATA_DEFINE_H */
