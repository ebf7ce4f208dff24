# threads.py - python3 with threads, a process pool's worth of work in threads, subprocess.
import concurrent.futures, subprocess, sys, threading

def work(i):
    d = {str(k): k * i for k in range(20000)}
    return sum(len(v) for v in map(str, d.values())) + i

with concurrent.futures.ThreadPoolExecutor(max_workers=6) as ex:
    results = sorted(ex.map(work, range(12)))
lock = threading.Lock()
count = []
def add():
    for _ in range(1000):
        with lock:
            count.append(1)
ts = [threading.Thread(target=add) for _ in range(8)]
[t.start() for t in ts]
[t.join() for t in ts]
r = subprocess.run(["sh", "-c", "echo child; exit 2"], capture_output=True, text=True)
print(results, len(count), r.stdout.strip(), r.returncode)
sys.stderr.write("done\n")
sys.exit(7)
