//! The kiosk's routes under `/kiosk`, answered to the kiosk's own browser only (a
//! loopback peer): the page shows live frames of a face.

use embedded_svc::http::Method;
use embedded_svc::http::server::Connection;

use super::{Busy, Kiosk};
use crate::service::Peer;
use crate::service::error::ApiError;
use crate::service::exchange::method_not_allowed;
use crate::service::reply::Reply;

/// The page: self-contained HTML, CSS and script.
pub const PAGE: &str = include_str!("page.html");

/// A route of the kiosk.
enum Route {
    Page,
    Status,
    Frame,
    Result,
    Start,
}

impl Route {
    /// The route of `path`, and the methods it accepts.
    fn of(path: &str) -> Option<(Route, &'static str)> {
        Some(match path {
            "/kiosk" => (Route::Page, "GET"),
            "/kiosk/status" => (Route::Status, "GET"),
            "/kiosk/frame.jpg" => (Route::Frame, "GET"),
            "/kiosk/result" => (Route::Result, "GET"),
            "/kiosk/start" => (Route::Start, "POST"),
            _ => return None,
        })
    }
}

/// Answers a request under `/kiosk`.
pub fn route<C: Connection + Peer>(
    kiosk: &Kiosk,
    conn: &C,
    method: Method,
    path: &str,
) -> Result<Reply, ApiError> {
    if !conn.peer().is_some_and(|ip| ip.is_loopback()) {
        return Err(ApiError::new(
            403,
            "the kiosk is served to the kiosk's own browser only (from this machine)",
        ));
    }
    let (route, allowed) =
        Route::of(path).ok_or_else(|| ApiError::new(404, format!("no such endpoint: {path}")))?;
    match (route, method) {
        (Route::Page, Method::Get) => Ok(Reply::document("text/html; charset=utf-8", PAGE)),
        (Route::Status, Method::Get) => Ok(Reply::json(200, &kiosk.view())),
        (Route::Frame, Method::Get) => match kiosk.preview() {
            Some(jpeg) => Ok(Reply {
                status: 200,
                content_type: "image/jpeg",
                body: jpeg.to_vec(),
            }),
            None => Err(ApiError::new(
                404,
                "no frame yet: the camera starts when the page asks for /kiosk/status",
            )),
        },
        (Route::Result, Method::Get) => match kiosk.answer() {
            Some(answer) => Ok(Reply::json(200, &answer)),
            None => Err(ApiError::new(
                404,
                "no enrolment has succeeded since the last start",
            )),
        },
        (Route::Start, Method::Post) => match kiosk.capture() {
            Ok(()) => Ok(Reply::json(202, &kiosk.view())),
            Err(Busy) => Err(ApiError::new(
                409,
                "an enrolment is already choosing its frame",
            )),
        },
        _ => Err(method_not_allowed(path, allowed)),
    }
}
