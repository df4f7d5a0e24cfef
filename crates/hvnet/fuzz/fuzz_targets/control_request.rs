//! Any bytes as a control-socket request, and as the answer line a client reads: the daemon
//! answers exactly one JSON line (the report for `status`, an error otherwise), and the
//! client reads any line as a report or a clean error; a report survives the round trip.
#![no_main]

use hvnet::inputs::{answer, parse_answer, parse_request, Mode, Report, SimReport};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).into_owned();
    let report = Report {
        version: text.clone(),
        backend: "sim".into(),
        mode: [Mode::NonTransparent, Mode::Transparent, Mode::Steered]
            .get(data.len() % 4)
            .copied(),
        sim: Some(SimReport {
            scenario: text.clone(),
            speed: data.len() as f64 / 7.0,
            ..Default::default()
        }),
        ..Default::default()
    };
    let a = answer(data, || report.clone());
    assert!(a.ends_with('\n') && a.matches('\n').count() == 1, "{a:?}");
    match parse_request(data) {
        Ok(_) => assert_eq!(parse_answer(&a), Ok(report)),
        Err(msg) => assert!(parse_answer(&a).is_err_and(|e| e.to_string() == msg)),
    }
    if let Ok(r) = parse_answer(&text) {
        assert_eq!(parse_answer(&answer(b"status", || r.clone())), Ok(r));
    }
});
