// workers.js - node with worker_threads: four workers building strings and buffers, messages back.
const { Worker, isMainThread, parentPort, workerData } = require('worker_threads');

if (isMainThread) {
  let done = 0;
  const sums = [];
  for (let i = 0; i < 4; i++) {
    const w = new Worker(__filename, { workerData: i });
    w.on('message', (m) => {
      sums[i] = m;
      if (++done === 4) {
        console.log('sums', sums.join(' '));
        console.error('done');
        process.exitCode = 6;
      }
    });
  }
} else {
  let s = '';
  let total = 0;
  for (let i = 0; i < 50000; i++) {
    s += (i % 10);
    total += Buffer.from(String(i)).length;
  }
  parentPort.postMessage(total + s.length + workerData);
}
