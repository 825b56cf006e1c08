/*-------------------------------------------------------------------------
 *
 * command.h
 *	  Command handlers: strata.define_command(), drop_command() and
 *	  execute().  Nothing here is called from other files.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STRATA_COMMAND_H
#define STRATA_COMMAND_H

#include "postgres.h"

/* Event type of a recorded rejection */
#define COMMAND_REJECTED_TYPE "CommandRejected"

#endif /* STRATA_COMMAND_H */
