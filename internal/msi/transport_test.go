package msi

import (
	"net/http"
	"runtime"
	"testing"
	"time"
)

func TestDirectTransportIsSharedAndReleased(t *testing.T) {
	caller := &http.Transport{}
	a, b := directTransport(caller), directTransport(caller)
	if a != b {
		t.Fatal("two credentials with one caller transport got two copies")
	}
	if a == caller || a.Proxy != nil {
		t.Fatal("the copy must be the caller's transport without a proxy")
	}
	if other := directTransport(&http.Transport{}); other == a {
		t.Fatal("another caller transport shares the first one's copy")
	}
	count := func() int {
		directMu.Lock()
		defer directMu.Unlock()
		return len(directTransports)
	}
	runtime.KeepAlive(caller)
	caller = nil
	deadline := time.Now().Add(5 * time.Second)
	for count() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d copies still held after their caller transports were collected", count())
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}
