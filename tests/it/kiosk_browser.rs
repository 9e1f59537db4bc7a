//! The kiosk page in headless Chromium (Debian's `chromium` and `chromium-driver`, driven
//! over WebDriver), against the file source: each state the page can show, reached the
//! way a person would reach it, checked on the rendered page, and photographed.
//! Ignored by `cargo test`; `scripts/kiosk-browser` installs the browser and runs it, and
//! with `KIOSK_SCREENSHOTS=DIR` writes the screenshots there (`docs/kiosk/`).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::fixtures;
use crate::common::server::Server;
use base64::Engine;
use image::codecs::jpeg::JpegEncoder;
use recognize_agent::capture::assess::Guidance;
use serde_json::{Value, json};

/// A headless Chromium session through a chromedriver process of its own.
struct Browser {
    driver: Child,
    session: String,
}

impl Browser {
    fn start() -> Browser {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let driver = Command::new(std::env::var("CHROMEDRIVER").unwrap_or("chromedriver".into()))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (scripts/kiosk-browser installs it)");
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while ureq::get(format!("{base}/status")).call().is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let chromium = std::env::var("CHROMIUM").unwrap_or("/usr/bin/chromium".into());
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--window-size=720,940", "--hide-scrollbars"],
            },
        }}});
        let created = post(&format!("{base}/session"), &caps);
        let mut browser = Browser {
            driver,
            session: String::new(),
        };
        browser.session = format!(
            "{base}/session/{}",
            created["sessionId"].as_str().expect("a WebDriver session")
        );
        browser
    }

    fn open(&self, url: &str) {
        post(&format!("{}/url", self.session), &json!({ "url": url }));
    }

    /// Runs `script` (a function body) in the page; its return value.
    fn eval(&self, script: &str) -> Value {
        let url = format!("{}/execute/sync", self.session);
        post(&url, &json!({ "script": script, "args": [] }))
    }

    /// Waits (at most 60 s) until `script` returns true.
    fn wait(&self, what: &str, script: &str) {
        let started = Instant::now();
        while self.eval(script) != Value::Bool(true) {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{what}: not reached in 60 s; the page shows {}",
                self.eval("return document.body.innerText")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn click(&self, css: &str) {
        let found = post(
            &format!("{}/element", self.session),
            &json!({ "using": "css selector", "value": css }),
        );
        let id = found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}"));
        post(&format!("{}/element/{id}/click", self.session), &json!({}));
    }

    /// Photographs the page into `KIOSK_SCREENSHOTS/NAME.jpg`, when that is set.
    fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("KIOSK_SCREENSHOTS") else {
            return;
        };
        let png = ureq::get(format!("{}/screenshot", self.session))
            .call()
            .unwrap()
            .body_mut()
            .read_json::<Value>()
            .unwrap();
        let png = base64::engine::general_purpose::STANDARD
            .decode(png["value"].as_str().unwrap())
            .unwrap();
        let rgb = image::load_from_memory(&png).unwrap().to_rgb8();
        let path = Path::new(&dir).join(format!("{name}.jpg"));
        let out = std::fs::File::create(&path).unwrap();
        rgb.write_with_encoder(JpegEncoder::new_with_quality(out, 80))
            .unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = ureq::delete(&self.session).call();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// POSTs `body` to a WebDriver endpoint; the `value` of its answer.
fn post(url: &str, body: &Value) -> Value {
    let mut r = ureq::post(url)
        .send_json(body)
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    r.body_mut().read_json::<Value>().unwrap()["value"].take()
}

/// The kiosk playing `frames` (a fixture, or any path) in a loop.
fn kiosk(frames: &Path, env: &[(&str, &str)]) -> Server {
    let args = [
        "--kiosk",
        "--frames",
        frames.to_str().unwrap(),
        "--frames-fps",
        "5",
    ];
    let mut env = env.to_vec();
    env.push(("ANALYSIS_FPS", "10"));
    Server::spawn_with("serve", "127.0.0.1", &args, &env)
}

fn page(server: &Server) -> String {
    format!("http://{}/kiosk", server.addr)
}

/// The page shows `phase` and the advice `guidance`, its preview has loaded, and the
/// advice reads as it should.
fn shows(browser: &Browser, phase: &str, guidance: Guidance, text: &str) {
    let code = serde_json::to_value(guidance).unwrap();
    let code = code.as_str().unwrap();
    browser.wait(
        &format!("{phase} {code}"),
        &format!(
            "const b = document.body.dataset, img = document.getElementById('preview');
             return b.phase === '{phase}' && b.guidance === '{code}'
                 && img.complete && img.naturalWidth > 0;"
        ),
    );
    assert_eq!(self::text(browser, "#guidance"), text);
}

/// The text of the element `css` selects.
fn text(browser: &Browser, css: &str) -> String {
    let script = format!("return document.querySelector('{css}').textContent");
    browser
        .eval(&script)
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Whether the face box is drawn on the overlay, in the colour of `ready`.
fn face_box_drawn(browser: &Browser, ready: bool) -> bool {
    let want = if ready {
        "[46,204,113]"
    } else {
        "[245,176,65]"
    };
    browser.eval(&format!(
        "const c = document.getElementById('overlay'), g = c.getContext('2d');
         const d = g.getImageData(0, 0, c.width, c.height).data;
         for (let i = 0; i < d.length; i += 4)
           if (d[i + 3] > 200 && JSON.stringify([d[i], d[i + 1], d[i + 2]]) === '{want}')
             return true;
         return false;"
    )) == Value::Bool(true)
}

fn fixture(name: &str) -> PathBuf {
    fixtures().join(name)
}

#[test]
#[ignore = "needs chromium and chromium-driver: run scripts/kiosk-browser"]
fn every_state_of_the_kiosk_page_renders_in_chromium() {
    let browser = Browser::start();

    // Advice, one situation at a time.
    let advice = [
        ("1-step-in", "missing/brick.jpg", Guidance::StepIn),
        ("2-move-closer", "small/obama.jpg", Guidance::MoveCloser),
        (
            "3-one-person",
            "multiple/obama_obama2.jpg",
            Guidance::OnePerson,
        ),
        (
            "4-uncover-face",
            "occluded/obama_mask_blue.jpg",
            Guidance::UncoverFace,
        ),
    ];
    for (name, frames, guidance) in advice {
        let server = kiosk(&fixture(frames), &[]);
        browser.open(&page(&server));
        shows(&browser, "WATCHING", guidance, guidance.message());
        assert_eq!(
            face_box_drawn(&browser, false),
            guidance != Guidance::StepIn,
            "{name}: the face box"
        );
        browser.screenshot(name);
    }

    // A face half the subject's size (an ID card's ghost portrait) is not a second person.
    let server = kiosk(&fixture("document/obama_card.jpg"), &[]);
    browser.open(&page(&server));
    shows(&browser, "WATCHING", Guidance::Ready, "Ready: press Start");

    // Ready, then Start: capturing, then enrolled with the keylessId the agent reports.
    let server = kiosk(&fixture("clean/obama.jpg"), &[]);
    browser.open(&page(&server));
    shows(&browser, "WATCHING", Guidance::Ready, "Ready: press Start");
    assert!(face_box_drawn(&browser, true));
    assert_eq!(
        browser.eval("return document.getElementById('start').disabled"),
        json!(false)
    );
    browser.screenshot("5-ready");
    browser.click("#start");
    shows(&browser, "CAPTURING", Guidance::Ready, "Hold still…");
    assert_eq!(text(&browser, "#start"), "Enrolling…");
    browser.screenshot("6-capturing");
    browser.wait(
        "enrolled",
        "return document.getElementById('result').className === 'success'",
    );
    let shown = browser.eval("return document.querySelector('#result code').textContent");
    let answer = server.request("GET", "/kiosk/result", &[], b"").json();
    assert_eq!(
        shown, answer["keylessId"],
        "the page shows the enrolled keylessId"
    );
    browser.screenshot("7-enrolled");
    drop(server);

    // A recaptured face passes every filter but not the liveness check.
    let server = kiosk(&fixture("spoof/obama_screen.jpg"), &[("LIVENESS", "true")]);
    browser.open(&page(&server));
    shows(&browser, "WATCHING", Guidance::Ready, "Ready: press Start");
    browser.click("#start");
    browser.wait(
        "refused",
        "return document.getElementById('result').className === 'failure'",
    );
    let refused = text(&browser, "#result");
    assert!(
        refused.starts_with("Not enrolled: Liveness check failed"),
        "{refused}"
    );
    browser.screenshot("8-not-live");
    drop(server);

    // No camera.
    let server = kiosk(Path::new("/nonexistent/camera"), &[]);
    browser.open(&page(&server));
    browser.wait(
        "unavailable",
        "return document.body.dataset.phase === 'UNAVAILABLE'",
    );
    let off = text(&browser, "#off");
    assert!(off.starts_with("The camera is not available: "), "{off}");
    browser.screenshot("9-unavailable");
}
