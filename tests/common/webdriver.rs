//! A small W3C WebDriver client for the console's browser tests: it starts `chromedriver` on a
//! free loopback port, opens headless Chromium, and speaks the protocol's JSON over HTTP with the
//! same hyper client the other tests use (no WebDriver crate: the protocol calls needed here are
//! a dozen, and this keeps the test build small). Every wait is bounded.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use hyper::Method;
use serde_json::{Value, json};

use super::TestClient;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// The key W3C WebDriver names an element reference by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    driver: Child,
    client: TestClient,
    session: String,
    shots: PathBuf,
}

/// Why the browser tests cannot run here, or `None` when they can.
pub fn unavailable() -> Option<String> {
    for bin in [CHROMEDRIVER, CHROMIUM] {
        if !Path::new(bin).exists() {
            return Some(format!(
                "{bin} is not installed (apt-get install chromium chromium-driver; .ci/run does)"
            ));
        }
    }
    None
}

impl Browser {
    pub async fn start() -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Its own process group, which the browser it starts joins: a failed test kills both.
        let driver = Command::new(CHROMEDRIVER)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let client = TestClient::new(format!("http://127.0.0.1:{port}"));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            // Connect first: the test client treats a refused connection as a failure.
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                let answer = client.get("/status").await;
                if answer.status == 200 && answer.json()["value"]["ready"] == true {
                    break;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver not ready in 20 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1400,1000", "--no-first-run"],
            },
        }}});
        let answer = client.post("/session", &caps.to_string()).await;
        assert_eq!(answer.status, 200, "new session: {}", answer.text());
        let session = answer.json()["value"]["sessionId"]
            .as_str()
            .unwrap()
            .to_string();
        let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ui-screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        Browser {
            driver,
            client,
            session,
            shots,
        }
    }

    async fn call(&self, method: Method, path: &str, body: Value) -> Value {
        let path = format!("/session/{}{path}", self.session);
        let body = if method == Method::GET {
            String::new()
        } else {
            body.to_string()
        };
        let answer = self.client.call(method, &path, &body, &[]).await;
        let value = answer.json();
        assert_eq!(answer.status, 200, "{path}: {value}");
        value["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.call(Method::POST, "/url", json!({"url": url})).await;
    }

    pub async fn url(&self) -> String {
        self.call(Method::GET, "/url", Value::Null)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn source(&self) -> String {
        self.call(Method::GET, "/source", Value::Null)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The element `css` selects, waiting up to 10 s for it to appear.
    pub async fn find(&self, css: &str) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let path = format!("/session/{}/element", self.session);
            let body = json!({"using": "css selector", "value": css}).to_string();
            let answer = self.client.call(Method::POST, &path, &body, &[]).await;
            if answer.status == 200 {
                let value = answer.json();
                return value["value"][ELEMENT]
                    .as_str()
                    .unwrap_or_else(|| panic!("{css}: {value}"))
                    .to_string();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no element {css:?} within 10 s at {}",
                self.url().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// How many elements `css` selects now.
    pub async fn count(&self, css: &str) -> usize {
        let value = self
            .call(
                Method::POST,
                "/elements",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        value.as_array().map_or(0, Vec::len)
    }

    pub async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.call(Method::POST, &format!("/element/{id}/click"), json!({}))
            .await;
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.call(Method::POST, &format!("/element/{id}/clear"), json!({}))
            .await;
        self.call(
            Method::POST,
            &format!("/element/{id}/value"),
            json!({"text": text}),
        )
        .await;
    }

    pub async fn text(&self, css: &str) -> String {
        let id = self.find(css).await;
        self.call(Method::GET, &format!("/element/{id}/text"), Value::Null)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Accepts a `confirm()` dialog, waiting up to 5 s for it.
    pub async fn accept_dialog(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let path = format!("/session/{}/alert/accept", self.session);
            if self
                .client
                .call(Method::POST, &path, "{}", &[])
                .await
                .status
                == 200
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no dialog within 5 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Writes a PNG of the window to `target/ui-screenshots/NAME.png`; answers its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let b64 = self.call(Method::GET, "/screenshot", Value::Null).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    pub async fn quit(mut self) {
        let path = format!("/session/{}", self.session);
        let _ = self.client.call(Method::DELETE, &path, "", &[]).await;
        self.kill_group();
    }

    fn kill_group(&mut self) {
        // The driver leads its group (process_group(0)), so its id is the group's.
        let group = self.driver.id() as i32;
        // SAFETY: kill(2) with a negative pid signals that process group; no memory is shared.
        unsafe {
            libc::kill(-group, libc::SIGKILL);
        }
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A failed assertion must not leave chromedriver (and its browser) running.
        self.kill_group();
    }
}
