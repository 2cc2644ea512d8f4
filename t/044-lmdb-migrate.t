# An LMDB index of format version 1 under the zone's path
# (store/tests/data/lmdb-v1/data.mdb, written by the code of commit
# 2903863): nginx's two workers open it at start, one converts it to
# version 2 while the other waits (docs/format/lmdb.md, "Migration from
# version 1"), and the query API answers from it what the version-1 code
# stored (store/tests/data/lmdb-v1/expected.txt): every series with its
# labels (PromQL over the index, /api/v1/series), label names and values,
# status/tsdb's series count, a negative matcher.  A
# restart finds version 2 and changes nothing.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Test::Nginx::Tsdb;
use File::Copy qw(copy);
use File::Path qw(make_path);
use JSON::PP;

my $FIXTURE = 'store/tests/data/lmdb-v1';
my $MDB_STAT = '/usr/bin/mdb_stat';

plan tests => 22;

# what the version-1 code answered, per tenant
my (%names, %values, %series, $tenant, $name);
open my $fh, '<', "$FIXTURE/expected.txt" or die "expected.txt: $!";
while (<$fh>) {
    chomp;
    if (/^tenant (\S+) id \d+$/) {
        $tenant = $1;
    } elsif (/^name \d+ (.*)$/) {
        $name = $1;
        push @{ $names{$tenant} }, $name;
    } elsif (/^value \d+ (.*)$/) {
        push @{ $values{$tenant}{$name} }, $1;
    } elsif (/^series \d+ tenant \d+ \{(.*)\}$/) {
        push @{ $series{$tenant} }, $1;
    }
}
close $fh;

my $srv = Test::Nginx::Tsdb::Server->new(
    http_config => <<'CONF',
tsdb_zone main:64m path=$TEST_NGINX_DATA_DIR/main;
CONF
    config => <<'CONF');
location /api/v1/ {
    tsdb_query main;
}
CONF

# the workers run as nobody
my $index = $srv->data_dir . '/main/index';
make_path($index);
copy("$FIXTURE/data.mdb", "$index/data.mdb") or die "copy: $!";
my ($uid, $gid) = (getpwnam('nobody'))[2, 3];
if ($> == 0) {
    chown $uid, $gid, $srv->data_dir . '/main', $index, "$index/data.mdb";
}
chmod 0700, $index;

my $json = JSON::PP->new->canonical;

sub api {
    my ($tenant, $uri) = @_;
    my $res = $srv->request("GET $uri",
                            headers => [ "X-Scope-OrgID: $tenant" ]);
    my $data = eval { $json->decode($res->{body} // '') };
    return ($res->{status} // 0, $data);
}

sub uri_escape {
    my $s = shift;
    $s =~ s/([^A-Za-z0-9_.~-])/sprintf('%%%02X', ord $1)/ge;
    return $s;
}

# the labels of each series of a tenant at 1700000000 s (every series
# in the fixture has a sample within 5 minutes before it)
sub series_at {
    my ($tenant, $sel) = @_;
    my ($st, $d) = api($tenant, '/api/v1/query?query=' . uri_escape($sel)
                       . '&time=1700000100');
    return ($st, [ sort map {
        my $m = $_->{metric};
        join ', ', map { qq($_="$m->{$_}") } sort keys %$m;
    } @{ $d->{data}{result} // [] } ]);
}

sub check_all {
    my $when = shift;
    my ($st, $d, $got);

    for my $t (sort keys %names) {
        my @want = sort @{ $series{$t} };
        ($st, $got) = series_at($t, '{__name__=~".+"}');
        is_deeply([ $st, $got ], [ 200, \@want ],
                  "$when: $t: every series, with all its labels");
    }

    # the listings read the index too (they used to see the head only)
    for my $t (sort keys %names) {
        ($st, $d) = api($t, '/api/v1/series?match[]='
                        . uri_escape('{__name__=~".+"}'));
        $got = [ sort map {
            my $m = $_;
            join ', ', map { qq($_="$m->{$_}") } sort keys %$m;
        } @{ $d->{data} // [] } ];
        is_deeply([ $st, $got ], [ 200, [ sort @{ $series{$t} } ] ],
                  "$when: $t: /api/v1/series lists every series");

        ($st, $d) = api($t, '/api/v1/labels');
        is_deeply([ $st, $d->{data} ], [ 200, [ sort @{ $names{$t} } ] ],
                  "$when: $t: /api/v1/labels lists every name");
    }

    ($st, $d) = api('team-a', '/api/v1/status/tsdb');
    is($d->{data}{headStats}{numSeries}, scalar @{ $series{'team-a'} },
       "$when: team-a: status/tsdb counts the index's series");

    ($st, $d) = api('team-a', '/api/v1/label/instance/values');
    is_deeply([ $st, $d->{data} ],
              [ 200, [ sort @{ $values{'team-a'}{instance} } ] ],
              "$when: team-a: label values");

    ($st, $d) = api('team-b', '/api/v1/label/__name__/values');
    is_deeply([ $st, $d->{data} ],
              [ 200, [ sort @{ $values{'team-b'}{__name__} } ] ],
              "$when: team-b: metric names");

    my @want = sort grep { /job="j1"/ && !/idx="1/ } @{ $series{'team-a'} };
    ($st, $got) = series_at('team-a', '{job="j1",idx!~"1.*"}');
    is_deeply([ $st, $got ], [ 200, \@want ],
              "$when: team-a: a selection with a negative matcher");
}

$srv->start;
check_all('converted');

unlike($srv->error_log, qr/\[(?:alert|emerg|crit)\]/, 'no alerts');

SKIP: {
    skip "$MDB_STAT not installed", 1 unless -x $MDB_STAT;
    my $out = `$MDB_STAT -a $index 2>&1`;
    ok($out =~ /Status of pblocks/ && $out =~ /Status of lnames/
       && $out !~ /Status of postings/, 'version 2 sub-databases')
        or diag $out;
}

$srv->restart;
check_all('restarted');
