//! The `banso` binary as a newcomer runs it: the built executable in a
//! child process with a clean environment and a temporary data directory.

use std::{
    io::{BufRead as _, BufReader, Read as _},
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

const BIN: &str = env!("CARGO_BIN_EXE_banso");

/// A data directory of its own, removed afterwards.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("banso-cli-{tag}-{}-{}", std::process::id(), rand_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

/// `banso` with only the given variables (nothing of the caller's BANSO_*).
fn banso(args: &[&str], vars: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env_clear().stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd
}

/// Runs `cmd` to its end, at most 60 s (a command that should have failed
/// at once but serves instead is killed, and the test fails).
fn finish(mut cmd: Command) -> (ExitStatus, String) {
    let mut child = cmd.spawn().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("still running after 60 s; stderr: {}", reader.join().unwrap());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (status, reader.join().unwrap())
}

/// A running `banso up`: its banner, and its stderr collected in the background.
struct Up {
    child: Child,
    stdout: Vec<String>,
    stderr: mpsc::Receiver<String>,
}

impl Up {
    fn start(dir: &TempDir, vars: &[(&str, &str)]) -> Up {
        let data_dir = dir.0.to_str().unwrap();
        let mut child = banso(
            &[
                "up",
                "--data-dir",
                data_dir,
                "--grpc-addr",
                "127.0.0.1:0",
                "--admin-addr",
                "off",
                "--gateway-addr",
                "127.0.0.1:0",
                "--tenant",
                "newcomer",
            ],
            vars,
        )
        .spawn()
        .unwrap();
        let (out_tx, out_rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = out_tx.send(line);
            }
        });
        let (err_tx, err_rx) = mpsc::channel();
        let mut stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            // Whole lines, and anything left without a newline at the end.
            let mut all = String::new();
            let _ = stderr.read_to_string(&mut all);
            for line in all.lines() {
                let _ = err_tx.send(line.to_owned());
            }
        });
        // The banner ends with the token and the try-it line.
        let mut lines = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !lines.iter().any(|l: &String| l.contains("ListAccounts")) {
            let left = deadline.saturating_duration_since(Instant::now());
            match out_rx.recv_timeout(left) {
                Ok(l) => lines.push(l),
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "no banner within 60 s; stdout so far: {lines:#?}; stderr: {:?}",
                        err_rx.try_iter().collect::<Vec<_>>()
                    );
                }
            }
        }
        Up { child, stdout: lines, stderr: err_rx }
    }

    /// The address and token the banner shows.
    fn banner(&self) -> (String, String) {
        let addr =
            self.stdout.iter().find_map(|l| l.trim().strip_prefix("gRPC:")).expect("a gRPC line").trim().to_owned();
        let at = self.stdout.iter().position(|l| l.contains("token (admin")).expect("a token line");
        (addr, self.stdout[at + 1].trim().to_owned())
    }

    /// SIGTERM, then the exit status and every stderr line.
    fn terminate(mut self) -> (ExitStatus, Vec<String>) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM sent");
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("banso up did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut lines = Vec::new();
        while let Ok(l) = self.stderr.recv_timeout(Duration::from_secs(5)) {
            lines.push(l);
        }
        (status, lines)
    }
}

/// The banner's address answers, with the banner's token, for its tenant.
fn the_banner_works(addr: &str, token: &str) {
    use banso_proto::accounts::{ListAccountsRequest, accounts_service_client::AccountsServiceClient};
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let channel =
            tonic::transport::Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
        let mut client = AccountsServiceClient::new(channel);
        let mut req = tonic::Request::new(ListAccountsRequest::default());
        req.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        let page = client.list_accounts(req).await.expect("the banner's token works").into_inner();
        assert!(page.accounts.is_empty());
    });
}

/// The banner's REST address: `curl` creates, lists, patches and deletes.
fn the_rest_banner_works(up: &Up, token: &str) {
    let line = up.stdout.iter().find_map(|l| l.trim().strip_prefix("REST:")).expect("a REST line");
    let base = line.split_whitespace().next().unwrap().trim_end_matches("/v1/accounts").to_owned();
    assert!(base.starts_with("http://127.0.0.1:") && !base.ends_with(":0"), "{line}");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let http = reqwest::Client::new();
        let created: serde_json::Value = http
            .post(format!("{base}/v1/accounts"))
            .bearer_auth(token)
            .json(&serde_json::json!({"name": "Curl Co", "externalId": "curl-1", "lifecycleStage": "LIFECYCLE_STAGE_ONBOARDING", "touchModel": "TOUCH_MODEL_TECH"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = created["id"].as_str().unwrap_or_else(|| panic!("{created}"));
        let list: serde_json::Value =
            http.get(format!("{base}/v1/accounts")).bearer_auth(token).send().await.unwrap().json().await.unwrap();
        assert_eq!(list["accounts"][0]["name"], "Curl Co");
        let patched = http
            .patch(format!("{base}/v1/accounts/{id}?updateMask=industry"))
            .bearer_auth(token)
            .header("if-match", format!("\"{}\"", created["etag"].as_str().unwrap()))
            .json(&serde_json::json!({"industry": "Media"}))
            .send()
            .await
            .unwrap();
        assert_eq!(patched.status(), 200);
        let etag = patched.headers()["etag"].to_str().unwrap().to_owned();
        let deleted =
            http.delete(format!("{base}/v1/accounts/{id}")).bearer_auth(token).header("if-match", etag).send().await.unwrap();
        assert_eq!(deleted.status(), 200);
    });
}

#[test]
fn up_shows_the_banner_and_no_start_up_detail_and_stops_on_sigterm() {
    let dir = TempDir::new("up");
    let up = Up::start(&dir, &[]);
    let (addr, token) = up.banner();
    assert!(addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"), "the bound address, not the asked one: {addr}");
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    assert!(up.stdout.iter().any(|l| l.contains("tenant:") && l.contains("newcomer")), "{:#?}", up.stdout);
    the_banner_works(&addr, &token);
    the_rest_banner_works(&up, &token);
    let (status, stderr) = up.terminate();
    assert!(status.success(), "exit status {status:?}; stderr: {stderr:#?}");
    assert!(
        !stderr.iter().any(|l| l.contains("Applying migration") || l.contains("migrations applied")),
        "start-up detail reached stderr at the default level: {stderr:#?}"
    );
}

#[test]
fn up_logs_json_without_colour_when_stderr_is_not_a_terminal() {
    let dir = TempDir::new("json");
    let up = Up::start(&dir, &[("BANSO_LOG", "info")]);
    let (status, stderr) = up.terminate();
    assert!(status.success(), "exit status {status:?}");
    assert!(stderr.len() >= 3, "at info level start-up logs something: {stderr:#?}");
    for line in &stderr {
        assert!(!line.contains('\u{1b}'), "an ANSI escape code in a log file: {line:?}");
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
        assert!(v.get("level").is_some() && v.get("timestamp").is_some(), "{line}");
    }
    assert!(stderr.iter().any(|l| l.contains("banso is serving")), "{stderr:#?}");
}

#[test]
fn migrate_refuses_a_sqlite_database_url_and_names_the_setting_that_works() {
    let dir = TempDir::new("migrate");
    let url = format!("sqlite://{}/all.db?mode=rwc", dir.0.display());
    let (status, stderr) = finish(banso(&["migrate"], &[("BANSO_DATABASE_URL", &url)]));
    assert!(!status.success(), "migrate accepted {url}: {stderr}");
    assert!(stderr.contains("BANSO_DATABASE_URL") && stderr.contains("BANSO_DATA_DIR"), "{stderr}");
    assert!(!dir.0.join("all.db").exists(), "nothing was written to the refused URL");
}

#[test]
fn a_setting_in_the_config_file_reaches_a_service() {
    // Health's score step through BANSO_CONFIG_FILE, out of range: start-up
    // stops naming it, so the file's value reached the service's settings.
    let dir = TempDir::new("config");
    let file = dir.0.join("banso.toml");
    std::fs::write(&file, "health_score_step = 1000\n").unwrap();
    let (status, stderr) = finish(banso(
        &[
            "up",
            "--data-dir",
            dir.0.to_str().unwrap(),
            "--grpc-addr",
            "127.0.0.1:0",
            "--admin-addr",
            "off",
            "--gateway-addr",
            "127.0.0.1:0",
        ],
        &[("BANSO_CONFIG_FILE", file.to_str().unwrap())],
    ));
    assert!(!status.success(), "banso up started with health_score_step = 1000");
    assert!(stderr.contains("BANSO_HEALTH_SCORE_STEP"), "{stderr}");
}

#[test]
fn serve_gateway_fronts_services_at_their_addresses_and_drains_on_sigterm() {
    let dir = TempDir::new("gateway");
    let up = Up::start(&dir, &[]);
    let (grpc, token) = up.banner();
    let secret = std::fs::read_to_string(dir.0.join("dev-jwt-secret")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let url = format!("http://{grpc}");
    let mut gateway = banso(
        &["serve", "gateway"],
        &[
            ("BANSO_GATEWAY_ADDR", &addr),
            ("BANSO_GATEWAY_ACCOUNTS_URL", &url),
            ("BANSO_GATEWAY_HEALTH_URL", &url),
            ("BANSO_JWT_HS256_SECRET", secret.trim()),
            ("BANSO_ADMIN_ADDR", "off"),
        ],
    )
    .spawn()
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let listed = rt.block_on(async {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = http.get(format!("http://{addr}/v1/accounts")).bearer_auth(&token).send().await {
                break r;
            }
            assert!(Instant::now() < deadline, "banso serve gateway did not answer within 60 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    assert_eq!(listed.status(), 200);
    let pid = nix::unistd::Pid::from_raw(gateway.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = gateway.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the gateway did not stop within 30 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    let (status, _) = up.terminate();
    assert!(status.success());
}

#[test]
fn serve_refuses_an_unmigrated_database_until_banso_migrate_has_run() {
    let dir = TempDir::new("serve-migrate");
    let data_dir = dir.0.to_str().unwrap();
    let vars = [
        ("BANSO_DATA_DIR", data_dir),
        ("BANSO_GRPC_ADDR", "127.0.0.1:0"),
        ("BANSO_ADMIN_ADDR", "off"),
        ("BANSO_JWT_HS256_SECRET", "banso-test-secret-banso-test-secret"),
    ];
    // serve does not migrate by default: it names the missing migration and the command.
    let (status, stderr) = finish(banso(&["serve", "accounts"], &vars));
    assert!(!status.success(), "serve started on an unmigrated database: {stderr}");
    assert!(
        stderr.contains("schema accounts is missing migration m") && stderr.contains("banso migrate accounts"),
        "{stderr}"
    );

    let (status, stderr) = finish(banso(&["migrate", "accounts"], &vars));
    assert!(status.success(), "banso migrate failed: {stderr}");

    let mut serve = banso(&["serve", "accounts"], &vars).spawn().unwrap();
    let mut stderr = BufReader::new(serve.stderr.take().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        while stderr.read_line(&mut line).unwrap_or(0) > 0 {
            let _ = tx.send(std::mem::take(&mut line));
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !seen.iter().any(|l: &String| l.contains("banso is serving")) {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(l) => seen.push(l),
            Err(_) => {
                let _ = serve.kill();
                panic!("serve did not start after banso migrate: {seen:#?}");
            }
        }
    }
    let pid = nix::unistd::Pid::from_raw(serve.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = serve.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "serve did not stop within 30 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}
