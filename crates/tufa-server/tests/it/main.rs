//! Integration tests of the HTTP front end: in-process with `oneshot` on the router, and a few
//! against a real `serve` on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_debug_implementations)]

mod corrupt;
mod files;
mod findings;
mod fixture;
mod flaky;
mod generations;
mod hostile;
mod ops;
mod reading;
mod safety;
mod server;
mod simple;
mod tuf;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use tower::ServiceExt as _;

/// One answer, body read in full.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub async fn send(app: &Router, request: Request<Body>) -> Answer {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    Answer {
        status,
        headers,
        body,
    }
}

/// A request with the given method, URI and headers.
pub fn request(method: Method, uri: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Body::empty()).unwrap()
}

pub async fn get(app: &Router, uri: &str, headers: &[(&str, &str)]) -> Answer {
    send(app, request(Method::GET, uri, headers)).await
}

pub async fn head(app: &Router, uri: &str, headers: &[(&str, &str)]) -> Answer {
    send(app, request(Method::HEAD, uri, headers)).await
}

/// reqwest is built without a crypto provider; install ring once per process.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
