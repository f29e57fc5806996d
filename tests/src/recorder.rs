//! A recording reverse proxy on loopback: clients talk to it as to the
//! server; it forwards every request and keeps the JSON bodies clients sent,
//! by route. The fuzz seeds (`fuzz/seeds/request_bodies`) are such bodies,
//! captured from a real SDK scenario (`scripts/fuzz --refresh-seeds`).

use anyhow::Result;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use std::sync::{Arc, Mutex};

/// One request body a client sent.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `POST /v1/circles`, with ids in the path as they were.
    pub route: String,
    /// The JSON body.
    pub body: Vec<u8>,
}

/// The proxy.
pub struct Recorder {
    server: crate::loopback::Loopback,
    recorded: Arc<Mutex<Vec<Recorded>>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("address", &self.server.address)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// A proxy in front of `upstream` (`http://127.0.0.1:PORT`).
    pub async fn start(upstream: &str) -> Result<Self> {
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let upstream = upstream.trim_end_matches('/').to_owned();
        let client = reqwest::Client::new();
        let keep = recorded.clone();
        let server = crate::loopback::Loopback::serve(|_| {
            move |request| {
                let (client, upstream, keep) = (client.clone(), upstream.clone(), keep.clone());
                async move { forward(request, &client, &upstream, &keep).await }
            }
        })
        .await?;
        Ok(Self { server, recorded })
    }

    /// Where clients should connect: `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.server.address)
    }

    /// Every JSON body recorded so far.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.recorded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

async fn forward(
    request: Request<Incoming>,
    client: &reqwest::Client,
    upstream: &str,
    keep: &Mutex<Vec<Recorded>>,
) -> Response<Full<Bytes>> {
    let method = request.method().clone();
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let headers = request.headers().clone();
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let json = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if json && !body.is_empty() {
        keep.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Recorded {
                route: format!("{method} {}", path.split('?').next().unwrap_or_default()),
                body: body.to_vec(),
            });
    }
    let mut outgoing = client.request(
        reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap_or(reqwest::Method::GET),
        format!("{upstream}{path}"),
    );
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            outgoing = outgoing.header(name.as_str(), value.as_bytes());
        }
    }
    let answer = match outgoing.body(body).send().await {
        Ok(answer) => answer,
        Err(_) => {
            return Response::builder()
                .status(502)
                .body(Full::new(Bytes::new()))
                .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())));
        }
    };
    let mut response = Response::builder().status(answer.status().as_u16());
    for (name, value) in answer.headers() {
        if name != "content-length" && name != "transfer-encoding" {
            response = response.header(name.as_str(), value.as_bytes());
        }
    }
    let bytes = answer.bytes().await.unwrap_or_default();
    response
        .body(Full::new(bytes))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}
