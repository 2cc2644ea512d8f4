package Test::Nginx::Tsdb::Util;

# Helpers the storage tests share: request bodies (captured fixtures and
# bodies built with the real encoder, build/rwgen), the module's own
# metrics, and a real Prometheus started next to the nginx under test.

use strict;
use warnings;

use Exporter 'import';
use File::Path qw(make_path);
use IO::Socket::INET;
use Time::HiRes qw(sleep);

use Test::Nginx::Tsdb::Server;

our @EXPORT_OK = qw(slurp rwgen fixtures write_fixtures metric
                    prometheus prometheus_stop prometheus_api
                    prometheus_flags prometheus_post
                    remote_read_yml uri_escape @RW_V1);

our $PROMETHEUS = '/usr/bin/prometheus';

our @RW_V1 = ('Content-Type: application/x-protobuf',
              'Content-Encoding: snappy',
              'X-Prometheus-Remote-Write-Version: 0.1.0');


sub slurp {
    my ($f) = @_;
    open my $fh, '<:raw', $f or die "$f: $!";
    local $/;
    return scalar <$fh>;
}


# A snappy remote-write body from rwgen's text format (see bench/rwgen.c);
# $v2 builds an io.prometheus.write.v2.Request.
sub rwgen {
    my ($text, $v2) = @_;
    my $rwgen = $ENV{TSDB_RWGEN} || 'build/rwgen';
    my $tmp = "/tmp/rwgen-$$.txt";

    open my $fh, '>', $tmp or die "$tmp: $!";
    print $fh $text;
    close $fh;

    my $body = `$rwgen @{[ $v2 ? '-2' : '' ]} < $tmp`;
    unlink $tmp;
    die "rwgen failed" if $? || !length $body;

    return $body;
}


# the 40 requests a real Prometheus 2.42 sent, in order
sub fixtures {
    return sort glob 't/data/rw/req*.snappy';
}


# POSTs every fixture to $path; returns { status => count }
sub write_fixtures {
    my ($srv, $path) = @_;
    my %codes;

    for my $f (fixtures()) {
        my $res = $srv->request("POST $path", headers => \@RW_V1,
                                body => slurp($f));
        $codes{$res->{status} // 'none'}++;
    }

    return \%codes;
}


# The value of one series of /metrics, given as it is printed, e.g.
# 'tsdb_remote_write_samples_total{result="written"}'; 0 when absent.
sub metric {
    my ($srv, $name) = @_;
    my $body = $srv->request('GET /metrics')->{body} // '';

    return $body =~ /^\Q$name\E (\S+)$/m ? $1 : 0;
}


# remote_read from the server under test, at $prefix/api/v1/read
sub remote_read_yml {
    my ($srv, $prefix) = @_;

    return "global: {}\nremote_read:\n"
           . "  - url: http://127.0.0.1:" . $srv->port
           . ($prefix // '') . "/api/v1/read\n"
           . "    read_recent: true\n";
}


# Starts a Prometheus with $yml in servroot/$name (on $port, or a free
# one) and waits until it is ready; returns ($pid, $port).  Dies if it
# does not come up.
sub prometheus {
    my ($srv, $name, $yml, $port) = @_;
    my $dir = $srv->servroot . "/$name";

    $port //= Test::Nginx::Tsdb::Server::free_port();
    make_path("$dir/data");

    open my $fh, '>', "$dir/prometheus.yml" or die "$dir: $!";
    print $fh $yml;
    close $fh;

    # appended: a Prometheus restarted on the same directory keeps one log
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>>', "$dir/log" or die;
        open STDERR, '>&', \*STDOUT or die;
        exec $PROMETHEUS, "--config.file=$dir/prometheus.yml",
             "--storage.tsdb.path=$dir/data",
             "--web.listen-address=127.0.0.1:$port" or die "exec: $!";
    }

    for (1 .. 150) {
        my $res = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                        PeerPort => $port)
                  && eval { Test::Nginx::Tsdb::Server::exchange(
                         '127.0.0.1', $port, "GET /-/ready HTTP/1.0\r\n\r\n",
                         5, 0) };
        return ($pid, $port) if $res && ($res->{status} // 0) == 200;
        sleep 0.2;
    }

    kill 'TERM', $pid;
    waitpid($pid, 0);
    die "prometheus did not start, see $dir/log\n";
}


# prometheus() with extra command-line @flags (for instance
# --web.enable-remote-write-receiver): a wrapper script in
# servroot/$name that execs $PROMETHEUS with them.
sub prometheus_flags {
    my ($srv, $name, $yml, $port, @flags) = @_;
    my $dir = $srv->servroot . "/$name";
    my $wrapper = "$dir/prometheus.sh";

    make_path($dir);
    open my $fh, '>', $wrapper or die "$wrapper: $!";
    print $fh "#!/bin/sh\nexec $PROMETHEUS",
              (map { " '$_'" } @flags), ' "$@"', "\n";
    close $fh;
    chmod 0755, $wrapper or die "$wrapper: $!";

    local $PROMETHEUS = $wrapper;
    return prometheus($srv, $name, $yml, $port);
}


sub prometheus_stop {
    my ($pid) = @_;

    kill 'TERM', $pid;
    waitpid($pid, 0);
}


# GET $path from a Prometheus; the body, '' on failure
sub prometheus_api {
    my ($port, $path) = @_;
    my $res = eval { Test::Nginx::Tsdb::Server::exchange('127.0.0.1', $port,
        "GET $path HTTP/1.0\r\n\r\n", 60, 0) };

    return $res ? $res->{body} // '' : '';
}


# POST $body to a Prometheus with @headers; the response (status, body)
sub prometheus_post {
    my ($port, $path, $body, @headers) = @_;
    my ($raw) = Test::Nginx::Tsdb::Server::build_request("POST $path",
                                                          \@headers, $body);

    return Test::Nginx::Tsdb::Server::exchange('127.0.0.1', $port, $raw,
                                               60, 0);
}


sub uri_escape {
    my ($s) = @_;
    $s =~ s/([^A-Za-z0-9_.~-])/sprintf '%%%02X', ord $1/ge;
    return $s;
}


1;
