package benchmarks

import (
	"context"
	"runtime"
	"testing"
)

// The cached rows of the side-by-side table as go test benchmarks:
//
//	go test -run '^$' -bench . -benchtime 2s
//
// (`go run ./cmd/sidebyside` prints every row, these included.)

// benchLibraries are the libraries of the go test benchmarks: the two of
// the table's columns and the drop-in.
var benchLibraries = []Library{Azcred, Azidentity, DropIn}

func benchCached(b *testing.B, parallel bool) {
	for _, lib := range benchLibraries {
		b.Run(string(lib), func(b *testing.B) {
			body, done, err := cachedBench(context.Background(), lib, parallel)
			if err != nil {
				b.Fatal(err)
			}
			body(b)
			b.StopTimer()
			if err := done(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkCachedGetToken is GetToken of a client-secret credential that
// holds a token an hour from expiry, from one goroutine.
func BenchmarkCachedGetToken(b *testing.B) { benchCached(b, false) }

// BenchmarkCachedGetTokenParallel is the same from GOMAXPROCS goroutines.
func BenchmarkCachedGetTokenParallel(b *testing.B) { benchCached(b, true) }

// BenchmarkFirstToken is a new client-secret credential's construction and
// first token, against an emulator whose connection is already open. It
// reports no allocations: the emulator runs in the same process and its
// own would count.
func BenchmarkFirstToken(b *testing.B) {
	for _, lib := range benchLibraries {
		b.Run(string(lib), func(b *testing.B) {
			e, err := newAuthority(0)
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			ctx := context.Background()
			if err := warm(ctx, e); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				get, err := secretCredential(lib, e)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := get(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(e.Requests()))/float64(b.N), "requests/op")
		})
	}
}

// BenchmarkVMFirstToken is DefaultAzureCredential's construction and first
// token on a simulated VM (see VM), with the IMDS requests per first token.
func BenchmarkVMFirstToken(b *testing.B) {
	if runtime.GOOS == "windows" {
		b.Fatal("VM changes PATH to an empty folder; run it on Linux or macOS")
	}
	for _, lib := range Libraries {
		b.Run(string(lib), func(b *testing.B) {
			h, err := newVMHost()
			if err != nil {
				b.Fatal(err)
			}
			defer h.Close()
			restore, err := isolateVM()
			if err != nil {
				b.Fatal(err)
			}
			defer restore()
			ctx := context.Background()
			for b.Loop() {
				if err := h.firstToken(ctx, lib); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(h.imds.Requests()))/float64(b.N), "imds-requests/op")
		})
	}
}
