//! The actix-web middleware and extractors, driven with real requests
//! (`actix_web::test`), answering exactly like the tower layer.
#![cfg(feature = "actix")]

mod common;

use actix_web::http::{StatusCode, header};
use actix_web::{App, HttpResponse, test, web};
use common::http_cases::{Store, fixture};
use jwt_revoke::integrations::actix::{Authenticated, MaybeAuthenticated, RevokeMiddleware};

async fn me(user: Authenticated) -> HttpResponse {
    HttpResponse::Ok().body(format!(
        "{}:{}",
        user.0.sub(),
        user.0.version().unwrap_or_default()
    ))
}

async fn maybe(user: MaybeAuthenticated) -> HttpResponse {
    HttpResponse::Ok().body(
        user.0
            .map_or_else(|| "anonymous".to_owned(), |v| v.sub().to_owned()),
    )
}

async fn call<B: actix_web::body::MessageBody>(
    app: &impl actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    authorization: Option<&str>,
) -> (
    StatusCode,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
) {
    let mut req = test::TestRequest::get().uri("/me");
    if let Some(a) = authorization {
        req = req.insert_header((header::AUTHORIZATION, a));
    }
    let res = test::call_service(app, req.to_request()).await;
    let status = res.status();
    let h = |n| {
        res.headers()
            .get(n)
            .map(|v: &header::HeaderValue| v.to_str().unwrap().to_owned())
    };
    let (www, ctype, retry) = (
        h(header::WWW_AUTHENTICATE),
        h(header::CONTENT_TYPE),
        h(header::RETRY_AFTER),
    );
    let body = test::read_body(res).await;
    (
        status,
        www,
        ctype,
        retry,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

#[actix_web::test]
async fn every_case_gets_the_documented_answer() {
    let (f, cases) = fixture().await;
    let app = test::init_service(
        App::new()
            .wrap(RevokeMiddleware::<Store, ()>::new(f.guard.clone()))
            .route("/me", web::get().to(me)),
    )
    .await;
    for case in cases {
        let (status, www, ctype, _, body) = call(&app, case.authorization.as_deref()).await;
        case.check(status.as_u16(), www.as_deref(), ctype.as_deref(), &body);
    }
}

#[actix_web::test]
async fn a_store_outage_is_503_and_logout_takes_effect_at_once() {
    let (f, _) = fixture().await;
    let app = test::init_service(
        App::new()
            .wrap(RevokeMiddleware::<Store, ()>::new(f.guard.clone()))
            .route("/me", web::get().to(me)),
    )
    .await;
    let auth = format!("Bearer {}", f.valid);
    assert_eq!(call(&app, Some(&auth)).await.0, StatusCode::OK);
    f.guard.bump_version("alice").await.unwrap();
    let (status, _, _, _, body) = call(&app, Some(&auth)).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::UNAUTHORIZED, r#"{"error":"token_revoked"}"#)
    );

    let fresh = f.guard.issue("alice", &()).await.unwrap();
    f.guard.clear_cache();
    f.store.fail(true);
    let (status, www, _, retry, body) = call(&app, Some(&format!("Bearer {fresh}"))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(retry.as_deref(), Some("1"));
    assert!(www.is_none());
    assert_eq!(body, r#"{"error":"store_unavailable"}"#);
}

#[actix_web::test]
async fn optional_middleware_and_missing_middleware() {
    let (f, _) = fixture().await;
    let app = test::init_service(
        App::new()
            .wrap(RevokeMiddleware::<Store, ()>::new(f.guard.clone()).optional())
            .route("/me", web::get().to(maybe)),
    )
    .await;
    assert_eq!(call(&app, None).await.4, "anonymous");
    assert_eq!(
        call(&app, Some(&format!("Bearer {}", f.valid))).await.4,
        "alice"
    );
    assert_eq!(
        call(&app, Some("Bearer x.y.z")).await.0,
        StatusCode::UNAUTHORIZED
    );

    let bare = test::init_service(
        App::new()
            .route("/me", web::get().to(me))
            .route("/maybe", web::get().to(maybe)),
    )
    .await;
    let (status, _, _, _, body) = call(&bare, Some(&format!("Bearer {}", f.valid))).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body.contains("RevokeMiddleware"), "{body}");
    let req = test::TestRequest::get().uri("/maybe").to_request();
    let res = test::call_service(&bare, req).await;
    assert_eq!(
        res.status(),
        StatusCode::INTERNAL_SERVER_ERROR,
        "no silent None without the middleware"
    );
}

#[actix_web::test]
async fn a_required_extractor_behind_an_optional_middleware_answers_401_not_500() {
    let (f, _) = fixture().await;
    let app = test::init_service(
        App::new()
            .wrap(RevokeMiddleware::<Store, ()>::new(f.guard.clone()).optional())
            .route("/me", web::get().to(me)),
    )
    .await;
    let (status, www, ctype, _, body) = call(&app, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(www.as_deref(), Some("Bearer"));
    assert_eq!(ctype.as_deref(), Some("application/json"));
    assert_eq!(body, r#"{"error":"missing_token"}"#);
    let (status, _, _, _, body) = call(&app, Some(&format!("Bearer {}", f.valid))).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "alice:0"));
}

#[derive(Clone, serde::Deserialize)]
struct Role {
    #[allow(dead_code)]
    role: String,
}

#[actix_web::test]
async fn an_extractor_for_other_claims_than_the_middleware_is_a_loud_500_not_anonymous() {
    let (f, _) = fixture().await;
    let app = test::init_service(
        App::new()
            .wrap(RevokeMiddleware::<Store, ()>::new(f.guard.clone()).optional())
            .route(
                "/me",
                web::get().to(|user: MaybeAuthenticated<Role>| async move {
                    HttpResponse::Ok().body(user.0.is_some().to_string())
                }),
            )
            .route(
                "/required",
                web::get().to(|_: Authenticated<Role>| async { HttpResponse::Ok().finish() }),
            ),
    )
    .await;
    let auth = format!("Bearer {}", f.valid);
    let (status, _, _, _, body) = call(&app, Some(&auth)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert!(body.contains("claims type"), "{body}");
    let req = test::TestRequest::get()
        .uri("/required")
        .insert_header((header::AUTHORIZATION, auth))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    // Without a token the mismatch cannot be seen: the request is anonymous.
    assert_eq!(call(&app, None).await.4, "false");
}
