# Self-test of the test harness (t/lib/Test/Nginx/Tsdb*.pm), with stock
# nginx directives only: every block section, the HTTP client's framing,
# and the procedural API (worker kill, reload, restart).

use strict;
use warnings;

use lib 't/lib';
use Test::Nginx::Tsdb;

use File::Temp qw(tempfile);
use IO::Socket::INET;
use List::Util qw(sum);

our $blob = join '', map { chr($_ % 256) } 0 .. 4095;
our $fixture_file = do {
    my ($fh, $path) = tempfile('tsdb-harness-XXXXXX', TMPDIR => 1,
                               UNLINK => 1);
    binmode $fh;
    print {$fh} pack('N*', map { $_ * 2654435761 % 2**32 } 1 .. 64);
    close $fh;
    $path;
};

$ENV{TEST_NGINX_HARNESS_GREETING} = 'hello from env';

# Assertions per block, in file order (t/README.md, "Counting assertions").
my @per_block = (3, 3, 3, 3, 5, 4, 3, 10, 7, 5, 5, 5, 5, 2, 4, 3, 3, 3, 3,
                 2);
my $client_tests = 4;
my $procedural_tests = 26;

BAIL_OUT('@per_block has ' . @per_block . ' entries for ' . blocks()
         . ' blocks') unless @per_block == blocks();
plan tests => sum(@per_block) + $client_tests + $procedural_tests;

run_tests();
client_tests();
procedural_tests();


# The HTTP client's response framing, without a server.
sub client_tests {
    my $parse = \&Test::Nginx::Tsdb::Server::parse_response;
    my $chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                  . "5\r\nhello\r\n6; ext=1\r\n world\r\n0\r\nX-T: 1\r\n\r\n";
    my $cl = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234";
    my ($res, $need);

    ($res) = $parse->($chunked, 0);
    is($res && $res->{body}, 'hello world', 'client: chunked with trailer');

    ($res, $need) = $parse->($cl, 0);
    ok(!$res && $need == length($cl) + 5,
       'client: incomplete Content-Length body asks for the rest');

    ($res) = $parse->("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n"
                      . "Content-Length: 0\r\n\r\n", 0);
    is($res && $res->{status}, 201, 'client: 100 Continue is skipped');

    eval { $parse->($cl, 1) };
    like($@, qr/connection closed after 5 of 10 body bytes/,
         'client: truncated body at EOF is an error');
}


sub procedural_tests {
    my $hole = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                     LocalPort => 0, Listen => 1)
        or die "listen: $@";
    my $conf = <<'EOC';
location = /pid { return 200 "$pid"; }
location = /version { return 200 "v1"; }
location = /slow { proxy_pass http://127.0.0.1:$TEST_NGINX_BLACKHOLE_PORT; }
location = /echo {
    client_body_buffer_size 1m;
    mirror /devnull;
    mirror_request_body on;
    log_not_found off;
    error_page 404 405 = @echo;
}
location = /devnull { internal; return 204; }
location @echo {
    add_header X-Len $content_length always;
    add_header X-Foo $http_x_foo always;
    return 200 $request_body;
}
EOC
    my ($srv, $res, @w, @new, @after, $victim, $master, $err, @allow);

    # A listener that never accepts: requests proxied there hang.
    local $ENV{TEST_NGINX_BLACKHOLE_PORT} = $hole->sockport;

    $srv = Test::Nginx::Tsdb::Server->new(config => $conf);
    ok(eval { $srv->start; 1 }, 'proc: start') or diag($@);
    @w = $srv->worker_pids;
    is(scalar @w, 2, 'proc: two workers');
    $master = $srv->master_pid;
    ok($master && Test::Nginx::Tsdb::Server::pid_alive($master),
       'proc: master is alive');

    $res = $srv->request('GET /pid');
    is($res->{status}, 200, 'proc: GET /pid');
    ok((grep { $_ == ($res->{body} // 0) } @w), 'proc: served by a worker');

    $res = $srv->request('POST /echo', headers => ['X-Foo: bar'],
                         body => $blob);
    is($res->{body}, $blob, 'proc: binary body echoed');
    is_deeply([@{ $res->{headers} }{qw(x-len x-foo)}], [length $blob, 'bar'],
              'proc: Content-Length set and extra header sent');

    $victim = $w[0];
    @new = eval { $srv->kill_worker($victim, 'KILL') };
    is(scalar @new, 1, 'proc: SIGKILLed worker replaced') or diag($@);
    @after = $srv->worker_pids;
    ok(@after == 2 && !grep({ $_ == $victim } @after),
       'proc: two workers, the victim is not among them');
    is($srv->request('GET /version')->{body}, 'v1',
       'proc: serves after the kill');

    @w = $srv->worker_pids;
    ok(eval { $srv->reload; 1 }, 'proc: reload') or diag($@);
    @after = $srv->worker_pids;
    ok(@after == 2 && !grep({ my $o = $_; grep { $_ == $o } @w } @after),
       'proc: reload replaced every worker');
    is($srv->request('GET /version')->{status}, 200,
       'proc: serves after the reload');

    $conf =~ s/"v1"/"v2"/;
    eval { $srv->reload(config => $conf) };
    is($srv->request('GET /version')->{body}, 'v2',
       'proc: reload with a new config') or diag($@);

    eval { $srv->reload(config => "location = /t { bogus; }") };
    like($@, qr/unknown directive "bogus"/, 'proc: bad reload croaks');
    is($srv->request('GET /version')->{body}, 'v2',
       'proc: old workers serve after a rejected reload');

    open my $fh, '>', $srv->data_dir . '/kept' or die "kept: $!";
    close $fh;
    eval { $srv->restart(config => $conf) };
    isnt($srv->master_pid // $master, $master, 'proc: restart, new master')
        or diag($@);
    ok(-e $srv->data_dir . '/kept', 'proc: data dir survives a restart');
    is($srv->request('GET /version')->{body}, 'v2',
       'proc: serves after the restart');

    $res = $srv->request('GET /slow', timeout => 0.5);
    like($res->{error}, qr/^timeout after 0\.5s/, 'proc: request timeout');

    is($srv->request('GET /missing')->{status}, 404, 'proc: 404');

    $master = $srv->master_pid;
    @w = $srv->worker_pids;
    $srv->stop;
    ok(!Test::Nginx::Tsdb::Server::pid_alive($master)
       && !grep({ Test::Nginx::Tsdb::Server::pid_alive($_) } @w),
       'proc: stop ends master and workers');

    like($srv->error_log, qr/\[alert\].* exited on signal 9/,
         'proc: the kill is in the error log');
    @allow = (qr/exited on signal 9/, 'unknown directive "bogus"');
    is(scalar(my @l = $srv->error_lines(allow => \@allow)), 1,
       'proc: error_lines reports what is not allowed (the 404)');
    $srv->no_errors_ok('proc: nothing else in the error log',
                       allow => [@allow, 'open()']);

    $srv = Test::Nginx::Tsdb::Server->new(config => 'bogus;');
    $err = $srv->try_start;
    like($err, qr/unknown directive "bogus"/, 'proc: try_start reports');
}

__DATA__

=== TEST 1: sanity
--- config
location = /t { return 200 "hi\n"; }
--- request
GET /t
--- response_body
hi



=== TEST 2: main_config is at the top level, http_config in http
timer_resolution is only valid at the top level, map only in http{}.
--- main_config
timer_resolution 100ms;
--- http_config
map $uri $where { default "http"; }
--- config
location = /t { return 200 "$where\n"; }
--- request
GET /t
--- response_body
http



=== TEST 3: variables in config and request; the env is visible
--- config
location = /t {
    return 200 "$arg_p $server_port
$TEST_NGINX_SERVROOT
$TEST_NGINX_HTML_DIR
$TEST_NGINX_DATA_DIR
$TEST_NGINX_HARNESS_GREETING
";
}
--- request
GET /t?p=$TEST_NGINX_SERVER_PORT
--- response_body_like chomp
^(\d+) \1
/\S+/servroot-000-harness
/\S+/servroot-000-harness/html
/\S+/servroot-000-harness/data
hello from env
$



=== TEST 4: variables in expected text
--- config
location = /t { return 200 "$server_port $document_root\n"; }
--- request
GET /t
--- response_body
$TEST_NGINX_SERVER_PORT $TEST_NGINX_HTML_DIR



=== TEST 5: body lines of --- request, more_headers, Content-Length
--- config
location = /echo {
    client_body_buffer_size 1m;
    mirror /devnull;
    mirror_request_body on;
    log_not_found off;
    error_page 404 405 = @echo;
}
location = /devnull { internal; return 204; }
location @echo {
    add_header X-Len $content_length always;
    add_header X-Foo $http_x_foo always;
    return 200 "$request_method $request_body|";
}
--- request
POST /echo
hello world
--- more_headers
X-Foo: bar
--- response_body: POST hello world|
--- response_headers
X-Len: 11
X-Foo: bar



=== TEST 6: binary --- request_body built in Perl overrides the body lines
--- config
location = /echo {
    client_body_buffer_size 1m;
    mirror /devnull;
    mirror_request_body on;
    log_not_found off;
    error_page 404 405 = @echo;
}
location = /devnull { internal; return 204; }
location @echo {
    add_header X-Len $content_length always;
    return 200 "$request_method $request_body|";
}
--- request
POST /echo
these lines are not sent
--- request_body eval
join '', map { chr } reverse 0 .. 255
--- response_body eval
"POST " . join('', map { chr } reverse 0 .. 255) . "|"
--- response_headers
X-Len: 256



=== TEST 7: --- request_body read from a file with fixture()
--- config
location = /echo {
    client_body_buffer_size 1m;
    mirror /devnull;
    mirror_request_body on;
    log_not_found off;
    error_page 404 405 = @echo;
}
location = /devnull { internal; return 204; }
location @echo { return 200 $request_body; }
--- request
PUT /echo
--- request_body eval
fixture($::fixture_file)
--- response_body eval
fixture($::fixture_file)



=== TEST 8: several requests (eval arrays), DATA_DIR writable by workers
--- config
location /data/ {
    alias $TEST_NGINX_DATA_DIR/;
    dav_methods PUT DELETE;
    add_header X-Step $http_x_step always;
}
--- request eval
["PUT /data/blob.bin", "GET /data/blob.bin", "DELETE /data/blob.bin"]
--- request_body eval
[$::blob, undef, undef]
--- more_headers eval
["X-Step: put", "X-Step: get", "X-Step: delete"]
--- error_code eval
[201, 200, 204]
--- response_body eval
["", $::blob, ""]
--- response_headers eval
["X-Step: put", "X-Step: get", "X-Step: delete"]



=== TEST 9: chunked response, absent and regex headers
sub_filter drops Content-Length, so HTTP/1.1 gets a chunked body.
--- config
location = /t {
    default_type text/html;
    sub_filter 'world' 'nginx';
    return 200 "hello world $server_protocol\n";
}
--- request
GET /t
--- response_headers
Transfer-Encoding: chunked
!Content-Length
--- response_headers_like
Content-Type: text/html(;.*)?
Server: nginx/[\d.]+
--- response_body
hello nginx HTTP/1.1



=== TEST 10: HTTP/1.0 request line, body read until close
--- config
location = /t {
    default_type text/html;
    sub_filter 'world' 'nginx';
    return 200 "hello world $server_protocol\n";
}
--- request
GET /t HTTP/1.0
--- response_headers
!Transfer-Encoding
!Content-Length
--- response_body
hello nginx HTTP/1.0



=== TEST 11: an expected [error] line (--- error_log) passes the log check
--- config
location /files/ { alias $TEST_NGINX_HTML_DIR/; }
--- request
GET /files/missing.txt
--- error_code: 404
--- response_body_like: 404 Not Found
--- error_log
[error]
missing.txt" failed (2: No such file or directory)



=== TEST 12: --- log_level crit hides [error]; --- no_error_log
--- log_level: crit
--- config
location /files/ { alias $TEST_NGINX_HTML_DIR/; }
--- request
GET /files/missing.txt
--- error_code: 404
--- response_body_like: 404 Not Found
--- no_error_log
[error]
open()



=== TEST 13: --- user_files in the html dir (the server root)
--- user_files
>>> hello.txt
hello from a user file
>>> sub/dir/nested.txt
nested
--- request eval
["GET /hello.txt", "GET /sub/dir/nested.txt"]
--- response_body_like eval
[qr/^hello from a user file\n\z/, qr/^nested\n\z/]



=== TEST 14: --- must_die, error_log checked against nginx's output
--- config
location = /t { no_such_directive on; }
--- must_die
--- error_log eval
qr/\[emerg\] .*unknown directive "no_such_directive" in \S+nginx\.conf:\d+/



=== TEST 15: HEAD has no body; --- timeout
--- timeout: 3
--- config
location = /t { return 200 "hi\n"; }
--- request
HEAD /t
--- response_headers
Content-Length: 3
--- response_body



=== TEST 16: --- error_code, and more_headers overriding Host
--- config
location = /t { return 418 "$host\n"; }
--- request
GET /t
--- more_headers
Host: example.com
--- error_code: 418
--- response_body
example.com



=== TEST 17: --- skip_nginx skips when the version matches
--- skip_nginx: 3: < 999.0
--- config
location = /t { return 500; }
--- request
GET /t
--- response_body
never checked



=== TEST 18: --- skip_nginx runs when the version does not match
--- skip_nginx: 3: < 0.1
--- config
location = /t { return 200 "ran\n"; }
--- request
GET /t
--- response_body
ran



=== TEST 19: --- skip_eval
--- skip_eval: 3: 1 + 1 == 2
--- config
location = /t { return 500; }
--- request
GET /t
--- response_body
never checked



=== TEST 20: a block without a request checks the start-up only
--- config
location = /t { return 204; }
--- error_log
start worker processes
