//! What the OpenAPI document says besides the operations: the title and
//! description, the tags, the bearer scheme, the frames of the live socket,
//! and what holds for every operation alike (415 answers, links from
//! creating a circle). The operations come from the handlers' annotations
//! through the route table ([`crate::routes::document`]); this module names
//! no route.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The document's frame, without operations.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Hearth API",
        description = "The Hearth relay: device identity and logins, and the end-to-end \
            encrypted delivery service for therapy and peer-support circles. Every error \
            answers with `{ \"code\", \"message\" }`; the codes are stable. What the bytes \
            inside these bodies are (signed messages, the MLS profile, framing and padding, \
            invite links, the content schema) is specified, with test vectors, in \
            docs/PROTOCOL.md of the Hearth repository.",
        license(name = "AGPL-3.0-only"),
    ),
    components(schemas(
        hearth_protocol::ErrorCode,
        hearth_protocol::stream::ClientFrame,
        hearth_protocol::stream::ServerFrame,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "logins", description = "Challenges, login, refresh, logout"),
        (name = "devices", description = "Device registration and the caller's account"),
        (name = "key-packages", description = "Publishing and claiming MLS KeyPackages"),
        (name = "circles", description = "Circles, commit bundles, the ordered log, Welcomes"),
        (name = "invites", description = "Invite-only enrollment: invites and join requests"),
        (name = "push", description = "Push targets: where a sleeping device is woken, content-free"),
        (name = "ops", description = "Health, readiness, metrics, this document"),
    )
)]
pub struct ApiDoc;

/// The whole document: `operations` inside the frame, with what holds for
/// all of them added.
pub fn document(operations: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let mut document = ApiDoc::openapi();
    document.merge(operations);
    MediaTypeErrors.modify(&mut document);
    OutageErrors.modify(&mut document);
    CircleLinks.modify(&mut document);
    document
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("An access token from POST /v1/logins"))
                    .build(),
            ),
        );
    }
}

/// Every route that takes a JSON body answers 415 to any other content type
/// (actix's extractor, mapped to `unsupported_media_type`): documented once
/// here for all of them, from their 400 answer's shape.
struct MediaTypeErrors;

impl Modify for MediaTypeErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for operation in [&mut item.post, &mut item.put].into_iter().flatten() {
                if operation.request_body.is_none() {
                    continue;
                }
                let responses = &mut operation.responses.responses;
                if responses.contains_key("415") {
                    continue;
                }
                if let Some(utoipa::openapi::RefOr::T(bad)) = responses.get("400").cloned() {
                    let mut unsupported = bad;
                    unsupported.description =
                        "unsupported_media_type: the body is not application/json".into();
                    responses.insert("415".into(), utoipa::openapi::RefOr::T(unsupported));
                }
            }
        }
    }
}

/// Every route that reads the database answers `503 unavailable` while it
/// is out of reach, and every route that writes answers `507 storage_full`
/// while its disk is full, both with `Retry-After`: documented once here,
/// from each route's first error answer's shape (`ErrorBody`). Probes and
/// the document itself are left alone.
struct OutageErrors;

impl Modify for OutageErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        const PROBES: [&str; 4] = ["/healthz", "/readyz", "/metrics", "/v1/openapi.json"];
        for (path, item) in &mut openapi.paths.paths {
            if PROBES.contains(&path.as_str()) {
                continue;
            }
            let reads = [&mut item.get].into_iter().flatten().map(|o| (o, false));
            let writes = [
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            .map(|o| (o, true));
            for (operation, writes) in reads.chain(writes) {
                let responses = &mut operation.responses.responses;
                let Some(utoipa::openapi::RefOr::T(shape)) = responses
                    .iter()
                    .find(|(status, _)| status.starts_with('4'))
                    .map(|(_, response)| response.clone())
                else {
                    continue;
                };
                let away = "unavailable: the database is out of reach for now; \
                            try again after Retry-After";
                match responses.get_mut("503") {
                    Some(utoipa::openapi::RefOr::T(existing)) => {
                        existing.description = format!("{}; or {away}", existing.description);
                    }
                    _ => {
                        let mut unavailable = shape.clone();
                        unavailable.description = away.into();
                        responses.insert("503".into(), utoipa::openapi::RefOr::T(unavailable));
                    }
                }
                if writes {
                    let mut full = shape;
                    full.description = "storage_full: the server's disk is full; nothing was \
                                        accepted; try again after Retry-After"
                        .into();
                    responses.insert("507".into(), utoipa::openapi::RefOr::T(full));
                }
            }
        }
    }
}

/// Links from creating a circle to every operation on that circle (OpenAPI
/// links, by `operationRef`): what a client may do next with the id it
/// chose, and what stateful API fuzzing follows.
struct CircleLinks;

impl Modify for CircleLinks {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::link::LinkBuilder;
        let mut links = Vec::new();
        for (path, item) in &openapi.paths.paths {
            // Routes with only the circle to fill in, and not those that
            // rightly find nothing in a new circle (its snapshot and
            // GroupInfo come later).
            if !path.starts_with("/v1/circles/{circle_id}")
                || path.matches('{').count() != 1
                || path.ends_with("/snapshot")
                || path.ends_with("/group-info")
            {
                continue;
            }
            let pointer = path.replace('~', "~0").replace('/', "~1");
            for (method, operation) in [
                ("get", &item.get),
                ("post", &item.post),
                ("put", &item.put),
                ("delete", &item.delete),
            ] {
                if operation.is_some() {
                    let name = format!("{method}{}", path.replace(['/', '{', '}', '-'], "_"));
                    let link = LinkBuilder::new()
                        .operation_ref(format!("#/paths/{pointer}/{method}"))
                        .parameter("circle_id", "$request.body#/circle_id")
                        .build();
                    links.push((name, link));
                }
            }
        }
        let created = openapi
            .paths
            .paths
            .get_mut("/v1/circles")
            .and_then(|item| item.post.as_mut())
            .and_then(|post| post.responses.responses.get_mut("201"));
        if let Some(utoipa::openapi::RefOr::T(response)) = created {
            for (name, link) in links {
                response.links.insert(name, utoipa::openapi::RefOr::T(link));
            }
        }
    }
}
