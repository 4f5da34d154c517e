//! The actix-web middleware and extractors, driven with real requests
//! (`actix_web::test`), answering exactly like the tower layer.
#![cfg(feature = "actix")]

mod common;

use actix_web::http::{StatusCode, header};
use actix_web::{App, HttpResponse, test, web};
use common::http_cases::{
    Fixture, Store, block_after, fixture, rustdoc_block_after, source_cases, source_list_cases,
};
use jwt_revoke::Verified;
use jwt_revoke::integrations::Validator;
use jwt_revoke::integrations::actix::{
    Authenticated, MaybeAuthenticated, MaybeValidated, RevokeMiddleware, Validated,
};
use jwt_revoke::integrations::{Rejection, RejectionBody};

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

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Role {
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

/// Sends `GET path` with these headers; returns the status, the headers, the
/// `Rejection` left in the response extensions, and the body.
async fn get_with<B: actix_web::body::MessageBody>(
    app: &impl actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    path: &str,
    headers: &[(&'static str, String)],
) -> (StatusCode, header::HeaderMap, Option<Rejection>, String) {
    let mut req = test::TestRequest::get().uri(path);
    for (name, value) in headers {
        req = req.append_header((*name, value.as_str()));
    }
    let res = test::call_service(app, req.to_request()).await;
    let (status, headers) = (res.status(), res.headers().clone());
    let rejection = res.response().extensions().get::<Rejection>().cloned();
    let body = test::read_body(res).await;
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

#[actix_web::test]
async fn tokens_from_a_cookie_or_another_header_get_the_same_answers() {
    let (f, cases) = fixture().await;
    for case in source_cases(&f, &cases) {
        for optional in [false, true] {
            let source = case.sources[0].clone();
            let mut mw = RevokeMiddleware::<Store, ()>::new(f.guard.clone()).token_source(source);
            if optional {
                mw = mw.optional();
            }
            let app =
                test::init_service(App::new().wrap(mw).route("/me", web::get().to(maybe))).await;
            let (status, _, _, body) = get_with(&app, "/me", &case.headers).await;
            case.check(optional, status.as_u16(), &body);
        }
    }
}

#[actix_web::test]
async fn with_several_token_sources_the_first_one_present_decides() {
    let (f, cases) = fixture().await;
    for case in source_list_cases(&f, &cases) {
        for optional in [false, true] {
            let mut mw = RevokeMiddleware::<Store, ()>::new(f.guard.clone())
                .token_sources(case.sources.clone());
            if optional {
                mw = mw.optional();
            }
            let app =
                test::init_service(App::new().wrap(mw).route("/me", web::get().to(maybe))).await;
            let (status, _, _, body) = get_with(&app, "/me", &case.headers).await;
            case.check(optional, status.as_u16(), &body);
        }
        // The validating extractors read the same sources the same way.
        let mw =
            RevokeMiddleware::<Store, ()>::new(f.guard.clone()).token_sources(case.sources.clone());
        let app = test::init_service(
            App::new()
                .app_data(web::Data::new(Validator::from(mw)))
                .route(
                    "/me",
                    web::get().to(|Validated(v): Validated| async move { v.sub().to_owned() }),
                )
                .route(
                    "/maybe",
                    web::get().to(|MaybeValidated(v): MaybeValidated| async move {
                        v.map_or_else(|| "anonymous".to_owned(), |v| v.sub().to_owned())
                    }),
                ),
        )
        .await;
        for (path, optional) in [("/me", false), ("/maybe", true)] {
            let (status, _, _, body) = get_with(&app, path, &case.headers).await;
            case.check(optional, status.as_u16(), &body);
        }
    }
}

#[actix_web::test]
async fn a_failed_requirement_is_403_insufficient_scope() {
    let (f, _) = fixture().await;
    let admin_only = |optional: bool| {
        let mw = RevokeMiddleware::<Store, Role>::new(f.guard.clone())
            .require(|v: &Verified<Role>| v.claims().role == "admin");
        if optional { mw.optional() } else { mw }
    };
    let handler = || {
        web::get()
            .to(|Authenticated(v): Authenticated<Role>| async move { v.claims().role.clone() })
    };
    let app = test::init_service(
        App::new()
            .wrap(admin_only(false))
            .route("/admin", handler()),
    )
    .await;
    let (admin, user) = (issue_role(&f, "admin").await, issue_role(&f, "user").await);

    let (status, _, _, body) = get_with(&app, "/admin", &bearer(&admin)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "admin"));
    let (status, headers, rejection, body) = get_with(&app, "/admin", &bearer(&user)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        headers.get(header::WWW_AUTHENTICATE).unwrap(),
        r#"Bearer error="insufficient_scope""#
    );
    assert_eq!(
        headers.get(header::CONTENT_TYPE).unwrap(),
        "application/json"
    );
    assert_eq!(body, r#"{"error":"insufficient_scope"}"#);
    assert_eq!(rejection, Some(Rejection::insufficient_scope()));
    let (status, _, _, body) = get_with(&app, "/admin", &bearer("a.b.c")).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::UNAUTHORIZED, r#"{"error":"malformed"}"#)
    );

    let app =
        test::init_service(App::new().wrap(admin_only(true)).route("/admin", handler())).await;
    let (status, _, _, body) = get_with(&app, "/admin", &[]).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::UNAUTHORIZED, r#"{"error":"missing_token"}"#)
    );
    assert_eq!(
        get_with(&app, "/admin", &bearer(&user)).await.0,
        StatusCode::FORBIDDEN
    );
}

#[actix_web::test]
async fn the_rejection_hook_shapes_the_body_and_keeps_status_and_headers() {
    let (f, _) = fixture().await;
    let problem = |r: &Rejection| {
        RejectionBody::new(
            "application/problem+json",
            serde_json::json!({"type": "about:blank", "status": r.status, "title": r.code})
                .to_string(),
        )
    };
    let app = test::init_service(
        App::new()
            .wrap(
                RevokeMiddleware::<Store, ()>::new(f.guard.clone())
                    .require(|v: &Verified| v.sub() == "alice")
                    .on_reject(problem),
            )
            .route("/me", web::get().to(me)),
    )
    .await;
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
        let (got, h, rejection, body) = get_with(&app, "/me", &headers).await;
        assert_eq!(got.as_u16(), status, "{code}");
        assert_eq!(
            h.get(header::CONTENT_TYPE).unwrap(),
            "application/problem+json",
            "{code}"
        );
        assert_eq!(h.get(header::CACHE_CONTROL).unwrap(), "no-store", "{code}");
        let got_www = h.get(header::WWW_AUTHENTICATE).unwrap().to_str().unwrap();
        assert!(got_www.starts_with(www), "{code}: {got_www}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (json["title"].as_str(), json["status"].as_u64()),
            (Some(code), Some(u64::from(status)))
        );
        assert_eq!(
            rejection.map(|r| r.code),
            Some(code),
            "the reason is in the extensions"
        );
    }
    f.guard.clear_cache();
    f.store.fail(true);
    let (status, h, rejection, _) = get_with(&app, "/me", &bearer(&f.valid)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(h.get(header::RETRY_AFTER).unwrap(), "1");
    assert_eq!(
        h.get(header::CONTENT_TYPE).unwrap(),
        "application/problem+json"
    );
    assert_eq!(rejection.map(|r| r.code), Some("store_unavailable"));
}

#[derive(Clone, serde::Deserialize)]
struct RoleAddedLater {
    role: String,
    #[serde(default)]
    tenant: String,
}

#[actix_web::test]
async fn claims_that_do_not_deserialize_are_invalid_claims_not_malformed() {
    let (f, _) = fixture().await;
    let app = test::init_service(
        App::new()
            .wrap(RevokeMiddleware::<Store, Role>::new(f.guard.clone()))
            .route(
                "/role",
                web::get().to(|Authenticated(v): Authenticated<Role>| async move {
                    v.claims().role.clone()
                }),
            ),
    )
    .await;
    let (status, headers, _, body) = get_with(&app, "/role", &bearer(&f.valid)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, r#"{"error":"invalid_claims"}"#);
    let www = headers
        .get(header::WWW_AUTHENTICATE)
        .unwrap()
        .to_str()
        .unwrap();
    assert!(www.starts_with(r#"Bearer error="invalid_token""#), "{www}");

    let app = test::init_service(
        App::new()
            .wrap(RevokeMiddleware::<Store, RoleAddedLater>::new(
                f.guard.clone(),
            ))
            .route(
                "/role",
                web::get().to(
                    |Authenticated(v): Authenticated<RoleAddedLater>| async move {
                        format!("{}@{:?}", v.claims().role, v.claims().tenant)
                    },
                ),
            ),
    )
    .await;
    let old = issue_role(&f, "admin").await;
    let (status, _, _, body) = get_with(&app, "/role", &bearer(&old)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, r#"admin@"""#));
}

async fn guard_handler(
    f: web::Data<Fixture>,
    req: actix_web::HttpRequest,
) -> Result<String, jwt_revoke::Error> {
    let token = req
        .headers()
        .get("x-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let v = f.guard.validate::<()>(token).await?;
    Ok(v.sub().to_owned())
}

async fn rejection_handler(f: web::Data<Fixture>) -> Result<String, Rejection> {
    f.guard.validate::<()>("a.b.c").await?;
    Ok("unreachable".into())
}

#[actix_web::test]
async fn a_guard_error_answers_like_the_middleware_through_question_mark() {
    let (f, cases) = fixture().await;
    let f = web::Data::new(f);
    let app = test::init_service(
        App::new()
            .app_data(f.clone())
            .route("/guard", web::get().to(guard_handler))
            .route("/rejection", web::get().to(rejection_handler)),
    )
    .await;
    // (The header cases are the middleware's: a handler has no header to parse.)
    for case in cases.iter().filter(|c| {
        c.code.is_some_and(|code| code != "invalid_request")
            && c.authorization
                .as_deref()
                .is_some_and(|a| a.starts_with("Bearer "))
    }) {
        let token = case
            .authorization
            .as_deref()
            .unwrap()
            .strip_prefix("Bearer ")
            .unwrap();
        let (status, headers, rejection, body) =
            get_with(&app, "/guard", &[("x-token", token.to_owned())]).await;
        let h = |n| headers.get(n).map(|v| v.to_str().unwrap());
        case.check(
            status.as_u16(),
            h(header::WWW_AUTHENTICATE),
            h(header::CONTENT_TYPE),
            &body,
        );
        assert_eq!(rejection.map(|r| r.code), case.code, "{}", case.name);
    }
    let (status, _, _, body) = get_with(&app, "/rejection", &[]).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::UNAUTHORIZED, r#"{"error":"malformed"}"#)
    );

    f.guard.clear_cache();
    f.store.fail(true);
    let (status, headers, _, body) =
        get_with(&app, "/guard", &[("x-token", f.valid.clone())]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers.get(header::RETRY_AFTER).unwrap(), "1");
    assert_eq!(body, r#"{"error":"store_unavailable"}"#);
}

#[actix_web::test]
async fn a_scoped_middleware_keeps_404_while_an_app_wide_one_turns_it_into_401() {
    let (f, _) = fixture().await;
    let mw = || RevokeMiddleware::<Store, ()>::new(f.guard.clone());
    let scoped = test::init_service(
        App::new()
            .service(
                web::scope("/api")
                    .wrap(mw())
                    .route("/me", web::get().to(me)),
            )
            .route("/health", web::get().to(|| async { "ok" })),
    )
    .await;
    assert_eq!(
        get_with(&scoped, "/nope", &[]).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(get_with(&scoped, "/health", &[]).await.0, StatusCode::OK);
    assert_eq!(
        get_with(&scoped, "/api/me", &[]).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, _, _, body) = get_with(&scoped, "/api/me", &bearer(&f.valid)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "alice:0"));

    let global = test::init_service(
        App::new()
            .wrap(mw())
            .route("/me", web::get().to(me))
            .route("/health", web::get().to(|| async { "ok" })),
    )
    .await;
    assert_eq!(
        get_with(&global, "/nope", &[]).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get_with(&global, "/health", &[]).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[actix_web::test]
async fn the_guide_actix_snippet_is_the_compiled_rustdoc_example() {
    let guide = include_str!("../docs/web-frameworks.md");
    let module = include_str!("../src/integrations/actix.rs");
    assert_eq!(
        block_after(guide, "<!-- actix snippet", "```rust"),
        rustdoc_block_after(module, "README snippet"),
        "docs/web-frameworks.md and the example in src/integrations/actix.rs must stay identical"
    );
}

#[actix_web::test]
async fn the_hook_also_shapes_library_rejections_from_behind_the_middleware() {
    let (f, _) = fixture().await;
    let envelope =
        |r: &Rejection| RejectionBody::json(format!(r#"{{"ok":false,"why":"{}"}}"#, r.code));
    let app = test::init_service(
        App::new()
            .wrap(
                RevokeMiddleware::<Store, ()>::new(f.guard.clone())
                    .optional()
                    .on_reject(envelope),
            )
            .route("/me", web::get().to(me))
            .route(
                "/issue",
                web::get().to(|| async { Err::<String, _>(jwt_revoke::Error::RetryLater) }),
            ),
    )
    .await;
    let (status, headers, rejection, body) = get_with(&app, "/me", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers.get(header::WWW_AUTHENTICATE).unwrap(), "Bearer");
    assert_eq!(body, r#"{"ok":false,"why":"missing_token"}"#);
    assert_eq!(rejection, Some(Rejection::missing_token()));
    let (status, headers, _, body) = get_with(&app, "/issue", &[]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers.get(header::RETRY_AFTER).unwrap(), "1");
    assert_eq!(body, r#"{"ok":false,"why":"retry_later"}"#);
    let (status, _, rejection, body) = get_with(&app, "/me", &bearer(&f.valid)).await;
    assert_eq!(
        (status, body.as_str(), rejection),
        (StatusCode::OK, "alice:0", None)
    );
}
