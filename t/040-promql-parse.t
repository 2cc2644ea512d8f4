# The PromQL parser against the real Prometheus 2.42: every expression
# of t/data/promql/parse-corpus.txt (one per line, valid and invalid)
# goes through our parser (build/promql_parse) and, as a recording rule
# of one rules file, through "promtool check rules", which reports every
# rule that fails with its index and the parse error.  Our verdict must
# agree for each expression.  The valid ones then go to a real
# Prometheus as rules: the "query" it shows for each in /api/v1/rules
# is expr.String(), which our canonical form must equal.  Error messages
# that differ are counted and listed, not failed (regex errors are worded
# by RE2 there, by our checker here).

use strict;
use warnings;

use lib 't/lib';
use File::Path qw(make_path remove_tree);
use JSON::PP;
use Test::More;
use Test::Nginx::Tsdb::Server;
use Time::HiRes qw(sleep);

my $promtool = '/usr/bin/promtool';
my $prometheus = '/usr/bin/prometheus';
my $corpus = 't/data/promql/parse-corpus.txt';
my $dir = 't/servroot-040-promql-parse';
my $cli = $ENV{TSDB_PROMQL_PARSE} || 'build/promql_parse';

plan skip_all => 'promtool not installed' unless -x $promtool;

if (!$ENV{TSDB_PROMQL_PARSE}) {
    system('make', '-s', $cli) == 0 or BAIL_OUT("make $cli failed");
}

open my $fh, '<', $corpus or die "$corpus: $!";
my @exprs = map { chomp; $_ } <$fh>;
close $fh;

plan tests => 2 * @exprs + 3;

remove_tree($dir);
make_path("$dir/data");


# a YAML double-quoted scalar holding exactly $s
sub yaml_quote {
    my ($s) = @_;

    $s =~ s/\\/\\\\/g;
    $s =~ s/"/\\"/g;
    $s =~ s/([\x00-\x1f\x7f])/sprintf('\\x%02x', ord $1)/ge;

    return "\"$s\"";
}


sub rules_file {
    my ($path, $interval, @e) = @_;

    open my $out, '>', $path or die "$path: $!";
    print $out "groups:\n- name: corpus\n  interval: $interval\n  rules:\n";

    for my $i (0 .. $#e) {
        print $out "  - record: r$i\n    expr: ", yaml_quote($e[$i]), "\n";
    }

    close $out;
}


# ours: "OK\tcanonical" or "ERR\tline:col: parse error: msg" per line
my @ours = do {
    open my $p, '-|', "$cli < $corpus" or die "$cli: $!";
    map { chomp; [split /\t/, $_, 2] } <$p>;
};

is(scalar @ours, scalar @exprs, 'our parser answered every expression');

# promtool: one file, all rules; it lists every failing rule (1-based)
rules_file("$dir/corpus.yml", '1m', @exprs);

my %perr;

my $rule_err = qr/group "corpus", rule (\d+), "r\d+": /
               . qr/could not parse expression: (.*)$/;

for (split /\n/, `$promtool check rules $dir/corpus.yml 2>&1`) {
    $perr{$1 - 1} = $2 if /$rule_err/;
}

my ($agree, $same_msg, $errors) = (0, 0, 0);

for my $i (0 .. $#exprs) {
    my $theirs = exists $perr{$i} ? 'ERR' : 'OK';
    my ($v, $text) = @{$ours[$i] // ['none', '']};

    if (is($v, $theirs, "verdict: $exprs[$i]")) {
        $agree++;
    } else {
        diag("  promtool: " . ($perr{$i} // 'valid') . "\n  ours: $text");
    }

    next unless $theirs eq 'ERR' && $v eq 'ERR';

    $errors++;

    if ($text eq $perr{$i}) {
        $same_msg++;
    } else {
        note("message differs: $exprs[$i]\n  prometheus: $perr{$i}\n"
             . "  ours:       $text");
    }
}

diag("promtool agreement: $agree of " . scalar(@exprs) . " verdicts; "
     . "$same_msg of $errors error messages identical");


# Prometheus: the valid ones as rules, each one's query as it prints it
my @valid = grep { exists $perr{$_} ? 0 : 1 } 0 .. $#exprs;
my %canon;

SKIP: {
    skip 'prometheus not installed', scalar(@valid) + 1
        unless -x $prometheus;

    rules_file("$dir/valid.yml", '1h', map { $exprs[$_] } @valid);

    open my $cfg, '>', "$dir/prometheus.yml" or die;
    print $cfg "rule_files: [valid.yml]\n";
    close $cfg;

    my $port = Test::Nginx::Tsdb::Server::free_port();
    my $pid = fork // die "fork: $!";

    if ($pid == 0) {
        open STDOUT, '>', "$dir/prometheus.log" or die;
        open STDERR, '>&', \*STDOUT or die;
        exec $prometheus, "--config.file=$dir/prometheus.yml",
             "--storage.tsdb.path=$dir/data",
             "--web.listen-address=127.0.0.1:$port" or die "exec: $!";
    }

    my $rules;

    for (1 .. 150) {
        my $res = eval { Test::Nginx::Tsdb::Server::exchange('127.0.0.1',
            $port, "GET /api/v1/rules HTTP/1.0\r\n\r\n", 30, 0) };

        if ($res && ($res->{status} // 0) == 200) {
            my $d = eval { decode_json($res->{body}) };
            $rules = $d->{data}{groups}[0]{rules} if $d;
            last if $rules && @$rules;
        }

        sleep 0.2;
    }

    kill 'TERM', $pid;
    waitpid($pid, 0);

    is(scalar @{$rules // []}, scalar @valid,
       'Prometheus loaded every valid expression');

    for my $r (@{$rules // []}) {
        my ($k) = $r->{name} =~ /^r(\d+)\z/;
        my $q = $r->{query};

        utf8::encode($q);
        $canon{$valid[$k]} = $q;
    }

    my $same = 0;

    for my $i (@valid) {
        my ($v, $text) = @{$ours[$i] // ['none', '']};

        $same++ if is($text, $canon{$i} // '(missing)',
                      "canonical: $exprs[$i]");
    }

    diag("Prometheus agreement: $same of " . scalar(@valid)
         . " canonical forms identical");
}

# every invalid expression: one more test each, so the plan is fixed
for my $i (grep { exists $perr{$_} } 0 .. $#exprs) {
    like($perr{$i}, qr/^\d+:\d+: parse error: /,
         "promtool gave a position: $exprs[$i]");
}

is(scalar(@valid) + scalar(keys %perr), scalar @exprs,
   'every expression counted once');
