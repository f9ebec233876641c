//! A fresh SoftHSM2 for each test.
//!
//! SoftHSM2 reads `SOFTHSM2_CONF` when the module is initialised, and a PKCS#11 module is
//! initialised once per process. Setting the variable from inside the test binary is not an
//! option: `std::env::set_var` is `unsafe` in edition 2024 and the workspace forbids
//! `unsafe_code` (and it would race with other tests' threads anyway). So every test runs its
//! body in a child process: the parent (the ordinary `#[test]`) makes a temporary directory
//! with a SoftHSM2 config and two tokens (`tufa-test` and a decoy), then re-runs the test
//! binary with `--exact <this test>` and `SOFTHSM2_CONF` set on the child only. The child finds
//! the marker variable and runs the body. Each test gets its own process, config and token
//! directory: nothing is shared, nothing races, and nothing outside the temporary directory is
//! touched.
//!
//! Without SoftHSM2 the tests fail and say to run `.ci/setup-softhsm.sh`; they never skip.

use std::path::PathBuf;
use std::process::Command;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use tufa_pkcs11::Pkcs11Config;

/// Set (to the test's name) in the child process only.
const CHILD_MARKER: &str = "TUFA_PKCS11_IT_CHILD";
pub const TOKEN: &str = "tufa-test";
pub const SO_PIN: &str = "1234";
pub const PIN: &str = "5678";
/// A second token on the same module, so label lookup has something to choose from.
pub const DECOY_TOKEN: &str = "tufa-decoy";
const DECOY_PIN: &str = "8765";

/// The token a test body gets, in the child process.
#[derive(Debug)]
pub struct TestToken {
    pub module: PathBuf,
    pub label: String,
    pub pin: String,
}

impl TestToken {
    pub fn config(&self, key_label: &str) -> Pkcs11Config {
        Pkcs11Config {
            module: self.module.clone(),
            token_label: self.label.clone(),
            pin: self.pin.clone(),
            key_label: key_label.to_owned(),
        }
    }

    pub fn config_with_pin(&self, key_label: &str, pin: &str) -> Pkcs11Config {
        Pkcs11Config {
            module: self.module.clone(),
            token_label: self.label.clone(),
            pin: pin.to_owned(),
            key_label: key_label.to_owned(),
        }
    }

    /// A logged-in read-write session of our own, straight through cryptoki, for looking at
    /// the token the way any other application in the process could.
    pub fn raw_session(&self) -> (Pkcs11, Session) {
        let ctx = Pkcs11::new(&self.module).unwrap();
        match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => panic!("C_Initialize: {e}"),
        }
        let slot = ctx
            .get_slots_with_initialized_token()
            .unwrap()
            .into_iter()
            .find(|s| ctx.get_token_info(*s).unwrap().label() == self.label)
            .unwrap();
        let session = ctx.open_rw_session(slot).unwrap();
        match session.login(UserType::User, Some(&AuthPin::new(self.pin.as_str().into()))) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => panic!("C_Login: {e}"),
        }
        (ctx, session)
    }
}

/// Declares a `#[test]` whose body runs in a child process with a fresh SoftHSM2.
macro_rules! softhsm_test {
    ($(#[$meta:meta])* fn $name:ident($token:ident) $body:block) => {
        $(#[$meta])*
        #[test]
        fn $name() {
            $crate::softhsm::run(
                concat!(module_path!(), "::", stringify!($name)),
                |$token: &$crate::softhsm::TestToken| $body,
            );
        }
    };
}

/// `path` is `module_path!()::name`, e.g. `it::signing::generate_sign_verify`.
pub fn run(path: &str, body: impl FnOnce(&TestToken)) {
    // libtest names tests without the crate name.
    let name = path.split_once("::").map_or(path, |(_, rest)| rest);
    if let Ok(marker) = std::env::var(CHILD_MARKER) {
        assert_eq!(marker, name, "child process started for another test");
        let module = std::env::var_os(tufa_testkit::MODULE_ENV).expect("the parent sets the module path");
        body(&TestToken {
            module: module.into(),
            label: TOKEN.to_owned(),
            pin: PIN.to_owned(),
        });
        return;
    }

    let module = tufa_testkit::softhsm_module();
    let dir = tempfile::tempdir().unwrap();
    let conf = tufa_testkit::softhsm_config(dir.path());
    tufa_testkit::softhsm_init_token(&conf, TOKEN, SO_PIN, PIN);
    tufa_testkit::softhsm_init_token(&conf, DECOY_TOKEN, SO_PIN, DECOY_PIN);

    let out = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env("SOFTHSM2_CONF", &conf)
        .env(tufa_testkit::MODULE_ENV, &module)
        .env(CHILD_MARKER, name)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Prefixed, so the child's own "test result:" line is not mistaken for the run's.
    for line in stdout.lines() {
        println!("[child] {line}");
    }
    for line in stderr.lines() {
        eprintln!("[child] {line}");
    }
    assert!(
        out.status.success(),
        "test `{name}` failed in its SoftHSM2 child process"
    );
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "the child process did not run exactly `{name}`"
    );
}
