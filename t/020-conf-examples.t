# Every conf-examples/*.conf starts as it is, with only the listen port,
# the pid file and the error log redirected into the test's server root,
# and serves what its comments promise.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Test::Nginx::Tsdb;


package ExampleServer;

use parent -norequire, 'Test::Nginx::Tsdb::Server';

# The example file itself, with the module loaded and three directives
# pointed at the test's port and files; the rest is untouched.
sub config_text {
    my $self = shift;
    my $text = $self->{example};
    my $load = $self->{module} ? "load_module $self->{module};\n" : '';

    # what "make run" creates under the prefix before starting nginx
    mkdir $self->servroot . '/tmp';

    $text =~ s/^(\s*listen\s+)127\.0\.0\.1:\d+/${1}127.0.0.1:$self->{port}/mg
        or die "no 'listen 127.0.0.1:PORT' in the example\n";
    $text =~ s/^(\s*pid\s+)\S+;/${1}logs\/nginx.pid;/m;
    $text =~ s/^(\s*error_log\s+)stderr/${1}logs\/error.log/m;

    return "${load}daemon on;\n$text";
}


package main;

use Test::Nginx::Tsdb::Util qw(rwgen);

# one sample at the current time, built with the real encoder
sub write_body {
    return rwgen('{__name__="up",job="example"} ' . time * 1000 . ":1\n");
}

my @rw = ('Content-Type: application/x-protobuf', 'Content-Encoding: snappy');

# [ request, headers, body, status, body pattern ]
my %expect = (
    'quickstart.conf' => [
        [ 'GET /metrics', [], undef, 200, qr/^tsdb_worker_processes 2$/m ],
        [ 'POST /api/v1/write', \@rw, write_body(), 204, qr/^$/ ],
        [ 'GET /metrics', [], undef, 200,
          qr/^tsdb_remote_write_samples_total\{result="written"\} 1$/m ],
        [ 'GET /api/v1/query?query=count(up%7Bjob%3D%22example%22%7D)', [],
          undef, 200, qr/"result":\[\{"metric":\{\},"value":\[[\d.]+,"1"\]/ ],
    ],
    'profiles.conf' => [
        [ 'POST /ingest?name=app.cpu&format=folded', [], "main;work 3\n",
          200, qr/^$/ ],
        [ 'GET /pyroscope/label-values?label=service_name&from=now-1h'
          . '&until=now%2B1h', [], undef, 200, qr/^\["app"\]$/ ],
        [ 'POST /querier.v1.QuerierService/ProfileTypes',
          [ 'Content-Type: application/json' ], '{}', 200,
          qr/"ID":"process_cpu:cpu:nanoseconds:cpu:nanoseconds"/ ],
    ],
);

my @examples = sort glob 'conf-examples/*.conf';

plan tests => 1 + 2 * @examples
              + 2 * (map { @$_ } values %expect);

is_deeply([ sort map { s{.*/}{}r } @examples ], [ sort keys %expect ],
          'every example has expectations here');

for my $file (@examples) {
    my $name = $file =~ s{.*/}{}r;
    open my $fh, '<', $file or die "$file: $!";
    my $text = do { local $/; <$fh> };

    my $srv = ExampleServer->new;
    $srv->{example} = $text;

    my $err = $srv->try_start;
    ok(!defined $err, "$name starts") or diag($err);

    for my $e (@{ $expect{$name} // [] }) {
        my ($req, $headers, $reqbody, $code, $body) = @$e;
        my $res = $srv->request($req, headers => $headers, body => $reqbody);
        is($res->{status}, $code, "$name: $req answers $code");
        like($res->{body} // '', $body, "$name: $req body");
    }

    $srv->stop;

    my @bad = grep { /\[(?:alert|emerg|crit|error)\]/ }
              split /\n/, $srv->error_log;
    is(scalar @bad, 0, "$name: no errors logged") or diag(join "\n", @bad);
}
