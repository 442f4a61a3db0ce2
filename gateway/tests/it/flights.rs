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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn plain_and_streaming_waiters_get_the_leaders_tool_call_in_their_own_shape() {
    // Waiters start 100 ms into the leader's 400 ms call: ~300 ms when handed its answer, 700 ms
    // or more with a second round trip of their own.
    let delay = Duration::from_millis(400);
    let (url, fake) = start(delay).await;
    for (leader, waiter) in [
        (
            chat("Use a TOOL, plain first"),
            streamed_chat("Use a TOOL, plain first"),
        ),
        (
            streamed_chat("Use a TOOL, stream first"),
            chat("Use a TOOL, stream first"),
        ),
    ] {
        let before = fake.calls.load(Ordering::SeqCst);
        let lead = tokio::spawn({
            let url = url.clone();
            async move { ask(&url, "k1", leader).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let t = Instant::now();
        let waiters =
            futures_util::future::join_all((0..5).map(|_| ask(&url, "k1", waiter.clone()))).await;
        assert!(
            t.elapsed() < delay,
            "no second round trip: {:?}",
            t.elapsed()
        );
        lead.await.unwrap();
        assert_eq!(fake.calls.load(Ordering::SeqCst), before + 1);
        for a in &waiters {
            assert_eq!(a.status, 200);
            let call = if waiter["stream"] == json!(true) {
                let data: Vec<Value> = a
                    .body
                    .lines()
                    .filter_map(|l| l.strip_prefix("data: "))
                    .filter(|d| *d != "[DONE]")
                    .map(|d| serde_json::from_str(d).unwrap())
                    .collect();
                assert!(a.body.ends_with("data: [DONE]\n\n"));
                data[0]["choices"][0]["delta"]["tool_calls"][0].clone()
            } else {
                let v: Value = serde_json::from_str(&a.body).unwrap();
                assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
                v["choices"][0]["message"]["tool_calls"][0].clone()
            };
            assert_eq!(call["function"]["name"], "lookup", "{}", a.body);
            assert_eq!(call["function"]["arguments"], "{\"q\":1}");
        }
    }
}
