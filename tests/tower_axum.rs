//! The tower layer and axum extractor, driven with real requests through an
//! axum `Router` (`tower::ServiceExt::oneshot`).
#![cfg(feature = "axum")]

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::routing::get;
use common::http_cases::{Fixture, Store, fixture};
use jwt_revoke::integrations::axum::Authenticated;
use jwt_revoke::integrations::tower::RevokeLayer;
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
