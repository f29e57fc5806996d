//! What happens before routing, spoken over a raw socket: a slow client
//! (slowloris) is answered 408 and cut off by the configured timeout; a
//! malformed request line, a head larger than the framework's buffer, and a
//! request with both `Content-Length` and `Transfer-Encoding` (the request
//! smuggling shape) are refused and the connection closed, and nothing
//! smuggled behind them runs. These answers come from actix-http itself,
//! before any handler, so they carry no JSON body (the framework does not
//! let an application shape them); everything past routing answers with the
//! JSON error body.

use anyhow::{Result, bail};
use hearth_tests::{Db, TestApp, on_both_databases};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

on_both_databases!(slow_and_malformed_requests_are_cut_off_before_any_handler);

fn address(app: &TestApp) -> String {
    app.address.trim_start_matches("http://").to_owned()
}

/// Everything the server says until it closes the connection (at most
/// `within`).
async fn answer(stream: &mut TcpStream, within: Duration) -> Result<String> {
    let mut got = Vec::new();
    let deadline = Instant::now() + within;
    let mut buffer = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!(
                "the connection stayed open; got {:?}",
                String::from_utf8_lossy(&got)
            );
        }
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(String::from_utf8_lossy(&got).into_owned()),
            Ok(Ok(n)) => got.extend_from_slice(&buffer[..n]),
            Err(_) => continue,
        }
    }
}

fn status(answer: &str) -> Option<u16> {
    answer.split_whitespace().nth(1)?.parse().ok()
}

async fn slow_and_malformed_requests_are_cut_off_before_any_handler(db: Db) -> Result<()> {
    let app = TestApp::spawn_with(db, |c| c.limits.request_head_timeout_ms = 700).await?;
    let at = address(&app);

    // Slowloris: a header a byte at a time, never finished.
    let mut slow = TcpStream::connect(&at).await?;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: hearth\r\n")
        .await?;
    let started = Instant::now();
    let trickle = async {
        for byte in b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
            .iter()
            .cycle()
            .take(40)
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if slow.write_all(&[*byte]).await.is_err() {
                break;
            }
        }
    };
    trickle.await;
    let heard = answer(&mut slow, Duration::from_secs(5)).await?;
    assert!(
        heard.is_empty() || status(&heard) == Some(408),
        "a slow head is answered 408 or dropped: {heard:?}"
    );
    // The client would have trickled for four seconds: the 700 ms timeout
    // cut it off long before.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "cut off by the timeout after {:?}",
        started.elapsed()
    );

    // A malformed request line.
    let mut garbage = TcpStream::connect(&at).await?;
    garbage.write_all(b"THIS IS NOT HTTP\r\n\r\n").await?;
    let heard = answer(&mut garbage, Duration::from_secs(5)).await?;
    assert_eq!(status(&heard), Some(400), "{heard:?}");

    // A head larger than the framework buffers.
    let mut huge = TcpStream::connect(&at).await?;
    let header = format!("X-Big: {}\r\n", "a".repeat(8000));
    let mut request = String::from("GET /healthz HTTP/1.1\r\nHost: hearth\r\n");
    for _ in 0..20 {
        request.push_str(&header);
    }
    request.push_str("\r\n");
    let _ = huge.write_all(request.as_bytes()).await;
    let heard = answer(&mut huge, Duration::from_secs(5)).await?;
    assert!(
        heard.is_empty() || status(&heard) == Some(431),
        "an oversized head is refused: {heard:?}"
    );

    // Content-Length and Transfer-Encoding together, with a second request
    // smuggled behind: refused, and the smuggled request never runs.
    let mut smuggler = TcpStream::connect(&at).await?;
    smuggler
        .write_all(
            b"POST /v1/challenges HTTP/1.1\r\nHost: hearth\r\nContent-Length: 4\r\n\
              Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n\
              POST /v1/challenges HTTP/1.1\r\nHost: hearth\r\nContent-Length: 0\r\n\r\n",
        )
        .await?;
    let heard = answer(&mut smuggler, Duration::from_secs(5)).await?;
    assert_eq!(status(&heard), Some(400), "{heard:?}");
    assert_eq!(
        heard.matches("HTTP/1.1").count(),
        1,
        "one answer: the smuggled request did not run: {heard:?}"
    );

    // Past routing, errors are the JSON body.
    let mut lost = TcpStream::connect(&at).await?;
    lost.write_all(b"GET /nowhere HTTP/1.1\r\nHost: hearth\r\nConnection: close\r\n\r\n")
        .await?;
    let heard = answer(&mut lost, Duration::from_secs(5)).await?;
    assert_eq!(status(&heard), Some(404));
    assert!(heard.contains(r#""code":"not_found""#), "{heard:?}");

    // The server is still well.
    assert_eq!(
        app.http.get(app.url("/healthz")).send().await?.status(),
        200
    );
    Ok(())
}
