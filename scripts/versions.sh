#!/bin/bash
# scripts/versions.sh: every suite against each PostgreSQL major version
# that pg_strata supports (scripts/releases), the others than this
# machine's in a chroot of the Debian release that ships them, with that
# release's own packages.
#   scripts/versions.sh 17     `make test` in a chroot of trixie (make test PG=17)
#   scripts/versions.sh 15     `make test` here, on Debian 12
#   scripts/versions.sh all    each version of scripts/releases in turn, then
#                              one line "N passed, N failed" that sums them
#                              (make test-versions; .ci/run)
#   scripts/versions.sh 17 CMD...   CMD in place of `make test`, in the tree's
#                              copy in the chroot, after scripts/deps.sh (for
#                              development: STRATA_KEEP_CHROOT=1 below)
# As root (debootstrap, chroot and mount need it).  A chroot is made from
# the Debian mirror this machine's apt already uses (read from its sources,
# never written here) with `debootstrap --variant=minbase`; its base is
# cached as a tarball in .cache/versions/ (the .gitignore covers it), and
# the packages apt downloads into it are kept there too, so that a second
# run downloads nothing.  Each run unpacks a fresh chroot, copies the tree
# into it (without .git and the build's products), runs `make test` there
# (which installs the release's packages through scripts/deps.sh, builds
# and runs every suite) and deletes the chroot.
#
# Safety (docs/testing.md, "Other PostgreSQL versions"): nothing of the
# host is bind-mounted into a chroot, ever; a chroot gets a fresh proc and
# a fresh tmpfs on dev/shm (PostgreSQL's shared memory), the trap that
# unmounts them is set before the first mount, a chroot is deleted only
# when nothing is mounted under it, and with `rm -rf --one-file-system`.
# STRATA_KEEP_CHROOT=1 keeps the chroot (unmounted) for a look inside, and
# a later run with it set uses that chroot again, packages and all (only
# the tree is copied afresh): quicker, but not a clean run.
set -eu
# a signal ends the script through its EXIT trap (which unmounts)
trap 'exit 130' INT TERM HUP
cd "$(dirname "$0")/.."
SRC=$(pwd)
CACHE=$SRC/.cache/versions
LOG=$SRC/test/log-versions

die() { echo "versions: $*" >&2; exit 1; }

# the mount points at or under $1, deepest first
mounts_under() {
	local root
	root=$(realpath -m "$1")
	awk -v r="$root" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/self/mounts | sort -r
}

# unmount everything under $1, then delete it; refuses when something
# stays mounted (never rm -rf across a mount)
remove_root() {
	local dir=$1 m
	[ -e "$dir" ] || return 0
	for m in $(mounts_under "$dir"); do
		umount "$m" 2>/dev/null || umount -l "$m" || true
	done
	if [ -n "$(mounts_under "$dir")" ]; then
		echo "versions: still mounted under $dir, not deleting it:" >&2
		mounts_under "$dir" >&2
		return 1
	fi
	rm -rf --one-file-system "$dir"
}

# the Debian mirror of this machine's apt sources (deb822 or one-line)
mirror() {
	local m=""
	if [ -r /etc/apt/sources.list.d/debian.sources ]; then
		m=$(awk '
			/^URIs:/ { uri = $2 }
			/^Suites:/ { for (i = 2; i <= NF; i++) if ($i !~ /-security$/) ok = 1 }
			/^$/ { if (ok && uri != "") { print uri; exit } uri = ""; ok = 0 }
			END { if (ok && uri != "") print uri }' /etc/apt/sources.list.d/debian.sources | head -1)
	fi
	if [ -z "$m" ] && [ -r /etc/apt/sources.list ]; then
		m=$(awk '$1 == "deb" && $3 !~ /-security$/ { print $2; exit }' /etc/apt/sources.list)
	fi
	[ -n "$m" ] || die "no Debian mirror found in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list"
	echo "$m"
}

# the base of a release's chroot, made once: a minbase debootstrap, with
# what the suites use that minbase lacks (ps, for PostgreSQL::Test::Cluster)
base_tarball() {
	local release=$1 script=$2 tar=$CACHE/$1-minbase.tar.zst tmp
	[ -s "$tar" ] && { echo "$tar"; return 0; }
	tmp=$CACHE/$release.debootstrap
	remove_root "$tmp" >&2
	mkdir -p "$CACHE"
	echo "versions: debootstrap $release from $(mirror) (cached as $tar)" >&2
	# debootstrap mounts proc (and sys) in the target itself and unmounts
	# them when it exits; remove_root below makes sure of it
	if ! debootstrap --variant=minbase --include=procps,ca-certificates \
		"$release" "$tmp" "$(mirror)" "/usr/share/debootstrap/scripts/$script" \
		> "$LOG/debootstrap-$release.log" 2>&1; then
		tail -20 "$LOG/debootstrap-$release.log" >&2
		remove_root "$tmp" >&2
		return 1
	fi
	for m in $(mounts_under "$tmp"); do umount "$m" || true; done
	[ -z "$(mounts_under "$tmp")" ] || { remove_root "$tmp" >&2; return 1; }
	rm -rf "$tmp/var/cache/apt/archives/"*.deb
	tar -C "$tmp" --one-file-system --numeric-owner -cf - . | zstd -q -T0 -o "$tar.part" &&
		mv "$tar.part" "$tar"
	remove_root "$tmp" >&2
	[ -s "$tar" ] && echo "$tar"
}

# `make test` in a fresh chroot of the release that ships major version $1;
# its output goes to stdout, and the chroot's test/log to $LOG/pg$1
run_chroot() {
	local v=$1 release script tar root debs rc cmd reuse=0
	shift
	cmd="make test"
	[ $# -gt 0 ] && cmd="$*"
	release=$(awk -v v="$v" '$1 == v { print $2 }' scripts/releases)
	script=$(awk -v v="$v" '$1 == v { print $3 }' scripts/releases)
	[ -n "$release" ] || die "PostgreSQL $v is not in scripts/releases (supported: $(awk '/^[0-9]/ { printf "%s ", $1 }' scripts/releases))"
	command -v debootstrap > /dev/null && command -v zstd > /dev/null || scripts/deps.sh --versions
	root=$CACHE/pg$v
	debs=$CACHE/$release-debs
	if [ "${STRATA_KEEP_CHROOT:-0}" = 1 ] && [ -x "$root/usr/bin/pg_config" ] &&
		[ -z "$(mounts_under "$root")" ]; then
		reuse=1
	else
		remove_root "$root"
	fi
	# the trap before the first mount: whatever happens next, nothing stays
	# mounted and the chroot goes
	if [ "${STRATA_KEEP_CHROOT:-0}" = 1 ]; then
		trap 'for m in $(mounts_under "'"$root"'"); do umount "$m" || umount -l "$m"; done' EXIT
	else
		trap 'remove_root "'"$root"'"' EXIT
	fi
	mkdir -p "$debs"
	if [ $reuse = 0 ]; then
		tar=$(base_tarball "$release" "$script") || { echo "versions: no base for $release"; return 1; }
		mkdir -p "$root"
		zstd -q -dc "$tar" | tar -C "$root" --numeric-owner -xf -
	fi
	# apt: this machine's resolver; no service starts in the chroot; no
	# cluster made at install (the suites make their own); the mirror's
	# Release files may be past their Valid-Until (forky's is); the
	# packages downloaded before
	cp /etc/resolv.conf "$root/etc/resolv.conf"
	cp /etc/hosts "$root/etc/hosts"
	printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
	chmod 755 "$root/usr/sbin/policy-rc.d"
	mkdir -p "$root/etc/postgresql-common"
	echo "create_main_cluster = false" > "$root/etc/postgresql-common/createcluster.conf"
	cat > "$root/etc/apt/apt.conf.d/90strata" <<-'EOF'
		Acquire::Check-Valid-Until "false";
		APT::Install-Recommends "false";
		Dpkg::Options { "--force-confdef"; "--force-confold"; };
	EOF
	find "$debs" -name '*.deb' -exec cp {} "$root/var/cache/apt/archives/" \;
	# the tree, as a clean clone has it
	rm -rf --one-file-system "$root/build/strata"
	mkdir -p "$root/build/strata"
	tar -c --exclude=./.git --exclude=./.cache --exclude='*.o' --exclude='*.bc' --exclude='*.so' \
		--exclude=./test/log --exclude=./test/log-versions --exclude=./test/out \
		--exclude=./test/out_iso --exclude=./test/out_doc --exclude=./test/tmp_check \
		--exclude=./tmp_check --exclude=./.build-flags --exclude=./examples/strata_consumer . |
		tar -x -C "$root/build/strata"
	mount -t proc proc "$root/proc"
	mount -t tmpfs -o mode=1777,size=2g tmpfs "$root/dev/shm"
	echo "versions: PostgreSQL $v: $cmd in a chroot of Debian $release"
	rc=0
	chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
		LANG=C.UTF-8 TERM=dumb STRATA_ASSERTS="${STRATA_ASSERTS:-0}" \
		STRATA_WERROR="${STRATA_WERROR:-1}" \
		/bin/sh -c "cd /build/strata && scripts/deps.sh && $cmd" || rc=$?
	# what the chroot's apt downloaded, for the next run; its logs
	find "$root/var/cache/apt/archives" -maxdepth 1 -name '*.deb' -exec cp -n {} "$debs/" \;
	rm -rf "$LOG/pg$v"
	cp -r "$root/build/strata/test/log" "$LOG/pg$v" 2>/dev/null || true
	for m in $(mounts_under "$root"); do umount "$m" || umount -l "$m"; done
	if [ "${STRATA_KEEP_CHROOT:-0}" = 1 ]; then
		echo "versions: the chroot stays in $root (unmounted)"
	else
		remove_root "$root"
	fi
	trap - EXIT
	return $rc
}

# make test for major version $1: here if it is this machine's, else in a chroot
run_version() {
	local v=$1
	if [ "$v" = "$(scripts/deps.sh --major)" ]; then
		shift
		if [ $# -gt 0 ]; then
			sh -c "$*"
		else
			echo "versions: PostgreSQL $v: make test on this machine"
			make --no-print-directory test PG=
		fi
	else
		[ "$(id -u)" -eq 0 ] || die "PostgreSQL $v runs in a chroot, which needs root"
		run_chroot "$@"
	fi
}

mkdir -p "$LOG"
if [ "${1:-}" != all ]; then
	[ -n "${1:-}" ] || die "usage: scripts/versions.sh MAJOR [CMD...] | all"
	run_version "$@"
	exit
fi

# all: each version in turn, its output in $LOG/pgNN.out; then the sum
passed=0
failed=0
summary=""
start=$(date +%s)
for v in $(awk '/^[0-9]/ { print $1 }' scripts/releases); do
	vstart=$(date +%s)
	run_version "$v" 2>&1 | tee "$LOG/pg$v.out"
	last=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$LOG/pg$v.out" | tail -1)
	if [ -z "$last" ]; then
		# the run ended without its count (a chroot that could not be made)
		last="0 passed, 1 failed"
	fi
	p=${last%% passed*}
	f=${last#*, }
	f=${f%% failed*}
	passed=$((passed + p))
	failed=$((failed + f))
	summary="$summary
PostgreSQL $v: $last ($(($(date +%s) - vstart)) s)"
done
echo "== every version ($(($(date +%s) - start)) s in all)$summary"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
