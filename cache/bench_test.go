package cache

import (
	"context"
	"testing"
	"time"
)

// staticFetch hands out one token valid for a day from the system clock.
func staticFetch(context.Context, Request) (Token, error) {
	return Token{Value: "token", ExpiresOn: time.Now().Add(24 * time.Hour)}, nil
}

func warmEngine(b *testing.B, r Request) *Engine {
	b.Helper()
	e := New(staticFetch, nil)
	if _, err := e.Get(context.Background(), r); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(e.Wait)
	return e
}

// BenchmarkHit measures a fresh single-scope hit on the system clock.
func BenchmarkHit(b *testing.B) {
	e := warmEngine(b, vault)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Get(ctx, vault); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHitParallel measures the same hit from GOMAXPROCS goroutines.
func BenchmarkHitParallel(b *testing.B) {
	e := warmEngine(b, vault)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.Get(ctx, vault); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkHitMultiScope measures a hit of a two-scope request, with a
// second key cached so the lookup goes through the map.
func BenchmarkHitMultiScope(b *testing.B) {
	r := Request{Scopes: []string{"https://graph.microsoft.com/User.Read", "https://graph.microsoft.com/Mail.Read"}}
	e := warmEngine(b, r)
	if _, err := e.Get(context.Background(), vault); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Get(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkKey measures building a key.
func BenchmarkKey(b *testing.B) {
	for _, bc := range []struct {
		name string
		r    Request
	}{
		{"one", vault},
		{"two", Request{Scopes: []string{"https://graph.microsoft.com/User.Read", "https://graph.microsoft.com/Mail.Read"}}},
		{"five", Request{Scopes: []string{"e", "d", "c", "b", "a"}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sink = keyOf(bc.r)
			}
		})
	}
}

var sink key
