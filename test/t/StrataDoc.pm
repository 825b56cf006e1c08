# StrataDoc.pm: the SQL examples of the documentation, as the doc tests
# read them (test/doctest.pl runs every file's blocks; a TAP test runs the
# blocks of one example, e.g. 011_decoder_publication.pl).
#
# A block is a ```sql fence of a markdown file (also one indented under a
# list item).  An HTML comment `<!-- doctest: skip (reason) -->` on the
# line before the fence (blank lines allowed between) marks a block that
# cannot run as written; the reason is kept.
#
# Inside a block, after a statement (on the line of its `;`, or on the
# comment lines that follow it):
#   -- ERROR:  message   (SQLSTATE XXXXX)    the statement fails so; the
#   -- DETAIL:  ...      -- HINT:  ...       SQLSTATE part is optional
#   --> text                                 one row of its result, as
#                                            `psql -At -F ' | '` prints it
# Any other comment is prose.  A statement ends with `;`, or with a psql
# command that runs it (`\gexec`, `\gset`).
package StrataDoc;

use strict;
use warnings;
use Exporter 'import';

our @EXPORT = qw(doc_blocks sql_statements);

# doc_blocks(file): the ```sql blocks of a markdown file, in order, each
# { text, line (of its first line), section (the heading above it),
#   skip (the reason, or undef) }.
sub doc_blocks
{
	my ($file) = @_;
	open(my $fh, '<', $file) or die "could not open $file: $!";
	my @lines = <$fh>;
	close $fh;

	my (@blocks, $section, $skip, $in, $indent, $lang, $start, @body);
	$section = '';
	for (my $i = 0; $i < @lines; $i++)
	{
		my $l = $lines[$i];
		if (defined $in)
		{
			if ($l =~ /^\s*```\s*$/)
			{
				push @blocks,
				  {
					text => join('', @body),
					line => $start,
					section => $section,
					skip => $skip,
					file => $file
				  }
				  if $lang eq 'sql';
				undef $in;
				undef $skip;
				@body = ();
				next;
			}
			$l =~ s/^\Q$indent\E//;
			push @body, $l;
			next;
		}
		if ($l =~ /^(\s*)```(\S*)\s*$/)
		{
			($in, $indent, $lang, $start) = (1, $1, $2, $i + 2);
			next;
		}
		if ($l =~ /^<!--\s*doctest:\s*skip\s*\((.+)\)\s*-->\s*$/)
		{
			$skip = $1;
			next;
		}
		if ($l =~ /^<!--\s*doctest:/)
		{
			die "$file:" . ($i + 1) . ": unknown doctest directive: $l";
		}
		$section = $1 if $l =~ /^#+\s+(.*?)\s*$/;
		# a directive applies to the next fence only
		undef $skip if $l =~ /\S/;
	}
	die "$file: unterminated code block at line $start\n" if defined $in;
	return @blocks;
}

# sql_statements(text): the statements of a block, in order, each
# { sql (its text, comments included), meta (a psql backslash command),
#   line (its first line in the block, from 0), results (the --> rows),
#   errors (the ERROR/DETAIL/HINT lines), sqlstate (the one shown) }.
# Quotes, dollar quotes, comments and psql variables are followed well
# enough for the SQL of this project's documentation.
sub sql_statements
{
	my ($text) = @_;
	my @stmts;
	my $cur = '';
	my $curline = 0;
	my $line = 0;
	my $len = length $text;
	my $i = 0;
	my $last;    # the statement the comments that follow belong to

	my $note = sub {
		my ($comment) = @_;
		return unless $last;
		if ($comment =~ /^-->\s?(.*?)\s*$/)
		{
			push @{ $last->{results} }, $1;
		}
		elsif ($comment =~ /^--\s*((?:ERROR|DETAIL|HINT):\s+.*?)\s*$/)
		{
			my $e = $1;
			$last->{sqlstate} = $1 if $e =~ s/\s*\(SQLSTATE (\w{5})\)$//;
			push @{ $last->{errors} }, $e;
		}
	};
	while ($i < $len)
	{
		my $c = substr($text, $i, 1);
		my $at_line_start = ($cur !~ /\S/);
		if ($at_line_start && $c eq '\\')
		{
			# a psql meta-command: the rest of the line
			my $end = index($text, "\n", $i);
			$end = $len if $end < 0;
			my $cmd = substr($text, $i, $end - $i);
			$last = {
				sql => $cmd, meta => 1, line => $line,
				results => [], errors => []
			};
			push @stmts, $last;
			$cur = '';
			$i = $end;
			next;
		}
		if ($c eq '\\')
		{
			# \g, \gexec, \gset...: the rest of the line runs the statement
			my $end = index($text, "\n", $i);
			$end = $len if $end < 0;
			$cur .= substr($text, $i, $end - $i);
			$last = {
				sql => $cur, meta => 0, line => $curline,
				results => [], errors => []
			};
			push @stmts, $last;
			$cur = '';
			$i = $end;
			next;
		}
		if ($c eq "\n")
		{
			$line++;
			$cur .= $c if $cur =~ /\S/;
			$i++;
			next;
		}
		if (substr($text, $i, 2) eq '--')
		{
			my $end = index($text, "\n", $i);
			$end = $len if $end < 0;
			my $comment = substr($text, $i, $end - $i);
			if ($cur =~ /\S/)
			{
				$cur .= $comment;
			}
			else
			{
				$note->($comment);
			}
			$i = $end;
			next;
		}
		if ($cur !~ /\S/ && $c =~ /\S/)
		{
			$curline = $line;
			undef $last;
		}
		if (substr($text, $i, 2) eq '/*')
		{
			my $end = index($text, '*/', $i + 2);
			die "unterminated comment\n" if $end < 0;
			my $s = substr($text, $i, $end + 2 - $i);
			$line += ($s =~ tr/\n//);
			$cur .= $s;
			$i = $end + 2;
			next;
		}
		if ($c eq "'" || $c eq '"')
		{
			my $escapes = ($c eq "'" && $cur =~ /[Ee]$/);
			my $j = $i + 1;
			while ($j < $len)
			{
				my $d = substr($text, $j, 1);
				if ($escapes && $d eq '\\') { $j += 2; next; }
				if ($d eq $c)
				{
					if (substr($text, $j + 1, 1) eq $c) { $j += 2; next; }
					last;
				}
				$j++;
			}
			die "unterminated quote at line $line\n" if $j >= $len;
			my $s = substr($text, $i, $j + 1 - $i);
			$line += ($s =~ tr/\n//);
			$cur .= $s;
			$i = $j + 1;
			next;
		}
		if ($c eq '$' && $cur !~ /[\w\$]$/
			&& substr($text, $i) =~ /^(\$(?:[A-Za-z_][\w]*)?\$)/)
		{
			my $tag = $1;
			my $end = index($text, $tag, $i + length $tag);
			die "unterminated dollar quote $tag at line $line\n" if $end < 0;
			my $s = substr($text, $i, $end + length($tag) - $i);
			$line += ($s =~ tr/\n//);
			$cur .= $s;
			$i = $end + length $tag;
			next;
		}
		$cur .= $c;
		$i++;
		if ($c eq ';')
		{
			$last = {
				sql => $cur, meta => 0, line => $curline,
				results => [], errors => []
			};
			push @stmts, $last;
			$cur = '';
		}
	}
	die "a statement without its ';' at line $curline: $cur\n" if $cur =~ /\S/;
	return @stmts;
}

1;
