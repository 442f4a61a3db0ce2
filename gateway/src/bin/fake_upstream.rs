//! A fake OpenAI-compatible model server with a fixed latency, for trying and load-testing the
//! gateway without a model:
//!
//! ```text
//! cargo run --release -p paracache-gateway --bin fake_upstream -- --listen 127.0.0.1:8000 --delay-ms 500
//! ```
//!
//! It answers `POST /v1/chat/completions` (plain or streamed) with `answer <n>: <last message>`,
//! and a 500 to a message containing FAIL, a 429 to RATELIMIT, a tool call to TOOL; GET
//! /v1/models lists one model and any other path echoes the request (see the library's `fake`).

use clap::Parser;
use std::time::Duration;

/// A fake OpenAI-compatible model server: answers POST /v1/chat/completions (plain or streamed)
/// after a fixed delay with "answer N: " and the last message, and a 500 to a message containing
/// FAIL.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8000")]
    listen: String,
    /// Milliseconds each answer waits (a model's latency)
    #[arg(long, value_name = "MS", default_value_t = 500)]
    delay_ms: u64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let (router, _) = paracache_gateway::fake::router(Duration::from_millis(args.delay_ms));
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    eprintln!(
        "fake upstream on http://{}/v1, {} ms per answer",
        listener.local_addr()?,
        args.delay_ms
    );
    axum::serve(listener, router).await?;
    Ok(())
}
