package main

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"
)

func TestBenchRunModes(t *testing.T) {
	if os.Getenv("NETSVC_BENCH") == "" {
		t.Skip("set NETSVC_BENCH=1")
	}
	for _, m := range []string{"rr", "rrpar", "pub"} {
		r, err := benchRun(context.Background(), benchOptions{Mode: m, Duration: 3 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(r)
		t.Log(string(b))
	}
}

func TestBenchProfileMode(t *testing.T) {
	m := os.Getenv("NETSVC_BENCH_MODE")
	if m == "" {
		t.Skip("set NETSVC_BENCH_MODE")
	}
	r, err := benchRun(context.Background(), benchOptions{Mode: m, Duration: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(r)
	t.Log(string(b))
}
