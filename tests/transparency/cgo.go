// cgo.go - a Go program with cgo: goroutines on several OS threads calling into C that
// allocates with malloc, and Go's own heap beside it.
package main

/*
#include <stdlib.h>
#include <string.h>
static int c_work(int n) {
    int sum = 0;
    for (int i = 0; i < n; i++) {
        char *p = malloc(32 + i % 100);
        memset(p, 1, 32);
        sum += p[3];
        free(p);
    }
    return sum;
}
*/
import "C"

import (
	"fmt"
	"os"
	"runtime"
	"sync"
)

func main() {
	runtime.GOMAXPROCS(4)
	var wg sync.WaitGroup
	sums := make([]int, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			runtime.LockOSThread()
			for r := 0; r < 20; r++ {
				sums[g] += int(C.c_work(1000))
			}
			s := make([]string, 0)
			for i := 0; i < 1000; i++ {
				s = append(s, fmt.Sprint(i))
			}
			sums[g] += len(s)
		}(g)
	}
	wg.Wait()
	fmt.Println("sums", sums)
	fmt.Fprintln(os.Stderr, "done")
	os.Exit(5)
}
