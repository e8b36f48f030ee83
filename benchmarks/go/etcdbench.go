// etcdbench: the Go baseline for benchmarks/bench_go.py. N goroutines share one
// clientv3 client (one connection, as Go users run it) and repeat Get or Put on a
// fixed key set for a fixed time; prints {"ops": ..., "seconds": ...} as JSON.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/clientv3"
)

func main() {
	endpoints := flag.String("endpoints", "127.0.0.1:2379", "comma-separated")
	op := flag.String("op", "get", "get or put")
	workers := flag.Int("workers", 1, "goroutines in flight")
	seconds := flag.Float64("seconds", 2, "how long to run")
	keys := flag.Int("keys", 1000, "distinct keys")
	valueSize := flag.Int("value-size", 100, "bytes per value")
	prefix := flag.String("prefix", "/bench-go/", "key prefix")
	flag.Parse()

	client, err := clientv3.New(clientv3.Config{
		Endpoints: strings.Split(*endpoints, ","), DialTimeout: 5 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer client.Close()
	value := strings.Repeat("x", *valueSize)
	names := make([]string, *keys)
	for i := range names {
		names[i] = fmt.Sprintf("%s%06d", *prefix, i)
	}
	ctx := context.Background()
	if _, err := client.Put(ctx, names[0], value); err != nil { // connect and warm up
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var ops, failures int64
	deadline := time.Now().Add(time.Duration(*seconds * float64(time.Second)))
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; time.Now().Before(deadline); i += *workers {
				key := names[i%len(names)]
				var err error
				if *op == "put" {
					_, err = client.Put(ctx, key, value)
				} else {
					_, err = client.Get(ctx, key)
				}
				if err != nil {
					atomic.AddInt64(&failures, 1)
				} else {
					atomic.AddInt64(&ops, 1)
				}
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	json.NewEncoder(os.Stdout).Encode(map[string]interface{}{
		"ops": ops, "failures": failures, "seconds": elapsed})
}
