//! The generated upstream (`--generate`): deterministic, consistent across the Simple pages,
//! the legacy JSON API, XML-RPC, the files and the manifest; mutations; streamed big files.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Cursor, Read};

use reqwest::header::ACCEPT;
use serde_json::Value;
use tufa_fake_upstream::{FakeUpstream, GenerateSpec, demo_projects};

use crate::*;

async fn generated(spec: &str) -> FakeUpstream {
    let spec: GenerateSpec = spec.parse().unwrap();
    FakeUpstream::start_generated(0, &spec).await.unwrap().0
}

async fn root_list(up: &FakeUpstream) -> Value {
    let r = client()
        .get(up.simple_url())
        .header(ACCEPT, JSON_CT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn legacy(up: &FakeUpstream, project: &str) -> reqwest::Response {
    get(&format!("{}/pypi/{project}/json", up.url())).await
}

#[tokio::test]
async fn same_seed_same_upstream_other_seed_other_bytes() {
    let a = generated("projects=40,seed=3").await;
    let b = generated("projects=40,seed=3").await;
    let c = generated("projects=40,seed=4").await;
    let ma = a.manifest();
    assert!(ma.len() >= 39 + 500, "{} files; one project has 500+", ma.len());
    assert_eq!(ma, b.manifest());
    assert_eq!(a.last_serial(), b.last_serial());
    assert_eq!(a.changelog(), b.changelog());
    let shas_a: BTreeSet<_> = ma.iter().map(|e| e.sha256.clone()).collect();
    assert_eq!(shas_a.len(), ma.len(), "every file has its own bytes");
    let shas_c: BTreeSet<_> = c.manifest().iter().map(|e| e.sha256.clone()).collect();
    assert!(shas_a.is_disjoint(&shas_c));
    for e in &ma {
        let filename = e.path.rsplit('/').next().unwrap();
        assert_eq!(
            e.path,
            format!(
                "packages/{}/{}/{}/{filename}",
                &e.sha256[..2],
                &e.sha256[2..4],
                &e.sha256[4..]
            )
        );
    }
}

#[tokio::test]
async fn shape_of_the_generated_upstream() {
    let up = generated("projects=200,seed=1").await;
    let list = root_list(&up).await;
    let projects = list["projects"].as_array().unwrap();
    assert_eq!(projects.len(), 200);
    assert!(
        projects.iter().any(|p| p["name"] == "Echo_bravo.20"),
        "names to normalise"
    );
    let mut per_project = BTreeMap::new();
    for p in projects {
        let name = p["name"].as_str().unwrap();
        assert_eq!(
            p["_last-serial"].as_u64(),
            up.project_serial(name),
            "{name}: root list serial"
        );
        per_project.insert(name.to_string(), up.filenames(name).len());
    }
    let big: Vec<_> = per_project.values().filter(|&&n| n >= 500).collect();
    assert_eq!(big.len(), 1, "one project with 500+ files per 400");
    assert!(
        per_project
            .values()
            .filter(|&&n| n < 500)
            .all(|&n| (1..=20).contains(&n))
    );
    let manifest = up.manifest();
    assert_eq!(manifest.len(), per_project.values().sum::<usize>());
    let wheels = manifest.iter().filter(|e| e.path.ends_with(".whl")).count();
    assert!(
        wheels > manifest.len() / 3 && wheels < manifest.len(),
        "{wheels} wheels"
    );
    let typical = manifest
        .iter()
        .filter(|e| (4_000..=201_200).contains(&e.size))
        .count();
    assert!(typical * 100 > manifest.len() * 95, "most files are 5-200 KB");
}

#[tokio::test]
async fn files_match_pages_and_wheels_are_real() {
    let up = generated("projects=30,seed=2").await;
    let list = root_list(&up).await;
    let mut checked_wheels = 0;
    for p in list["projects"].as_array().unwrap().iter().take(12) {
        let name = normalize(p["name"].as_str().unwrap());
        let page = project_json(&up, &name).await;
        assert_eq!(page["meta"]["_last-serial"], p["_last-serial"].to_string());
        for f in page["files"].as_array().unwrap() {
            let url = f["url"].as_str().unwrap();
            assert!(url.starts_with(&format!("{}/packages/", up.url())), "{url}");
            let r = get(url).await;
            assert_eq!(r.status(), 200);
            assert_eq!(r.headers()["content-length"], f["size"].to_string().as_str());
            let body = r.bytes().await.unwrap();
            assert_eq!(body.len() as u64, f["size"].as_u64().unwrap());
            assert_eq!(f["hashes"]["sha256"], sha256_hex(&body).as_str(), "{url}");
            let filename = f["filename"].as_str().unwrap();
            assert_eq!(up.file_bytes(filename).unwrap(), body.to_vec());
            if filename.ends_with(".whl") {
                let meta = get(&format!("{url}.metadata")).await.bytes().await.unwrap();
                assert_eq!(f["core-metadata"]["sha256"], sha256_hex(&meta).as_str());
                check_wheel(&body, &meta);
                checked_wheels += 1;
            } else {
                assert_eq!(f["core-metadata"], false);
            }
        }
    }
    assert!(checked_wheels >= 5, "{checked_wheels} wheels checked");
}

fn normalize(name: &str) -> String {
    tufa_fake_upstream::normalize_name(name)
}

/// Every entry's CRC is checked by reading it to the end; RECORD names every file with its
/// sha256 and size; METADATA is the served `.metadata`.
fn check_wheel(wheel: &[u8], metadata: &[u8]) {
    let mut zip = zip::ZipArchive::new(Cursor::new(wheel.to_vec())).unwrap();
    let mut entries = BTreeMap::new();
    for i in 0..zip.len() {
        let mut e = zip.by_index(i).unwrap();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        entries.insert(e.name().to_string(), data);
    }
    let names: Vec<_> = entries.keys().cloned().collect();
    assert_eq!(names.len(), 5, "{names:?}");
    let record_name = names.iter().find(|n| n.ends_with(".dist-info/RECORD")).unwrap();
    let meta_name = names.iter().find(|n| n.ends_with(".dist-info/METADATA")).unwrap();
    assert_eq!(entries[meta_name], metadata);
    let text = std::str::from_utf8(metadata).unwrap();
    assert!(text.starts_with("Metadata-Version: 2.1\nName: "), "{text}");
    let record = String::from_utf8(entries[record_name].clone()).unwrap();
    for (name, data) in &entries {
        if name == record_name {
            assert!(record.contains(&format!("{name},,\n")));
            continue;
        }
        use sha2::Digest;
        let digest = sha2::Sha256::digest(data);
        let b64 = base64_urlsafe(&digest);
        assert!(
            record.contains(&format!("{name},sha256={b64},{}\n", data.len())),
            "{name} in {record}"
        );
    }
    assert!(names.iter().any(|n| n.ends_with("/_payload.bin")));
}

fn base64_urlsafe(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

#[tokio::test]
async fn legacy_json_api_has_what_bandersnatch_reads() {
    let up = generated("projects=20,seed=5").await;
    let list = root_list(&up).await;
    let display = list["projects"][0]["name"].as_str().unwrap().to_string();
    let norm = normalize(&display);
    let r = legacy(&up, &norm).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "application/json",
        "aiohttp's json() insists"
    );
    let serial = up.project_serial(&norm).unwrap();
    assert_eq!(r.headers()["x-pypi-last-serial"], serial.to_string().as_str());
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["info"]["name"], display.as_str());
    assert_eq!(doc["last_serial"], serial);
    let page = project_json(&up, &norm).await;
    let releases = doc["releases"].as_object().unwrap();
    assert_eq!(releases.len(), page["versions"].as_array().unwrap().len());
    let mut files = 0;
    for (version, rel) in releases {
        for f in rel.as_array().unwrap() {
            files += 1;
            let filename = f["filename"].as_str().unwrap();
            assert!(
                filename.contains(&format!("-{version}")),
                "{filename} in {version}"
            );
            let on_page = file_entry(&page, filename);
            assert_eq!(f["url"], on_page["url"], "the same URL for both APIs");
            assert!(f["url"].as_str().unwrap().contains("/packages/"));
            assert_eq!(f["digests"]["sha256"], on_page["hashes"]["sha256"]);
            assert_eq!(f["size"], on_page["size"]);
            assert_eq!(f["upload_time_iso_8601"], on_page["upload-time"]);
            assert_eq!(f["yanked"], on_page["yanked"] != false);
            assert!(f["requires_python"].is_null() || f["requires_python"].is_string());
            assert!(
                f["packagetype"] == "sdist" || f["packagetype"] == "bdist_wheel",
                "{}",
                f["packagetype"]
            );
        }
    }
    assert_eq!(files, page["files"].as_array().unwrap().len());
    let latest = page["versions"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(doc["info"]["version"], latest);
    assert_eq!(doc["urls"], doc["releases"][latest.as_str().unwrap()]);

    // Any spelling of the name; unknown projects 404.
    assert_eq!(legacy(&up, &display).await.status(), 200);
    assert_eq!(legacy(&up, "no-such-project").await.status(), 404);
    // The demo upstream has it too, with /packages/ URLs that are served.
    let demo = FakeUpstream::start(demo_projects()).await;
    let doc: Value = legacy(&demo, "demo-lib").await.json().await.unwrap();
    let url = doc["urls"][0]["url"].as_str().unwrap();
    assert!(url.contains("/packages/"), "{url}");
    assert_eq!(get(url).await.status(), 200);
}

#[tokio::test]
async fn mutation_gives_one_percent_a_release_with_serials_and_changelog() {
    let up = generated("projects=200,seed=9").await;
    let a2 = generated("projects=200,seed=9").await;
    let before_serial = up.last_serial();
    let list = root_list(&up).await;
    let before: BTreeMap<String, Option<u64>> = list["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let n = normalize(p["name"].as_str().unwrap());
            let s = up.project_serial(&n);
            (n, s)
        })
        .collect();
    assert_eq!(before.len(), 200);
    let manifest_before = up.manifest();

    let r = client()
        .post(format!("{}/_fake/mutate", up.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await.unwrap();
    assert_eq!(report["epoch"], 2);
    let changed: Vec<String> = report["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(changed.len(), 2, "1 % of 200");
    assert!(report["files"].as_u64().unwrap() >= 2);
    assert_eq!(report["last_serial"], up.last_serial());
    assert_eq!(up.last_serial(), before_serial + 2, "one serial per new release");

    // The changelog since the old serial names exactly the changed projects.
    let resp = xmlrpc(&up, call("changelog_since_serial", Some(before_serial as i64))).await;
    let named: BTreeSet<String> = resp
        .split("<value><string>")
        .skip(1)
        .map(|s| s.split("</string>").next().unwrap())
        .filter(|s| !s.starts_with("add ") && *s != "new release" && !s.starts_with("0."))
        .map(normalize)
        .collect();
    assert_eq!(named, changed.iter().cloned().collect::<BTreeSet<_>>());
    for (name, serial) in &before {
        let now = up.project_serial(name);
        if changed.contains(name) {
            assert!(now > *serial, "{name} moved on");
            let page = project_json(&up, name).await;
            assert_eq!(page["meta"]["_last-serial"], now.unwrap().to_string());
        } else {
            assert_eq!(now, *serial, "{name} unchanged");
        }
    }
    let manifest_after = up.manifest();
    assert_eq!(
        manifest_after.len(),
        manifest_before.len() + report["files"].as_u64().unwrap() as usize
    );
    assert!(manifest_before.iter().all(|e| manifest_after.contains(e)));

    // Deterministic: the same epoch of another instance is the same.
    let r2 = a2.mutate().unwrap();
    assert_eq!(r2.projects, changed);
    assert_eq!(a2.manifest(), manifest_after);
    // The next epoch picks again.
    assert_eq!(up.mutate().unwrap().epoch, 3);

    // A hand-built upstream cannot be mutated.
    let demo = FakeUpstream::start(demo_projects()).await;
    let r = client()
        .post(format!("{}/_fake/mutate", demo.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("--generate"));
    assert!(demo.mutate().is_none());
}

#[tokio::test]
async fn big_file_is_streamed_and_counted() {
    let up = generated("projects=0,big-file-mb=3,seed=1").await;
    let m = up.manifest();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].size, 3 << 20);
    assert!(m[0].path.ends_with("/big_file-1.0.0.tar.gz"));
    let url = format!("{}/{}", up.url(), m[0].path);
    let body = get(&url).await.bytes().await.unwrap();
    assert_eq!(body.len(), 3 << 20);
    assert_eq!(sha256_hex(&body), m[0].sha256);
    // HEAD: headers only.
    let r = client().head(&url).send().await.unwrap();
    assert_eq!(r.headers()["content-length"], (3u64 << 20).to_string().as_str());

    let text = get(&format!("{}/_fake/manifest", up.url()))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(text, format!("{} {} {}\n", m[0].sha256, m[0].size, m[0].path));
    let stats: Value = get(&format!("{}/_fake/stats", up.url()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stats["file_downloads"], 1, "{stats}");
    assert_eq!(stats["file_bytes"], 3u64 << 20);
    assert_eq!(stats["epoch"], 1);
    assert_eq!(stats["projects"], 1);
    assert!(up.requests().is_empty(), "no request log when generated");
    // A wrong directory is not the file.
    let wrong = url.replace(&m[0].sha256[4..], &"0".repeat(60));
    assert_eq!(get(&wrong).await.status(), 404);
    let r = client()
        .get(format!("{}/_fake/mutate", up.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
}
