/*-------------------------------------------------------------------------
 *
 * epoch.h
 *	  Epochs: the stretches of positions issued on one system and timeline
 *	  (the table strata.epochs, 0.6.0), so that positions never go back
 *	  across a failover and a reader's cursor in a lost range is refused.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STRATA_EPOCH_H
#define STRATA_EPOCH_H

/* The table strata.epochs, described once */
#define Natts_epochs				  5
#define Anum_epochs_system_identifier 1
#define Anum_epochs_timeline		  2
#define Anum_epochs_first_position	  3
#define Anum_epochs_survived_position 4
#define Anum_epochs_started_at		  5

/*
 * How far above what survived the first position of a new epoch is, per
 * timeline step: more than a former primary can have issued that did not
 * reach the node that goes on (2^40, about 1.1 * 10^12 positions).
 */
#define EPOCH_GAP (INT64CONST(1) << 40)

extern void epoch_ensure(void);
extern void epoch_check_cursor(int64 position, const char *func);

#endif /* STRATA_EPOCH_H */
