# Makefile of pg_strata (PGXS).
#
#   make && make install    build and install strata.so and the SQL files
#   make demo               set up a fresh Debian 12 machine, show it working
#   make test               the same set-up, then every suite
#   make test PG=17         every suite against PostgreSQL 17 (or 18), in a
#                           chroot of the Debian release that ships it
#                           (scripts/versions.sh; root)
#   make test-versions      make test on 15, 17 and 18 in turn, and one
#                           "N passed, N failed" line for all (CI)
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
# The source tree: here, or VPATH in a build directory of its own (what
# `pg_buildext build build-%v` does: make -C build-15 -f ../Makefile
# VPATH=..).  Such a build gets the directories of its objects and
# outputs, and the file the suites include (\i test/helpers.sql, read from
# the directory pg_regress runs in).
STRATA_SRC = $(or $(VPATH),.)
ifneq ($(STRATA_SRC),.)
$(shell mkdir -p src workers examples sql test && cp $(STRATA_SRC)/test/helpers.sql test/)
endif
SRC_OBJS = src/strata.o src/settings.o src/registry.o src/stream.o \
	src/append.o src/read.o src/define.o src/aggregate.o src/command.o \
	src/projection.o src/version.o src/decoder.o src/subscription.o \
	src/subscription_catalog.o src/usercall.o \
	src/privilege.o src/health.o src/progress.o src/epoch.o
WORKER_OBJS = workers/workers.o workers/launcher.o workers/worker.o \
	workers/worker_decode.o workers/worker_txns.o workers/worker_dispatch.o \
	workers/worker_subs.o workers/handler.o workers/handler_call.o \
	workers/handler_apply.o workers/handler_catchup.o
OBJS = $(SRC_OBJS) $(WORKER_OBJS)
# sql/strata.sql is the install script of the current version, installed
# as sql/strata--<default_version of strata.control>.sql; the others are the
# upgrade scripts and the first release's install script (the upgrade
# chain starts from it).
EXTVERSION := $(shell sed -n "s/^default_version *= *'\(.*\)'/\1/p" $(STRATA_SRC)/strata.control)
DATA_built = sql/strata--$(EXTVERSION).sql
DATA = $(filter-out $(DATA_built),$(patsubst $(STRATA_SRC)/%,%,$(wildcard $(STRATA_SRC)/sql/strata--*.sql)))
PGFILEDESC = "pg_strata - event sourcing inside PostgreSQL"
# What strata.so links: nothing but the C library, for now.  The server
# provides everything else; jansson, libcurl and OpenSSL come with
# federation (signed HTTP delivery), and then SHLIB_LINK gets them from
# pkg-config (jansson libcurl openssl) and STRATA_NEEDED their sonames.
# `make check-linkage` (run by make test) compares strata.so's NEEDED
# entries with STRATA_NEEDED, and the example consumer's with
# CONSUMER_NEEDED: a library linked but unused, or a new one, fails it.
SHLIB_LINK =
STRATA_NEEDED = libc.so.6
CONSUMER_NEEDED = libpq.so.5 libc.so.6

PG_CONFIG ?= pg_config
# src/ is on the include path, workers/ is not: a file of workers/ finds
# its own headers beside it, and a file of src/ cannot include one of them
# (the seam is src/workers.h; see docs/architecture.md).  check-layout
# below says so in words when someone tries.
PG_CPPFLAGS = -I$(srcdir)/src
# -Wextra's unused-parameter fires in PostgreSQL's own headers (and on
# every PG_FUNCTION_ARGS), so it is the one warning turned off.
# STRATA_WERROR=1 makes every warning an error: the project's own builds
# (scripts/build.sh, so make test, make demo and CI) set it; a packager's
# build, with the compiler flags of its pg_config, does not.
PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter
STRATA_WERROR_FLAG = $(if $(filter 1,$(STRATA_WERROR)),-Werror)
PG_CFLAGS += $(STRATA_WERROR_FLAG)
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
REGRESS_OPTS = --inputdir=$(STRATA_SRC)/test --outputdir=test/out
ISOLATION = $(patsubst $(STRATA_SRC)/test/specs/%.spec,%,$(sort $(wildcard $(STRATA_SRC)/test/specs/*.spec)))
ISOLATION_OPTS = --inputdir=$(STRATA_SRC)/test --outputdir=test/out_iso --load-extension=strata
# The suites need a server that preloads strata, with wal_level logical
# and the other settings of test/strata.conf.  installcheck (below) runs
# them against the server PGHOST/PGPORT name when it is set up so, and
# otherwise against an instance of their own with those settings
# (scripts/instance.sh), which is what a packager's `pg_buildext
# installcheck` or `pg_virtualenv make installcheck` needs.
# STRATA_INSTANCE=server|temp|virtualenv forces one.
NO_INSTALLCHECK = 1
STRATA_INSTANCE ?=
STRATA_TMP = test/tmp_check

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
$(OBJS): $(wildcard $(STRATA_SRC)/src/*.h $(STRATA_SRC)/workers/*.h)

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

# clang (make CC=clang) with the compiler flags of a server built with
# gcc, as Debian's is: it does not know some of gcc's warning and
# optimization options, and the gnu_printf attribute of PostgreSQL's
# headers; silenced, so that what remains is about our code.  (PGXS
# compiles the JIT bitcode with clang in any case, with flags of its own.)
ifneq ($(findstring clang,$(shell $(CC) --version 2>/dev/null | head -1)),)
override CFLAGS += -Wno-unknown-warning-option \
	-Wno-ignored-optimization-argument -Wno-ignored-attributes
endif

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
	$(CC) -std=c99 -D_POSIX_C_SOURCE=200809L -O2 -Wall -Wextra $(STRATA_WERROR_FLAG) \
		-I$(shell $(PG_CONFIG) --includedir) -o $@ $< \
		-L$(shell $(PG_CONFIG) --libdir) -lpq

# The NEEDED entries of the built objects, against the lists above (it
# builds nothing: run it after the build it checks).
check-linkage:
	@ok=1; \
	for f in $(shlib):'$(STRATA_NEEDED)' examples/strata_consumer:'$(CONSUMER_NEEDED)'; do \
		obj=$${f%%:*}; want=$$(echo $${f#*:} | tr ' ' '\n' | sort | paste -sd' '); \
		got=$$(readelf -d $$obj | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort | paste -sd' '); \
		if [ "$$got" = "$$want" ]; then echo "linkage: $$obj needs $$got"; \
		else echo "linkage: $$obj needs '$$got', expected '$$want'"; ok=0; fi; \
	done; \
	[ $$ok = 1 ]

# installcheck, in place of PGXS's (NO_INSTALLCHECK above): the same
# pg_regress and pg_isolation_regress runs, against the instance
# scripts/instance.sh chooses.  A temporary instance is pg_regress's own
# (--temp-instance, --temp-config: pg_cron's way), one for the regression
# suites and one for the isolation specs; a pg_virtualenv one runs this
# same target inside it.
installcheck: submake $(REGRESS_PREP)
	@mode=$$(PG_CONFIG='$(PG_CONFIG)' $(srcdir)/scripts/instance.sh $(STRATA_TMP) '$(STRATA_INSTANCE)') || exit 1; \
	echo "installcheck: against $$mode"; \
	if [ "$$mode" = virtualenv ]; then \
		exec env -u PGPORT pg_virtualenv -t $$(cat $(STRATA_TMP)/pgv_opts) \
			$(MAKE) --no-print-directory installcheck STRATA_INSTANCE=server; \
	fi; \
	temp=""; rtemp=""; itemp=""; \
	if [ "$$mode" = temp ]; then \
		temp="--temp-config=$(STRATA_TMP)/strata.conf"; \
		rtemp="--temp-instance=$(STRATA_TMP)/regress"; \
		itemp="--temp-instance=$(STRATA_TMP)/isolation"; \
	fi; \
	status=0; \
	$(if $(REGRESS),$(pg_regress_installcheck) $(REGRESS_OPTS) $$temp $$rtemp $(REGRESS) || status=1;) \
	$(if $(ISOLATION),$(pg_isolation_regress_installcheck) $(ISOLATION_OPTS) $$temp $$itemp $(ISOLATION) || status=1;) \
	exit $$status
endif

.PHONY: deps demo test test-versions test-valgrind bench format deps-hint tap check-layout check-linkage FORCE doctest

tap:
	$(prove_installcheck)

deps:
	scripts/deps.sh

demo:
	scripts/deps.sh
	scripts/build.sh
	scripts/demo.sh

# PG=NN: the suites against that major version (scripts/versions.sh: here
# when it is this machine's, in a chroot otherwise)
PG ?=
test:
ifneq ($(PG),)
	scripts/versions.sh $(PG)
else
	scripts/deps.sh
	scripts/build.sh
	scripts/test.sh
endif

test-versions:
	scripts/versions.sh all

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
