//! Every route against the OpenAPI document: the document lists exactly the routes the
//! server serves, and for each, no token gets 401, a role it does not admit gets 403,
//! and every role it admits gets past the check.

use std::collections::BTreeSet;

use cordon::api::Role;
use serde_json::Value;

use crate::common::*;

async fn call(server: &TestServer, method: &str, path: &str, role: Option<Role>) -> u16 {
    let url = format!("{}{}", server.api_url(), path.replace("{id}", "no-such-id"));
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = reqwest::Client::new().request(method, url);
    if let Some(role) = role {
        request = request.bearer_auth(token_for(role));
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_documented_and_checks_its_roles() {
    let doc: Value = serde_json::from_str(cordon::api::openapi::DOCUMENT).unwrap();
    let mut documented = BTreeSet::new();
    let mut operations = Vec::new();
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
            operations.push((method, path.clone(), roles));
        }
    }
    let served: BTreeSet<(String, String)> = cordon::api::routes()
        .into_iter()
        .map(|(method, path, _)| (method.to_string(), path.to_string()))
        .collect();
    assert_eq!(documented, served, "the OpenAPI document and the routes differ");

    let server = TestServer::start().await;
    let (status, served_doc) = server.api_get("/api/v1/openapi.json", Some(Role::Analyst)).await;
    assert_eq!((status, &served_doc), (200, &doc));
    for (method, path, roles) in &operations {
        assert_eq!(
            call(&server, method, path, None).await,
            401,
            "{method} {path} without a token"
        );
        for role in Role::ALL {
            let status = call(&server, method, path, Some(role)).await;
            if roles.iter().any(|admitted| admitted == role.as_str()) {
                assert!(
                    status != 401 && status != 403,
                    "{method} {path} refused {} ({status})",
                    role.as_str()
                );
            } else {
                assert_eq!(status, 403, "{method} {path} let {} through", role.as_str());
            }
        }
    }
    server.stop().await;
}
