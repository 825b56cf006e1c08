/*-------------------------------------------------------------------------
 *
 * usercall.h
 *	  The one way pg_strata runs user code (reducers, command handlers,
 *	  projection handlers and reset functions, subscription handlers): as
 *	  the role that owns the definition, in a security-restricted
 *	  operation, with a safe search_path and every setting it changes
 *	  rolled back when the call ends.
 *
 * Nothing else in pg_strata calls the function manager on a user's
 * function.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STRATA_USERCALL_H
#define STRATA_USERCALL_H

#include "postgres.h"

#include "fmgr.h"

#include "privilege.h"

/*
 * A user function ready to be called as 'owner'.  'what' names it in
 * messages ("handler of subscription \"s\"").
 */
typedef struct UserFunc
{
	Oid			owner;
	const char *what;
	FmgrInfo	flinfo;
} UserFunc;

/*
 * The event a user function is called on, for the error context that
 * usercall_context_push installs: every error of the call then says
 * which definition or subscription ran on which event.  One of:
 * - a reducer ('reducer') folding the event 'version' of 'stream';
 * - a projection ('subject') on the event 'version' of 'stream' (a text
 *   datum, read only if an error comes);
 * - a subscription's handler ('subject') on the event at 'position';
 * - a command handler ('subject': the command type) on 'stream_cstr',
 *   at its 'version'.
 * The caller updates version/position before each call.
 */
typedef enum UserCallSubject
{
	USERCALL_REDUCER,
	USERCALL_PROJECTION,
	USERCALL_SUBSCRIPTION,
	USERCALL_COMMAND
} UserCallSubject;

typedef struct UserCallEvent
{
	UserCallSubject		 kind;
	const char			*subject; /* the projection's or subscription's name */
	Oid					 reducer;
	const char			*stream_cstr; /* the stream, or NULL: ... */
	Datum				 stream;	  /* ... the stream as a text datum */
	int64				 version;
	int64				 position;
	ErrorContextCallback callback;
} UserCallEvent;

extern void usercall_context_push(UserCallEvent *ev);
extern void usercall_context_pop(UserCallEvent *ev);

extern bool	 usercall_can_execute(Oid funcid, Oid roleid);
extern void	 usercall_check(Oid funcid, Oid owner, const char *what);
extern void	 usercall_prepare(UserFunc *uf, Oid funcid, Oid owner,
							  const char *what, MemoryContext cxt);
extern void	 usercall_begin(PrivScope *scope, Oid owner);
extern void	 usercall_end(PrivScope *scope);
extern Datum usercall_invoke(UserFunc *uf, PrivScope *scope, int nargs,
							 Datum *args, bool *isnull);
extern void	 usercall_void(UserFunc *uf, int nargs, Datum *args);

#endif /* STRATA_USERCALL_H */
