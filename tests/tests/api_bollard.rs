//! berthd driven by bollard, the Rust Docker SDK (what Berth's CLI and desktop app use): a
//! second, independent client of the engine's API next to the docker CLI.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use berth_tests::berthd::Berthd;
use berth_tests::require_root;
use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, ListContainersOptionsBuilder,
    ListImagesOptions, LogsOptionsBuilder, RemoveContainerOptionsBuilder, StartContainerOptions,
    StopContainerOptionsBuilder, WaitContainerOptions,
};
use bollard::{ClientVersion, Docker};
use futures_util::StreamExt;
use std::collections::HashMap;

fn client(d: &Berthd) -> Docker {
    Docker::connect_with_unix(
        d.sock.to_str().unwrap(),
        60,
        &ClientVersion {
            major_version: 1,
            minor_version: 45,
        },
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn bollard_drives_containers_and_images() {
    if !require_root("bollard_drives_containers_and_images") {
        return;
    }
    let d = Berthd::start();
    let image_id = d.load_busybox("busybox:latest");
    let docker = client(&d);
    // Version negotiation lands on what berthd serves.
    let docker = docker.negotiate_version().await.unwrap();
    assert_eq!(docker.client_version().to_string(), "1.45");
    let images = docker.list_images(None::<ListImagesOptions>).await.unwrap();
    assert!(images.iter().any(|i| i.id == image_id), "{images:?}");

    let mut ports = HashMap::new();
    ports.insert(
        "8000/tcp".to_string(),
        Some(vec![PortBinding {
            host_ip: Some("127.0.0.1".into()),
            host_port: Some(String::new()),
        }]),
    );
    let created = docker
        .create_container(
            Some(CreateContainerOptionsBuilder::new().name("sdk").build()),
            ContainerCreateBody {
                image: Some("busybox".into()),
                cmd: Some(vec![
                    "sh".into(),
                    "-c".into(),
                    "echo from-sdk; echo warn >&2; exec sleep 300".into(),
                ]),
                env: Some(vec!["A=1".into()]),
                labels: Some(HashMap::from([("app".to_string(), "sdk".to_string())])),
                host_config: Some(HostConfig {
                    port_bindings: Some(ports),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(created.id.len(), 64);
    docker
        .start_container("sdk", None::<StartContainerOptions>)
        .await
        .unwrap();
    let info = docker
        .inspect_container("sdk", None::<InspectContainerOptions>)
        .await
        .unwrap();
    let state = info.state.unwrap();
    assert_eq!(state.running, Some(true));
    assert!(state.pid.unwrap() > 0);
    assert_eq!(info.name.as_deref(), Some("/sdk"));
    assert!(info
        .config
        .unwrap()
        .env
        .unwrap()
        .contains(&"A=1".to_string()));
    let bound = info.network_settings.unwrap().ports.unwrap();
    let host_port = bound["8000/tcp"].as_ref().unwrap()[0]
        .host_port
        .clone()
        .unwrap();
    assert!(host_port.parse::<u16>().unwrap() > 0);

    let list = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&HashMap::from([("label", vec!["app=sdk"])]))
                .build(),
        ))
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].names.as_ref().unwrap()[0], "/sdk");

    // Logs arrive demultiplexed into stdout and stderr.
    let mut out = String::new();
    let mut err = String::new();
    for _ in 0..50 {
        out.clear();
        err.clear();
        let mut s = docker.logs(
            "sdk",
            Some(LogsOptionsBuilder::new().stdout(true).stderr(true).build()),
        );
        while let Some(item) = s.next().await {
            match item.unwrap() {
                bollard::container::LogOutput::StdOut { message } => {
                    out.push_str(&String::from_utf8_lossy(&message))
                }
                bollard::container::LogOutput::StdErr { message } => {
                    err.push_str(&String::from_utf8_lossy(&message))
                }
                _ => {}
            }
        }
        if out.contains("from-sdk") && err.contains("warn") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(out, "from-sdk\n");
    assert_eq!(err, "warn\n");

    // Stop, wait, remove.
    docker
        .stop_container("sdk", Some(StopContainerOptionsBuilder::new().t(1).build()))
        .await
        .unwrap();
    let mut w = docker.wait_container("sdk", None::<WaitContainerOptions>);
    let code = match w.next().await.unwrap() {
        Ok(r) => r.status_code,
        // bollard reports a non-zero exit as an error carrying the code.
        Err(bollard::errors::Error::DockerContainerWaitError { code, .. }) => code,
        Err(e) => panic!("wait: {e}"),
    };
    assert_eq!(code, 137);
    docker
        .remove_container(
            "sdk",
            Some(RemoveContainerOptionsBuilder::new().v(true).build()),
        )
        .await
        .unwrap();
    let err = docker
        .inspect_container("sdk", None::<InspectContainerOptions>)
        .await
        .unwrap_err();
    match err {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        } => {
            assert_eq!(status_code, 404);
            assert_eq!(message, "No such container: sdk");
        }
        other => panic!("expected a 404, got {other}"),
    }
}
