//! Item 1 of issue 19: the tenant is the caller's credential; a tenant header never replaces it.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenant_header_never_reaches_another_keys_answers() {
    let (url, fake) = start(Duration::ZERO).await;
    let secret = chat("What is on our private roadmap?");
    let acme = [("x-tenant-id", "acme")];
    let owner = ask_with(&url, "sk-AAA", &acme, secret.clone()).await;
    assert_eq!(owner.cache, "miss");
    // Without the operator's flag the header means nothing: the same key hits without it.
    let again = ask(&url, "sk-AAA", secret.clone()).await;
    assert_eq!(again.cache, "exact");
    for (key, spoof) in [
        ("sk-BBB", "acme"),
        ("sk-CCC", "Bearer sk-AAA"),
        ("sk-DDD", "sk-AAA"),
    ] {
        let other = ask_with(&url, key, &[("x-tenant-id", spoof)], secret.clone()).await;
        assert_eq!(other.cache, "miss", "x-tenant-id: {spoof}");
        assert_ne!(content(&other), content(&owner), "x-tenant-id: {spoof}");
    }
    // No key at all, only a header naming the owner: the anonymous partition, a miss.
    let anonymous = reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .header("x-tenant-id", "Bearer sk-AAA")
        .body(secret.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.headers()["x-cache"], "miss");
    assert_eq!(fake.calls.load(Ordering::SeqCst), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_trusted_tenant_header_narrows_within_the_key() {
    let policy = policy::Policy {
        trusted_tenant_header: true,
        ..policy::Policy::default()
    };
    let (url, fake) = start_with_policy(Duration::ZERO, policy).await;
    let q = chat("What is on our private roadmap?");
    let first = ask_with(&url, "sk-AAA", &[("x-tenant-id", "acme")], q.clone()).await;
    assert_eq!(first.cache, "miss");
    let same = ask_with(&url, "sk-AAA", &[("x-tenant-id", "acme")], q.clone()).await;
    assert_eq!(same.cache, "exact");
    for (key, tenant) in [
        ("sk-AAA", Some("globex")),
        ("sk-BBB", Some("acme")),
        ("sk-AAA", None),
    ] {
        let headers: Vec<(&str, &str)> = tenant.map(|t| ("x-tenant-id", t)).into_iter().collect();
        let a = ask_with(&url, key, &headers, q.clone()).await;
        assert_eq!(a.cache, "miss", "{key} {tenant:?}");
    }
    assert_eq!(fake.calls.load(Ordering::SeqCst), 4);
}
