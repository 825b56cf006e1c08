#!/usr/bin/perl
# scripts/check-meta.pl [META.json]: check the PGXN metadata file against
# the rules of the PGXN Meta Spec 1.0 (https://pgxn.org/spec/) and against
# the tree: the version is strata.control's default_version, and the
# files it names exist.  Prints one line per problem and exits non-zero
# when there is one.
#   scripts/check-meta.pl --self-test   also checks that broken copies of
#                                       META.json are refused, each for
#                                       its reason
# No validator of the spec is packaged for Debian 12 (PGXN::Meta::Validator
# is on CPAN only, pgxnclient does not validate), so the rules are written
# here from the spec's text: the required keys, the types of every key it
# defines, custom keys only as x_..., SemVer versions, terms, tags,
# license strings, prereq phases, relationships and version ranges.
use strict;
use warnings;
use JSON::PP;
use File::Basename qw(dirname);

my $root = dirname(__FILE__) . '/..';
my $self_test = @ARGV && $ARGV[0] eq '--self-test' ? shift @ARGV : undef;
my $file = shift @ARGV // "$root/META.json";

# SemVer 2.0.0 (https://semver.org)
my $num = qr/0|[1-9][0-9]*/;
my $pre = qr/(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)/;
my $semver = qr/\A$num\.$num\.$num(?:-$pre(?:\.$pre)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?\z/;
my %license_strings = map { $_ => 1 } qw(agpl_3 apache_1_1 apache_2_0
	artistic_1 artistic_2 bsd freebsd gfdl_1_2 gfdl_1_3 gpl_1 gpl_2 gpl_3
	lgpl_2_1 lgpl_3_0 mit mozilla_1_0 mozilla_1_1 openssl perl_5 postgresql
	qpl_1_0 ssleay sun zlib open_source restricted unrestricted unknown);
my %phases = map { $_ => 1 } qw(configure build test runtime develop);
my %relations = map { $_ => 1 } qw(requires recommends suggests conflicts);

# The problems found in one decoded META.json, as a list of strings.
sub check_meta
{
	my ($meta) = @_;
	my @bad;
	my $err = sub { push @bad, join('', @_) };

	my $is_str = sub { defined $_[0] && !ref $_[0] && length $_[0] > 0 };
	my $is_map = sub { ref $_[0] eq 'HASH' };
	my $is_list = sub { ref $_[0] eq 'ARRAY' };
	my $is_term = sub {
		$is_str->($_[0]) && length $_[0] >= 2 && $_[0] !~ m{[/\\\s[:cntrl:]]};
	};
	my $is_tag = sub {
		$is_str->($_[0]) && length $_[0] < 256 && $_[0] !~ m{[/\\[:cntrl:]]};
	};
	my $is_uri = sub { $is_str->($_[0]) && $_[0] =~ m{\A[A-Za-z][A-Za-z0-9+.-]*:\S+\z} };
	my $is_path = sub {
		$is_str->($_[0]) && $_[0] !~ m{\A/} && $_[0] !~ m{\\} && $_[0] !~ m{(\A|/)\.\.(/|\z)};
	};
	my $is_version = sub { $is_str->($_[0]) && $_[0] =~ $semver };
	# a version range: 0, a version, or comparisons of versions joined
	# by commas
	my $is_range = sub {
		my ($r) = @_;
		return 0 unless defined $r && !ref $r;
		return 1 if $r eq '0';
		for my $part (split /\s*,\s*/, $r, -1)
		{
			return 0 unless $part =~ /\A(?:(?:<|<=|>|>=|==|!=)\s*)?(\S+)\z/ && $1 =~ $semver;
		}
		return 1;
	};
	# keys of a map: the ones the spec defines, or custom ones (x_...)
	my $keys_ok = sub {
		my ($where, $map, @known) = @_;
		my %k = map { $_ => 1 } @known;
		for my $key (sort keys %$map)
		{
			$err->("$where: unknown key \"$key\" (custom keys begin with x_)")
			  unless $k{$key} || $key =~ /\Ax_/i;
		}
	};

	return ("the document is not a JSON object") unless $is_map->($meta);
	$keys_ok->('META.json', $meta, qw(name abstract maintainer license provides
		meta-spec version description generated_by tags no_index prereqs
		release_status resources));
	for my $key (qw(name abstract maintainer license provides meta-spec version))
	{
		$err->("required key \"$key\" is missing") unless exists $meta->{$key};
	}

	# meta-spec first: a consumer stops at a version it does not know
	if (my $ms = $meta->{'meta-spec'})
	{
		if (!$is_map->($ms))
		{
			$err->("meta-spec must be a map");
		}
		else
		{
			$keys_ok->('meta-spec', $ms, qw(version url));
			$err->("meta-spec.version must be 1.0.x, not ", $ms->{version} // 'missing')
			  unless $is_str->($ms->{version}) && $ms->{version} =~ /\A1\.0\.$num\z/;
			$err->("meta-spec.url must be a URI")
			  if exists $ms->{url} && !$is_uri->($ms->{url});
		}
	}
	$err->("name must be a term (two characters or more, no slash, backslash, space or control character)")
	  if exists $meta->{name} && !$is_term->($meta->{name});
	$err->("version must be a semantic version (x.y.z), not \"", $meta->{version} // '', "\"")
	  if exists $meta->{version} && !$is_version->($meta->{version});
	for my $key (qw(abstract description generated_by))
	{
		$err->("$key must be a non-empty string")
		  if exists $meta->{$key} && !$is_str->($meta->{$key});
	}
	if (exists $meta->{maintainer})
	{
		my $m = $meta->{maintainer};
		$err->("maintainer must be a string or a list of one or more strings")
		  unless $is_str->($m)
		  || ($is_list->($m) && @$m && !grep { !$is_str->($_) } @$m);
	}
	if (exists $meta->{license})
	{
		my $l = $meta->{license};
		if ($is_map->($l))
		{
			$err->("license: a map of licenses needs one or more") unless %$l;
			for (sort keys %$l)
			{
				$err->("license \"$_\": the value must be the URI of the license")
				  unless $is_uri->($l->{$_});
			}
		}
		else
		{
			my @l = $is_list->($l) ? @$l : ($l);
			$err->("license: a list of licenses needs one or more") unless @l;
			for (@l)
			{
				$err->("license \"", $_ // 'null', "\" is not a license string of the spec")
				  unless defined $_ && !ref $_ && $license_strings{$_};
			}
		}
	}
	if (exists $meta->{provides})
	{
		my $p = $meta->{provides};
		if (!$is_map->($p) || !%$p)
		{
			$err->("provides must be a map of one or more extensions");
		}
		else
		{
			for my $ext (sort keys %$p)
			{
				my $e = $p->{$ext};
				$err->("provides: \"$ext\" is not a term") unless $is_term->($ext);
				if (!$is_map->($e))
				{
					$err->("provides.$ext must be a map");
					next;
				}
				$keys_ok->("provides.$ext", $e, qw(file version abstract docfile));
				$err->("provides.$ext.file is required: a relative unix path")
				  unless $is_path->($e->{file});
				$err->("provides.$ext.version is required: a semantic version")
				  unless $is_version->($e->{version});
				$err->("provides.$ext.abstract must be a non-empty string")
				  if exists $e->{abstract} && !$is_str->($e->{abstract});
				$err->("provides.$ext.docfile must be a relative unix path")
				  if exists $e->{docfile} && !$is_path->($e->{docfile});
			}
		}
	}
	if (exists $meta->{tags})
	{
		my $t = $meta->{tags};
		my @t = $is_list->($t) ? @$t : ($t);
		for (@t)
		{
			$err->("tag \"", $_ // 'null', "\" must be a string under 256 characters, no slash, backslash or control character")
			  unless $is_tag->($_);
		}
	}
	if (exists $meta->{no_index})
	{
		my $n = $meta->{no_index};
		if (!$is_map->($n))
		{
			$err->("no_index must be a map");
		}
		else
		{
			$keys_ok->('no_index', $n, qw(file directory));
			for my $k (qw(file directory))
			{
				next unless exists $n->{$k};
				my @v = $is_list->($n->{$k}) ? @{ $n->{$k} } : ($n->{$k});
				for (@v)
				{
					$err->("no_index.$k: \"", $_ // 'null', "\" is not a relative unix path")
					  unless $is_path->($_);
				}
			}
		}
	}
	if (exists $meta->{prereqs})
	{
		my $p = $meta->{prereqs};
		if (!$is_map->($p))
		{
			$err->("prereqs must be a map");
		}
		else
		{
			for my $phase (sort keys %$p)
			{
				next if $phase =~ /\Ax_/i;
				$err->("prereqs: unknown phase \"$phase\"") unless $phases{$phase};
				my $ph = $p->{$phase};
				if (!$is_map->($ph))
				{
					$err->("prereqs.$phase must be a map");
					next;
				}
				for my $rel (sort keys %$ph)
				{
					next if $rel =~ /\Ax_/i;
					$err->("prereqs.$phase: unknown relationship \"$rel\"") unless $relations{$rel};
					my $r = $ph->{$rel};
					if (!$is_map->($r))
					{
						$err->("prereqs.$phase.$rel must be a map");
						next;
					}
					for my $dep (sort keys %$r)
					{
						$err->("prereqs.$phase.$rel: \"$dep\" is not a term") unless $is_term->($dep);
						$err->("prereqs.$phase.$rel.$dep: \"", $r->{$dep} // 'null', "\" is not a version range")
						  unless $is_range->($r->{$dep});
					}
				}
			}
		}
	}
	if (exists $meta->{release_status})
	{
		$err->("release_status must be stable, testing or unstable")
		  unless ($meta->{release_status} // '') =~ /\A(?:stable|testing|unstable)\z/;
	}
	if (exists $meta->{resources})
	{
		my $r = $meta->{resources};
		if (!$is_map->($r))
		{
			$err->("resources must be a map");
		}
		else
		{
			$keys_ok->('resources', $r, qw(homepage bugtracker repository));
			$err->("resources.homepage must be a URI")
			  if exists $r->{homepage} && !$is_uri->($r->{homepage});
			if (exists $r->{bugtracker})
			{
				my $b = $r->{bugtracker};
				if (!$is_map->($b))
				{
					$err->("resources.bugtracker must be a map");
				}
				else
				{
					$keys_ok->('resources.bugtracker', $b, qw(web mailto));
					$err->("resources.bugtracker.web must be a URI")
					  if exists $b->{web} && !$is_uri->($b->{web});
					$err->("resources.bugtracker.mailto must be an email address")
					  if exists $b->{mailto} && !($is_str->($b->{mailto}) && $b->{mailto} =~ /\A[^@\s]+@[^@\s]+\z/);
				}
			}
			if (exists $r->{repository})
			{
				my $g = $r->{repository};
				if (!$is_map->($g))
				{
					$err->("resources.repository must be a map");
				}
				else
				{
					$keys_ok->('resources.repository', $g, qw(url web type));
					for (qw(url web))
					{
						$err->("resources.repository.$_ must be a URI")
						  if exists $g->{$_} && !$is_uri->($g->{$_});
					}
					$err->("resources.repository.type must be a lowercase string")
					  if exists $g->{type} && !($is_str->($g->{type}) && $g->{type} !~ /[A-Z]/);
				}
			}
		}
	}
	return @bad;
}

# What the tree says: the version is the control file's default_version,
# the extension's own entry has it too, and the files named exist.
sub check_tree
{
	my ($meta) = @_;
	my @bad;
	open my $fh, '<', "$root/strata.control" or return ("cannot read strata.control: $!");
	my ($default) = map { /^\s*default_version\s*=\s*'([^']*)'/ ? $1 : () } <$fh>;
	close $fh;
	return ("strata.control has no default_version") unless defined $default;
	my $v = $meta->{version} // '';
	push @bad, "version \"$v\" is not strata.control's default_version \"$default\""
	  unless $v eq $default;
	my $p = ref $meta->{provides} eq 'HASH' ? $meta->{provides} : {};
	push @bad, "provides has no entry for the extension strata" unless $p->{strata};
	for my $ext (sort keys %$p)
	{
		my $e = $p->{$ext};
		next unless ref $e eq 'HASH';
		push @bad, "provides.$ext.version \"" . ($e->{version} // '') . "\" is not the distribution's \"$v\""
		  unless ($e->{version} // '') eq $v;
		for my $k (qw(file docfile))
		{
			push @bad, "provides.$ext.$k: no file $e->{$k} in the tree"
			  if defined $e->{$k} && !ref $e->{$k} && !-f "$root/$e->{$k}";
		}
	}
	return @bad;
}

my $text = do { local $/; open my $fh, '<', $file or die "cannot read $file: $!\n"; <$fh> };
my $meta = eval { JSON::PP->new->utf8->relaxed(0)->decode($text) };
if (!defined $meta)
{
	print "META.json: not valid JSON: $@";
	exit 1;
}
my @bad = (check_meta($meta), check_tree($meta));
print "META.json: $_\n" for @bad;

if ($self_test)
{
	# each broken copy must be refused, with a problem matching its reason
	my $json = JSON::PP->new;
	my @cases = (
		[ 'no abstract', sub { delete $_[0]{abstract} }, qr/"abstract" is missing/ ],
		[ 'no provides', sub { delete $_[0]{provides} }, qr/"provides" is missing/ ],
		[ 'meta-spec 2.0.0', sub { $_[0]{'meta-spec'}{version} = '2.0.0' }, qr/meta-spec\.version/ ],
		[ 'version 0.5', sub { $_[0]{version} = '0.5' }, qr/semantic version/ ],
		[ 'version 9.9.9', sub { $_[0]{version} = '9.9.9' }, qr/default_version/ ],
		[ 'extension version', sub { $_[0]{provides}{strata}{version} = '0.4.0' }, qr/is not the distribution's/ ],
		[ 'no file', sub { delete $_[0]{provides}{strata}{file} }, qr/file is required/ ],
		[ 'missing file', sub { $_[0]{provides}{strata}{file} = 'sql/nothing.sql' }, qr/no file sql\/nothing\.sql/ ],
		[ 'license PostgreSQL', sub { $_[0]{license} = 'PostgreSQL' }, qr/not a license string/ ],
		[ 'name with a space', sub { $_[0]{name} = 'pg strata' }, qr/name must be a term/ ],
		[ 'unknown key', sub { $_[0]{homepage} = 'https://example.org/' }, qr/unknown key "homepage"/ ],
		[ 'unknown phase', sub { $_[0]{prereqs}{install} = { requires => { PostgreSQL => '15.0.0' } } }, qr/unknown phase "install"/ ],
		[ 'bad range', sub { $_[0]{prereqs}{runtime}{requires}{PostgreSQL} = '>= 15' }, qr/not a version range/ ],
		[ 'release_status', sub { $_[0]{release_status} = 'beta' }, qr/release_status/ ],
		[ 'maintainer list', sub { $_[0]{maintainer} = [] }, qr/maintainer must be/ ],
	);
	my $failed = 0;
	for my $case (@cases)
	{
		my ($what, $break, $want) = @$case;
		my $copy = $json->decode($json->encode($meta));
		$break->($copy);
		my @found = (check_meta($copy), check_tree($copy));
		if (!grep { $_ =~ $want } @found)
		{
			print "META.json self-test: a copy with $what was not refused for it (found: ",
			  join('; ', @found) || 'nothing', ")\n";
			$failed++;
		}
	}
	print "META.json self-test: ", scalar(@cases) - $failed, " of ", scalar(@cases), " broken copies refused\n";
	push @bad, "self-test" if $failed;
}

if (@bad)
{
	exit 1;
}
print "META.json: valid (PGXN Meta Spec 1.0), version $meta->{version} = strata.control's default_version\n";
exit 0;
