use std::io::{Cursor, Read};

use tufa_fake_upstream::{FakeUpstream, ProjectSpec, ReleaseSpec, demo_projects};

use crate::*;

#[tokio::test]
async fn served_file_matches_advertised_hash_and_size() {
    let up = FakeUpstream::start(demo_projects()).await;
    let page = project_json(&up, "demo-lib").await;
    for f in page["files"].as_array().unwrap() {
        let r = get(f["url"].as_str().unwrap()).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "application/octet-stream");
        let len: usize = r.headers()["content-length"].to_str().unwrap().parse().unwrap();
        let body = r.bytes().await.unwrap();
        assert_eq!(body.len(), len);
        assert_eq!(f["size"], body.len());
        assert_eq!(f["hashes"]["sha256"], sha256_hex(&body).as_str());
        assert_eq!(
            up.file_bytes(f["filename"].as_str().unwrap()).unwrap(),
            body.to_vec()
        );
    }
}

#[tokio::test]
async fn wheel_is_valid_and_metadata_matches() {
    let up = FakeUpstream::start(demo_projects()).await;
    let page = project_json(&up, "demo-lib").await;
    let f = file_entry(&page, "demo_lib-1.1-py3-none-any.whl");
    let url = f["url"].as_str().unwrap();
    let wheel = get(url).await.bytes().await.unwrap();
    let meta_resp = get(&format!("{url}.metadata")).await;
    assert_eq!(meta_resp.status(), 200);
    let meta = meta_resp.bytes().await.unwrap();
    assert_eq!(f["core-metadata"]["sha256"], sha256_hex(&meta).as_str());

    let mut zip = zip::ZipArchive::new(Cursor::new(wheel.to_vec())).unwrap();
    let mut names: Vec<String> = zip.file_names().map(str::to_string).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "demo_lib-1.1.dist-info/METADATA",
            "demo_lib-1.1.dist-info/RECORD",
            "demo_lib-1.1.dist-info/WHEEL",
            "demo_lib/__init__.py",
        ]
    );
    let mut read = |name: &str| {
        let mut s = String::new();
        zip.by_name(name).unwrap().read_to_string(&mut s).unwrap();
        s
    };
    let metadata = read("demo_lib-1.1.dist-info/METADATA");
    assert_eq!(metadata.as_bytes(), &meta[..]);
    assert!(metadata.starts_with("Metadata-Version: 2.1\nName: demo-lib\nVersion: 1.1\n"));
    assert!(metadata.contains("Requires-Dist: demo-util\n"));
    assert!(metadata.contains("Requires-Python: >=3.8\n"));
    assert_eq!(read("demo_lib/__init__.py"), "__version__ = \"1.1\"\n");
    let wheel_txt = read("demo_lib-1.1.dist-info/WHEEL");
    assert!(wheel_txt.contains("Tag: py3-none-any"));
    let record = read("demo_lib-1.1.dist-info/RECORD");
    assert!(record.ends_with("demo_lib-1.1.dist-info/RECORD,,\n"));
    assert_eq!(record.lines().count(), 4);
    assert!(record.contains(&format!(
        "demo_lib-1.1.dist-info/METADATA,sha256={},{}\n",
        b64(&sha2_digest(metadata.as_bytes())),
        metadata.len()
    )));

    // Metadata for sdists does not exist.
    let sdist = file_entry(&page, "demo_lib-1.1.tar.gz");
    let r = get(&format!("{}.metadata", sdist["url"].as_str().unwrap())).await;
    assert_eq!(r.status(), 404);
}

fn sha2_digest(d: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(d).to_vec()
}

fn b64(d: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = String::new();
    for &b in d {
        bits = (bits << 8) | u32::from(b);
        n += 8;
        while n >= 6 {
            n -= 6;
            out.push(A[((bits >> n) & 63) as usize] as char);
        }
    }
    if n > 0 {
        out.push(A[((bits << (6 - n)) & 63) as usize] as char);
    }
    out
}

#[tokio::test]
async fn sdist_contents() {
    let up = FakeUpstream::start(demo_projects()).await;
    let bytes = up.file_bytes("foo_bar_baz-2.0.tar.gz").unwrap();
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
    let mut names = Vec::new();
    let mut pkg_info = String::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        assert_eq!(e.header().mtime().unwrap(), 0);
        let path = e.path().unwrap().to_string_lossy().into_owned();
        if path.ends_with("PKG-INFO") {
            e.read_to_string(&mut pkg_info).unwrap();
        }
        names.push(path);
    }
    assert!(names.contains(&"foo_bar_baz-2.0/PKG-INFO".to_string()));
    assert!(names.contains(&"foo_bar_baz-2.0/pyproject.toml".to_string()));
    assert!(pkg_info.contains("Name: Foo.Bar_baz\n"));
}

#[tokio::test]
async fn bytes_are_deterministic_across_servers() {
    let a = FakeUpstream::start(demo_projects()).await;
    let b = FakeUpstream::start(demo_projects()).await;
    for name in a.filenames("demo-lib") {
        assert_eq!(a.file_sha256(&name), b.file_sha256(&name), "{name}");
    }
    assert_eq!(a.filenames("demo-lib").len(), 6);
}

#[tokio::test]
async fn wheel_only_and_unknown_files() {
    let up = FakeUpstream::start(vec![
        ProjectSpec::new("only").release(ReleaseSpec::new("3.0").wheel_only()),
    ])
    .await;
    assert_eq!(up.filenames("only"), ["only-3.0-py3-none-any.whl"]);
    let url = up.file_url("only-3.0-py3-none-any.whl").unwrap();
    assert_eq!(get(&url).await.status(), 200);
    // Wrong hash directory, unknown file.
    let wrong = format!("{}/files/00/00/only-3.0-py3-none-any.whl", up.url());
    let sha = up.file_sha256("only-3.0-py3-none-any.whl").unwrap();
    if !sha.starts_with("0000") {
        assert_eq!(get(&wrong).await.status(), 404);
    }
    assert_eq!(
        get(&format!("{}/files/aa/bb/nope-1.0.tar.gz", up.url()))
            .await
            .status(),
        404
    );
}
