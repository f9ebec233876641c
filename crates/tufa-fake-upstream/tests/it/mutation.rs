use tufa_fake_upstream::{FakeUpstream, ReleaseSpec, demo_projects};

use crate::*;

#[tokio::test]
async fn add_and_remove_release() {
    let up = FakeUpstream::start(demo_projects()).await;
    let before = up.last_serial();
    up.add_release("demo-util", ReleaseSpec::new("0.2").wheel_only());
    assert_eq!(up.last_serial(), before + 1);
    assert_eq!(up.project_serial("demo-util"), Some(before + 1));
    let v = project_json(&up, "demo-util").await;
    assert_eq!(v["versions"], serde_json::json!(["0.1", "0.2"]));
    assert_eq!(
        v["meta"]["_last-serial"],
        (before + 1).to_string(),
        "a string, as PyPI sends it"
    );
    let url = up.file_url("demo_util-0.2-py3-none-any.whl").unwrap();
    assert_eq!(get(&url).await.status(), 200);

    up.remove_release("demo-util", "0.2");
    assert_eq!(up.last_serial(), before + 2);
    assert_eq!(get(&url).await.status(), 404);
    assert!(up.file_bytes("demo_util-0.2-py3-none-any.whl").is_none());
    let v = project_json(&up, "demo-util").await;
    assert_eq!(v["versions"], serde_json::json!(["0.1"]));
    assert_eq!(v["meta"]["_last-serial"], (before + 2).to_string());
    let last = up.changelog().pop().unwrap();
    assert_eq!(
        (last.name.as_str(), last.version.as_str(), last.action.as_str()),
        ("demo-util", "0.2", "remove release")
    );

    // New project: creation and release each bump the serial.
    up.add_release("New_Thing", ReleaseSpec::new("1.0"));
    assert_eq!(up.last_serial(), before + 4);
    assert_eq!(
        up.filenames("new-thing"),
        ["new_thing-1.0-py3-none-any.whl", "new_thing-1.0.tar.gz"]
    );
}

fn ints(doc: &str) -> Vec<i64> {
    doc.split("<int>")
        .skip(1)
        .map(|s| s.split("</int>").next().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test]
async fn xmlrpc_changelog() {
    let up = FakeUpstream::start(demo_projects()).await;
    let resp = xmlrpc(&up, call("changelog_last_serial", None)).await;
    assert!(resp.contains("<methodResponse>") && resp.contains("<params>"));
    assert_eq!(ints(&resp), [up.last_serial() as i64]);

    let since = up.last_serial();
    let resp = xmlrpc(&up, call("changelog_since_serial", Some(since as i64))).await;
    assert!(resp.contains("<array><data></data></array>"), "{resp}");

    up.add_release("demo-app", ReleaseSpec::new("2.0"));
    let resp = xmlrpc(&up, call("changelog_since_serial", Some(since as i64))).await;
    assert!(resp.contains("<value><string>demo-app</string></value><value><string>2.0</string></value>"));
    assert!(resp.contains("<string>new release</string>"));
    assert!(resp.contains("<string>add py3 file demo_app-2.0-py3-none-any.whl</string>"));
    assert!(resp.contains("<string>add source file demo_app-2.0.tar.gz</string>"));
    // 3 entries, each with a timestamp and serial.
    assert_eq!(resp.matches("<array><data><value><string>").count(), 3);
    assert!(ints(&resp).contains(&(since as i64 + 1)));

    // <i4> params work too.
    let body = call("changelog_since_serial", Some(0)).replace("int>", "i4>");
    let resp = xmlrpc(&up, body).await;
    assert!(resp.contains("<string>create</string>"));

    up.remove_release("demo-app", "2.0");
    let resp = xmlrpc(&up, call("changelog_since_serial", Some(since as i64 + 1))).await;
    assert!(resp.contains("<string>remove release</string>"));

    let resp = xmlrpc(&up, call("list_packages_with_serial", None)).await;
    assert!(resp.contains("<member><name>Foo.Bar_baz</name>"));

    let resp = xmlrpc(&up, call("no_such_method", None)).await;
    assert!(resp.contains("<fault>") && resp.contains("faultCode"));
    let resp = xmlrpc(&up, call("changelog_since_serial", None)).await;
    assert!(resp.contains("<fault>"));
}

#[tokio::test]
async fn request_log_and_counters() {
    let up = FakeUpstream::start(demo_projects()).await;
    let whl = up.file_url("demo_app-1.0-py3-none-any.whl").unwrap();
    project_json(&up, "demo-app").await;
    get(&whl).await;
    get(&format!("{whl}.metadata")).await;
    get(&format!("{}/files/aa/bb/missing.whl?x=1", up.url())).await;
    let path = whl.strip_prefix(&up.url()).unwrap().to_string();
    assert_eq!(
        up.requests(),
        [
            "GET /simple/demo-app/".to_string(),
            format!("GET {path}"),
            format!("GET {path}.metadata"),
            "GET /files/aa/bb/missing.whl?x=1".to_string(),
        ]
    );
    assert_eq!(up.file_downloads(), 2);
    up.reset_counters();
    assert!(up.requests().is_empty());
    assert_eq!(up.file_downloads(), 0);
}

#[tokio::test]
async fn drop_stops_server() {
    let up = FakeUpstream::start(demo_projects()).await;
    let url = up.simple_url();
    assert_eq!(get(&url).await.status(), 200);
    drop(up);
    let mut refused = false;
    for _ in 0..50 {
        if client().get(&url).send().await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(refused);
}
