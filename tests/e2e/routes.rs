//! Every route against the OpenAPI document: the document lists exactly the routes the
//! server serves; for each, no token gets 401, a role it does not admit gets 403, and
//! every role it admits gets the exact status its probe expects; and every JSON body
//! the server answered validates against the schema the document declares for that
//! status (checked by jsonschema, tests/python/check_openapi.py).

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

use cordon::api::Role;
use cordon::simulate::Scenario;
use serde_json::{Value, json};

use crate::common::*;

/// What each operation is called with, and the status that must come back. A new
/// route needs a line here (the test fails until it has one).
struct Probe {
    method: &'static str,
    path: &'static str,
    /// The path with its `{id}` filled and its query.
    url: String,
    body: Option<Value>,
    expect: u16,
}

fn probes(alert: &str, action: &str) -> Vec<Probe> {
    let probe = |method, path: &'static str, url: String, body: Option<Value>, expect| Probe {
        method,
        path,
        url,
        body,
        expect,
    };
    vec![
        probe("GET", "/api/v1/alerts", "/api/v1/alerts".into(), None, 200),
        probe(
            "GET",
            "/api/v1/alerts/{id}",
            format!("/api/v1/alerts/{alert}"),
            None,
            200,
        ),
        probe(
            "PATCH",
            "/api/v1/alerts/{id}",
            format!("/api/v1/alerts/{alert}"),
            Some(json!({"note": "route probe"})),
            200,
        ),
        probe(
            "GET",
            "/api/v1/alerts/{id}/events",
            format!("/api/v1/alerts/{alert}/events"),
            None,
            200,
        ),
        probe("GET", "/api/v1/rules", "/api/v1/rules".into(), None, 200),
        probe("GET", "/api/v1/entities", "/api/v1/entities?limit=10".into(), None, 200),
        probe(
            "GET",
            "/api/v1/entities/{type}/{id}",
            "/api/v1/entities/user/alice".into(),
            None,
            200,
        ),
        probe("GET", "/api/v1/health/hosts", "/api/v1/health/hosts".into(), None, 200),
        probe("GET", "/api/v1/actions", "/api/v1/actions".into(), None, 200),
        probe(
            "GET",
            "/api/v1/actions/{id}",
            format!("/api/v1/actions/{action}"),
            None,
            200,
        ),
        // Decisions on an action that does not exist: the same answer whatever its state.
        probe(
            "POST",
            "/api/v1/actions/{id}/approve",
            "/api/v1/actions/act-none/approve".into(),
            Some(json!({})),
            404,
        ),
        probe(
            "POST",
            "/api/v1/actions/{id}/deny",
            "/api/v1/actions/act-none/deny".into(),
            Some(json!({})),
            404,
        ),
        probe(
            "POST",
            "/api/v1/actions/{id}/retry",
            "/api/v1/actions/act-none/retry".into(),
            Some(json!({})),
            404,
        ),
        probe(
            "POST",
            "/api/v1/respond",
            "/api/v1/respond".into(),
            Some(json!({"action": "notify", "host_id": "wks-probe", "reason": "route probe"})),
            201,
        ),
        probe("GET", "/api/v1/audit", "/api/v1/audit".into(), None, 200),
        probe(
            "POST",
            "/api/v1/hunt",
            "/api/v1/hunt".into(),
            Some(json!({"sql": "SELECT 1 AS one"})),
            200,
        ),
        probe(
            "GET",
            "/api/v1/timeline",
            "/api/v1/timeline?host_id=wks-probe".into(),
            None,
            200,
        ),
        probe("GET", "/api/v1/openapi.json", "/api/v1/openapi.json".into(), None, 200),
        probe("GET", "/metrics", "/metrics".into(), None, 200),
    ]
}

/// Calls `probe` as `role`; the status and the body when it is JSON.
async fn call(server: &TestServer, probe: &Probe, role: Option<Role>) -> (u16, Option<Value>) {
    let method = reqwest::Method::from_bytes(probe.method.as_bytes()).unwrap();
    let mut request = reqwest::Client::new().request(method, format!("{}{}", server.api_url(), probe.url));
    if let Some(role) = role {
        request = request.bearer_auth(token_for(role));
    }
    if let Some(body) = &probe.body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let json = response
        .headers()
        .get("content-type")
        .is_some_and(|kind| kind.to_str().unwrap_or_default().starts_with("application/json"));
    let body = if json { response.json().await.ok() } else { None };
    (status, body)
}

/// Raises one alert and makes one action, so the probes read real ones.
async fn seed(server: &TestServer) -> (String, String) {
    let events = simulated(41, 600, &[Scenario::RepeatedPolicyDenies]);
    server.send_all(&events).await;
    server.detections_idle().await;
    let alerts = server.alerts().await;
    let alert = alerts.first().expect("the attack raised an alert")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let action = eventually(
        std::time::Duration::from_secs(30),
        "the alert's playbook action",
        async || {
            let (_, listed) = server.api_get("/api/v1/actions", Some(Role::Responder)).await;
            listed["actions"][0]["id"].as_str().map(str::to_string)
        },
    )
    .await;
    (alert, action)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_documented_and_answers_as_documented() {
    let doc: Value = serde_json::from_str(cordon::api::openapi::DOCUMENT).unwrap();
    let mut documented = BTreeSet::new();
    let mut admitted = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let method = method.to_uppercase();
            documented.insert((method.clone(), path.clone()));
            let roles: Vec<String> = operation["x-cordon-roles"]
                .as_array()
                .unwrap_or_else(|| panic!("{method} {path} has no x-cordon-roles"))
                .iter()
                .map(|role| role.as_str().unwrap().to_string())
                .collect();
            admitted.push(((method, path.clone()), roles));
        }
    }
    let served: BTreeSet<(String, String)> = cordon::api::routes()
        .into_iter()
        .map(|(method, path, _)| (method.to_string(), path.to_string()))
        .collect();
    assert_eq!(documented, served, "the OpenAPI document and the routes differ");

    let server = TestServer::start().await;
    let (alert, action) = seed(&server).await;
    let probes = probes(&alert, &action);
    let probed: BTreeSet<(String, String)> = probes
        .iter()
        .map(|probe| (probe.method.to_string(), probe.path.to_string()))
        .collect();
    assert_eq!(probed, documented, "every documented operation has a probe");

    let mut answers = Vec::new();
    for probe in &probes {
        let (method, path) = (probe.method, probe.path);
        let roles = &admitted
            .iter()
            .find(|(operation, _)| operation.0 == method && operation.1 == path)
            .unwrap()
            .1;
        let (status, body) = call(&server, probe, None).await;
        assert_eq!(status, 401, "{method} {path} without a token");
        answers.push(json!({"method": method, "path": path, "status": status, "body": body}));
        for role in Role::ALL {
            let (status, body) = call(&server, probe, Some(role)).await;
            let expect = if roles.iter().any(|admitted| admitted == role.as_str()) {
                probe.expect
            } else {
                403
            };
            assert_eq!(status, expect, "{method} {} as {}: {body:?}", probe.url, role.as_str());
            answers.push(json!({"method": method, "path": path, "status": status, "body": body}));
        }
    }
    let checked = check_against_document(&answers);
    assert!(checked.0, "bodies that do not match the document:\n{}", checked.1);
    server.stop().await;
}

/// Runs the schema check over `answers`; whether all passed, and what it printed.
fn check_against_document(answers: &[Value]) -> (bool, String) {
    let mut child = Command::new(python())
        .arg(python_script("check_openapi.py"))
        .arg(project_dir().join("src/api/openapi.json"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(answers).unwrap().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), printed)
}
