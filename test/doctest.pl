#!/usr/bin/perl
# test/doctest.pl: run the SQL examples of the documentation as written.
#
#   test/doctest.pl FILE.md...    (against the server of PGHOST/PGPORT,
#                                  as PGUSER, a superuser)
#
# For each file, every ```sql block (test/t/StrataDoc.pm says how they
# are read) runs in order in one psql session, in a fresh database named
# app, with ON_ERROR_STOP: the first statement that fails without showing
# `-- ERROR:` fails the file.  A statement that shows `-- ERROR:` (and
# DETAIL, HINT, SQLSTATE) must fail with that; one that shows `-->` rows
# must return exactly those rows.  Blocks marked
# `<!-- doctest: skip (reason) -->` are not run.  Afterwards the database
# is dropped (which fails while a replication slot the doc created is
# left in it), and so are the roles the file created.
#
# Prints "doctest FILE ... ok" or "doctest FILE ... FAILED" per file
# (scripts/test.sh counts these lines), the reasons, and exits non-zero
# when one failed.  The psql script and its output are kept in
# test/out_doc/.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/t";
use StrataDoc;

my $out = "$FindBin::RealBin/out_doc";
mkdir $out;
my $db = 'app';
my $failed = 0;

# psql with the options of every run; returns (exit code, stdout, stderr)
sub psql
{
	my ($dbname, $script, $name) = @_;
	my $base = "$out/$name";
	open(my $fh, '>', "$base.sql") or die;
	print $fh $script;
	close $fh;
	system(
		"psql -X -q -At -F ' | ' -v ON_ERROR_STOP=1 -d '$dbname' "
		  . "-f '$base.sql' > '$base.out' 2> '$base.err'");
	my $rc = $? >> 8;
	local $/;
	open($fh, '<', "$base.out") or die;
	my $o = <$fh>;
	close $fh;
	open($fh, '<', "$base.err") or die;
	my $e = <$fh>;
	close $fh;
	return ($rc, $o, $e);
}

# the text after each marker line "@@@ n", by n
sub split_markers
{
	my ($text) = @_;
	my %by;
	my $n;
	for my $l (split /\n/, $text)
	{
		if ($l =~ /^\@\@\@ (\d+|end)$/) { $n = $1; $by{$n} = []; next; }
		# psql -f prefixes its messages with "psql:file:line: "
		$l =~ s/^psql:[^:]*:\d+: //;
		push @{ $by{$n} }, $l if defined $n;
	}
	return \%by;
}

sub one_line
{
	my ($s) = @_;
	$s =~ s/\s+/ /g;
	$s =~ s/^ | $//g;
	return length($s) > 70 ? substr($s, 0, 67) . '...' : $s;
}

for my $file (@ARGV)
{
	(my $name = $file) =~ s{.*/}{};
	$name =~ s/\.md$//;
	my @problems;
	my @stmts;
	my $skipped = 0;
	my $script = "\\set VERBOSITY default\n";
	for my $b (doc_blocks($file))
	{
		if (defined $b->{skip})
		{
			$skipped++;
			next;
		}
		for my $s (sql_statements($b->{text}))
		{
			my $n = @stmts;
			$s->{where} = "$file:" . ($b->{line} + $s->{line});
			push @stmts, $s;
			$script .= "\\echo '\@\@\@ $n'\n\\warn '\@\@\@ $n'\n";
			if ($s->{meta})
			{
				$script .= "$s->{sql}\n";
				next;
			}
			my $fails = @{ $s->{errors} } > 0;
			$script .= "\\set ON_ERROR_STOP 0\n" if $fails;
			$script .= "$s->{sql}\n";
			if ($fails)
			{
				$script .= "\\set ON_ERROR_STOP 1\n"
				  . "\\echo '\@\@\@error' :ERROR :LAST_ERROR_SQLSTATE\n";
			}
		}
	}
	$script .= "\\echo '\@\@\@ end'\n";

	system("dropdb --if-exists '$db' && createdb '$db'") == 0
	  or die "could not create database $db\n";
	my %roles = map { $_ => 1 } split /\n/,
	  `psql -X -At -d postgres -c 'SELECT rolname FROM pg_roles'`;
	my ($rc, $o, $e) = psql($db, $script, $name);
	my $outs = split_markers($o);
	my $errs = split_markers($e);

	my $ran = 0;
	for (my $n = 0; $n < @stmts; $n++)
	{
		my $s = $stmts[$n];
		last unless exists $outs->{$n};
		$ran++;
		my @rows = @{ $outs->{$n} };
		my @err = grep { /^(ERROR|DETAIL|HINT):/ } @{ $errs->{$n} // [] };
		my $errored;
		if (@rows && $rows[-1] =~ /^\@\@\@error (\S+) ?(\S*)/)
		{
			$errored = $1 eq 'true' ? ($2 || '?') : undef;
			pop @rows;
		}
		if (!exists $outs->{ $n + 1 } && !exists $outs->{end})
		{
			# ON_ERROR_STOP stopped here
			push @problems, "$s->{where}: failed: "
			  . join(' / ', @err ? @err : @{ $errs->{$n} // ['(no message)'] });
			last;
		}
		if (@{ $s->{errors} })
		{
			if (!defined $errored)
			{
				push @problems, "$s->{where}: succeeded, the doc shows: $s->{errors}[0]";
				next;
			}
			for my $want (@{ $s->{errors} })
			{
				(my $w = $want) =~ s/\s+/ /g;
				push @problems,
				  "$s->{where}: the doc shows \"$want\", psql printed: "
				  . join(' / ', @err)
				  unless grep { (my $g = $_) =~ s/\s+/ /g; $g eq $w } @err;
			}
			push @problems,
			  "$s->{where}: SQLSTATE $errored, the doc shows $s->{sqlstate}"
			  if defined $s->{sqlstate} && $s->{sqlstate} ne $errored;
			next;
		}
		if (@{ $s->{results} })
		{
			my $want = join("\n", @{ $s->{results} });
			my $got = join("\n", map { s/\s+$//r } @rows);
			push @problems,
			  "$s->{where}: " . one_line($s->{sql}) . "\n    the doc shows: "
			  . join(' / ', @{ $s->{results} }) . "\n    psql returned: "
			  . (@rows ? join(' / ', @rows) : '(no rows)')
			  if $want ne $got;
		}
	}
	push @problems, "psql exited with $rc"
	  if $rc != 0 && !@problems;

	# what the doc leaves behind: a replication slot (but the worker's)
	# would keep WAL forever on a real server
	my $slots = `psql -X -At -d postgres -c "SELECT string_agg(slot_name, ', ') FROM pg_replication_slots s JOIN pg_database d ON d.oid = s.datoid WHERE d.datname = '$db' AND slot_name <> 'strata_' || d.oid"`;
	chomp $slots;
	push @problems, "it leaves the replication slot(s) $slots" if $slots ne '';
	my $drop = `dropdb --force '$db' 2>&1`;
	push @problems, "dropping its database failed: " . one_line($drop)
	  if $? != 0;
	for my $r (split /\n/, `psql -X -At -d postgres -c 'SELECT rolname FROM pg_roles'`)
	{
		next if $roles{$r};
		system("psql -X -q -d postgres -c 'DROP ROLE \"$r\"'") == 0
		  or push @problems, "could not drop the role $r it created";
	}

	my $summary = sprintf("%d statements of %d, %d blocks skipped",
		$ran, scalar @stmts, $skipped);
	if (@problems)
	{
		$failed++;
		print "doctest $name ... FAILED ($summary)\n";
		print "  $_\n" for @problems;
	}
	else
	{
		print "doctest $name ... ok ($summary)\n";
	}
}
exit($failed ? 1 : 0);
