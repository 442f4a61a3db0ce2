//! A fake OpenAI-compatible model server with a fixed latency, for load-testing the gateway
//! without a model: `cargo run --release --example fake_upstream -- --listen 127.0.0.1:8000
//! --delay-ms 500`. It answers `POST /v1/chat/completions` (plain or streamed).

#[path = "gateway/fake.rs"]
mod fake;

use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut listen = "127.0.0.1:8000".to_string();
    let mut delay_ms = 500u64;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => listen = value,
            "--delay-ms" => delay_ms = value.parse()?,
            _ => return Err(format!("unknown flag {flag}").into()),
        }
    }
    let (router, _) = fake::router(Duration::from_millis(delay_ms));
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    eprintln!("fake upstream on http://{listen}/v1, {delay_ms} ms per answer");
    axum::serve(listener, router).await?;
    Ok(())
}
