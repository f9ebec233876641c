//! `[sync] follow_dependencies` end to end: `projects = ["demo-app"]` alone, and pip and uv
//! install demo-app (and what it needs) through tufa.

use crate::harness::{Mirror, check, dist_infos, tufa_sync, venv_cmd};

#[test]
fn one_listed_project_installs_with_its_dependencies() {
    let (upstream, dir, config) = Mirror::init(&["demo-app"], false);
    let toml = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        toml.replace("\n[sync]\n", "\n[sync]\nfollow_dependencies = true\n"),
    )
    .unwrap();
    check(tufa_sync(&config), "tufa sync");
    let m = Mirror::serve(upstream, dir, config);
    for tool in ["pip", "uv"] {
        let home = m.work_dir(&format!("{tool}-home"));
        let site = home.join("site");
        let mut cmd = venv_cmd(tool, &home);
        if tool == "uv" {
            cmd.args(["pip", "install", "--no-cache"]);
        } else {
            cmd.args(["install", "--no-cache-dir"]);
        }
        let out = cmd
            .args(["--index-url", &m.url, "--target"])
            .arg(&site)
            .arg("demo-app")
            .output()
            .unwrap();
        check(out, &format!("{tool} install demo-app"));
        assert_eq!(
            dist_infos(&site),
            [
                "demo_app-1.0.dist-info",
                "demo_lib-1.1.dist-info",
                "demo_util-0.1.dist-info"
            ],
            "{tool}"
        );
    }
}
