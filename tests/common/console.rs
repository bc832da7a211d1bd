//! A logged-in console session for HTTP tests: the session cookie and the CSRF token read from a
//! page, and form posts that carry both.

use hyper::Method;

use super::{Answer, TestClient};

pub struct Console<'a> {
    pub client: &'a TestClient,
    pub cookie: String,
    pub csrf: String,
}

/// Form-encodes `fields`.
pub fn form(fields: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

/// The `value` of the first hidden `csrf` field in a page.
pub fn csrf_of(page: &str) -> Option<String> {
    let at = page.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    Some(page[at..].split('"').next()?.to_string())
}

/// Posts the login form; answers the raw answer (303 with a cookie on success).
pub async fn login_answer(client: &TestClient, key: &str) -> Answer {
    client
        .call(
            Method::POST,
            "/ui/login",
            &form(&[("key", key)]),
            &[("content-type", "application/x-www-form-urlencoded")],
        )
        .await
}

impl<'a> Console<'a> {
    pub async fn login(client: &'a TestClient, key: &str) -> Console<'a> {
        let answer = login_answer(client, key).await;
        assert_eq!(answer.status, 303, "login: {}", answer.text());
        let set = answer.header("set-cookie").expect("a session cookie");
        let cookie = set.split(';').next().unwrap().to_string();
        let mut console = Console {
            client,
            cookie,
            csrf: String::new(),
        };
        let page = console.get("/ui/modules").await;
        console.csrf = csrf_of(&page.text()).expect("a csrf field");
        console
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.client
            .call(Method::GET, path, "", &[("cookie", &self.cookie)])
            .await
    }

    /// Posts `fields` plus this session's CSRF token.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let mut all = fields.to_vec();
        all.push(("csrf", &self.csrf));
        self.post_raw(path, &form(&all)).await
    }

    /// Posts a body as it is (no CSRF token added).
    pub async fn post_raw(&self, path: &str, body: &str) -> Answer {
        self.client
            .call(
                Method::POST,
                path,
                body,
                &[
                    ("cookie", &self.cookie),
                    ("content-type", "application/x-www-form-urlencoded"),
                ],
            )
            .await
    }
}
