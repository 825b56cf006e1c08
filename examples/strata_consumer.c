/*-------------------------------------------------------------------------
 *
 * strata_consumer.c
 *	  Example consumer of the strata output plugin over the streaming
 *	  replication protocol (libpq): it prints the committed events of a
 *	  database, one JSON object per line, and confirms to the server what
 *	  it has processed, so that a restart continues where it stopped.
 *
 *	  strata_consumer -d CONNINFO -S SLOT [-c] [-o FILE] [-P NAME=VALUE]...
 *					  [-s SECONDS] [-v]
 *
 *	  -d  connection string or URI of the database (replication=database
 *		  is added)
 *	  -S  replication slot (plugin strata)
 *	  -c  create the slot first if it does not exist
 *	  -o  append the events to FILE instead of standard output, exactly
 *		  once across crashes and restarts (see below)
 *	  -P  an option of the plugin, for example -P categories=account
 *		  (repeatable)
 *	  -s  seconds between status updates to the server (default 10)
 *	  -v  report progress on standard error
 *
 * How it keeps its place.  The slot remembers the position the consumer
 * confirmed (its confirmed_flush_lsn); decoding restarts from there and
 * sends again every transaction that committed after it.  The consumer asks
 * for include-transaction, so it knows where each transaction ends, and it
 * confirms only the end of transactions whose events it has written out
 * (fflush, and fsync with -o).  After a crash, the events of at most the
 * last status interval are sent again: the unconfirmed tail.
 *
 * With -o, even that tail is not repeated: at each status update the
 * consumer fsyncs FILE and records, in FILE.lsn (written to a temporary
 * file, fsynced and renamed), the end LSN of the last complete transaction
 * and FILE's size at that point, and only then confirms that LSN.  On start
 * it truncates FILE to the recorded size (dropping events written after the
 * last record, which the server will send again) and asks the server to
 * start after the recorded LSN.  FILE then holds every committed event
 * exactly once, in commit order.
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#define MAX_OPTIONS 32

/* Microseconds between the Unix epoch and PostgreSQL's, 2000-01-01 */
#define PG_EPOCH_OFFSET_USEC INT64_C(946684800000000)

typedef uint64_t Lsn;

static volatile sig_atomic_t stop_requested = 0;

static const char *conninfo = NULL;
static const char *slot = NULL;
static const char *out_path = NULL;
static char		  *state_path = NULL;
static const char *plugin_options[MAX_OPTIONS];
static int		   n_plugin_options = 0;
static bool		   create_slot = false;
static int		   status_interval = 10;
static bool		   verbose = false;

static PGconn	*conn = NULL;
static FILE		*out = NULL;
static int		 out_fd = -1;
static long long out_size = 0; /* bytes of FILE written so far */

static bool		 in_txn = false;	/* between a begin and a commit */
static Lsn		 done_lsn = 0;		/* end of the last complete txn */
static long long done_size = 0;		/* out_size at that point */
static Lsn		 confirmed_lsn = 0; /* last LSN confirmed to the server */
static long long events = 0;

/* Print a message and exit with status 1 */
static void die(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

static void
die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "strata_consumer: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (conn)
		PQfinish(conn);
	exit(1);
}

static void
handle_stop(int signo)
{
	(void) signo;
	stop_requested = 1;
}

/* Now, in microseconds since PostgreSQL's epoch */
static int64_t
now_pg(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64_t) tv.tv_sec * 1000000 + tv.tv_usec - PG_EPOCH_OFFSET_USEC;
}

static void
put_int64(char *buf, int64_t v)
{
	for (int i = 7; i >= 0; i--)
	{
		buf[i] = (char) (v & 0xFF);
		v >>= 8;
	}
}

static int64_t
get_int64(const char *buf)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | (unsigned char) buf[i];
	return (int64_t) v;
}

static bool
parse_lsn(const char *s, Lsn *lsn)
{
	unsigned int hi, lo;

	if (sscanf(s, "%X/%X", &hi, &lo) != 2)
		return false;
	*lsn = ((Lsn) hi << 32) | lo;
	return true;
}

/*
 * Read FILE.lsn (the last recorded transaction end and FILE's size then),
 * truncate FILE to that size, and return the LSN to start from (0: the
 * slot's own position).
 */
static Lsn
recover_state(void)
{
	FILE	 *f;
	char	  lsn_text[64];
	long long size = 0;
	Lsn		  lsn = 0;

	state_path = malloc(strlen(out_path) + 5);
	sprintf(state_path, "%s.lsn", out_path);

	out_fd = open(out_path, O_WRONLY | O_CREAT, 0644);
	if (out_fd < 0)
		die("could not open \"%s\": %s", out_path, strerror(errno));

	f = fopen(state_path, "r");
	if (f != NULL)
	{
		if (fscanf(f, "%63s %lld", lsn_text, &size) != 2 ||
			!parse_lsn(lsn_text, &lsn) || size < 0)
			die("invalid state file \"%s\"", state_path);
		fclose(f);
	}
	/* Events written after the last record will come again: drop them */
	if (ftruncate(out_fd, size) != 0 || lseek(out_fd, size, SEEK_SET) < 0)
		die("could not truncate \"%s\": %s", out_path, strerror(errno));
	out = fdopen(out_fd, "w");
	if (out == NULL)
		die("could not open \"%s\": %s", out_path, strerror(errno));
	out_size = done_size = size;
	done_lsn = confirmed_lsn = lsn;
	if (verbose)
		fprintf(stderr,
				"strata_consumer: %s holds %lld bytes up to LSN %X/%X\n",
				out_path, size, (unsigned) (lsn >> 32), (unsigned) lsn);
	return lsn;
}

/*
 * Make everything up to done_lsn durable (FILE and FILE.lsn), so that it
 * may be confirmed to the server.
 */
static void
save_state(void)
{
	char  tmp[4096];
	FILE *f;

	if (fflush(out) != 0)
		die("could not write output: %s", strerror(errno));
	if (out_path == NULL)
		return;
	if (fsync(out_fd) != 0)
		die("could not fsync \"%s\": %s", out_path, strerror(errno));
	snprintf(tmp, sizeof(tmp), "%s.tmp", state_path);
	f = fopen(tmp, "w");
	if (f == NULL)
		die("could not write \"%s\": %s", tmp, strerror(errno));
	fprintf(f, "%X/%X %lld\n", (unsigned) (done_lsn >> 32),
			(unsigned) done_lsn, done_size);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0 || fclose(f) != 0)
		die("could not write \"%s\": %s", tmp, strerror(errno));
	if (rename(tmp, state_path) != 0)
		die("could not rename \"%s\": %s", tmp, strerror(errno));
}

/*
 * Standby status update: written, flushed and applied are all the end of
 * the last transaction written out.
 */
static void
send_status(bool reply_requested)
{
	char buf[1 + 8 + 8 + 8 + 8 + 1];

	save_state();
	buf[0] = 'r';
	put_int64(&buf[1], (int64_t) done_lsn);
	put_int64(&buf[9], (int64_t) done_lsn);
	put_int64(&buf[17], (int64_t) done_lsn);
	put_int64(&buf[25], now_pg());
	buf[33] = reply_requested ? 1 : 0;
	if (PQputCopyData(conn, buf, sizeof(buf)) <= 0 || PQflush(conn) != 0)
		die("could not send status update: %s", PQerrorMessage(conn));
	if (verbose && done_lsn != confirmed_lsn)
		fprintf(stderr, "strata_consumer: confirmed %X/%X (%lld events)\n",
				(unsigned) (done_lsn >> 32), (unsigned) done_lsn, events);
	confirmed_lsn = done_lsn;
}

/* One XLogData message: a begin, an event or a commit object */
static void
handle_data(Lsn data_start, const char *data, int len)
{
	static const char begin[] = "{\"kind\":\"begin\"";
	static const char commit[] = "{\"kind\":\"commit\"";

	if (len >= (int) sizeof(begin) - 1 &&
		memcmp(data, begin, sizeof(begin) - 1) == 0)
	{
		in_txn = true;
		return;
	}
	if (len >= (int) sizeof(commit) - 1 &&
		memcmp(data, commit, sizeof(commit) - 1) == 0)
	{
		/* The message of a commit starts at the transaction's end LSN */
		in_txn = false;
		done_lsn = data_start;
		done_size = out_size;
		return;
	}
	if (fwrite(data, 1, len, out) != (size_t) len || fputc('\n', out) == EOF)
		die("could not write output: %s", strerror(errno));
	out_size += len + 1;
	events++;
}

/* Create the slot unless it exists */
static void
ensure_slot(void)
{
	char	  sql[512];
	PGresult *res;

	snprintf(sql, sizeof(sql), "CREATE_REPLICATION_SLOT \"%s\" LOGICAL strata",
			 slot);
	res = PQexec(conn, sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		if (state == NULL || strcmp(state, "42710") != 0)
			die("could not create slot \"%s\": %s", slot,
				PQerrorMessage(conn));
	}
	else if (verbose)
		fprintf(stderr, "strata_consumer: created slot \"%s\"\n", slot);
	PQclear(res);
}

/* START_REPLICATION with include-transaction and the user's options */
static void
start_replication(Lsn start)
{
	char	  sql[8192];
	size_t	  n;
	PGresult *res;

	n = snprintf(sql, sizeof(sql),
				 "START_REPLICATION SLOT \"%s\" LOGICAL %X/%X "
				 "(\"include-transaction\" 'true'",
				 slot, (unsigned) (start >> 32), (unsigned) start);
	for (int i = 0; i < n_plugin_options; i++)
	{
		const char *eq = strchr(plugin_options[i], '=');
		const char *p;

		n += snprintf(sql + n, sizeof(sql) - n, ", \"%.*s\"",
					  eq ? (int) (eq - plugin_options[i])
						 : (int) strlen(plugin_options[i]),
					  plugin_options[i]);
		if (eq)
		{
			n += snprintf(sql + n, sizeof(sql) - n, " '");
			for (p = eq + 1; *p && n < sizeof(sql) - 4; p++)
			{
				if (*p == '\'')
					sql[n++] = '\'';
				sql[n++] = *p;
			}
			n += snprintf(sql + n, sizeof(sql) - n, "'");
		}
		if (n >= sizeof(sql) - 2)
			die("plugin options too long");
	}
	snprintf(sql + n, sizeof(sql) - n, ")");

	/*
	 * After a crash, the server may not yet have noticed that the previous
	 * connection is gone and still hold the slot (55006): retry a while.
	 */
	for (int attempt = 1;; attempt++)
	{
		const char *state;

		res = PQexec(conn, sql);
		if (PQresultStatus(res) == PGRES_COPY_BOTH)
			break;
		state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		if (attempt >= 30 || state == NULL || strcmp(state, "55006") != 0)
			die("could not start replication: %s", PQerrorMessage(conn));
		PQclear(res);
		if (verbose)
			fprintf(stderr, "strata_consumer: slot \"%s\" is busy, retrying\n",
					slot);
		sleep(1);
	}
	PQclear(res);
	if (verbose)
		fprintf(stderr, "strata_consumer: streaming from slot \"%s\"\n", slot);
}

static void
usage(void)
{
	fprintf(stderr,
			"usage: strata_consumer -d CONNINFO -S SLOT [-c] [-o FILE] "
			"[-P NAME=VALUE]... [-s SECONDS] [-v]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char		*keys[] = {"dbname", "replication", NULL};
	const char		*values[] = {NULL, "database", NULL};
	struct sigaction sa;
	Lsn				 start = 0;
	int64_t			 last_status;
	int				 c;

	while ((c = getopt(argc, argv, "d:S:co:P:s:v")) != -1)
	{
		switch (c)
		{
			case 'd':
				conninfo = optarg;
				break;
			case 'S':
				slot = optarg;
				break;
			case 'c':
				create_slot = true;
				break;
			case 'o':
				out_path = optarg;
				break;
			case 'P':
				if (n_plugin_options == MAX_OPTIONS)
					die("too many -P options");
				/* the consumer finds the ends of transactions with it */
				if (strncmp(optarg, "include-transaction", 19) == 0)
					die("-P include-transaction: the consumer sets it itself");
				plugin_options[n_plugin_options++] = optarg;
				break;
			case 's':
				status_interval = atoi(optarg);
				if (status_interval < 1)
					die("-s must be at least 1 second");
				break;
			case 'v':
				verbose = true;
				break;
			default:
				usage();
		}
	}
	if (conninfo == NULL || slot == NULL || optind != argc)
		usage();
	for (const char *p = slot; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
			  *p == '_'))
			die("invalid slot name \"%s\"", slot);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handle_stop;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	if (out_path)
		start = recover_state();
	else
	{
		out = stdout;
		out_fd = STDOUT_FILENO;
	}

	values[0] = conninfo;
	conn = PQconnectdbParams(keys, values, 1);
	if (PQstatus(conn) != CONNECTION_OK)
		die("could not connect: %s", PQerrorMessage(conn));
	if (create_slot)
		ensure_slot();
	start_replication(start);
	last_status = now_pg();

	while (!stop_requested)
	{
		char *buf = NULL;
		int	  len;

		if (now_pg() - last_status >= (int64_t) status_interval * 1000000)
		{
			send_status(false);
			last_status = now_pg();
		}

		len = PQgetCopyData(conn, &buf, 1);
		if (len == 0)
		{
			fd_set		   fds;
			struct timeval tv = {1, 0};
			int			   sock = PQsocket(conn);

			FD_ZERO(&fds);
			FD_SET(sock, &fds);
			if (select(sock + 1, &fds, NULL, NULL, &tv) < 0 && errno != EINTR)
				die("select failed: %s", strerror(errno));
			if (!PQconsumeInput(conn))
				die("connection lost: %s", PQerrorMessage(conn));
			continue;
		}
		if (len == -1)
			break; /* the server ended the stream */
		if (len < 0)
			die("could not read from the server: %s", PQerrorMessage(conn));

		if (buf[0] == 'w' && len >= 25)
			handle_data((Lsn) get_int64(&buf[1]), buf + 25, len - 25);
		else if (buf[0] == 'k' && len >= 18)
		{
			/*
			 * Keepalive.  Between transactions everything before walEnd has
			 * been decoded and written, so it may be confirmed: a slot that
			 * sees only other tables' traffic still moves on.
			 */
			Lsn wal_end = (Lsn) get_int64(&buf[1]);

			if (!in_txn && wal_end > done_lsn)
			{
				done_lsn = wal_end;
				done_size = out_size;
			}
			if (buf[17])
			{
				send_status(false);
				last_status = now_pg();
			}
		}
		else
			die("unexpected message type \"%c\"", buf[0]);
		PQfreemem(buf);
	}

	/* Stopping: confirm what is complete, end the stream, leave */
	send_status(false);
	if (PQputCopyEnd(conn, NULL) > 0)
		PQflush(conn);
	if (verbose)
		fprintf(stderr, "strata_consumer: stopped after %lld events\n",
				events);
	PQfinish(conn);
	return 0;
}
