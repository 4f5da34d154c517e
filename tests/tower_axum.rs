//! The tower layer and axum extractor, driven with real requests through an
//! axum `Router` (`tower::ServiceExt::oneshot`).
#![cfg(feature = "axum")]

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::routing::get;
use common::http_cases::{
    Fixture, Store, block_after, fixture, rustdoc_block_after, source_cases, source_list_cases,
};
use jwt_revoke::Verified;
use jwt_revoke::integrations::axum::{Authenticated, Validated, Validator};
use jwt_revoke::integrations::tower::RevokeLayer;
use jwt_revoke::integrations::{Rejection, RejectionBody, TokenSource};
use tower::ServiceExt;

async fn me(Authenticated(v): Authenticated) -> String {
    format!("{}:{}", v.sub(), v.version().unwrap_or_default())
}

async fn maybe(user: Option<Authenticated>) -> String {
    user.map_or_else(
        || "anonymous".to_owned(),
        |Authenticated(v)| v.sub().to_owned(),
    )
}

fn app(f: &Fixture) -> Router {
    Router::new()
        .route("/me", get(me))
        .layer(RevokeLayer::<Store, ()>::new(f.guard.clone()))
}

async fn send(
    app: Router,
    authorization: Option<&str>,
) -> (StatusCode, Option<String>, Option<String>, String) {
    let mut req = Request::get("/me");
    if let Some(a) = authorization {
        req = req.header(header::AUTHORIZATION, a);
    }
    let res = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let status = res.status();
    let www = res
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned());
    let ctype = res
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = axum::body::to_bytes(res.into_body(), 1 << 16)
        .await
        .unwrap();
    (
        status,
        www,
        ctype,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

#[tokio::test]
async fn every_case_gets_the_documented_answer() {
    let (f, cases) = fixture().await;
    for case in cases {
        let (status, www, ctype, body) = send(app(&f), case.authorization.as_deref()).await;
        case.check(status.as_u16(), www.as_deref(), ctype.as_deref(), &body);
    }
}

#[tokio::test]
async fn a_store_outage_is_503_with_retry_after() {
    let (f, _) = fixture().await;
    f.guard.clear_cache();
    f.store.fail(true);
    let req = Request::get("/me")
        .header(header::AUTHORIZATION, format!("Bearer {}", f.valid))
        .body(Body::empty())
        .unwrap();
    let res = app(&f).oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()[header::RETRY_AFTER], "1");
    assert!(res.headers().get(header::WWW_AUTHENTICATE).is_none());
    let body = axum::body::to_bytes(res.into_body(), 1 << 16)
        .await
        .unwrap();
    assert_eq!(&body[..], br#"{"error":"store_unavailable"}"#);
}

#[tokio::test]
async fn logout_through_the_guard_takes_effect_on_the_next_request() {
    let (f, _) = fixture().await;
    let auth = format!("Bearer {}", f.valid);
    assert_eq!(send(app(&f), Some(&auth)).await.0, StatusCode::OK);
    f.guard.bump_version("alice").await.unwrap();
    let (status, _, _, body) = send(app(&f), Some(&auth)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, r#"{"error":"token_revoked"}"#);
}

#[tokio::test]
async fn optional_layer_lets_anonymous_requests_through_but_still_rejects_bad_tokens() {
    let (f, _) = fixture().await;
    let app = Router::new()
        .route("/me", get(maybe))
        .layer(RevokeLayer::<Store, ()>::new(f.guard.clone()).optional());
    assert_eq!(send(app.clone(), None).await.3, "anonymous");
    // Another scheme is for another layer: anonymous here, not an error.
    assert_eq!(
        send(app.clone(), Some("Basic YWxpY2U6cHc=")).await.3,
        "anonymous"
    );
    assert_eq!(
        send(app.clone(), Some(&format!("Bearer {}", f.valid)))
            .await
            .3,
        "alice"
    );
    let (status, _, _, body) = send(app, Some("Bearer a.b.c")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, r#"{"error":"malformed"}"#);
}

#[tokio::test]
async fn an_extractor_without_the_layer_is_a_loud_500() {
    let (f, _) = fixture().await;
    for app in [
        Router::new().route("/me", get(me)),
        Router::new().route("/me", get(maybe)),
    ] {
        let (status, _, _, body) = send(app, Some(&format!("Bearer {}", f.valid))).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(body.contains("RevokeLayer"), "{body}");
    }
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Role {
    role: String,
}

#[tokio::test]
async fn custom_claims_reach_the_handler() {
    let (f, _) = fixture().await;
    let token = f
        .guard
        .issue(
            "alice",
            &Role {
                role: "admin".into(),
            },
        )
        .await
        .unwrap();
    let app = Router::new()
        .route(
            "/role",
            get(|Authenticated(v): Authenticated<Role>| async move { v.claims().role.clone() }),
        )
        .layer(RevokeLayer::<Store, Role>::new(f.guard.clone()));
    let req = Request::get("/role")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let res = app.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = axum::body::to_bytes(res.into_body(), 1 << 16)
        .await
        .unwrap();
    assert_eq!(&body[..], b"admin");
}

#[tokio::test]
async fn a_required_extractor_behind_an_optional_layer_answers_401_not_500() {
    let (f, _) = fixture().await;
    let app = Router::new()
        .route("/me", get(me))
        .layer(RevokeLayer::<Store, ()>::new(f.guard.clone()).optional());
    let (status, www, ctype, body) = send(app.clone(), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(www.as_deref(), Some("Bearer"));
    assert_eq!(ctype.as_deref(), Some("application/json"));
    assert_eq!(body, r#"{"error":"missing_token"}"#);
    let (status, _, _, body) = send(app, Some(&format!("Bearer {}", f.valid))).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "alice:0"));
}

#[tokio::test]
async fn an_extractor_for_other_claims_than_the_layer_is_a_loud_500_not_anonymous() {
    let (f, _) = fixture().await;
    let app = Router::new()
        .route(
            "/me",
            get(|user: Option<Authenticated<Role>>| async move { user.is_some().to_string() }),
        )
        .route(
            "/required",
            get(|Authenticated(v): Authenticated<Role>| async move { v.claims().role.clone() }),
        )
        .layer(RevokeLayer::<Store, ()>::new(f.guard.clone()).optional());
    let (status, _, _, body) = send(app.clone(), Some(&format!("Bearer {}", f.valid))).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert!(body.contains("claims type"), "{body}");
    let req = Request::get("/required")
        .header(header::AUTHORIZATION, format!("Bearer {}", f.valid))
        .body(Body::empty())
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    // Without a token the mismatch cannot be seen: the request is anonymous.
    assert_eq!(send(app, None).await.3, "false");
}

/// Sends `GET path` with these headers; returns the status, the headers, the
/// `Rejection` left in the response extensions, and the body.
async fn get_with(
    app: Router,
    path: &str,
    headers: &[(&str, String)],
) -> (StatusCode, axum::http::HeaderMap, Option<Rejection>, String) {
    let mut req = Request::get(path);
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    let res = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    let rejection = res.extensions().get::<Rejection>().cloned();
    let body = axum::body::to_bytes(res.into_body(), 1 << 16)
        .await
        .unwrap();
    (
        status,
        headers,
        rejection,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

type Headers = Vec<(&'static str, String)>;

fn bearer(token: &str) -> Headers {
    vec![("authorization", format!("Bearer {token}"))]
}

async fn issue_role(f: &Fixture, role: &str) -> String {
    f.guard
        .issue("alice", &Role { role: role.into() })
        .await
        .unwrap()
}

#[tokio::test]
async fn tokens_from_a_cookie_or_another_header_get_the_same_answers() {
    let (f, cases) = fixture().await;
    for case in source_cases(&f, &cases) {
        for optional in [false, true] {
            let source = case.sources[0].clone();
            let mut layer = RevokeLayer::<Store, ()>::new(f.guard.clone()).token_source(source);
            if optional {
                layer = layer.optional();
            }
            let app = Router::new().route("/me", get(maybe)).route_layer(layer);
            let (status, _, _, body) = get_with(app, "/me", &case.headers).await;
            case.check(optional, status.as_u16(), &body);
        }
    }
}

#[tokio::test]
async fn with_several_token_sources_the_first_one_present_decides() {
    let (f, cases) = fixture().await;
    for case in source_list_cases(&f, &cases) {
        for optional in [false, true] {
            let mut layer =
                RevokeLayer::<Store, ()>::new(f.guard.clone()).token_sources(case.sources.clone());
            if optional {
                layer = layer.optional();
            }
            let app = Router::new().route("/me", get(maybe)).route_layer(layer);
            let (status, _, _, body) = get_with(app, "/me", &case.headers).await;
            case.check(optional, status.as_u16(), &body);
        }
        // The validating extractor reads the same sources the same way.
        let layer =
            RevokeLayer::<Store, ()>::new(f.guard.clone()).token_sources(case.sources.clone());
        let app = Router::new()
            .route(
                "/me",
                get(|Validated(v): Validated| async move { v.sub().to_owned() }),
            )
            .route(
                "/maybe",
                get(|v: Option<Validated>| async move {
                    v.map_or_else(|| "anonymous".to_owned(), |Validated(v)| v.sub().to_owned())
                }),
            )
            .with_state(Validator::from(layer));
        for (path, optional) in [("/me", false), ("/maybe", true)] {
            let (status, _, _, body) = get_with(app.clone(), path, &case.headers).await;
            case.check(optional, status.as_u16(), &body);
        }
    }
}

#[tokio::test]
async fn a_failed_requirement_is_403_insufficient_scope() {
    let (f, _) = fixture().await;
    let admin_only = || {
        RevokeLayer::<Store, Role>::new(f.guard.clone())
            .require(|v: &Verified<Role>| v.claims().role == "admin")
    };
    let handler =
        get(|Authenticated(v): Authenticated<Role>| async move { v.claims().role.clone() });
    let app = Router::new()
        .route("/admin", handler.clone())
        .route_layer(admin_only());
    let (admin, user) = (issue_role(&f, "admin").await, issue_role(&f, "user").await);

    let (status, _, _, body) = get_with(app.clone(), "/admin", &bearer(&admin)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "admin"));

    let (status, headers, rejection, body) = get_with(app.clone(), "/admin", &bearer(&user)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        headers[header::WWW_AUTHENTICATE],
        r#"Bearer error="insufficient_scope""#
    );
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(body, r#"{"error":"insufficient_scope"}"#);
    assert_eq!(rejection, Some(Rejection::insufficient_scope()));

    // A bad or missing token is still a 401, not a 403.
    let (status, _, _, body) = get_with(app.clone(), "/admin", &bearer("a.b.c")).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::UNAUTHORIZED, r#"{"error":"malformed"}"#)
    );
    assert_eq!(
        get_with(app, "/admin", &[]).await.0,
        StatusCode::UNAUTHORIZED
    );

    // No anonymous request meets a requirement, even behind an optional layer.
    let app = Router::new()
        .route("/admin", handler)
        .route_layer(admin_only().optional());
    let (status, _, _, body) = get_with(app.clone(), "/admin", &[]).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::UNAUTHORIZED, r#"{"error":"missing_token"}"#)
    );
    assert_eq!(
        get_with(app, "/admin", &bearer(&user)).await.0,
        StatusCode::FORBIDDEN
    );

    // Several requirements must all pass.
    let app = Router::new()
        .route("/me", get(me_role))
        .route_layer(admin_only().require(|v: &Verified<Role>| v.sub() == "bob"));
    assert_eq!(
        get_with(app, "/me", &bearer(&admin)).await.0,
        StatusCode::FORBIDDEN
    );
}

async fn me_role(Authenticated(v): Authenticated<Role>) -> String {
    v.claims().role.clone()
}

#[tokio::test]
async fn the_rejection_hook_shapes_the_body_and_keeps_status_and_headers() {
    let (f, _) = fixture().await;
    let problem = |r: &Rejection| {
        RejectionBody::new(
            "application/problem+json",
            serde_json::json!({"type": "about:blank", "status": r.status, "title": r.code})
                .to_string(),
        )
    };
    let app = Router::new().route("/me", get(me)).route_layer(
        RevokeLayer::<Store, ()>::new(f.guard.clone())
            .require(|v: &Verified| v.sub() == "alice")
            .on_reject(problem),
    );
    let bob = f.guard.issue("bob", &()).await.unwrap();
    let cases: [(Headers, u16, &str, &str); 4] = [
        (vec![], 401, "missing_token", "Bearer"),
        (
            bearer("a.b.c"),
            401,
            "malformed",
            "Bearer error=\"invalid_token\"",
        ),
        (
            bearer("a b"),
            400,
            "invalid_request",
            "Bearer error=\"invalid_request\"",
        ),
        (
            bearer(&bob),
            403,
            "insufficient_scope",
            "Bearer error=\"insufficient_scope\"",
        ),
    ];
    for (headers, status, code, www) in cases {
        let (got, h, rejection, body) = get_with(app.clone(), "/me", &headers).await;
        assert_eq!(got.as_u16(), status, "{code}");
        assert_eq!(
            h[header::CONTENT_TYPE],
            "application/problem+json",
            "{code}"
        );
        assert_eq!(h[header::CACHE_CONTROL], "no-store", "{code}");
        let got_www = h.get(header::WWW_AUTHENTICATE).map(|v| v.to_str().unwrap());
        assert!(got_www.unwrap().starts_with(www), "{code}: {got_www:?}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["title"], code);
        assert_eq!(json["status"], status);
        assert_eq!(
            rejection.map(|r| r.code),
            Some(code),
            "the reason is in the extensions"
        );
    }
    // A store outage keeps its Retry-After under the hook.
    f.guard.clear_cache();
    f.store.fail(true);
    let (status, h, rejection, _) = get_with(app, "/me", &bearer(&f.valid)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(h[header::RETRY_AFTER], "1");
    assert_eq!(h[header::CONTENT_TYPE], "application/problem+json");
    assert_eq!(rejection.map(|r| r.code), Some("store_unavailable"));
}

#[tokio::test]
async fn the_rejection_is_in_the_extensions_for_outer_middleware() {
    let (f, _) = fixture().await;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = Router::new()
        .route("/me", get(me))
        .route_layer(RevokeLayer::<Store, ()>::new(f.guard.clone()))
        .layer(axum::middleware::map_response(
            move |res: axum::response::Response| {
                let log = log.clone();
                async move {
                    if let Some(r) = res.extensions().get::<Rejection>() {
                        log.lock().unwrap().push(r.code);
                    }
                    res
                }
            },
        ));
    get_with(app.clone(), "/me", &[]).await;
    get_with(app.clone(), "/me", &bearer("a.b.c")).await;
    get_with(app, "/me", &bearer(&f.valid)).await;
    assert_eq!(*seen.lock().unwrap(), ["missing_token", "malformed"]);
}

#[derive(Clone, serde::Deserialize)]
struct RoleAddedLater {
    role: String,
    #[serde(default)]
    tenant: String,
}

#[tokio::test]
async fn claims_that_do_not_deserialize_are_invalid_claims_not_malformed() {
    let (f, _) = fixture().await;
    // Genuine token, but without the `role` the claims type requires.
    let app = Router::new()
        .route("/role", get(me_role))
        .route_layer(RevokeLayer::<Store, Role>::new(f.guard.clone()));
    let (status, headers, _, body) = get_with(app, "/role", &bearer(&f.valid)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, r#"{"error":"invalid_claims"}"#);
    let www = headers[header::WWW_AUTHENTICATE].to_str().unwrap();
    assert!(www.starts_with(r#"Bearer error="invalid_token""#), "{www}");

    // A field added with #[serde(default)] accepts the tokens issued before.
    let old = issue_role(&f, "admin").await;
    let app = Router::new()
        .route(
            "/role",
            get(
                |Authenticated(v): Authenticated<RoleAddedLater>| async move {
                    format!("{}@{:?}", v.claims().role, v.claims().tenant)
                },
            ),
        )
        .route_layer(RevokeLayer::<Store, RoleAddedLater>::new(f.guard.clone()));
    let (status, _, _, body) = get_with(app, "/role", &bearer(&old)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, r#"admin@"""#));
}

async fn guard_handler(
    axum::extract::State(f): axum::extract::State<std::sync::Arc<Fixture>>,
    headers: axum::http::HeaderMap,
) -> Result<String, jwt_revoke::Error> {
    let token = headers
        .get("x-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let v = f.guard.validate::<()>(token).await?;
    Ok(v.sub().to_owned())
}

async fn rejection_handler(
    axum::extract::State(f): axum::extract::State<std::sync::Arc<Fixture>>,
) -> Result<String, Rejection> {
    f.guard.validate::<()>("a.b.c").await?;
    Ok("unreachable".into())
}

#[tokio::test]
async fn a_guard_error_answers_like_the_layer_through_question_mark() {
    let (f, cases) = fixture().await;
    let f = std::sync::Arc::new(f);
    let app = Router::new()
        .route("/guard", get(guard_handler))
        .route("/rejection", get(rejection_handler))
        .with_state(f.clone());
    // Every token case of the table, answered by the handler's `?`.
    for case in cases.iter().filter(|c| {
        c.code
            .is_some_and(|c| !c.contains("_t") && !c.contains("request"))
    }) {
        let token = case
            .authorization
            .as_deref()
            .unwrap()
            .strip_prefix("Bearer ")
            .unwrap();
        let (status, headers, rejection, body) =
            get_with(app.clone(), "/guard", &[("x-token", token.to_owned())]).await;
        let www = headers
            .get(header::WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap());
        let ctype = headers
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap());
        case.check(status.as_u16(), www, ctype, &body);
        assert_eq!(rejection.map(|r| r.code), case.code, "{}", case.name);
    }
    let (status, _, _, body) = get_with(app.clone(), "/rejection", &[]).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::UNAUTHORIZED, r#"{"error":"malformed"}"#)
    );

    f.guard.clear_cache();
    f.store.fail(true);
    let (status, headers, _, body) = get_with(app, "/guard", &[("x-token", f.valid.clone())]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers[header::RETRY_AFTER], "1");
    assert_eq!(body, r#"{"error":"store_unavailable"}"#);
}

fn validated_app(validator: Validator) -> Router {
    Router::new()
        .route(
            "/me",
            get(|Validated(v): Validated| async move {
                format!("{}:{}", v.sub(), v.version().unwrap_or_default())
            }),
        )
        .route(
            "/maybe",
            get(|user: Option<Validated>| async move {
                user.map_or_else(|| "anonymous".to_owned(), |Validated(v)| v.sub().to_owned())
            }),
        )
        .with_state(validator)
}

#[tokio::test]
async fn the_validating_extractor_needs_no_layer_and_answers_the_same() {
    let (f, cases) = fixture().await;
    let app = validated_app(Validator::new(f.guard.clone()));
    for case in &cases {
        let (status, www, ctype, body) = send(app.clone(), case.authorization.as_deref()).await;
        case.check(status.as_u16(), www.as_deref(), ctype.as_deref(), &body);
    }
    // Optional: anonymous without a token, still rejected with a bad one.
    for (headers, status, body) in [
        (vec![], StatusCode::OK, "anonymous"),
        (
            vec![("authorization", "Basic YWxpY2U6cHc=".to_owned())],
            StatusCode::OK,
            "anonymous",
        ),
        (bearer(&f.valid), StatusCode::OK, "alice"),
        (
            bearer("a.b.c"),
            StatusCode::UNAUTHORIZED,
            r#"{"error":"malformed"}"#,
        ),
    ] {
        let (got, _, _, got_body) = get_with(app.clone(), "/maybe", &headers).await;
        assert_eq!((got, got_body.as_str()), (status, body));
    }
    f.guard.clear_cache();
    f.store.fail(true);
    let (status, headers, _, _) = get_with(app, "/me", &bearer(&f.valid)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers[header::RETRY_AFTER], "1");
}

#[derive(Clone)]
struct AppState {
    admins: Validator<Role>,
}

impl axum::extract::FromRef<AppState> for Validator<Role> {
    fn from_ref(state: &AppState) -> Self {
        state.admins.clone()
    }
}

#[tokio::test]
async fn the_validating_extractor_takes_the_layer_settings_from_state() {
    let (f, _) = fixture().await;
    let layer = RevokeLayer::<Store, Role>::new(f.guard.clone())
        .token_source(TokenSource::Cookie("session"))
        .require(|v: &Verified<Role>| v.claims().role == "admin")
        .on_reject(|r: &Rejection| {
            RejectionBody::json(format!(r#"{{"ok":false,"why":"{}"}}"#, r.code))
        });
    let app = Router::new()
        .route(
            "/admin",
            get(|Validated(v): Validated<Role>| async move { v.claims().role.clone() }),
        )
        .with_state(AppState {
            admins: Validator::from(layer),
        });
    let cookie = |t: &str| vec![("cookie", format!("session={t}"))];
    let (admin, user) = (issue_role(&f, "admin").await, issue_role(&f, "user").await);
    for (headers, status, body) in [
        (cookie(&admin), StatusCode::OK, "admin".to_owned()),
        (
            cookie(&user),
            StatusCode::FORBIDDEN,
            r#"{"ok":false,"why":"insufficient_scope"}"#.to_owned(),
        ),
        (
            bearer(&admin),
            StatusCode::UNAUTHORIZED,
            r#"{"ok":false,"why":"missing_token"}"#.to_owned(),
        ),
        (
            cookie(&f.valid),
            StatusCode::UNAUTHORIZED,
            r#"{"ok":false,"why":"invalid_claims"}"#.to_owned(),
        ),
    ] {
        let (got, h, rejection, got_body) = get_with(app.clone(), "/admin", &headers).await;
        assert_eq!((got, got_body.as_str()), (status, body.as_str()));
        if status != StatusCode::OK {
            assert!(h.contains_key(header::WWW_AUTHENTICATE));
            assert!(rejection.is_some());
        }
    }
}

#[tokio::test]
async fn route_level_layers_keep_404_while_a_global_layer_turns_it_into_401() {
    let (f, _) = fixture().await;
    let layer = || RevokeLayer::<Store, ()>::new(f.guard.clone());
    // Router::route_layer: unknown paths stay 404; a wrong method on a
    // protected path is authenticated first (axum layers the 405 fallback).
    let scoped = Router::new().route("/me", get(me)).route_layer(layer());
    // MethodRouter::route_layer: the 405 stays too.
    let per_method = Router::new().route("/me", get(me).route_layer(layer()));
    let global = Router::new().route("/me", get(me)).layer(layer());
    let post = |app: Router| async move {
        let req = Request::post("/me").body(Body::empty()).unwrap();
        app.oneshot(req).await.unwrap().status()
    };
    for (name, app, unknown, wrong_method) in [
        (
            "route_layer",
            scoped,
            StatusCode::NOT_FOUND,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "per method",
            per_method,
            StatusCode::NOT_FOUND,
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            "global",
            global,
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
        ),
    ] {
        assert_eq!(
            get_with(app.clone(), "/nope", &[]).await.0,
            unknown,
            "{name}"
        );
        assert_eq!(post(app.clone()).await, wrong_method, "{name}");
        assert_eq!(
            get_with(app.clone(), "/me", &[]).await.0,
            StatusCode::UNAUTHORIZED,
            "{name}"
        );
        let (status, _, _, body) = get_with(app, "/me", &bearer(&f.valid)).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::OK, "alice:0"),
            "{name}"
        );
    }
}

#[test]
fn the_readme_axum_snippet_is_the_compiled_rustdoc_example() {
    let readme = include_str!("../README.md");
    let module = include_str!("../src/integrations/axum.rs");
    assert_eq!(
        block_after(readme, "<!-- axum snippet", "```rust"),
        rustdoc_block_after(module, "README snippet"),
        "README.md and the example in src/integrations/axum.rs must stay identical"
    );
}

#[tokio::test]
async fn the_hook_also_shapes_library_rejections_from_behind_the_layer() {
    let (f, _) = fixture().await;
    let envelope =
        |r: &Rejection| RejectionBody::json(format!(r#"{{"ok":false,"why":"{}"}}"#, r.code));
    let app = Router::new()
        .route("/me", get(me))
        .route(
            "/issue",
            get(|| async { Err::<String, _>(jwt_revoke::Error::RetryLater) }),
        )
        .route_layer(
            RevokeLayer::<Store, ()>::new(f.guard.clone())
                .optional()
                .on_reject(envelope),
        );
    // A required extractor behind the optional layer: its 401, the app's body.
    let (status, headers, rejection, body) = get_with(app.clone(), "/me", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(body, r#"{"ok":false,"why":"missing_token"}"#);
    assert_eq!(rejection, Some(Rejection::missing_token()));
    // A handler's guard error: its 503 and Retry-After, the app's body.
    let (status, headers, _, body) = get_with(app.clone(), "/issue", &[]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers[header::RETRY_AFTER], "1");
    assert_eq!(body, r#"{"ok":false,"why":"retry_later"}"#);
    // The handler's own answers are untouched.
    let (status, _, rejection, body) = get_with(app, "/me", &bearer(&f.valid)).await;
    assert_eq!(
        (status, body.as_str(), rejection),
        (StatusCode::OK, "alice:0", None)
    );
}

#[test]
#[should_panic(expected = "no token source")]
fn an_empty_list_of_token_sources_is_refused_at_configuration() {
    let (f, _) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(fixture());
    let _ = RevokeLayer::<Store, ()>::new(f.guard).token_sources([]);
}

#[test]
#[should_panic(expected = "invalid token source")]
fn a_list_with_a_token_source_that_could_never_match_is_refused_at_configuration() {
    let (f, _) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(fixture());
    let _ = RevokeLayer::<Store, ()>::new(f.guard)
        .token_sources([TokenSource::Bearer, TokenSource::Cookie("my session")]);
}

#[test]
#[should_panic(expected = "invalid token source")]
fn a_token_source_that_could_never_match_is_refused_at_configuration() {
    let (f, _) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(fixture());
    let _ = RevokeLayer::<Store, ()>::new(f.guard).token_source(TokenSource::Cookie("my session"));
}
