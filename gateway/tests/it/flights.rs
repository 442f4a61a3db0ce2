//! Item 6 of issue 19: callers waiting for a leader whose answer cannot be cached get that
//! answer; none waits and then calls the upstream itself.

use super::*;
use std::time::Instant;

/// Ten concurrent identical requests: their answers and how long each took.
async fn ten(url: &str, body: Value) -> Vec<(Answer, Duration)> {
    futures_util::future::join_all((0..10).map(|_| {
        let body = body.clone();
        async move {
            let t = Instant::now();
            let a = ask(url, "k1", body).await;
            (a, t.elapsed())
        }
    }))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn waiters_get_the_leaders_uncacheable_answer_in_one_round_trip() {
    let delay = Duration::from_millis(300);
    let (url, fake) = start(delay).await;
    let cases = [
        (chat("RATELIMIT us all"), 429),
        (streamed_chat("RATELIMIT our streams"), 429),
        (chat("Call a TOOL for us"), 200),
        (streamed_chat("Call a TOOL in a stream"), 200),
        (chat("FAIL us all"), 500),
    ];
    for (n, (body, status)) in cases.into_iter().enumerate() {
        let answers = ten(&url, body.clone()).await;
        assert_eq!(
            fake.calls.load(Ordering::SeqCst),
            n + 1,
            "one upstream call for ten callers: {body}"
        );
        let fastest = answers.iter().map(|(_, t)| *t).min().unwrap();
        let slowest = answers.iter().map(|(_, t)| *t).max().unwrap();
        assert!(fastest >= delay);
        assert!(
            slowest.as_secs_f64() <= 1.5 * fastest.as_secs_f64(),
            "{body}: slowest {slowest:?}, fastest {fastest:?}"
        );
        for (a, _) in &answers {
            assert_eq!(a.status, status, "{body}");
            assert_eq!(a.body, answers[0].0.body, "the leader's answer: {body}");
        }
        if status == 429 {
            assert!(
                answers
                    .iter()
                    .all(|(a, _)| a.header("retry-after") == Some("7"))
            );
        }
        let handed = answers
            .iter()
            .filter(|(a, _)| a.header("x-cache-shared-flight") == Some("leader"))
            .count();
        assert_eq!(handed, 9, "{body}");
    }
}
