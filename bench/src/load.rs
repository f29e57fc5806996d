//! The load: circles set up through the real API, then sends of 1 KiB
//! ciphertext from their members, as fast as answers come or at a set rate.
//! Every send runs on the load generator's runtime.

use crate::live::{Live, stamped};
use anyhow::{Result, bail};
use hearth_protocol::circles::{Accepted, SendMessage};
use hearth_protocol::{Base64Bytes, CircleId};
use hearth_tests::{TestApp, rand_bytes};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::runtime::Handle;

/// A device that may send into a circle.
#[derive(Clone)]
pub struct Sender {
    pub circle: CircleId,
    /// Its access token.
    pub token: String,
}

/// Circles of a facilitator and eleven members, set up through the API.
pub async fn circles(app: &TestApp, count: usize) -> Result<Vec<Sender>> {
    let mut senders = Vec::new();
    for _ in 0..count {
        let (circle, tokens) = app.opaque_circle(11).await?;
        senders.extend(tokens.into_iter().map(|token| Sender {
            circle: circle.clone(),
            token,
        }));
    }
    Ok(senders)
}

/// How sends are paced.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// Each sender sends its next message as soon as the last is answered.
    Flat,
    /// All senders together aim at this many sends per second, and their
    /// latency is measured.
    Rate(f64),
}

/// How a send travels.
#[derive(Clone)]
pub enum Via {
    /// `POST /v1/circles/{circle_id}/messages`, authenticated each time.
    Http,
    /// A `send` frame on the sender's open socket (sockets in the order of
    /// the senders).
    Socket(Arc<Live>),
}

/// Drives `concurrency` senders for `seconds`: sends per second answered.
#[allow(clippy::too_many_arguments)]
pub async fn sends(
    load: &Handle,
    address: &str,
    senders: &[Sender],
    concurrency: usize,
    seconds: u64,
    pace: Pace,
    via: Via,
    origin: Instant,
) -> Result<f64> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let done = Arc::new(AtomicU64::new(0));
    let filler = Arc::new(rand_bytes::<1024>().to_vec());
    let http = reqwest::Client::new();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let (http, base, done) = (http.clone(), address.to_owned(), done.clone());
        let (senders, filler, via) = (senders.to_vec(), filler.clone(), via.clone());
        tasks.push(load.spawn(async move {
            let mut next = worker;
            let mut ticks = match pace {
                Pace::Flat => None,
                Pace::Rate(rate) => {
                    let every = Duration::from_secs_f64(concurrency as f64 / rate.max(1.0));
                    let mut ticks = tokio::time::interval(every);
                    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                    Some(ticks)
                }
            };
            while Instant::now() < deadline {
                if let Some(ticks) = &mut ticks {
                    ticks.tick().await;
                }
                let index = next % senders.len();
                let sender = &senders[index];
                next += concurrency;
                let body = SendMessage {
                    message_id: uuid::Uuid::new_v4(),
                    epoch: 1,
                    ciphertext: Base64Bytes::from(stamped(
                        origin,
                        ticks.is_some(),
                        &sender.circle,
                        &filler,
                    )),
                };
                if let Via::Socket(live) = &via {
                    live.send(index, &sender.circle, body).await?;
                    done.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let answer = http
                    .post(format!("{base}/v1/circles/{}/messages", sender.circle))
                    .bearer_auth(&sender.token)
                    .json(&body)
                    .send()
                    .await?;
                if answer.status() != 201 {
                    bail!("a send was refused: {}", answer.status());
                }
                let _: Accepted = answer.json().await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }));
    }
    let started = Instant::now();
    for task in tasks {
        task.await??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}
