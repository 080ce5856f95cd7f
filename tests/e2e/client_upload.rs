//! A chunked upload whose dispatcher lost the earlier pieces midway (in a
//! group: a new leader that holds only some of them refuses the next
//! piece). The client uploads again from the start instead of failing.
//! The dispatcher here is played by the test over real QUIC.

use std::sync::{Arc, Mutex};

use fabric_client::Client;
use fabric_net::{Identity, NetConfig, framed};
use fabric_proto::wire::{ErrorBody, ErrorCode, Request, Response};
use fabric_proto::{BLOB_CHUNK, DEFAULT_MAX_FRAME};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_refused_midway_starts_again_and_completes() {
    let key = Identity::generate().unwrap();
    let ep =
        fabric_net::server_endpoint(&key, "127.0.0.1:0".parse().unwrap(), &NetConfig::default())
            .unwrap();
    let addr = ep.local_addr().unwrap();
    // The offsets of the pieces the fake stored, in order; the first try
    // of the second piece is refused as a new leader refuses it.
    let seen: Arc<Mutex<Vec<u64>>> = Arc::default();
    let refused = Arc::new(Mutex::new(false));
    let (s2, r2) = (seen.clone(), refused.clone());
    tokio::spawn(async move {
        let conn = ep.accept().await.unwrap().await.unwrap();
        while let Ok((mut send, mut recv)) = framed::accept(&conn, DEFAULT_MAX_FRAME).await {
            let req: Request = recv.expect().await.unwrap();
            let resp = match req {
                Request::HasBlob { .. } => Response::HasBlob(false),
                Request::PutBlobChunk { offset, last, .. } => {
                    let first_refusal =
                        offset > 0 && !std::mem::replace(&mut *r2.lock().unwrap(), true);
                    if first_refusal {
                        Response::Error(ErrorBody::new(
                            ErrorCode::BadRequest,
                            format!("blob piece at offset {offset} arrived before the piece at 0"),
                        ))
                    } else {
                        s2.lock().unwrap().push(offset);
                        Response::BlobChunkStored {
                            received: offset + BLOB_CHUNK as u64,
                            complete: last,
                        }
                    }
                }
                other => panic!("unexpected request {other:?}"),
            };
            send.send(&resp).await.unwrap();
            let _ = send.finish();
        }
    });
    let me = Identity::generate().unwrap();
    let c = Client::connect(&me, key.public(), addr).await.unwrap();
    let input = vec![7u8; BLOB_CHUNK * 3];
    let blob = c
        .upload_input(&input)
        .await
        .expect("the upload went through");
    assert_eq!(blob.len, input.len() as u64);
    let step = BLOB_CHUNK as u64;
    assert_eq!(
        *seen.lock().unwrap(),
        vec![0, 0, step, 2 * step],
        "piece 0, the refusal, then every piece again"
    );
}
