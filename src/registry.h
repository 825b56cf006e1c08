/*-------------------------------------------------------------------------
 *
 * registry.h
 *	  Shared-memory registry of in-flight appends: position allocation for
 *	  writers and the visibility horizon for global readers.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STRATA_REGISTRY_H
#define STRATA_REGISTRY_H

#include "postgres.h"

#include "utils/snapshot.h"

/* A horizon meaning "nothing in flight": every committed event is safe */
#define REGISTRY_NO_HORIZON PG_INT64_MAX

extern Size	 registry_shmem_size(void);
extern void	 registry_shmem_request(void);
extern void	 registry_shmem_init(void);
extern void	 registry_init(void);
extern void	 registry_allocate_positions(Oid seqoid, int count,
										 int64 *positions);
extern int64 registry_read_horizon(Snapshot *snapshot);

#endif /* STRATA_REGISTRY_H */
