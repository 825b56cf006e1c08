#!/usr/bin/perl
# scripts/errcodes.pl: check that docs/errors.md documents every SQLSTATE
# the C code raises.  The codes raised are those given to errcode() or
# GUC_check_errcode() in src/ and workers/, by name (ERRCODE_*, resolved
# through PostgreSQL's utils/errcodes.h and the ST00x codes of
# src/strata.h); an ERRCODE_ name used otherwise (compared with a caught
# error's code) is not raised.  docs/errors.md documents a code when a row
# of its table starts with it (| `22023` | ...).
# Prints "errcodes ... ok" or "errcodes ... FAILED" and the missing codes.
use strict;
use warnings;
use FindBin;

chdir "$FindBin::RealBin/.." or die;
my $pg_config = $ENV{PG_CONFIG} // 'pg_config';
chomp(my $inc = `$pg_config --includedir-server`);
my %code;
for my $h ("$inc/utils/errcodes.h", 'src/strata.h')
{
	open(my $fh, '<', $h) or die "could not open $h: $!\n";
	local $/;
	my $text = <$fh>;
	while ($text =~ /#define\s+(ERRCODE_\w+)[\s\\]+MAKE_SQLSTATE\(\s*((?:'.'\s*,?\s*){5})\)/g)
	{
		my ($name, $chars) = ($1, $2);
		$code{$name} = join('', $chars =~ /'(.)'/g);
	}
}

my %raised;    # SQLSTATE => [ file:line, ... ]
my @unknown;
for my $f (sort glob('src/*.c src/*.h workers/*.c workers/*.h'))
{
	open(my $fh, '<', $f) or die;
	local $/;
	my $text = <$fh>;
	while ($text =~ /\b(?:GUC_check_)?errcode\(\s*(ERRCODE_\w+)\s*\)/g)
	{
		my $name = $1;
		my $line = 1 + (substr($text, 0, pos $text) =~ tr/\n//);
		if (!exists $code{$name})
		{
			push @unknown, "$f:$line: $name";
			next;
		}
		push @{ $raised{ $code{$name} } }, "$f:$line";
	}
}

open(my $fh, '<', 'docs/errors.md') or die;
my %documented;
while (<$fh>)
{
	$documented{$1} = 1 if /^\|\s*`([0-9A-Z]{5})`\s*\|/;
}
close $fh;

my @missing = grep { !$documented{$_} } sort keys %raised;
if (@missing || @unknown)
{
	print "errcodes ... FAILED\n";
	print "  $_ is raised (@{ $raised{$_} }) but not in docs/errors.md\n"
	  for @missing;
	print "  $_: no such SQLSTATE name\n" for @unknown;
	exit 1;
}
printf "errcodes ... ok (%d SQLSTATEs raised, all in docs/errors.md)\n",
  scalar keys %raised;
