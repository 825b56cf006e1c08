/*-------------------------------------------------------------------------
 *
 * privilege.h
 *	  Who may do what: the extension owner's sections, in which the SQL
 *	  functions write the extension's tables after checking the caller's
 *	  right themselves, the checks of those rights, and the owners of
 *	  definitions and subscriptions as roles (DROP ROLE, REASSIGN OWNED).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STRATA_PRIVILEGE_H
#define STRATA_PRIVILEGE_H

#include "postgres.h"

/*
 * The identity (and, for a user call, the GUC nest level) to return to:
 * restored by priv_exit, or usercall_end
 */
typedef struct PrivScope
{
	Oid	 save_userid;
	int	 save_sec;
	int	 nestlevel;
	bool active;
} PrivScope;

#include "nodes/nodes.h"

extern void privilege_before_utility(Node *parsetree);
extern void privilege_after_utility(Node *parsetree);

extern Oid	priv_extension_owner(void);
extern void priv_enter(PrivScope *scope);
extern void priv_exit(PrivScope *scope);

extern void priv_check_read_events(Oid roleid, const char *func);
extern void priv_check_owner(Oid caller, Oid owner, const char *action,
							 const char *object);
extern void priv_check_can_own(Oid caller, Oid roleid, const char *object);

#endif /* STRATA_PRIVILEGE_H */
