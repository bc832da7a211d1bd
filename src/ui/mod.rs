//! The web console at `/ui` on the proxy's port: server-rendered pages (one file each), a small
//! hand-written `app.js` and `app.css` embedded in the binary, charts as inline SVG drawn here.
//!
//! Who may look: whoever logs in with an admin key (the configured one or a stored one); a
//! read-only admin key sees every page and changes nothing. The session is an `HttpOnly`,
//! `SameSite=Strict` cookie (sessions live in memory, `session.rs`); every change is a form post
//! carrying the session's CSRF token, checked before anything else; every answer carries a
//! content security policy that allows only this origin's script and style.
//!
//! Every change goes through `Admin::apply`, as the admin API's does (the forms are read into the
//! same `AdminChange`s), so it is validated, stored and in the ledger under the session's actor.
//! Reads go through the store's read pool (`DashboardStore`), never the writer.
//!
//! `[ui] enabled = false` turns the console off: `/ui` is then a 404 like any unknown path.

mod assets;
mod audit;
mod charts;
mod html;
mod keys;
mod live;
mod modules_page;
mod overview;
mod routing_page;
mod session;
mod spend;
mod trace_detail;
mod traces;

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{
    CACHE_CONTROL, CONTENT_TYPE, COOKIE, HeaderName, HeaderValue, LOCATION, SET_COOKIE,
};
use hyper::{Method, Request, Response, StatusCode};

use crate::proxy::{ApiError, ProxyBody};
use crate::server::App;
pub use session::Sessions;
use session::{Session, same};

/// Largest form body accepted (a module's config JSON is the biggest thing posted).
const MAX_FORM_BYTES: usize = 1024 * 1024;

/// Scripts and styles only from this origin (no inline ones), forms only to it, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What a page handler gets: the app, the session and its token.
pub struct Ctx<'a> {
    pub app: &'a Arc<App>,
    pub session: Session,
    token: String,
}

impl Ctx<'_> {
    /// A message on the next page.
    pub fn flash(&self, ok: bool, text: impl Into<String>) {
        sessions(self.app).flash(&self.token, ok, text.into());
    }
}

/// A posted form's fields, in order.
pub struct Form(pub Vec<(String, String)>);

impl Form {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The field, trimmed, `None` when absent or blank.
    pub fn text(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    }

    pub fn parse(bytes: &[u8]) -> Form {
        Form(url::form_urlencoded::parse(bytes).into_owned().collect())
    }
}

fn sessions(app: &App) -> Arc<Sessions> {
    app.admin.deps().shared.get_or_init(Sessions::default)
}

pub async fn route(app: &Arc<App>, request: Request<Incoming>) -> Response<ProxyBody> {
    if !app.config.ui_enabled {
        return ApiError::NotFound {
            path: request.uri().path().to_string(),
        }
        .into_response();
    }
    let mut response = dispatch(app, request).await;
    secure_headers(&mut response);
    response
}

async fn dispatch(app: &Arc<App>, request: Request<Incoming>) -> Response<ProxyBody> {
    let method = request.method().clone();
    let path = request.uri().path().trim_end_matches('/').to_string();
    let query = Form::parse(request.uri().query().unwrap_or_default().as_bytes());
    if let Some(asset) = path.strip_prefix("/ui/assets/") {
        return assets::serve(asset);
    }
    if path == "/ui/login" {
        return match method {
            Method::POST => login(app, request).await,
            _ => html(StatusCode::OK, login_page(None)),
        };
    }
    let token = cookie(&request).unwrap_or_default();
    let session = sessions(app)
        .touch(&token, app.config.ui_session_idle)
        .filter(|s| key_still_live(app, &s.actor));
    let Some(session) = session else {
        if method == Method::GET {
            return redirect("/ui/login");
        }
        return error_page(
            StatusCode::UNAUTHORIZED,
            "your session has ended; log in again",
        );
    };
    let ctx = Ctx {
        app,
        session,
        token,
    };
    if method == Method::POST {
        let form = match read_form(request).await {
            Ok(form) => form,
            Err(response) => return response,
        };
        // The CSRF check comes first: a forged post learns nothing, not even a page's errors.
        if !form.get("csrf").is_some_and(|t| same(t, &ctx.session.csrf)) {
            return error_page(
                StatusCode::FORBIDDEN,
                "CSRF token missing or wrong: reload the page and try again",
            );
        }
        if path == "/ui/logout" {
            sessions(app).close(&ctx.token);
            let mut response = redirect("/ui/login");
            set_cookie(&mut response, "", 0);
            return response;
        }
        if ctx.session.read_only {
            return error_page(
                StatusCode::FORBIDDEN,
                "this session's admin key is read-only: it may look, not change",
            );
        }
        return post(&ctx, &path, form).await;
    }
    if method != Method::GET && method != Method::HEAD {
        return error_page(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    }
    get(&ctx, &path, &query).await
}

async fn get(ctx: &Ctx<'_>, path: &str, query: &Form) -> Response<ProxyBody> {
    match path {
        "/ui" | "/ui/overview" => overview::page(ctx, query).await,
        "/ui/traces" => traces::page(ctx, query).await,
        p if p.starts_with("/ui/traces/") => {
            trace_detail::page(ctx, &p["/ui/traces/".len()..]).await
        }
        "/ui/live" => live::page(ctx),
        "/ui/live/events" => live::events(ctx),
        "/ui/spend" => spend::page(ctx, query).await,
        "/ui/keys" => keys::page(ctx, None),
        "/ui/routing" => routing_page::page(ctx, None),
        "/ui/modules" => modules_page::page(ctx, None),
        "/ui/audit" => audit::page(ctx, query).await,
        _ => error_page(StatusCode::NOT_FOUND, "no such page"),
    }
}

async fn post(ctx: &Ctx<'_>, path: &str, form: Form) -> Response<ProxyBody> {
    let segments: Vec<&str> = path.trim_start_matches("/ui/").split('/').collect();
    match segments.as_slice() {
        ["keys", ..] | ["teams", ..] | ["providers", ..] => keys::post(ctx, &segments, form).await,
        ["routing", ..] => routing_page::post(ctx, &segments, form).await,
        ["modules", name] => modules_page::post(ctx, name, form).await,
        _ => error_page(StatusCode::NOT_FOUND, "no such action"),
    }
}

/// A session opened by a stored admin key ends when that key is revoked.
fn key_still_live(app: &App, actor: &str) -> bool {
    let Some(name) = actor.strip_prefix("admin-key:") else {
        return true;
    };
    crate::modules::auth::table::of(app.admin.deps()).is_some_and(|t| {
        t.load()
            .admin_keys
            .values()
            .any(|k| k.revoked_ms.is_none() && k.name == name)
    })
}

async fn login(app: &Arc<App>, request: Request<Incoming>) -> Response<ProxyBody> {
    let form = match read_form(request).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    let key = form.get("key").unwrap_or_default().trim().to_string();
    let caller = match crate::admin::http::admin_key_caller(app, &key) {
        Ok(caller) => caller,
        Err(ApiError::AdminDisabled) => {
            return html(
                StatusCode::FORBIDDEN,
                login_page(Some(
                    "no admin key is configured: set admin.key (or STOCKYARD_ADMIN_KEY), or \
                     create one with `stockyard admin-keys create`",
                )),
            );
        }
        Err(_) => {
            return html(
                StatusCode::UNAUTHORIZED,
                login_page(Some("that is not a live admin key")),
            );
        }
    };
    let idle = app.config.ui_session_idle;
    let token = match sessions(app).open(caller.actor.clone(), caller.read_only, idle) {
        Ok(token) => token,
        Err(e) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    tracing::info!(actor = %caller.actor, "console login");
    let mut response = redirect("/ui");
    set_cookie(&mut response, &token, idle.as_secs());
    response
}

fn login_page(error: Option<&str>) -> String {
    let error = error
        .map(|e| {
            format!(
                "<p class=\"flash err\" id=\"login-error\">{}</p>",
                html::esc(e)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "{error}<form method=\"post\" action=\"/ui/login\" class=\"login\">\
         <label>Admin key <input type=\"password\" name=\"key\" id=\"key\" autocomplete=\"off\" \
         autofocus required></label><button id=\"login\">Log in</button></form>\
         <p class=\"hint\">The configured admin key, or one from <code>stockyard admin-keys \
         create</code>. A read-only key sees everything and changes nothing.</p>"
    );
    html::page("Log in", "", None, &body)
}

/// `HttpOnly` (no script reads it), `SameSite=Strict` (no other site's page sends it), scoped to
/// the console's paths. Not `Secure`: the proxy usually listens on plain HTTP behind a TLS
/// terminator or on loopback, and a `Secure` cookie would never come back over plain HTTP.
fn set_cookie(response: &mut Response<ProxyBody>, token: &str, max_age_s: u64) {
    let value = format!(
        "{}={token}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={max_age_s}",
        session::COOKIE
    );
    if let Ok(v) = HeaderValue::from_str(&value) {
        response.headers_mut().append(SET_COOKIE, v);
    }
}

fn cookie(request: &Request<Incoming>) -> Option<String> {
    request
        .headers()
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == session::COOKIE)
        .map(|(_, value)| value.to_string())
}

async fn read_form(request: Request<Incoming>) -> Result<Form, Response<ProxyBody>> {
    match Limited::new(request.into_body(), MAX_FORM_BYTES)
        .collect()
        .await
    {
        Ok(body) => Ok(Form::parse(&body.to_bytes())),
        Err(e) => Err(error_page(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("cannot read the form: {e}"),
        )),
    }
}

pub fn html(status: StatusCode, body: String) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::full(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

pub fn redirect(to: &str) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::empty());
    *response.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(to) {
        response.headers_mut().insert(LOCATION, v);
    }
    response
}

pub fn error_page(status: StatusCode, message: &str) -> Response<ProxyBody> {
    let body = format!(
        "<p class=\"flash err\" id=\"error\">{}</p><p><a href=\"/ui\">Back to the console</a></p>",
        html::esc(message)
    );
    html(status, html::page(status.as_str(), "", None, &body))
}

/// After a change: back to `to`, with the outcome as the next page's message.
pub fn done(ctx: &Ctx<'_>, to: &str, outcome: Result<String, String>) -> Response<ProxyBody> {
    match outcome {
        Ok(text) => ctx.flash(true, text),
        Err(text) => ctx.flash(false, text),
    }
    redirect(to)
}

fn secure_headers(response: &mut Response<ProxyBody>) {
    let headers = response.headers_mut();
    let mut put = |name: HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    put(HeaderName::from_static("content-security-policy"), CSP);
    put(HeaderName::from_static("x-content-type-options"), "nosniff");
    put(HeaderName::from_static("referrer-policy"), "no-referrer");
    put(HeaderName::from_static("x-frame-options"), "DENY");
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// Runs a blocking store read off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}
