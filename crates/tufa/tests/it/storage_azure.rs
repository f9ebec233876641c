//! `[storage] url = "az://container/prefix"` through the real CLI, on Azurite: the Azure
//! environment variables and the config's endpoint reach object_store's builder, a sync
//! publishes into the container and `tufa verify` re-reads all of it from there.

use crate::{MirrorDir, Upstream};

#[test]
fn sync_and_verify_on_azure_blob_storage() {
    let up = Upstream::start(tufa_fake_upstream::demo_projects());
    let azurite = tufa_testkit::shared_azurite();
    let container = tufa_testkit::unique_container();
    let m = MirrorDir::init(&up, &["demo-lib"]);
    let text = std::fs::read_to_string(m.config()).unwrap();
    let storage = format!(
        "[storage]\nurl = \"az://{container}/pypi\"\nendpoint = \"{}\"\nallow_http = true\n",
        azurite.endpoint()
    );
    std::fs::write(m.config(), text.replacen("[storage]\n", &storage, 1)).unwrap();
    let azure_env = [
        ("AZURE_STORAGE_ACCOUNT_NAME", tufa_testkit::Azurite::ACCOUNT),
        ("AZURE_STORAGE_ACCOUNT_KEY", tufa_testkit::Azurite::KEY),
    ];

    let out = m.tufa(&["sync"]).envs(azure_env).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("files downloaded"), "{stdout}");
    assert!(
        !m.dir.path().join("data/store").exists(),
        "nothing went to the local disk"
    );

    let out = m.tufa(&["verify"]).envs(azure_env).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(&format!("az://{container}/pypi")), "{stdout}");

    // Wrong key: one error line naming the store, exit 1.
    let out = m
        .tufa(&["verify"])
        .env("AZURE_STORAGE_ACCOUNT_NAME", tufa_testkit::Azurite::ACCOUNT)
        .env("AZURE_STORAGE_ACCOUNT_KEY", "d3Jvbmc=")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains(&format!("az://{container}/pypi")), "{stderr}");
}
