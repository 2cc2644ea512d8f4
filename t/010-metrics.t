# tsdb_metrics: the module's own metrics, summed over the workers.

use strict;
use warnings;

use lib 't/lib';
use Test::Nginx::Tsdb;

# one status and one body check per request, and the error-log check
# per block; must_die blocks: 1 + 1 log pattern
plan tests => 47;

run_tests();

__DATA__

=== TEST 1: own metrics in the text format, from both workers
--- config
location = /metrics {
    tsdb_metrics;
}
--- request
GET /metrics
--- error_code: 200
--- response_headers
Content-Type: text/plain; version=0.0.4; charset=utf-8
--- response_body_like
^# HELP tsdb_http_requests_in_flight .*
tsdb_http_requests_in_flight\{handler="metrics"\} 1
# HELP tsdb_worker_processes .*
# TYPE tsdb_worker_processes gauge
tsdb_worker_processes 2
# HELP tsdb_worker_starts_total .*
# TYPE tsdb_worker_starts_total counter
tsdb_worker_starts_total 2
# HELP tsdb_build_info .*
# TYPE tsdb_build_info gauge
tsdb_build_info\{version="[0-9.]+",nginx_version="1\.22\.\d+"\} 1



=== TEST 2: every request is counted once, whichever worker serves it
--- config
location = /metrics {
    tsdb_metrics;
}
--- request eval
[("GET /metrics") x 6]
--- error_code eval
[(200) x 6]
--- response_body_like eval
[qr/^(?!.*tsdb_http_requests_total)/s,
 map { qr/^tsdb_http_requests_total\{handler="metrics",code="200"\} $_$/m }
     1 .. 5]



=== TEST 3: status codes, bytes and the duration histogram
--- config
location = /metrics {
    tsdb_metrics;
}
--- request eval
["POST /metrics\nabc", "GET /metrics", "GET /metrics"]
--- error_code eval
[405, 200, 200]
--- response_body_like eval
[qr/405/,
 qr/^tsdb_http_requests_total\{handler="metrics",code="405"\} 1$/m,
 qr/^tsdb_http_requests_total\{handler="metrics",code="405"\} 1$
^tsdb_http_requests_total\{handler="metrics",code="200"\} 1$
.*^tsdb_http_request_bytes_total\{handler="metrics"\} [1-9]\d+$
.*^tsdb_http_request_duration_seconds_bucket\{handler="metrics",le="0\.001"\} \d$
(?:.*\n)*?tsdb_http_request_duration_seconds_bucket\{handler="metrics",le="10"\} 2$
tsdb_http_request_duration_seconds_bucket\{handler="metrics",le="30"\} 2$
tsdb_http_request_duration_seconds_bucket\{handler="metrics",le="\+Inf"\} 2$
tsdb_http_request_duration_seconds_sum\{handler="metrics"\} [0-9.e-]+$
tsdb_http_request_duration_seconds_count\{handler="metrics"\} 2$/ms]



=== TEST 4: HEAD sends the headers only
--- config
location = /metrics {
    tsdb_metrics;
}
--- request
HEAD /metrics
--- error_code: 200
--- response_body eval
""



=== TEST 5: requests to other locations are not counted
--- config
location = /metrics {
    tsdb_metrics;
}
location = /other {
    return 204;
}
--- request eval
["GET /other", "GET /other", "GET /metrics", "GET /metrics"]
--- error_code eval
[204, 204, 200, 200]
--- response_body_like eval
["", "", qr/^(?!.*code="204")/s,
 qr/^tsdb_http_requests_total\{handler="metrics",code="200"\} 1$/m]



=== TEST 6: nested locations do not inherit the handler
--- config
location /metrics {
    tsdb_metrics;

    location /metrics/inner {
        return 200 "inner\n";
    }
}
--- request
GET /metrics/inner
--- error_code: 200
--- response_body
inner



=== TEST 7: no arguments allowed
--- config
location = /metrics {
    tsdb_metrics on;
}
--- must_die
--- error_log
invalid number of arguments in "tsdb_metrics" directive



=== TEST 8: location context only
--- http_config
tsdb_metrics;
--- config
--- must_die
--- error_log
"tsdb_metrics" directive is not allowed here



=== TEST 9: one tsdb handler per location
--- config
location = /metrics {
    tsdb_metrics;
    tsdb_metrics;
}
--- must_die
--- error_log
"tsdb_metrics" conflicts with another tsdb handler in the same location



=== TEST 10: no other content handler in the same location
--- config
location = /metrics {
    proxy_pass http://127.0.0.1:1;
    tsdb_metrics;
}
--- must_die
--- error_log
"tsdb_metrics" conflicts with another content handler in the same location
