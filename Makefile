# Makefile of pg_strata (PGXS).
#
#   make && make install    build and install strata.so and the SQL files
#   make demo               set up a fresh Debian 12 machine, show it working
#   make test               the same set-up, then every suite
#   make doctest            the SQL examples of README.md and docs/ against the
#                           installed extension (scripts/doctest.sh), and every
#                           SQLSTATE raised in docs/errors.md (scripts/errcodes.pl)
#   make bench              the benchmarks of bench/
#   make test-valgrind      pg_regress and isolation with the server under
#                           valgrind (scripts/valgrind.sh)
#
# `make demo`, `make test`, `make test-valgrind` and `make bench` install
# what is missing with apt-get (see scripts/deps.sh), so they need root or
# sudo.

EXTENSION = strata
MODULE_big = strata
SRC_OBJS = src/strata.o src/settings.o src/registry.o src/stream.o \
	src/append.o src/read.o src/define.o src/aggregate.o src/command.o \
	src/projection.o src/version.o src/decoder.o src/subscription.o \
	src/subscription_catalog.o src/usercall.o \
	src/privilege.o
WORKER_OBJS = workers/workers.o workers/launcher.o workers/worker.o \
	workers/worker_decode.o workers/worker_txns.o workers/worker_dispatch.o \
	workers/worker_subs.o workers/handler.o workers/handler_call.o \
	workers/handler_apply.o workers/handler_catchup.o
OBJS = $(SRC_OBJS) $(WORKER_OBJS)
# sql/strata.sql is the install script of the current version, installed
# as sql/strata--<default_version of strata.control>.sql; the others are the
# upgrade scripts and the first release's install script (the upgrade
# chain starts from it).
EXTVERSION := $(shell sed -n "s/^default_version *= *'\(.*\)'/\1/p" strata.control)
DATA_built = sql/strata--$(EXTVERSION).sql
DATA = $(filter-out $(DATA_built),$(wildcard sql/strata--*.sql))
PGFILEDESC = "pg_strata - event sourcing inside PostgreSQL"

PG_CONFIG ?= pg_config
# src/ is on the include path, workers/ is not: a file of workers/ finds
# its own headers beside it, and a file of src/ cannot include one of them
# (the seam is src/workers.h; see docs/architecture.md).  check-layout
# below says so in words when someone tries.
PG_CPPFLAGS = -I$(srcdir)/src
# -Wextra's unused-parameter fires in PostgreSQL's own headers (and on
# every PG_FUNCTION_ARGS), so it is the one warning turned off.
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter
# STRATA_ASSERTS=1 (CI: .ci/run) compiles the extension's Assert()s in,
# whatever the server was built with: a failed one calls
# ExceptionalCondition, which every server has (pgvector's CI does the
# same).  It only checks our code: the server's own Asserts stay as built.
ifeq ($(STRATA_ASSERTS),1)
PG_CPPFLAGS += -DUSE_ASSERT_CHECKING
endif

# pg_regress reads test/sql/<name>.sql and compares with
# test/expected/<name>.out (isolation: test/specs/<name>.spec).  setup
# runs first; every other suite but projections (which appends to streams
# reads and aggregates leave) also runs alone, e.g. REGRESS=reads: it
# includes test/helpers.sql, the extension and setup's helper functions.
REGRESS = setup append expected_version idempotency bad_input reads \
	immutability transactions privileges aggregates commands \
	projections decoder subscriptions upgrade security grant_sets
REGRESS_OPTS = --inputdir=test --outputdir=test/out
ISOLATION = $(patsubst test/specs/%.spec,%,$(sort $(wildcard test/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test --outputdir=test/out_iso --load-extension=strata

EXTRA_CLEAN = $(DATA_built) test/out test/out_iso test/out_doc test/tmp_check \
	examples/strata_consumer .build-flags

# TAP tests (PostgreSQL::Test::Cluster) under test/t; run them as a non-root
# user: initdb refuses root.  scripts/test.sh does that.
PROVE_TESTS = test/t/*.pl

PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifeq ($(wildcard $(PGXS)),)
# Nothing to build with yet: only the set-up targets below work.
.DEFAULT_GOAL := deps-hint
deps-hint:
	@echo "pg_config not found: run 'make deps' (or 'make demo' / 'make test')"
else
include $(PGXS)

$(DATA_built): sql/strata.sql strata.control
	cp $< $@

# PGXS does not track headers: rebuild every object when one changes.
$(OBJS): $(wildcard src/*.h workers/*.h)

# The seam between src/ and workers/: nothing in src/ includes a header of
# workers/ (checked before every build, so `make test` fails on it too).
$(SRC_OBJS) $(SRC_OBJS:.o=.bc): | check-layout
check-layout:
	@names=$$(cd $(srcdir)/workers && ls *.h | sed 's/\.h$$//' | paste -sd'|'); \
	bad=$$(grep -lE "^[[:space:]]*#[[:space:]]*include[[:space:]]*\"([^\"]*/)?($$names)\.h\"" $(srcdir)/src/*.c $(srcdir)/src/*.h); \
	if [ -n "$$bad" ]; then \
		echo "error: src/ must not include a header of workers/ (the seam is src/workers.h): $$bad" >&2; \
		exit 1; \
	fi

# Nor compiler flags: .build-flags holds those of the last build and is
# rewritten only when they change (asserts on or off, another PG_CONFIG),
# which makes it newer than every object (and bitcode file) and so
# rebuilds them all.
BUILD_FLAGS := $(CC) $(CPPFLAGS) $(CFLAGS)
.build-flags: FORCE
	@echo '$(BUILD_FLAGS)' | cmp -s - $@ || echo '$(BUILD_FLAGS)' > $@
$(OBJS) $(OBJS:.o=.bc): .build-flags

# The example consumer of the decoding feed (docs/consumers.md): a libpq
# program, built with the extension.
all: examples/strata_consumer
examples/strata_consumer: examples/strata_consumer.c
	$(CC) -std=c99 -D_POSIX_C_SOURCE=200809L -O2 -Wall -Wextra -Werror \
		-I$(shell $(PG_CONFIG) --includedir) -o $@ $< \
		-L$(shell $(PG_CONFIG) --libdir) -lpq
endif

.PHONY: deps demo test test-valgrind bench format deps-hint tap check-layout FORCE doctest

tap:
	$(prove_installcheck)

deps:
	scripts/deps.sh

demo:
	scripts/deps.sh
	scripts/build.sh
	scripts/demo.sh

test:
	scripts/deps.sh
	scripts/build.sh
	scripts/test.sh

# the SQL examples of the docs, as written, against the installed extension
doctest:
	scripts/doctest.sh
	scripts/errcodes.pl

# asserts on unless STRATA_ASSERTS=0: this is a checking run
test-valgrind:
	scripts/deps.sh --valgrind
	STRATA_ASSERTS=$${STRATA_ASSERTS:-1} scripts/build.sh
	scripts/valgrind.sh

# never with asserts: they would cost time in what is measured
bench:
	scripts/deps.sh --bench
	STRATA_ASSERTS=0 scripts/build.sh
	bench/run.sh

format:
	clang-format -i src/*.c src/*.h workers/*.c workers/*.h examples/*.c
