# PromQL compatibility with the real Prometheus 2.42: the same data (a
# generated hour of counters with resets, gauges, classic histograms,
# summaries, staleness markers, NaN and infinities, series that start,
# stop and pause) goes by remote write into ngx_tsdb and into a
# Prometheus with --web.enable-remote-write-receiver.  Every query of
# t/data/promql/compat-queries.txt then runs against both over HTTP, as
# an instant query and as a range query, and the answers must be the
# same: status and errorType; resultType; the same series (label sets)
# with timestamps equal to the millisecond and values within 1e-9
# relative (NaN equal to NaN); in Prometheus's order where it defines
# one (a range query's matrix, sorted by labels; the instant vector of
# an outermost sort, sort_desc, or topk/bottomk without grouping, as
# "eval_ordered" in Prometheus's own tests), else compared as sets.
#
# In the corpus "{{N}}" stands for the data's base time plus N seconds
# (for "@"), so the queries stay fixed while the data moves with the
# clock: both servers accept samples only near their head.

use strict;
use warnings;

use lib 't/lib';
use JSON::PP;
use Test::More;
use Test::Nginx::Tsdb;
use Test::Nginx::Tsdb::Util qw(rwgen prometheus_flags prometheus_stop
                               prometheus_api prometheus_post uri_escape
                               @RW_V1);

my $corpus = 't/data/promql/compat-queries.txt';

plan skip_all => 'prometheus not installed'
    unless -x $Test::Nginx::Tsdb::Util::PROMETHEUS;

plan tests => 7;

my $SCRAPE = 15;            # seconds between the samples of a series
my $STEPS = 221;            # samples 0 .. 220: 55 minutes
my $REL = 1e-9;             # relative tolerance of values
my $SHOW = 15;              # mismatches listed

# the data starts an hour ago, on a whole minute
my $B = int((time - 3600) / 60) * 60;

# instant queries at, and range queries over, these offsets from $B
# (seconds), the i-th query of the corpus with the (i % 3)-th of each:
# aligned, between scrapes, after the data; steps that divide the range
# and that do not
my @INSTANT = (1800, 3007.5, 3420);
my @RANGE = ([300, 3300, 60], [3.3, 3480, 47], [1200, 2400, 15]);


# --- the data ---------------------------------------------------------

my $seed = 4;
my (%scrape, @series);


# pseudo-random in [0, 1), the same sequence on every platform
sub rnd {
    $seed = ($seed * 1103515245 + 12345) % 2147483648;
    return $seed / 2147483648;
}


# the times (ms) of the scrapes of a target: a fixed phase within the
# interval and some jitter, as a real scraper
sub scrape_ms {
    my ($target, $i) = @_;
    my $t = $scrape{$target} //= do {
        my $phase = int(rnd() * $SCRAPE * 1000);
        [map { $B * 1000 + $phase + $_ * $SCRAPE * 1000
               + int(rnd() * 61) - 30 } 0 .. $STEPS - 1];
    };

    return $t->[$i];
}


# one series: its labels and [step, value] pairs, the value a number,
# NaN, +Inf, -Inf or "stale"
sub series {
    my ($labels, @samples) = @_;
    my $target = $labels->{instance} // $labels->{job} // 'none';

    push @series, '{' . join(',', map { "$_=\"$labels->{$_}\"" }
                                  sort keys %$labels) . '} '
        . join(' ', map { scrape_ms($target, $_->[0]) . ":$_->[1]" }
                    @samples);
}


sub num {
    my ($v) = @_;
    return sprintf('%.12g', $v);
}


# a counter: increments of about $rate per second; at each step of
# $resets it starts again near zero; samples from $from to $to
sub counter {
    my ($labels, $rate, %o) = @_;
    my $v = int(rnd() * $rate * 100);
    my %reset = map { $_ => 1 } @{ $o{resets} // [] };
    my @s;

    for my $i ($o{from} // 0 .. $o{to} // $STEPS - 1) {
        $v = $reset{$i} ? int(rnd() * $rate * 5)
                        : $v + $rate * $SCRAPE * (0.5 + rnd());
        $v = int($v) unless $o{float};
        push @s, [$i, num($v)];
    }

    series($labels, @s);
}


# a gauge: $base, a wave of $amp, noise of $noise; NaN where $nan->($i)
sub gauge {
    my ($labels, $base, $amp, $noise, %o) = @_;
    my @s;

    for my $i (@{ $o{steps} // [0 .. $STEPS - 1] }) {
        my $v = $base + $amp * sin($i / 20) + $noise * (rnd() - 0.5);
        $v = $o{int} ? int($v) : sprintf('%.3f', $v);
        $v = 'NaN' if $o{nan} && $o{nan}->($i);
        push @s, [$i, $v];
    }

    series($labels, @s);
}


# a classic histogram (_bucket with le, _sum, _count), restarting at
# the steps of $resets
sub histogram {
    my ($name, $labels, %o) = @_;
    my @le = qw(0.05 0.1 0.25 0.5 1 2.5 +Inf);
    my %reset = map { $_ => 1 } @{ $o{resets} // [] };
    my (%b, %s, $sum, $count);

    ($sum, $count) = (0, 0);
    for my $i (0 .. $STEPS - 1) {
        if ($reset{$i}) {
            %b = ();
            ($sum, $count) = (0, 0);
        }
        for (1 .. int(rnd() * 20)) {
            my $x = rnd() ** 3 * 3 * ($o{scale} // 1);
            $sum += $x;
            $count++;
            $b{$_}++ for grep { $_ eq '+Inf' || $x <= $_ } @le;
        }
        push @{ $s{$_} }, [$i, $b{$_} // 0] for @le;
        push @{ $s{sum} }, [$i, num($sum)];
        push @{ $s{count} }, [$i, $count];
    }

    series({ %$labels, __name__ => "${name}_bucket", le => $_ }, @{ $s{$_} })
        for @le;
    series({ %$labels, __name__ => "${name}_sum" }, @{ $s{sum} });
    series({ %$labels, __name__ => "${name}_count" }, @{ $s{count} });
}


sub generate {
    my @api = map { "api-$_:8080" } 0 .. 2;
    my @db = map { "db-$_:9100" } 0 .. 1;
    my %job = ((map { $_ => 'api' } @api), (map { $_ => 'db' } @db));

    # up: api-2 down for five minutes
    for my $in (@api, @db) {
        series({ __name__ => 'up', job => $job{$in}, instance => $in },
               map { [$_, $in eq 'api-2:8080' && $_ >= 80 && $_ < 100
                          ? 0 : 1] } 0 .. $STEPS - 1);
    }

    # counters: api-1 restarts at step 120, one series of api-0 resets
    # twice in a row, a 503 series appears at step 150
    for my $in (@api) {
        for my $m (qw(GET POST)) {
            for my $c (qw(200 500)) {
                my @resets = $in eq 'api-1:8080' ? (120) : ();
                push @resets, 60, 61 if $in eq 'api-0:8080'
                                        && "$m$c" eq 'GET200';
                counter({ __name__ => 'http_requests_total', job => 'api',
                          instance => $in, method => $m, code => $c },
                        ($c == 500 ? 0.1 : $m eq 'GET' ? 10 : 2),
                        resets => \@resets);
            }
        }
    }
    counter({ __name__ => 'http_requests_total', job => 'api',
              instance => 'api-0:8080', method => 'GET', code => '503' },
            0.5, from => 150);

    for my $in (@db) {
        for my $cpu (0, 1) {
            for my $mode (qw(idle user system)) {
                counter({ __name__ => 'node_cpu_seconds_total',
                          job => 'db', instance => $in, cpu => $cpu,
                          mode => $mode },
                        $mode eq 'idle' ? 0.7 : 0.15, float => 1);
            }
        }
    }

    # gauges
    for my $in (@api, @db) {
        gauge({ __name__ => 'memory_usage_bytes', job => $job{$in},
                instance => $in },
              2e8 + rnd() * 6e8, 5e7, 2e7, int => 1);
        series({ __name__ => 'version_info', job => $job{$in},
                 instance => $in,
                 version => $in eq 'api-2:8080' ? '1.3.0'
                            : $job{$in} eq 'api' ? '1.2.3' : '14.2' },
               map { [$_, 1] } 0 .. $STEPS - 1);
    }
    for my $in (@db) {
        for my $sensor (qw(cpu board)) {
            gauge({ __name__ => 'temperature_celsius', job => 'db',
                    instance => $in, sensor => $sensor },
                  $sensor eq 'cpu' ? 40 : 5, 20, 4);
        }
    }
    for my $job (qw(api db)) {
        series({ __name__ => 'job_info', job => $job,
                 team => $job eq 'api' ? 'web' : 'storage' },
               map { [$_, 1] } 0 .. $STEPS - 1);
    }
    gauge({ __name__ => 'queue_length', job => 'misc' }, 3, 2, 3, int => 1);

    # histograms and summaries
    for my $in (@api) {
        for my $h ('/', '/search') {
            histogram('request_duration_seconds',
                      { job => 'api', instance => $in, handler => $h },
                      scale => $h eq '/' ? 1 : 0.3,
                      resets => $in eq 'api-1:8080' ? [120] : []);
        }
        for my $q (qw(0.5 0.9 0.99)) {
            gauge({ __name__ => 'rpc_latency_seconds', job => 'api',
                    instance => $in, quantile => $q },
                  $q * 0.4, 0.05, 0.02,
                  nan => sub { $in eq 'api-2:8080' && $q eq '0.99'
                               && $_[0] >= 30 && $_[0] <= 40 });
        }
        counter({ __name__ => 'rpc_latency_seconds_sum', job => 'api',
                  instance => $in }, 0.8, float => 1);
        counter({ __name__ => 'rpc_latency_seconds_count', job => 'api',
                  instance => $in }, 4);
    }

    # staleness: db-0 goes stale at step 80 and comes back at 120, db-1
    # goes stale at step 180 for good
    for my $in (@db) {
        my ($gone, $back) = $in eq 'db-0:9100' ? (80, 120) : (180, $STEPS);
        my @s = map { [$_, num(10 + $_ % 17)] }
                grep { $_ < $gone || $_ >= $back } 0 .. $STEPS - 1;
        @s = sort { $a->[0] <=> $b->[0] } @s, [$gone, 'stale'];
        series({ __name__ => 'flaky_gauge', job => 'db', instance => $in },
               @s);
    }

    # no marker: a gap longer than the lookback, a short one, an end
    gauge({ __name__ => 'gappy_gauge', job => 'db', instance => 'db-0:9100' },
          100, 30, 10, steps => [0 .. 40, 70 .. 90, 95 .. 150]);

    # series that appear during the hour
    counter({ __name__ => 'late_series', job => 'api',
              instance => 'api-0:8080' }, 1, from => 100);
    counter({ __name__ => 'late_series', job => 'api',
              instance => 'api-1:8080' }, 1, from => 200);

    # NaN and infinities
    my %weird = (
        nan => sub { 'NaN' },
        inf => sub { '+Inf' },
        neginf => sub { '-Inf' },
        mixed => sub {
            $_[0] % 7 == 0 ? 'NaN' : $_[0] % 13 == 0 ? '+Inf'
            : $_[0] == 50 ? '-Inf' : num($_[0] % 5 - 2)
        },
    );
    for my $k (sort keys %weird) {
        series({ __name__ => 'weird_values', job => 'misc', kind => $k },
               map { [$_, $weird{$k}->($_)] } 0 .. $STEPS - 1);
    }

    # for label_replace and label_join
    series({ __name__ => 'label_src', job => 'misc', src => 'a-b-c',
             multi => 'x:y:z' }, map { [$_, 1] } 0 .. $STEPS - 1);
    series({ __name__ => 'label_src', job => 'misc', src => 'd-e',
             multi => 'w' }, map { [$_, 2] } 0 .. $STEPS - 1);

    return join '', map { "$_\n" } @series;
}


# --- the comparison ---------------------------------------------------

my $json = JSON::PP->new->allow_nonref;


sub num_eq {
    my ($x, $y) = @_;

    return 1 if $x eq $y;
    return 0 if $x !~ /^[-+0-9.eE]+$/ || $y !~ /^[-+0-9.eE]+$/;
    return abs($x - $y) <= $REL * (abs($x) > abs($y) ? abs($x) : abs($y));
}


sub point_eq {
    my ($p, $q) = @_;

    return ref $p eq 'ARRAY' && ref $q eq 'ARRAY' && @$p == 2 && @$q == 2
           && sprintf('%.0f', $p->[0] * 1000)
              eq sprintf('%.0f', $q->[0] * 1000)
           && defined $p->[1] && defined $q->[1] && !ref $q->[1]
           && num_eq($p->[1], $q->[1]);
}


sub labels_key {
    my ($m) = @_;

    return ref $m eq 'HASH'
           ? join("\0", map { "$_\0$m->{$_}" } sort keys %$m) : '?';
}


sub show_labels {
    my ($m) = @_;

    return '?' if ref $m ne 'HASH';
    return ($m->{__name__} // '') . '{'
           . join(',', map { "$_=\"$m->{$_}\"" }
                       grep { $_ ne '__name__' } sort keys %$m) . '}';
}


sub show_point {
    my ($p, $n) = @_;

    return join ' vs ngx_tsdb ', map {
        ref $_ eq 'ARRAY' ? '[' . join(',', map { $_ // 'null' } @$_) . ']'
                          : 'none'
    } $p, $n;
}


# Prometheus's order of series: labels.Compare on sorted label pairs
sub labels_cmp {
    my ($x, $y) = @_;
    my @a = map { ($_, $x->{$_}) } sort keys %$x;
    my @b = map { ($_, $y->{$_}) } sort keys %$y;

    for my $i (0 .. ($#a < $#b ? $#a : $#b)) {
        return $a[$i] cmp $b[$i] if $a[$i] ne $b[$i];
    }
    return @a <=> @b;
}


# the series of one answer by label set; '' or what is wrong
sub series_eq {
    my ($ps, $ns, $field) = @_;
    my %n;

    return 'ngx_tsdb: result is not a list' if ref $ns ne 'ARRAY';
    return sprintf('%d series, ngx_tsdb %d', scalar @$ps, scalar @$ns)
        if @$ps != @$ns;

    for my $s (@$ns) {
        my $k = labels_key($s->{metric});
        return "ngx_tsdb: series twice: $k" if $n{$k}++ && $k ne '?';
        $n{$k} = $s;
    }

    for my $s (@$ps) {
        my $k = labels_key($s->{metric});
        my $o = $n{$k};
        my $show = show_labels($s->{metric});

        return "ngx_tsdb lacks $show" if ref $o ne 'HASH';
        if ($field eq 'value') {
            return "$show: " . show_point($s->{value}, $o->{value})
                unless point_eq($s->{value}, $o->{value});
            next;
        }
        my ($a, $b) = ($s->{values}, $o->{values});
        return "$show: no values" if ref $b ne 'ARRAY';
        for my $i (0 .. ($#$a > $#$b ? $#$a : $#$b)) {
            return "$show: point $i: " . show_point($a->[$i], $b->[$i])
                unless point_eq($a->[$i], $b->[$i]);
        }
    }

    return '';
}


# the outermost call of a query, when it is one: (name, grouping)
sub outer_call {
    my ($q) = @_;

    $q =~ s/^\s+|\s+$//g;
    while ($q =~ /^\((.*)\)$/s && balanced($1)) {
        ($q = $1) =~ s/^\s+|\s+$//g;
    }
    return () unless $q =~ /^(\w+)\s*((?:by|without)\s*\([^()]*\))?
                           \s*\((.*)\)
                           (\s*(?:by|without)\s*\([^()]*\))?$/sx
                     && balanced($3);
    return ($1, ($2 // '') . ($4 // ''));
}


sub balanced {
    my ($s) = @_;
    my $depth = 0;

    $s =~ s/"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`//g;
    for my $c ($s =~ /[()]/g) {
        $depth += $c eq '(' ? 1 : -1;
        return 0 if $depth < 0;
    }
    return $depth == 0;
}


# Prometheus's order matters for an instant query's vector when the
# outermost function orders it
sub ordered {
    my ($q) = @_;
    my ($f, $grouping) = outer_call($q);

    return defined $f && $grouping eq ''
           && $f =~ /^(?:sort|sort_desc|topk|bottomk)$/;
}


# '' when ngx_tsdb's answer is Prometheus's, else why not
sub compare {
    my ($q, $kind, $pbody, $nbody) = @_;
    my ($p, $n);

    $p = eval { $json->decode($pbody) };
    return "prometheus: no JSON answer" if ref $p ne 'HASH';
    $n = eval { $json->decode($nbody // '') };
    return "ngx_tsdb: no JSON answer" if ref $n ne 'HASH';

    if (($p->{status} // '') eq 'error') {
        return '' if ($n->{status} // '') eq 'error'
                     && ($n->{errorType} // '') eq $p->{errorType};
        return "errorType $p->{errorType}, ngx_tsdb: "
               . ($n->{status} // '?') . ' ' . ($n->{errorType} // '');
    }

    return 'ngx_tsdb: status ' . ($n->{status} // '?')
        if ($n->{status} // '') ne 'success';

    my ($pd, $nd) = ($p->{data}, $n->{data});
    return 'ngx_tsdb: no data' if ref $nd ne 'HASH';
    return "resultType $pd->{resultType}, ngx_tsdb "
           . ($nd->{resultType} // '?')
        if ($nd->{resultType} // '') ne $pd->{resultType};

    my ($pr, $nr, $type) = ($pd->{result}, $nd->{result}, $pd->{resultType});

    if ($type eq 'scalar') {
        return point_eq($pr, $nr) ? '' : 'scalar';
    }
    if ($type eq 'string') {
        return point_eq([$pr->[0], 0], [$nr->[0], 0])
               && ref $nr eq 'ARRAY' && $pr->[1] eq ($nr->[1] // '')
               ? '' : 'string';
    }

    my $why = series_eq($pr, $nr, $type eq 'vector' ? 'value' : 'values');
    return $why if $why;

    # where Prometheus defines the order, the same order
    if ($type eq 'matrix' && $kind eq 'range') {
        for my $i (1 .. $#$nr) {
            return 'ngx_tsdb: matrix not sorted by labels'
                if labels_cmp($nr->[$i - 1]{metric}, $nr->[$i]{metric}) > 0;
        }
    }
    if ($type eq 'vector' && ordered($q)) {
        for my $i (0 .. $#$pr) {
            return "order: position $i: "
                   . show_point($pr->[$i]{value}, $nr->[$i]{value})
                unless point_eq($pr->[$i]{value}, $nr->[$i]{value});
        }
    }

    return '';
}


sub abbrev {
    my ($s) = @_;

    $s //= '(none)';
    $s =~ s/\s+/ /g;
    return length $s > 400 ? substr($s, 0, 400) . '...' : $s;
}


# --- the run ----------------------------------------------------------

sub read_corpus {
    my @q;

    open my $fh, '<', $corpus or die "$corpus: $!";
    while (<$fh>) {
        chomp;
        next if /^\s*(?:#|$)/;
        push @q, $_;
    }
    close $fh;

    return @q;
}


sub at {
    my ($off) = @_;
    return sprintf('%.3f', $B + $off);
}


sub query_paths {
    my ($i, $q) = @_;
    my ($s, $e, $step) = @{ $RANGE[$i % @RANGE] };

    $q =~ s/\{\{(-?[0-9.]+)\}\}/at($1)/ge;
    $q = uri_escape($q);

    return ("/api/v1/query?query=$q&time=" . at($INSTANT[$i % @INSTANT]),
            "/api/v1/query_range?query=$q&start=" . at($s) . '&end='
            . at($e) . "&step=$step");
}


my @queries = read_corpus();
my $srv = Test::Nginx::Tsdb::Server->new(
    http_config => <<'CONF',
client_max_body_size 16m;
client_body_buffer_size 16m;
tsdb_zone main:64m path=$TEST_NGINX_DATA_DIR/main;
CONF
    config => <<'CONF');
location = /api/v1/write {
    tsdb_remote_write main;
}
location /api/v1/ {
    tsdb_query main;
}
CONF

my ($ppid, $pport);

END {
    prometheus_stop($ppid) if $ppid;
}

$srv->start;
($ppid, $pport) = prometheus_flags($srv, 'prometheus', "global: {}\n",
                                   undef,
                                   '--web.enable-remote-write-receiver');

my $body = rwgen(generate());

my $res = $srv->request('POST /api/v1/write', headers => \@RW_V1,
                        body => $body);
is($res->{status}, 204, 'ngx_tsdb took the data') or diag($res->{body});

$res = prometheus_post($pport, '/api/v1/write', $body, @RW_V1);
is($res->{status}, 204, 'Prometheus took the data') or diag($res->{body});

ok(@queries >= 300, scalar(@queries) . ' queries');

my (%pass, %nonempty, %perror, @bad, $dump);

# TSDB_COMPAT_DUMP=file: every query with both answers, for a look
if ($ENV{TSDB_COMPAT_DUMP}) {
    open $dump, '>', $ENV{TSDB_COMPAT_DUMP} or die "$ENV{TSDB_COMPAT_DUMP}: $!";
}

for my $i (0 .. $#queries) {
    my @paths = query_paths($i, $queries[$i]);

    for my $kind (qw(instant range)) {
        my $path = shift @paths;
        my $p = prometheus_api($pport, $path);
        my $n = $srv->request("GET $path")->{body};
        my $why = compare($queries[$i], $kind, $p, $n);

        print $dump "$kind [$i] $queries[$i]\n  $path\n  P $p\n  N "
                    . ($n // '') . "\n  => " . ($why || 'same') . "\n"
            if $dump;
        $nonempty{$kind}++ if $p =~ /"result":\[\{|"result":\[\d/;
        $perror{$kind}++ if $p =~ /"status":"error"/;
        if ($why eq '') {
            $pass{$kind}++;
            next;
        }
        push @bad, "$kind [$i] $queries[$i]\n    $why\n"
                   . '    prometheus: ' . abbrev($p) . "\n"
                   . '    ngx_tsdb:   ' . abbrev($n);
    }
}

my $total = 2 * @queries;
my ($pi, $pr) = map { $pass{$_} // 0 } qw(instant range);

diag(sprintf('compat: %d of %d (instant %d/%d, range %d/%d); '
             . 'Prometheus answered %d and %d of them with an error',
             $pi + $pr, $total, $pi, scalar @queries, $pr, scalar @queries,
             $perror{instant} // 0, $perror{range} // 0));

is($pi, scalar @queries, 'instant queries answer as Prometheus')
    or diag(first_bad('instant'));
is($pr, scalar @queries, 'range queries answer as Prometheus')
    or diag(first_bad('range'));

# the data is there: most queries have a non-empty answer
ok(($nonempty{instant} // 0) > @queries / 2
   && ($nonempty{range} // 0) > @queries / 3,
   'non-empty answers: instant ' . ($nonempty{instant} // 0)
   . ', range ' . ($nonempty{range} // 0));

prometheus_stop($ppid);
$ppid = undef;

$srv->stop;
$srv->no_errors_ok('nothing logged at error or above');


sub first_bad {
    my ($kind) = @_;
    my @b = grep { /^$kind/ } @bad;

    return join "\n", @b[0 .. ($#b < $SHOW - 1 ? $#b : $SHOW - 1)],
                      @b > $SHOW ? '... ' . (@b - $SHOW) . ' more' : ();
}
