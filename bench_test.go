package azcred

import (
	"context"
	"testing"
	"time"

	"github.com/azcred/azcred/cache"
)

// BenchmarkEngineHit is the cache engine's hit on its own, for comparison
// with a credential's cached GetToken below (DESIGN: within 2x).
func BenchmarkEngineHit(b *testing.B) {
	e := cache.New(func(context.Context, cache.Request) (cache.Token, error) {
		return cache.Token{Value: "t", ExpiresOn: time.Now().Add(time.Hour)}, nil
	}, nil)
	r := cache.Request{Scopes: []string{armScope}, TenantID: testTenant}
	ctx := context.Background()
	if _, err := e.Get(ctx, r); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Get(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClientSecretCachedGetToken measures GetToken of a credential that
// holds a fresh token: scope and tenant validation, the tenant rule, the key
// and the cache hit.
func BenchmarkClientSecretCachedGetToken(b *testing.B) {
	e := newSecretEmulator(b, nil)
	c := newSecretCredential(b, e, testSecret, nil)
	ctx := context.Background()
	if _, err := c.GetToken(ctx, armRequest); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.GetToken(ctx, armRequest); err != nil {
			b.Fatal(err)
		}
	}
	if n := len(e.Requests()); n != 1 {
		b.Fatalf("%d requests reached the authority, want 1", n)
	}
}

func BenchmarkClientSecretCachedGetTokenParallel(b *testing.B) {
	e := newSecretEmulator(b, nil)
	c := newSecretCredential(b, e, testSecret, nil)
	ctx := context.Background()
	if _, err := c.GetToken(ctx, armRequest); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.GetToken(ctx, armRequest); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
