//! actix-web's `Validated` / `MaybeValidated`: extractors that validate with
//! a `Validator` from the app data, without a middleware, through real
//! requests (`actix_web::test`), answering exactly like the middleware.
#![cfg(feature = "actix")]

mod common;

use actix_web::http::header;
use actix_web::{App, HttpResponse, test, web};
use common::http_cases::{Store, fixture};
use jwt_revoke::Verified;
use jwt_revoke::integrations::actix::{MaybeValidated, RevokeMiddleware, Validated};
use jwt_revoke::integrations::{Rejection, RejectionBody, TokenSource, Validator};

async fn me(Validated(v): Validated) -> HttpResponse {
    HttpResponse::Ok().body(format!("{}:{}", v.sub(), v.version().unwrap_or_default()))
}

async fn maybe(MaybeValidated(v): MaybeValidated) -> HttpResponse {
    HttpResponse::Ok().body(v.map_or_else(|| "anonymous".to_owned(), |v| v.sub().to_owned()))
}

#[derive(Clone, serde::Deserialize)]
struct Role {
    role: String,
}

async fn admin(Validated(v): Validated<Role>) -> HttpResponse {
    HttpResponse::Ok().body(v.claims().role.clone())
}

/// What a client sees: status, `WWW-Authenticate`, `Content-Type`,
/// `Retry-After`, body.
struct Answer {
    status: u16,
    www: Option<String>,
    content_type: Option<String>,
    retry_after: Option<String>,
    body: String,
}

async fn get<B: actix_web::body::MessageBody>(
    app: &impl actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    path: &str,
    headers: &[(&str, String)],
) -> Answer {
    let mut req = test::TestRequest::get().uri(path);
    for (name, value) in headers {
        req = req.insert_header((*name, value.as_str()));
    }
    let res = test::call_service(app, req.to_request()).await;
    let header = |name: header::HeaderName| {
        res.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (www, content_type, retry_after) = (
        header(header::WWW_AUTHENTICATE),
        header(header::CONTENT_TYPE),
        header(header::RETRY_AFTER),
    );
    let status = res.status().as_u16();
    let body = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    Answer {
        status,
        www,
        content_type,
        retry_after,
        body,
    }
}

fn bearer(token: &str) -> Vec<(&'static str, String)> {
    vec![("authorization", format!("Bearer {token}"))]
}

#[actix_web::test]
async fn the_validating_extractor_needs_no_middleware_and_answers_the_same() {
    let (f, cases) = fixture().await;
    let validator: Validator = Validator::new(f.guard.clone());
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(validator))
            .route("/me", web::get().to(me))
            .route("/maybe", web::get().to(maybe)),
    )
    .await;
    for case in &cases {
        let headers: Vec<(&str, String)> = case
            .authorization
            .iter()
            .map(|a| ("authorization", a.clone()))
            .collect();
        let a = get(&app, "/me", &headers).await;
        case.check(
            a.status,
            a.www.as_deref(),
            a.content_type.as_deref(),
            &a.body,
        );
    }
    // Optional: anonymous without a token, rejected with a bad one.
    for (headers, status, body) in [
        (vec![], 200, "anonymous"),
        (
            vec![("authorization", "Basic YWxpY2U6cHc=".to_owned())],
            200,
            "anonymous",
        ),
        (bearer(&f.valid), 200, "alice"),
        (bearer("a.b.c"), 401, r#"{"error":"malformed"}"#),
        (
            vec![("authorization", "Bearer ".to_owned())],
            400,
            r#"{"error":"invalid_request"}"#,
        ),
    ] {
        let a = get(&app, "/maybe", &headers).await;
        assert_eq!((a.status, a.body.as_str()), (status, body), "{headers:?}");
    }
    // A revocation through the guard is seen at once.
    f.guard.bump_version("alice").await.unwrap();
    let a = get(&app, "/me", &bearer(&f.valid)).await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (401, r#"{"error":"token_revoked"}"#)
    );
    // The store down: 503 with Retry-After, for the optional one too.
    f.guard.clear_cache();
    f.store.fail(true);
    for path in ["/me", "/maybe"] {
        let a = get(&app, path, &bearer(&f.valid)).await;
        assert_eq!(a.status, 503, "{path}");
        assert_eq!(a.retry_after.as_deref(), Some("1"), "{path}");
        assert_eq!(a.body, r#"{"error":"store_unavailable"}"#, "{path}");
    }
}

#[actix_web::test]
async fn a_validator_given_as_plain_app_data_works_too() {
    let (f, _) = fixture().await;
    let app = test::init_service(
        App::new()
            .app_data(Validator::<()>::new(f.guard.clone()))
            .route("/me", web::get().to(me)),
    )
    .await;
    let a = get(&app, "/me", &bearer(&f.valid)).await;
    assert_eq!((a.status, a.body.as_str()), (200, "alice:0"));
}

#[actix_web::test]
async fn a_missing_validator_is_a_loud_500_naming_it_not_a_401() {
    let (f, _) = fixture().await;
    // A validator for other claims than the extractor asks for is missing
    // too: `Validated<Role>` needs a `Validator<Role>`.
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(Validator::<()>::new(f.guard.clone())))
            .route("/admin", web::get().to(admin)),
    )
    .await;
    for headers in [vec![], bearer(&f.valid)] {
        let a = get(&app, "/admin", &headers).await;
        assert_eq!(a.status, 500);
        assert!(a.www.is_none(), "not an authentication failure");
        assert!(
            a.body.contains("Validator<actix_validated::Role>") && a.body.contains("app_data"),
            "{}",
            a.body
        );
    }
    let bare = test::init_service(App::new().route("/me", web::get().to(me))).await;
    let a = get(&bare, "/me", &bearer(&f.valid)).await;
    assert_eq!(a.status, 500);
    assert!(a.body.contains("Validator<()>"), "{}", a.body);
    // The optional extractor fails loudly as well, never as "anonymous".
    let a = get(&bare, "/me", &[]).await;
    assert_eq!(a.status, 500);
    let maybe_bare = test::init_service(App::new().route("/maybe", web::get().to(maybe))).await;
    let a = get(&maybe_bare, "/maybe", &[]).await;
    assert_eq!(a.status, 500, "{}", a.body);
}

#[actix_web::test]
async fn the_validator_takes_the_middleware_settings() {
    let (f, _) = fixture().await;
    let middleware = RevokeMiddleware::<Store, Role>::new(f.guard.clone())
        .token_source(TokenSource::Cookie("session"))
        .require(|v: &Verified<Role>| v.claims().role == "admin")
        .on_reject(|r: &Rejection| {
            RejectionBody::json(format!(r#"{{"ok":false,"why":"{}"}}"#, r.code))
        });
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(Validator::from(middleware)))
            .route("/admin", web::get().to(admin)),
    )
    .await;
    let issue = |role: &'static str| {
        let guard = f.guard.clone();
        async move {
            guard
                .issue("alice", &serde_json::json!({ "role": role }))
                .await
                .unwrap()
        }
    };
    let (admin_token, user_token) = (issue("admin").await, issue("user").await);
    let cookie = |t: &str| vec![("cookie", format!("session={t}"))];
    for (headers, status, body) in [
        (cookie(&admin_token), 200, "admin".to_owned()),
        (
            cookie(&user_token),
            403,
            r#"{"ok":false,"why":"insufficient_scope"}"#.to_owned(),
        ),
        (
            bearer(&admin_token),
            401,
            r#"{"ok":false,"why":"missing_token"}"#.to_owned(),
        ),
        (
            cookie(&f.valid),
            401,
            r#"{"ok":false,"why":"invalid_claims"}"#.to_owned(),
        ),
    ] {
        let a = get(&app, "/admin", &headers).await;
        assert_eq!((a.status, a.body.as_str()), (status, body.as_str()));
        if status != 200 {
            assert!(a.www.is_some(), "{body}");
        }
    }
}
