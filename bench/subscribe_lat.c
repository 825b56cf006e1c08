/*-------------------------------------------------------------------------
 *
 * subscribe_lat.c
 *	  Commit-to-handler latency driver of bench/subscribe.sh (libpq,
 *	  POSIX threads).
 *
 *	  subscribe_lat -m sub|listen -r RATE -c CLIENTS -T SECONDS -p PREFIX
 *					[-w WAIT] [-o RAWFILE]
 *
 *	  CLIENTS writer threads, one connection each, append single events
 *	  (autocommit: one `SELECT strata.append(...)` per transaction) at RATE
 *	  events per second in all, each on a Poisson schedule of RATE/CLIENTS
 *	  (as pgbench --rate).  Writer w appends to the stream PREFIX.w<w>, a
 *	  stream of its own that is new at the start, so the version returned by
 *	  strata.append (the stream's new version) is also the index of the
 *	  append in that writer's record.  For every append the writer records
 *	  the client clock (CLOCK_REALTIME) just before sending the statement
 *	  (t_send) and just after its result came back (t_ret).  In autocommit
 *	  the server commits before it sends CommandComplete/ReadyForQuery, so
 *	  the commit happened inside [t_send, t_ret].
 *
 *	  Where each event was seen (t_seen):
 *	  - sub: the subscription's handler (public.bench_record, see
 *		bench/subscribe_setup.sql) inserts (stream, version,
 *		clock_timestamp()) into public.bench_seen when the worker calls it;
 *		after the run this program waits until every appended event is
 *		there (or WAIT seconds passed) and reads them back.
 *	  - listen: the writers append with `SELECT strata.append(...),
 *		pg_notify('strata_bench', '')` (the NOTIFY is sent at commit); a
 *		reader thread LISTENs on its own connection and, whenever
 *		notifications arrive, reads strata.read_all(after its last position,
 *		1000) until it returns fewer than 1000 rows; t_seen is the client
 *		clock when the rows of that read arrived.
 *	  Server and client run on the same machine, so clock_timestamp() and
 *	  CLOCK_REALTIME are the same clock.
 *
 *	  Latency = t_seen - t_ret: from the moment the client saw its COMMIT
 *	  complete to the moment the handler (or the reader) had the event.  It
 *	  can undercount the true commit-to-handler time by the reply's trip to
 *	  the client (tens of microseconds on a local socket) and by the time
 *	  the writer thread waits for a CPU before it reads the reply, so it can
 *	  be negative for single events; t_seen - t_send is the upper bound (it
 *	  adds the append's execution).  Both are reported.
 *
 *	  Prints one line of whitespace-separated fields (milliseconds):
 *		appended seen missing duplicates rate
 *		p50 p90 p99 max min (from t_ret)  p50 p99 (from t_send)  rtt_p50
 *	  and with -o writes every event as "writer version t_send t_ret
 *	  t_seen" (microseconds since the epoch; t_seen 0 when never seen).
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#define MAX_CLIENTS 64
#define READ_BATCH 1000

typedef struct Rec
{
	int64_t		t_send;
	int64_t		t_ret;
	int64_t		t_seen;
	int			seen;			/* times seen */
} Rec;

typedef struct Writer
{
	int			id;
	pthread_t	thread;
	PGconn	   *conn;
	Rec		   *recs;
	int			cap;
	int			n;				/* appends done */
	unsigned short xsubi[3];
	int			failed;
} Writer;

static int	nclients = 4;
static double rate = 500;
static double seconds = 5;
static double wait_secs = 10;
static const char *mode = NULL;
static const char *prefix = NULL;
static const char *rawfile = NULL;
static bool listen_mode;

static Writer writers[MAX_CLIENTS];
static pthread_barrier_t start_barrier;
static int64_t t_start;			/* common start of the schedules */
static volatile int writers_done;
static int64_t reader_last_pos;

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
sleep_until(int64_t t)
{
	for (;;)
	{
		int64_t		d = t - now_us();
		struct timespec ts;

		if (d <= 0)
			return;
		ts.tv_sec = d / 1000000;
		ts.tv_nsec = (d % 1000000) * 1000;
		if (nanosleep(&ts, NULL) == 0)
			return;
	}
}

static void
die(const char *what, PGconn *conn)
{
	fprintf(stderr, "subscribe_lat: %s: %s", what,
			conn ? PQerrorMessage(conn) : "\n");
	exit(1);
}

static PGconn *
connect_db(void)
{
	PGconn	   *conn = PQconnectdb("application_name=subscribe_lat");

	if (PQstatus(conn) != CONNECTION_OK)
		die("connection failed", conn);
	return conn;
}

/* Parse "PREFIX.w<w>" into w, or -1. */
static int
writer_of(const char *stream)
{
	size_t		len = strlen(prefix);
	int			w;

	if (strncmp(stream, prefix, len) != 0 || strncmp(stream + len, ".w", 2) != 0)
		return -1;
	w = atoi(stream + len + 2);
	return (w >= 0 && w < nclients) ? w : -1;
}

static void
mark_seen(const char *stream, long version, int64_t t)
{
	int			w = writer_of(stream);
	Writer	   *wr;

	if (w < 0)
		return;
	wr = &writers[w];
	if (version < 0 || version >= wr->cap)
		return;
	if (wr->recs[version].seen++ == 0)
		wr->recs[version].t_seen = t;
}

static void *
writer_main(void *arg)
{
	Writer	   *wr = arg;
	char		stream[256];
	char		event[64];
	const char *params[2];
	int64_t		next,
				end;
	PGresult   *res;

	snprintf(stream, sizeof(stream), "%s.w%d", prefix, wr->id);
	snprintf(event, sizeof(event), "{\"type\": \"Tick\", \"data\": {\"w\": %d}}", wr->id);
	params[0] = stream;
	params[1] = event;
	res = PQprepare(wr->conn, "append",
					listen_mode ?
					"SELECT strata.append($1, $2::jsonb), pg_notify('strata_bench', '')" :
					"SELECT strata.append($1, $2::jsonb)", 2, NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		die("prepare failed", wr->conn);
	PQclear(res);

	pthread_barrier_wait(&start_barrier);
	pthread_barrier_wait(&start_barrier);	/* main has set t_start */
	next = t_start;
	end = t_start + (int64_t) (seconds * 1e6);
	for (;;)
	{
		double		u = erand48(wr->xsubi);
		int64_t		t0,
					t1;
		long		v;

		/* exponential inter-arrival times, mean nclients / rate */
		next += (int64_t) (-log(1.0 - u) * 1e6 * nclients / rate);
		if (next >= end)
			break;
		sleep_until(next);
		t0 = now_us();
		res = PQexecPrepared(wr->conn, "append", 2, params, NULL, NULL, 0);
		t1 = now_us();
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
		{
			fprintf(stderr, "subscribe_lat: append failed: %s",
					PQerrorMessage(wr->conn));
			wr->failed = 1;
			PQclear(res);
			break;
		}
		v = atol(PQgetvalue(res, 0, 0));
		PQclear(res);
		if (v != wr->n || v >= wr->cap)
		{
			fprintf(stderr, "subscribe_lat: stream %s: version %ld, expected %d\n",
					stream, v, wr->n);
			wr->failed = 1;
			break;
		}
		wr->recs[v].t_send = t0;
		wr->recs[v].t_ret = t1;
		wr->n++;
	}
	return NULL;
}

static int64_t
total_appended(void)
{
	int64_t		n = 0;

	for (int w = 0; w < nclients; w++)
		n += writers[w].n;
	return n;
}

static int64_t
total_seen(void)
{
	int64_t		n = 0;

	for (int w = 0; w < nclients; w++)
		for (int i = 0; i < writers[w].n; i++)
			n += writers[w].recs[i].seen > 0;
	return n;
}

/* One read_all loop: read until fewer than READ_BATCH rows come back. */
static void
reader_read(PGconn *conn)
{
	for (;;)
	{
		char		buf[32];
		const char *params[1];
		PGresult   *res;
		int64_t		t;
		int			n;

		snprintf(buf, sizeof(buf), "%" PRId64, reader_last_pos);
		params[0] = buf;
		res = PQexecPrepared(conn, "read", 1, params, NULL, NULL, 0);
		t = now_us();
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			die("read_all failed", conn);
		n = PQntuples(res);
		for (int i = 0; i < n; i++)
		{
			int64_t		pos = atoll(PQgetvalue(res, i, 0));

			mark_seen(PQgetvalue(res, i, 1), atol(PQgetvalue(res, i, 2)), t);
			if (pos > reader_last_pos)
				reader_last_pos = pos;
		}
		PQclear(res);
		if (n < READ_BATCH)
			return;
	}
}

static void *
reader_main(void *arg)
{
	PGconn	   *conn = arg;
	int			sock = PQsocket(conn);
	int64_t		deadline = 0;

	pthread_barrier_wait(&start_barrier);
	pthread_barrier_wait(&start_barrier);
	for (;;)
	{
		fd_set		fds;
		struct timeval tv = {0, 100000};
		PGnotify   *nf;
		int			got = 0;

		FD_ZERO(&fds);
		FD_SET(sock, &fds);
		if (select(sock + 1, &fds, NULL, NULL, &tv) < 0 && errno != EINTR)
		{
			perror("subscribe_lat: select");
			exit(1);
		}
		if (!PQconsumeInput(conn))
			die("reader lost its connection", conn);
		while ((nf = PQnotifies(conn)) != NULL)
		{
			got++;
			PQfreemem(nf);
		}
		if (got)
			reader_read(conn);
		if (writers_done)
		{
			if (deadline == 0)
				deadline = now_us() + (int64_t) (wait_secs * 1e6);
			if (total_seen() >= total_appended() || now_us() > deadline)
				break;
		}
	}
	return NULL;
}

static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return (x > y) - (x < y);
}

/* nearest-rank percentile of a sorted array */
static double
pct(const double *v, int64_t n, double p)
{
	int64_t		k;

	if (n == 0)
		return NAN;
	k = (int64_t) ceil(p / 100.0 * n);
	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return v[k - 1];
}

static void
usage(void)
{
	fprintf(stderr, "usage: subscribe_lat -m sub|listen -r RATE -c CLIENTS -T SECONDS "
			"-p PREFIX [-w WAIT] [-o RAWFILE]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	int			c;
	PGconn	   *main_conn;
	PGconn	   *reader_conn = NULL;
	pthread_t	reader;
	PGresult   *res;
	int64_t		appended,
				seen,
				missing = 0,
				dups = 0,
				nl = 0;
	double	   *lat_ret,
			   *lat_send,
			   *rtt;
	int			failed = 0;

	while ((c = getopt(argc, argv, "m:r:c:T:p:w:o:")) != -1)
	{
		switch (c)
		{
			case 'm':
				mode = optarg;
				break;
			case 'r':
				rate = atof(optarg);
				break;
			case 'c':
				nclients = atoi(optarg);
				break;
			case 'T':
				seconds = atof(optarg);
				break;
			case 'p':
				prefix = optarg;
				break;
			case 'w':
				wait_secs = atof(optarg);
				break;
			case 'o':
				rawfile = optarg;
				break;
			default:
				usage();
		}
	}
	if (mode == NULL || prefix == NULL || rate <= 0 || seconds <= 0 ||
		nclients < 1 || nclients > MAX_CLIENTS)
		usage();
	if (strcmp(mode, "listen") == 0)
		listen_mode = true;
	else if (strcmp(mode, "sub") != 0)
		usage();

	main_conn = connect_db();
	pthread_barrier_init(&start_barrier, NULL, nclients + 1 + (listen_mode ? 1 : 0));
	for (int w = 0; w < nclients; w++)
	{
		Writer	   *wr = &writers[w];

		wr->id = w;
		/* 3 times the expected count, plus slack for a short run */
		wr->cap = (int) (3 * rate / nclients * seconds) + 1000;
		wr->recs = calloc(wr->cap, sizeof(Rec));
		if (wr->recs == NULL)
			die("out of memory", NULL);
		wr->xsubi[0] = (unsigned short) (0x330e + w);
		wr->xsubi[1] = (unsigned short) (getpid() + w * 7919);
		wr->xsubi[2] = (unsigned short) (now_us() >> 4);
		wr->conn = connect_db();
	}
	if (listen_mode)
	{
		reader_conn = connect_db();
		res = PQexec(reader_conn, "LISTEN strata_bench");
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			die("LISTEN failed", reader_conn);
		PQclear(res);
		res = PQprepare(reader_conn, "read",
						"SELECT position, stream, version FROM strata.read_all($1::bigint, "
						"1000)", 1, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			die("prepare failed", reader_conn);
		PQclear(res);
		/* start after everything committed so far */
		res = PQexec(reader_conn, "SELECT coalesce(max(position), 0) FROM strata.events");
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			die("max(position) failed", reader_conn);
		reader_last_pos = atoll(PQgetvalue(res, 0, 0));
		PQclear(res);
		if (pthread_create(&reader, NULL, reader_main, reader_conn) != 0)
			die("pthread_create failed", NULL);
	}
	for (int w = 0; w < nclients; w++)
		if (pthread_create(&writers[w].thread, NULL, writer_main, &writers[w]) != 0)
			die("pthread_create failed", NULL);

	pthread_barrier_wait(&start_barrier);	/* everyone connected, prepared */
	t_start = now_us() + 100000;
	pthread_barrier_wait(&start_barrier);
	for (int w = 0; w < nclients; w++)
	{
		pthread_join(writers[w].thread, NULL);
		failed |= writers[w].failed;
	}
	if (failed)
		exit(1);
	writers_done = 1;
	appended = total_appended();

	if (listen_mode)
		pthread_join(reader, NULL);
	else
	{
		/* wait until the handler has recorded every event */
		char		like[300];
		const char *params[1];
		int64_t		deadline = now_us() + (int64_t) (wait_secs * 1e6);

		snprintf(like, sizeof(like), "%s.w", prefix);
		params[0] = like;
		for (;;)
		{
			int64_t		n;

			res = PQexecParams(main_conn,
							   "SELECT count(*) FROM public.bench_seen "
							   "WHERE left(stream, length($1)) = $1",
							   1, NULL, params, NULL, NULL, 0);
			if (PQresultStatus(res) != PGRES_TUPLES_OK)
				die("count failed", main_conn);
			n = atoll(PQgetvalue(res, 0, 0));
			PQclear(res);
			if (n >= appended || now_us() > deadline)
				break;
			sleep_until(now_us() + 20000);
		}
		res = PQexecParams(main_conn,
						   "SELECT stream, version, "
						   "(extract(epoch FROM seen_at) * 1000000)::int8 "
						   "FROM public.bench_seen WHERE left(stream, length($1)) = $1",
						   1, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			die("reading bench_seen failed", main_conn);
		for (int i = 0; i < PQntuples(res); i++)
			mark_seen(PQgetvalue(res, i, 0), atol(PQgetvalue(res, i, 1)),
					  atoll(PQgetvalue(res, i, 2)));
		PQclear(res);
	}

	seen = total_seen();
	lat_ret = malloc(sizeof(double) * (appended + 1));
	lat_send = malloc(sizeof(double) * (appended + 1));
	rtt = malloc(sizeof(double) * (appended + 1));
	if (!lat_ret || !lat_send || !rtt)
		die("out of memory", NULL);
	for (int w = 0; w < nclients; w++)
	{
		Writer	   *wr = &writers[w];

		for (int i = 0; i < wr->n; i++)
		{
			Rec		   *r = &wr->recs[i];

			if (r->seen == 0)
			{
				missing++;
				continue;
			}
			if (r->seen > 1)
				dups += r->seen - 1;
			lat_ret[nl] = (r->t_seen - r->t_ret) / 1000.0;
			lat_send[nl] = (r->t_seen - r->t_send) / 1000.0;
			rtt[nl] = (r->t_ret - r->t_send) / 1000.0;
			nl++;
		}
	}
	if (rawfile)
	{
		FILE	   *f = fopen(rawfile, "w");

		if (f == NULL)
		{
			perror(rawfile);
			exit(1);
		}
		for (int w = 0; w < nclients; w++)
			for (int i = 0; i < writers[w].n; i++)
				fprintf(f, "%d\t%d\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\n", w, i,
						writers[w].recs[i].t_send, writers[w].recs[i].t_ret,
						writers[w].recs[i].t_seen);
		fclose(f);
	}
	qsort(lat_ret, nl, sizeof(double), cmp_double);
	qsort(lat_send, nl, sizeof(double), cmp_double);
	qsort(rtt, nl, sizeof(double), cmp_double);
	printf("%" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " %.1f"
		   " %.3f %.3f %.3f %.3f %.3f %.3f %.3f %.3f\n",
		   appended, seen, missing, dups, appended / seconds,
		   pct(lat_ret, nl, 50), pct(lat_ret, nl, 90), pct(lat_ret, nl, 99),
		   nl ? lat_ret[nl - 1] : NAN, nl ? lat_ret[0] : NAN,
		   pct(lat_send, nl, 50), pct(lat_send, nl, 99), pct(rtt, nl, 50));
	PQfinish(main_conn);
	for (int w = 0; w < nclients; w++)
		PQfinish(writers[w].conn);
	if (reader_conn)
		PQfinish(reader_conn);
	return 0;
}
