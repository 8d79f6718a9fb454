//! A minimal CRI v1 client for integration/containerd.sh: the calls kubelet makes to run one
//! container in a pod (RunPodSandbox, CreateContainer, StartContainer, ContainerStatus) and to
//! tear it down, over containerd's unix socket. One call per invocation; ids on stdout,
//! gRPC errors on stderr as `error: CODE: MESSAGE` with exit status 1.
//!
//! Usage:
//!   cri-client --socket SOCK version
//!   cri-client --socket SOCK run-pod --name N --handler H --log-dir DIR         (prints the pod id)
//!   cri-client --socket SOCK pod-status POD                                      (prints the pod state)
//!   cri-client --socket SOCK create --pod POD --name N --log-dir DIR --ctr-name C --image IMG
//!              --log-path P -- CMD...                                            (prints the container id)
//!   cri-client --socket SOCK start CTR
//!   cri-client --socket SOCK wait CTR [--timeout-secs S]     (until EXITED; prints state, exit_code, reason, message)
//!   cri-client --socket SOCK rm CTR
//!   cri-client --socket SOCK rm-pod POD                                          (stop, then remove)
//!
//! `--name` and `--log-dir` of `create` must be those the pod was run with
//! (kubelet sends the pod's config again with CreateContainer). Pods use the host network
//! (`NamespaceMode.NODE`), so containerd needs no CNI configuration.

mod cri;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

const SERVICE: &str = "/runtime.v1.RuntimeService/";

struct Client {
    grpc: tonic::client::Grpc<Channel>,
}

impl Client {
    async fn connect(socket: String) -> Result<Self, String> {
        let channel = Endpoint::from_static("http://localhost")
            .connect_timeout(Duration::from_secs(5))
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let socket = socket.clone();
                async move {
                    Ok::<_, std::io::Error>(TokioIo::new(
                        tokio::net::UnixStream::connect(socket).await?,
                    ))
                }
            }))
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        Ok(Client {
            grpc: tonic::client::Grpc::new(channel),
        })
    }

    async fn call<Req, Resp>(&mut self, method: &'static str, req: Req) -> Result<Resp, String>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        self.grpc
            .ready()
            .await
            .map_err(|e| format!("{method}: not ready: {e}"))?;
        let path: http::uri::PathAndQuery = format!("{SERVICE}{method}")
            .parse()
            .map_err(|e| format!("{method}: {e}"))?;
        self.grpc
            .unary(
                tonic::Request::new(req),
                path,
                tonic_prost::ProstCodec::default(),
            )
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| format!("{method}: {:?}: {}", s.code(), s.message()))
    }
}

/// Flags `--key value` before an optional `--`, positional words, and the words after `--`.
struct Args {
    flags: Vec<(String, String)>,
    words: Vec<String>,
    rest: Vec<String>,
}

impl Args {
    fn parse(v: &[String]) -> Result<Args, String> {
        let (mut flags, mut words, mut rest) = (Vec::new(), Vec::new(), Vec::new());
        let mut it = v.iter();
        while let Some(a) = it.next() {
            if a == "--" {
                rest.extend(it.by_ref().cloned());
            } else if let Some(k) = a.strip_prefix("--") {
                let val = it.next().ok_or_else(|| format!("--{k} needs a value"))?;
                flags.push((k.to_string(), val.clone()));
            } else {
                words.push(a.clone());
            }
        }
        Ok(Args { flags, words, rest })
    }

    fn get(&self, k: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(f, _)| f == k)
            .map(|(_, v)| v.as_str())
    }

    fn need(&self, k: &str) -> Result<String, String> {
        self.get(k)
            .map(str::to_string)
            .ok_or_else(|| format!("--{k} is required"))
    }

    fn word(&self, i: usize, what: &str) -> Result<String, String> {
        self.words
            .get(i)
            .cloned()
            .ok_or_else(|| format!("{what} is required"))
    }
}

fn host_network() -> Option<cri::NamespaceOption> {
    Some(cri::NamespaceOption {
        network: cri::NAMESPACE_NODE,
        ..Default::default()
    })
}

fn pod_config(a: &Args) -> Result<cri::PodSandboxConfig, String> {
    let name = a.need("name")?;
    Ok(cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            uid: format!("{name}-uid"),
            name,
            namespace: "execguard-test".into(),
            attempt: 0,
        }),
        hostname: String::new(),
        log_directory: a.need("log-dir")?,
        annotations: Default::default(),
        linux: Some(cri::LinuxPodSandboxConfig {
            cgroup_parent: String::new(),
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: host_network(),
            }),
        }),
    })
}

async fn run(argv: &[String]) -> Result<(), String> {
    let (socket, rest) = match argv {
        [f, s, rest @ ..] if f == "--socket" => (s.clone(), rest),
        _ => return Err("usage: cri-client --socket SOCK COMMAND ... (see src/main.rs)".into()),
    };
    let (cmd, rest) = rest.split_first().ok_or("no command given")?;
    let a = Args::parse(rest)?;
    let mut c = Client::connect(socket).await?;
    match cmd.as_str() {
        "version" => {
            let r: cri::VersionResponse = c
                .call(
                    "Version",
                    cri::VersionRequest {
                        version: "v1".into(),
                    },
                )
                .await?;
            println!(
                "{} {} (CRI {})",
                r.runtime_name, r.runtime_version, r.runtime_api_version
            );
        }
        "run-pod" => {
            let req = cri::RunPodSandboxRequest {
                config: Some(pod_config(&a)?),
                runtime_handler: a.need("handler")?,
            };
            let r: cri::RunPodSandboxResponse = c.call("RunPodSandbox", req).await?;
            println!("{}", r.pod_sandbox_id);
        }
        "pod-status" => {
            let req = cri::PodSandboxIdRequest {
                pod_sandbox_id: a.word(0, "POD")?,
            };
            let r: cri::PodSandboxStatusResponse = c.call("PodSandboxStatus", req).await?;
            let s = r.status.unwrap_or_default();
            println!("state: {}", cri::pod_state_name(s.state));
            println!("runtime_handler: {}", s.runtime_handler);
        }
        "create" => {
            if a.rest.is_empty() {
                return Err("create: no command after --".into());
            }
            let req = cri::CreateContainerRequest {
                pod_sandbox_id: a.need("pod")?,
                config: Some(cri::ContainerConfig {
                    metadata: Some(cri::ContainerMetadata {
                        name: a.need("ctr-name")?,
                        attempt: 0,
                    }),
                    image: Some(cri::ImageSpec {
                        image: a.need("image")?,
                    }),
                    command: a.rest.clone(),
                    args: Vec::new(),
                    log_path: a.need("log-path")?,
                    linux: Some(cri::LinuxContainerConfig {
                        security_context: Some(cri::LinuxContainerSecurityContext {
                            namespace_options: host_network(),
                        }),
                    }),
                }),
                sandbox_config: Some(pod_config(&a)?),
            };
            let r: cri::CreateContainerResponse = c.call("CreateContainer", req).await?;
            println!("{}", r.container_id);
        }
        "start" => {
            let req = cri::ContainerIdRequest {
                container_id: a.word(0, "CTR")?,
            };
            let _: cri::Empty = c.call("StartContainer", req).await?;
        }
        "wait" => {
            let id = a.word(0, "CTR")?;
            let secs: u64 = a
                .get("timeout-secs")
                .unwrap_or("30")
                .parse()
                .map_err(|e| format!("--timeout-secs: {e}"))?;
            let deadline = Instant::now() + Duration::from_secs(secs);
            let s = loop {
                let req = cri::ContainerIdRequest {
                    container_id: id.clone(),
                };
                let r: cri::ContainerStatusResponse = c.call("ContainerStatus", req).await?;
                let s = r.status.unwrap_or_default();
                if s.state == cri::CONTAINER_EXITED || Instant::now() >= deadline {
                    break s;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            println!("state: {}", cri::container_state_name(s.state));
            println!("exit_code: {}", s.exit_code);
            println!("reason: {}", s.reason);
            println!("log_path: {}", s.log_path);
            println!("message: {}", s.message);
            if s.state != cri::CONTAINER_EXITED {
                return Err(format!("{id} did not exit within {secs} s"));
            }
        }
        "rm" => {
            let req = cri::ContainerIdRequest {
                container_id: a.word(0, "CTR")?,
            };
            let _: cri::Empty = c.call("RemoveContainer", req).await?;
        }
        "rm-pod" => {
            let id = a.word(0, "POD")?;
            let req = cri::PodSandboxIdRequest {
                pod_sandbox_id: id.clone(),
            };
            let _: cri::Empty = c.call("StopPodSandbox", req.clone()).await?;
            let _: cri::Empty = c.call("RemovePodSandbox", req).await?;
        }
        other => return Err(format!("unknown command {other}")),
    }
    Ok(())
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(&argv)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
