// threads.rs - a Rust program with std::thread: spawned workers, a channel, Arc<Mutex>, strings.

use std::sync::{mpsc, Arc, Mutex};
use std::thread;

fn main() {
    let shared = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    let mut handles = Vec::new();
    for id in 0..8 {
        let shared = Arc::clone(&shared);
        let tx = tx.clone();
        handles.push(thread::spawn(move || {
            let mut s = String::new();
            for i in 0..20000 {
                s.push_str(&(i % 10).to_string());
            }
            shared.lock().unwrap().push(s.len() + id);
            tx.send(id).unwrap();
        }));
    }
    drop(tx);
    for h in handles {
        h.join().unwrap();
    }
    let got: usize = rx.iter().count();
    let mut v = shared.lock().unwrap().clone();
    v.sort();
    println!("{} messages, lengths {:?}", got, v);
    eprintln!("done");
    std::process::exit(4);
}
