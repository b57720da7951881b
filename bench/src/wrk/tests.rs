//! wrk's report read back, and the scripts' requests as the host expects them.

use super::*;

const REPORT: &str = "Running 2s test @ http://127.0.0.1:44021/logic
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.72ms    3.92ms  36.97ms   90.10%
    Req/Sec    36.18k    15.01k   51.99k    65.00%
  Latency Distribution
     50%  940.00us
     75%    3.14ms
     90%    6.59ms
     99%   19.85ms
  72410 requests in 2.02s, 17.47MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 17
Requests/sec:  35852.39
Transfer/sec:      8.65MB
";

#[test]
fn a_report_gives_rate_percentiles_and_failures() {
    let run = parse(REPORT).unwrap();
    assert_eq!(
        run,
        WrkRun {
            requests_per_second: 35852.39,
            p50_ms: 0.94,
            p99_ms: 19.85,
            non_2xx: 17,
            socket_errors: 3,
        }
    );
}

#[test]
fn a_clean_report_has_no_failures() {
    let clean: String = REPORT
        .lines()
        .filter(|l| !l.contains("errors") && !l.contains("Non-2xx"))
        .map(|l| format!("{l}\n"))
        .collect();
    let run = parse(&clean).unwrap();
    assert_eq!((run.non_2xx, run.socket_errors), (0, 0));
}

#[test]
fn durations_in_every_unit() {
    assert_eq!(millis("812.00us").unwrap(), 0.812);
    assert_eq!(millis("1.50ms").unwrap(), 1.5);
    assert_eq!(millis("2.00s").unwrap(), 2000.0);
    assert_eq!(millis("1.00m").unwrap(), 60_000.0);
    assert!(millis("3.00").is_err());
}

#[test]
fn a_report_without_figures_is_an_error() {
    assert!(parse("unable to connect to 127.0.0.1:1 Connection refused\n").is_err());
}

#[test]
fn scripts_carry_every_token_and_the_workloads_bodies() {
    let tokens = vec!["tok-a".to_owned(), "tok-b".to_owned()];
    let read = script(Workload::Read, &tokens);
    assert!(
        read.contains(r#"local tokens = {"tok-a", "tok-b"}"#),
        "{read}"
    );
    assert!(read.contains(r#"{"cmd":"1203","data":{}}"#), "{read}");
    assert!(read.contains("\"Bearer \" .. token"), "{read}");
    let write = script(Workload::Write, &tokens);
    assert!(
        write.contains(r#"{"cmd":"1201","data":{"name":"bench-' .. i .. '"}}"#),
        "{write}"
    );
    let keyed = script(Workload::KeyedWrite, &tokens);
    assert!(
        keyed.contains(r#"{"cmd":"1201","data":{"name":"bench-' .. i .. '"}}"#),
        "{keyed}"
    );
    assert!(
        keyed.contains(r#"h["Idempotency-Key"] = "wrk-" .. run"#),
        "{keyed}"
    );
    let mixed = script(Workload::Mixed, &tokens);
    for body in [
        r#"{"cmd":"1203","data":{}}"#,
        r#"{"cmd":"1101","data":{}}"#,
        r#"{"cmd":"1103","data":{"id":"potion","count":1}}"#,
    ] {
        assert!(mixed.contains(body), "{mixed}");
    }
    assert!(
        mixed.contains("roll < 80") && mixed.contains("roll < 95"),
        "{mixed}"
    );
}
