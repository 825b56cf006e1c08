# Makefile of pg_strata (PGXS).
#
#   make && make install    build and install strata.so and the SQL files
#   make demo               set up a fresh Debian 12 machine, show it working
#   make test               the same set-up, then every suite
#   make bench              the benchmarks of bench/
#   make test-valgrind      pg_regress and isolation with the server under
#                           valgrind (scripts/valgrind.sh)
#
# `make demo`, `make test`, `make test-valgrind` and `make bench` install
# what is missing with apt-get (see scripts/deps.sh), so they need root or
# sudo.

EXTENSION = strata
MODULE_big = strata
OBJS = src/strata.o src/registry.o src/stream.o src/append.o src/read.o \
	src/define.o src/aggregate.o src/command.o src/projection.o \
	src/decoder.o src/subscription.o src/usercall.o src/privilege.o \
	workers/launcher.o workers/worker.o \
	workers/handler.o workers/worker_subs.o
DATA = $(wildcard sql/strata--*.sql)
PGFILEDESC = "pg_strata - event sourcing inside PostgreSQL"

PG_CONFIG ?= pg_config
PG_CPPFLAGS = -I$(srcdir)/src -I$(srcdir)/workers
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

# pg_regress reads test/<name>.sql and compares with expected/<name>.out
# (test/expected links to ../expected).
REGRESS = setup append expected_version idempotency bad_input reads \
	immutability transactions privileges aggregates commands \
	projections decoder subscriptions upgrade security grant_sets
REGRESS_OPTS = --inputdir=test --outputdir=test/out
ISOLATION = $(patsubst test/specs/%.spec,%,$(sort $(wildcard test/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test --outputdir=test/out_iso --load-extension=strata

EXTRA_CLEAN = test/out test/out_iso test/tmp_check examples/strata_consumer \
	.build-flags

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

# PGXS does not track headers: rebuild every object when one changes.
$(OBJS): $(wildcard src/*.h workers/*.h)

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

.PHONY: deps demo test test-valgrind bench format deps-hint tap FORCE

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
