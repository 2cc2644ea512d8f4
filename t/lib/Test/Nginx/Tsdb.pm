package Test::Nginx::Tsdb;

# Data-driven nginx tests on Test::Base, in Test::Nginx::Socket's block
# vocabulary (a small subset, same meanings).  Each block gets a fresh
# server root and a fresh nginx (Test::Nginx::Tsdb::Server), which is
# stopped before the error log is checked, so every line the block caused
# is in the log.  t/README.md lists the sections and how many assertions
# each one adds to the plan.

use strict;
use warnings;

use Test::Base -base;
use Test::Base::Filter ();
use Carp qw(croak);
use File::Basename qw(dirname);
use File::Spec;
use Test::Nginx::Tsdb::Server;

our @EXPORT = qw(run_tests fixture);

my @PER_REQUEST = qw(error_code response_body response_body_like
                     response_headers response_headers_like more_headers
                     request_body);


sub run_tests () {
    for my $block (blocks()) {
        run_block($block);
    }
}


# Bytes of a fixture: a path relative to t/data/ next to the test file, or
# an absolute path.
sub fixture ($) {
    my $name = shift;
    my $path = File::Spec->file_name_is_absolute($name) ? $name
             : File::Spec->rel2abs(dirname($0)) . "/data/$name";

    open my $fh, '<:raw', $path or croak "cannot read fixture $path: $!";
    local $/;
    return scalar(<$fh>) // '';
}


sub run_block {
    my $block = shift;
    my $name = $block->name;
    my ($n, $why) = _skip($block);
    my $srv;

    if ($n) {
        SKIP: { skip("$name - $why", $n) }
        return;
    }

    $srv = Test::Nginx::Tsdb::Server->new(
        main_config => _value($block, 'main_config') // '',
        http_config => _value($block, 'http_config') // '',
        config      => _value($block, 'config') // '',
        log_level   => _value($block, 'log_level') // 'info',
        timeout     => _value($block, 'timeout') // 10,
        user_files  => _user_files(_value($block, 'user_files')),
    );

    if (exists $block->{must_die}) {
        _run_must_die($srv, $block);
        return;
    }

    _run_requests($srv, $block);
    $srv->stop;
    _check_log($srv, $block, $srv->error_log);
    $srv->no_errors_ok("$name - no [error]/[alert]/[crit]/[emerg] in"
                       . " error.log", allow => [_patterns($srv, $block,
                                                           'error_log')]);
}


sub _run_requests {
    my ($srv, $block) = @_;
    my $name = $block->name;
    my @reqs = _requests($block);
    my $err = $srv->try_start;

    Test::More::diag("$name - nginx failed to start:\n$err\n"
                     . $srv->config_text) if defined $err;

    for my $i (0 .. $#reqs) {
        my $label = @reqs > 1 ? "$name - request " . ($i + 1) : $name;
        my $hdrs = _pick($block, 'more_headers', $i);
        my $res = defined $err ? { error => 'nginx is not running' }
                : $srv->request($srv->expand($reqs[$i]),
                                headers => $srv->expand($hdrs),
                                body => _pick($block, 'request_body', $i));

        _verbose($label, $reqs[$i], $res);
        _check_response($srv, $block, $label, $res, $i);
    }
}


sub _run_must_die {
    my ($srv, $block) = @_;
    my $name = $block->name;
    my $err = $srv->try_start;

    if (defined $err) {
        Test::More::pass("$name - nginx failed to start, as expected");
    } else {
        $srv->stop;
        Test::More::fail("$name - nginx failed to start, as expected");
        Test::More::diag("nginx started with the --- must_die config:\n"
                         . $srv->config_text);
    }

    _check_log($srv, $block, $srv->stderr . $srv->error_log);
}


sub _check_response {
    my ($srv, $block, $label, $res, $i) = @_;
    my $code = _pick($block, 'error_code', $i) // 200;
    my $body = $res->{body};

    $code =~ s/^\s+|\s+$//g;

    Test::More::is($res->{status}, $code, "$label - status $code")
        or Test::More::diag($res->{error} ? "request failed: $res->{error}"
                            : "body: " . _short($body));

    if (defined(my $want = _pick($block, 'response_body', $i))) {
        Test::More::is($body, $srv->expand($want), "$label - response_body");
    }

    if (defined(my $want = _pick($block, 'response_body_like', $i))) {
        my $re = ref $want ? $want : qr/${\ $srv->expand($want, 1)}/s;
        Test::More::like($body, $re, "$label - response_body_like");
    }

    _check_headers($srv, $res, $label,
                   _pick($block, 'response_headers', $i), 0);
    _check_headers($srv, $res, $label,
                   _pick($block, 'response_headers_like', $i), 1);
}


# "Name: value" (exact, or a regex anchored at both ends with $like),
# "!Name" (absent).  One assertion per line.
sub _check_headers {
    my ($srv, $res, $label, $spec, $like) = @_;

    return unless defined $spec;
    for my $line (grep { /\S/ } split /\n/, $spec) {
        my ($k, $v);

        if ($line =~ /^\s*!\s*([^:\s]+)\s*$/) {
            Test::More::ok(!exists $res->{headers}{lc $1},
                           "$label - header $1 absent")
                or Test::More::diag("$1: $res->{headers}{lc $1}");
            next;
        }
        ($k, $v) = $line =~ /^\s*([^:\s]+)\s*:\s*(.*?)\s*$/
            or croak "bad header line '$line' in $label";

        if ($like) {
            my $re = $srv->expand($v, 1);
            Test::More::like($res->{headers}{lc $k}, qr/^(?:$re)$/,
                             "$label - header $k like");
        } else {
            Test::More::is($res->{headers}{lc $k}, $srv->expand($v),
                           "$label - header $k");
        }
    }
}


# --- error_log: one assertion per pattern, present in $log;
# --- no_error_log: one assertion per pattern, absent from $log.
sub _check_log {
    my ($srv, $block, $log) = @_;
    my $name = $block->name;

    for my $p (_patterns($srv, $block, 'error_log')) {
        Test::More::ok(Test::Nginx::Tsdb::Server::matches_any($log, [$p]),
                       "$name - error_log has " . _show($p))
            or Test::More::diag(_short($log, 2000));
    }
    for my $p (_patterns($srv, $block, 'no_error_log')) {
        my @hits = grep { Test::Nginx::Tsdb::Server::matches_any($_, [$p]) }
                   split /\n/, $log;

        Test::More::ok(!@hits, "$name - error_log lacks " . _show($p))
            or Test::More::diag(join "\n", @hits[0 .. ($#hits < 9 ? $#hits
                                                                 : 9)]);
    }
}


# Strings are split into lines (substrings to look for); eval may give
# strings, qr// regexes, or an array of them.
sub _patterns {
    my ($srv, $block, $sec) = @_;
    my $v = _value($block, $sec);
    my @p = ref $v eq 'ARRAY' ? @$v : defined $v ? ($v) : ();

    @p = map { ref $_ eq 'ARRAY' ? @$_ : $_ } @p;
    return map { ref $_ ? $_ : map { $srv->expand($_) } grep { length }
                                   split /\n/ } @p;
}


sub _requests {
    my $block = shift;
    my $v = _value($block, 'request');
    my @reqs = ref $v eq 'ARRAY' ? @$v : defined $v ? ($v) : ();

    for my $sec (@PER_REQUEST) {
        my $s = _value($block, $sec);

        croak $block->name . ": --- $sec has " . scalar(@$s)
              . " elements for " . scalar(@reqs) . " requests"
            if ref $s eq 'ARRAY' && @$s != @reqs;
        croak $block->name . ": --- $sec without --- request"
            if defined $s && !@reqs && $sec ne 'request_body';
    }

    return @reqs;
}


# The section's value: undef when absent; an eval giving a list or an
# array ref yields an array ref.
sub _value {
    my ($block, $sec) = @_;
    my @v;

    return undef unless exists $block->{$sec};
    @v = @{ $block->{$sec} };
    return @v == 1 ? $v[0] : \@v;
}


# A per-request section: an array holds one element per request.
sub _pick {
    my ($block, $sec, $i) = @_;
    my $v = _value($block, $sec);

    return ref $v eq 'ARRAY' ? $v->[$i] : $v;
}


# ">>> name" lines, each followed by the file's content; or, from eval,
# an array of [name, content] pairs.
sub _user_files {
    my $v = shift;
    my @files;

    return [] unless defined $v;
    return $v if ref $v;
    croak "--- user_files must start with '>>> name'" unless $v =~ /\A>>> /;

    for my $chunk (split /^>>> /m, $v) {
        next unless length $chunk;
        my ($name, $content) = split /\n/, $chunk, 2;

        $name =~ s/\s+\z//;
        push @files, [$name, $content // ''];
    }

    return \@files;
}


# "--- skip_nginx: N: OP VERSION" skips N assertions when the nginx version
# satisfies OP VERSION; "--- skip_eval: N: EXPR" when EXPR is true.
sub _skip {
    my $block = shift;
    my ($s, $n, $op, $v, $code, $c);

    if (defined($s = _value($block, 'skip_nginx'))) {
        ($n, $op, $v) = $s =~ /^\s*(\d+)\s*:\s*(<=|>=|==|!=|<|>)\s*([\d.]+)\s*$/
            or croak $block->name . ": bad skip_nginx '$s', want 'N: < 1.2.3'";
        my $have = Test::Nginx::Tsdb::Server::nginx_version() // '0';
        $c = Test::Nginx::Tsdb::Server::version_cmp($have, $v);
        return ($n, "nginx $have $op $v")
            if { '<' => $c < 0, '<=' => $c <= 0, '>' => $c > 0,
                 '>=' => $c >= 0, '==' => $c == 0, '!=' => $c != 0 }->{$op};
    }

    if (defined($s = _value($block, 'skip_eval'))) {
        ($n, $code) = $s =~ /^\s*(\d+)\s*:\s*(.+)$/s
            or croak $block->name . ": bad skip_eval '$s', want 'N: EXPR'";
        my $hit = Test::Nginx::Tsdb::Filter::eval_in_main($code);
        croak $block->name . ": skip_eval failed: $@" if $@;
        return ($n, "skip_eval: $code") if $hit;
    }

    return ();
}


sub _verbose {
    my ($label, $req, $res) = @_;

    return unless $ENV{TEST_NGINX_VERBOSE};
    Test::More::diag("$label: " . (split /\n/, $req)[0] . ' -> '
                     . ($res->{status} // "error: $res->{error}") . ' '
                     . _short($res->{body}));
}


sub _show {
    my $p = shift;

    return ref $p ? "$p" : "\"$p\"";
}


sub _short {
    my ($s, $max) = @_;

    return '(undef)' unless defined $s;
    $max //= 300;
    $s = substr($s, 0, $max) . '...' if length $s > $max;
    $s =~ s/([^\x20-\x7e\n])/sprintf '\\x%02x', ord $1/ge;
    return $s;
}


# Test::Base's "eval" filter, but evaluated in package main (so a test's
# own variables and imported helpers are visible) and fatal on error
# instead of silently turning the error message into the section's value.
package Test::Nginx::Tsdb::Filter;

our @ISA = ('Test::Base::Filter');

sub eval {
    my ($self, @args) = @_;
    my @r;

    $self->assert_scalar(@args);
    @r = eval_in_main($args[0]);
    if ($@) {
        my $b = $self->current_block;
        die "eval filter failed in block '" . ($b ? $b->name : '?')
            . "': $@";
    }

    return @r;
}


sub eval_in_main {
    package main;
    no strict;
    return CORE::eval($_[0]);
}

1;

__END__

=head1 NAME

Test::Nginx::Tsdb - data-driven nginx tests (Test::Nginx::Socket style)

=head1 SYNOPSIS

    use lib 't/lib';
    use Test::Nginx::Tsdb;

    plan tests => blocks() * 3;
    run_tests();

    __DATA__

    === TEST 1: sanity
    --- config
    location = /t { return 200 "hi\n"; }
    --- request
    GET /t
    --- response_body
    hi

Sections, the assertions each adds, the procedural API
(L<Test::Nginx::Tsdb::Server>) and the environment are described in
F<t/README.md>.

=cut
