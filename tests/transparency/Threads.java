// Threads.java - a small Java program with threads: a pool, a parallel stream, string building.

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.IntStream;

public class Threads {
    public static void main(String[] args) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(4);
        List<Future<Long>> fs = new ArrayList<>();
        for (int t = 0; t < 8; t++) {
            final int id = t;
            fs.add(pool.submit(() -> {
                StringBuilder sb = new StringBuilder();
                long n = 0;
                for (int i = 0; i < 20000; i++) { sb.append(i % 10); n += sb.length() % 7; }
                return n + id;
            }));
        }
        long total = 0;
        for (Future<Long> f : fs) total += f.get();
        pool.shutdown();
        long evens = IntStream.range(0, 1_000_000).parallel().filter(i -> i % 2 == 0).count();
        System.out.println("pool total " + total + ", parallel evens " + evens);
        System.err.println("done");
        System.exit(3);
    }
}
